"""`cohort serve` over real HTTP: feeds, caching headers, 404 for revoked links, rate limit,
and no feed token in any log line (uvicorn's access log included)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
SLUG = "ml-foundations-2027"


def _cohort(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("cohort", path=str(Path(sys.executable).parent)) or "cohort"
    result = subprocess.run(
        [exe, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _other_learner(work: Path) -> str:
    """A learner of the demo roster other than yuki.sato@example.org (whose links the fixture
    hands to every test)."""
    with (work / "demo" / "roster.csv").open(encoding="utf-8", newline="") as f:
        emails = [row["email"] for row in csv.DictReader(f)]
    return next(email for email in emails if email != "yuki.sato@example.org")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """A published demo cohort served by `cohort serve` on a free port (SQLite)."""
    work = tmp_path_factory.mktemp("serve")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORT_")}
    env |= {
        "COHORT_DATABASE_URL": f"sqlite:///{work / 'c.db'}",
        "COHORT_BASE_URL": f"http://127.0.0.1:{port}",
        "COHORT_FEED_RATE_PER_MINUTE": "40",
        "COLUMNS": "200",
    }
    _cohort(env, work, "init", "demo", "--learners", "40")
    _cohort(env, work, "db", "upgrade")
    _cohort(env, work, "cohort", "load", "demo/cohort.toml")
    _cohort(env, work, "roster", "import", "demo/roster.csv", "--cohort", SLUG)
    _cohort(env, work, "plan", "--cohort", SLUG, "--publish")
    links = json.loads(
        _cohort(env, work, "feeds", "url", "yuki.sato@example.org", "-c", SLUG, "--json").stdout
    )
    log = (work / "server.log").open("w")
    exe = shutil.which("cohort", path=str(Path(sys.executable).parent)) or "cohort"
    process = subprocess.Popen(
        [exe, "serve", "--port", str(port)], env=env, cwd=work, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    else:
        process.kill()
        raise RuntimeError((work / "server.log").read_text())
    yield {"base": base, "links": links, "env": env, "work": work, "log": work / "server.log"}
    process.terminate()
    process.wait(timeout=10)
    log.close()


def test_feed_is_served_with_caching_and_privacy_headers(server: dict[str, object]) -> None:
    links = server["links"]
    assert isinstance(links, dict)
    assert links["webcal"].startswith("webcal://127.0.0.1")
    response = httpx.get(links["https"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    assert response.headers["cache-control"].startswith("private")
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "noindex" in response.headers["x-robots-tag"]
    assert response.text.startswith("BEGIN:VCALENDAR")
    assert "BEGIN:VTIMEZONE" in response.text
    etag = response.headers["etag"]
    again = httpx.get(links["https"], headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert httpx.get(links["https"]).content == response.content  # same plan, same bytes


def test_unknown_and_revoked_links_are_404(server: dict[str, object]) -> None:
    # Revokes the link of a learner no other test uses: the module's server and its links
    # (yuki's) stay as the fixture made them, whatever order the tests run in.
    base, env, work = server["base"], server["env"], server["work"]
    assert isinstance(env, dict) and isinstance(work, Path)
    email = _other_learner(work)
    links = json.loads(_cohort(env, work, "feeds", "url", email, "-c", SLUG, "--json").stdout)
    assert httpx.get(links["https"]).status_code == 200
    assert links["page"].startswith(f"{base}/me/")  # a learner's link also opens their page
    assert 'id="preferences"' in httpx.get(links["page"]).text
    cohort_feed = json.loads(_cohort(env, work, "feeds", "url", "-c", SLUG, "--json").stdout)
    assert cohort_feed["page"] is None  # the cohort's feed has no page
    assert httpx.get(f"{base}/feeds/not-a-real-token.ics").status_code == 404
    reset = json.loads(_cohort(env, work, "feeds", "reset", email, "-c", SLUG, "--json").stdout)
    time.sleep(1.1)  # the server trusts a token check for a second (LOOKUP_SECONDS)
    assert httpx.get(links["https"]).status_code == 404
    assert httpx.get(reset["https"]).status_code == 200


def test_health_robots_and_security_headers(server: dict[str, object]) -> None:
    base = server["base"]
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    before = httpx.get(f"{base}/readyz").json()
    assert before == {"status": "ready", "workers_running": 0, "last_tick_age_s": None}
    env, work = server["env"], server["work"]
    assert isinstance(env, dict) and isinstance(work, Path)
    assert _cohort(env, work, "worker", "--once").returncode == 0  # mail to work/var/outbox
    after = httpx.get(f"{base}/readyz").json()
    assert after["workers_running"] == 0 and 0 <= after["last_tick_age_s"] < 30
    robots = httpx.get(f"{base}/robots.txt")
    assert "Disallow: /feeds/" in robots.text
    assert robots.headers["x-content-type-options"] == "nosniff"


def test_rate_limit_answers_429(server: dict[str, object]) -> None:
    # The limit is per client address: this test comes from 127.0.0.2, a bucket of its own, so
    # it neither sees the other tests' requests nor leaves them rate limited.
    base = server["base"]
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=transport) as client:
        codes = [client.get(f"{base}/feeds/nope{i}.ics").status_code for i in range(45)]
    assert codes == [404] * 40 + [429] * 5  # COHORT_FEED_RATE_PER_MINUTE=40
    assert httpx.get(f"{base}/feeds/nope.ics").status_code == 404  # 127.0.0.1 is unaffected


def test_no_token_in_any_log_line(server: dict[str, object]) -> None:
    log_file, links = server["log"], server["links"]
    assert isinstance(log_file, Path) and isinstance(links, dict)
    base = server["base"]
    assert httpx.get(links["https"]).status_code == 200
    assert httpx.get(f"{base}/feeds/not-a-real-token.ics").status_code == 404
    time.sleep(0.3)
    text = log_file.read_text()
    token = links["https"].rsplit("/", 1)[1].removesuffix(".ics")
    assert "/feeds/[redacted]" in text  # the access log is on, and redacted
    assert token not in text
    assert "not-a-real-token" not in text
