from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.errors import ConfigError
from scheduler.settings import load_settings


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("COHORT_DATABASE_URL", "COHORT_BASE_URL", "COHORT_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "cohort.toml"
    path.write_text(
        '[cohort]\nslug = "x"\n\n[settings]\nbase_url = "https://file.example"\nlog_level = "info"\n'
    )
    return path


def test_defaults_without_any_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COHORT_DATABASE_URL", raising=False)
    settings = load_settings()
    assert settings.database_url == "sqlite:///var/cohort.db"
    assert settings.log_level == "WARNING"


def test_precedence_defaults_file_env_flags(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().base_url == "https://file.example"  # ./cohort.toml found by default
    assert load_settings().log_level == "INFO"
    monkeypatch.setenv("COHORT_BASE_URL", "https://env.example/")
    assert load_settings().base_url == "https://env.example"
    assert load_settings(base_url="https://flag.example").base_url == "https://flag.example"
    assert (
        load_settings(base_url=None).base_url == "https://env.example"
    )  # an unset flag is no value


@pytest.mark.parametrize(
    ("where", "expected_source"),
    [
        ("file", "cohort.toml [settings]"),
        ("env", "environment variable COHORT_DATABASE_URL"),
        ("flag", "command-line flag --database-url"),
    ],
)
def test_bad_value_names_its_source(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, where: str, expected_source: str
) -> None:
    flags = {}
    if where == "file":
        config_file.write_text('[settings]\ndatabase_url = "mysql://nope"\n')
    elif where == "env":
        monkeypatch.setenv("COHORT_DATABASE_URL", "mysql://nope")
    else:
        flags["database_url"] = "mysql://nope"
    with pytest.raises(ConfigError) as info:
        load_settings(**flags)
    (problem,) = info.value.problems
    assert problem.source == expected_source
    assert problem.field == "database_url"
    assert "sqlite:///" in problem.message


def test_unknown_setting_in_file(config_file: Path) -> None:
    config_file.write_text('[settings]\ndatabse_url = "sqlite:///x.db"\n')
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.problems[0].field == "databse_url"


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")


# -- a cohort file without [settings] (issue 14: `cohort init demo && cd demo`) ---------------


def test_cohort_file_without_settings_table_is_fine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COHORT_DATABASE_URL", raising=False)
    cohort_file = tmp_path / "cohort.toml"
    cohort_file.write_text('[cohort]\nslug = "x"\ntitle = "T"\n')
    assert load_settings().database_url == "sqlite:///var/cohort.db"  # ./cohort.toml, found
    assert load_settings(cohort_file).database_url == "sqlite:///var/cohort.db"  # --config


def test_config_file_that_is_not_toml_is_one_clear_problem(config_file: Path) -> None:
    config_file.write_text("[settings\nbase_url = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    (problem,) = caught.value.problems
    assert problem.source == "cohort.toml"
    assert "TOML" in problem.message


# -- secrets: long enough, never echoed (issue 13, findings 2, 8, 9) ---------------------------

SECRET = "hunter2-Pa55w0rd"


@pytest.mark.parametrize("key", ["", "a", "x" * 31], ids=["empty", "one_byte", "31_bytes"])
def test_short_secret_key_is_refused_naming_its_source(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    monkeypatch.setenv("COHORT_SECRET_KEY", key)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    (problem,) = caught.value.problems
    assert problem.source == "environment variable COHORT_SECRET_KEY"
    assert "at least 32 bytes" in problem.message
    assert problem.value is None  # a secret is never printed back


def test_secret_key_of_32_bytes_is_accepted(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COHORT_SECRET_KEY", "k" * 32)
    assert load_settings().secret_key is not None


@pytest.mark.parametrize(
    ("setting", "content"),
    [
        ("database_url", f'database_url = "mysql://admin:{SECRET}@db.example/cohort"'),
        ("database_url", f'database_url = "postgresql+psycopg://admin:{SECRET}@db/x?port=nan"'),
        ("smtp_password", f"smtp_password = ['{SECRET}']"),
        ("secret_key", f"secret_key = ['{SECRET}']"),
        ("secret_key", f'secret_key = "{SECRET}"'),
    ],
    ids=["db_url_bad_scheme", "db_url_bad_shape", "smtp_password_list", "key_list", "key_short"],
)
def test_errors_never_print_a_secret(config_file: Path, setting: str, content: str) -> None:
    config_file.write_text(f"[settings]\n{content}\n")
    try:
        settings = load_settings()
    except ConfigError as e:
        shown = str(e) + "\n".join(p.describe() for p in e.problems)
        assert setting in shown
    else:  # accepted: then nothing that prints settings may show it
        shown = repr(settings) + str(settings)
    assert SECRET not in shown


def test_settings_repr_hides_the_database_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COHORT_DATABASE_URL", f"postgresql+psycopg://u:{SECRET}@db/x")
    settings = load_settings()
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("smtp.example.org", False),
        ("10.0.0.5", False),
        ("localhost", True),
        ("127.0.0.1", True),
        ("::1", True),
    ],
)
def test_smtp_password_in_clear_only_to_loopback(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, host: str, allowed: bool
) -> None:
    config_file.write_text(
        '[settings]\nmail_backend = "smtp"\nsmtp_security = "none"\n'
        f'smtp_host = "{host}"\nsmtp_username = "course"\nsmtp_password = "{SECRET}"\n'
    )
    if allowed:
        assert load_settings().smtp_host == host
        return
    with pytest.raises(ConfigError) as caught:
        load_settings()
    shown = "\n".join(p.describe() for p in caught.value.problems)
    assert "smtp_security" in shown and host in shown
    assert SECRET not in shown


def test_forwarded_allow_ips_must_be_addresses(config_file: Path) -> None:
    config_file.write_text('[settings]\nforwarded_allow_ips = "127.0.0.1, 10.0.0.0/8"\n')
    assert load_settings().forwarded_allow_ips == "127.0.0.1,10.0.0.0/8"
    config_file.write_text('[settings]\nforwarded_allow_ips = "proxy.example"\n')
    with pytest.raises(ConfigError):
        load_settings()


@pytest.mark.parametrize(
    "base_url",
    [
        "https://example.org/écoles",
        "https://user:pw@example.org",
        "https://example.org/?a=1",
        "https://example.org/#top",
        "https://exa mple.org",
        "https://example.org/<x>",
    ],
)
def test_a_base_url_links_cannot_carry_unchanged_is_refused(base_url: str) -> None:
    """Every email's links and its List-Unsubscribe header are built on base_url: one they
    cannot carry as it is fails at start-up, with a problem naming it, not email by email."""
    with pytest.raises(ConfigError) as info:
        load_settings(base_url=base_url)
    (problem,) = info.value.problems
    assert problem.field == "base_url"
    assert "percent-encode" in problem.message


@pytest.mark.parametrize(
    "base_url", ["http://course_host:8000", "http://[::1]:8000", "https://example.org/cohorts/"]
)
def test_host_names_ipv6_literals_and_paths_are_fine(base_url: str) -> None:
    assert load_settings(base_url=base_url).base_url == base_url.rstrip("/")
