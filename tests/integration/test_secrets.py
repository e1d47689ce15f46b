"""The server's secret key file: generated once, atomically, even when `cohort serve` and
`cohort worker` start together on first boot; private; refused, naming it, when too short."""

from __future__ import annotations

import multiprocessing
import stat
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from scheduler import runtime as runtime_module
from scheduler.errors import ConfigError
from scheduler.settings import MIN_SECRET_KEY_BYTES

PROCESSES = 8
ROUNDS = 30


# --- the key file ------------------------------------------------------------------------------


def _read_key(path: Path, start: Barrier, out: Queue[bytes | str]) -> None:
    start.wait()  # every process reaches for the missing file at the same moment
    try:
        out.put(runtime_module.read_or_create_key(path))
    except Exception as e:  # reported to the test, which fails on it
        out.put(f"{type(e).__name__}: {e}")


def test_processes_starting_together_all_get_the_same_full_key(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    for round_ in range(ROUNDS):
        path = tmp_path / f"round{round_}" / "var" / "secret.key"
        start = context.Barrier(PROCESSES)
        out: Queue[bytes | str] = context.Queue()
        processes = [
            context.Process(target=_read_key, args=(path, start, out)) for _ in range(PROCESSES)
        ]
        for process in processes:
            process.start()
        keys = [out.get(timeout=30) for _ in processes]
        for process in processes:
            process.join(timeout=30)
        assert all(isinstance(k, bytes) for k in keys), keys
        assert len(set(keys)) == 1, f"round {round_}: {keys}"
        assert len(keys[0]) >= MIN_SECRET_KEY_BYTES, f"round {round_}: {keys[0]!r}"
        assert path.read_bytes().strip() == keys[0]
        assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_the_key_file_and_its_new_folder_are_private(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secret.key"
    key = runtime_module.read_or_create_key(path)
    assert len(key) >= MIN_SECRET_KEY_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert runtime_module.read_or_create_key(path) == key  # kept, not regenerated


@pytest.mark.parametrize(
    "content",
    [b"", b"\n", b"short-key\n", b"x" * (MIN_SECRET_KEY_BYTES - 1)],
    ids=["empty", "blank_line", "short", "one_byte_short"],
)
def test_a_short_key_file_is_refused_naming_it(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "secret.key"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as raised:
        runtime_module.read_or_create_key(path)
    message = str(raised.value)
    assert str(path) in message
    assert f"at least {MIN_SECRET_KEY_BYTES} bytes" in message
    assert path.read_bytes() == content  # left for the operator to look at


def test_a_key_file_of_32_bytes_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_bytes(b"k" * MIN_SECRET_KEY_BYTES + b"\n")
    assert runtime_module.read_or_create_key(path) == b"k" * MIN_SECRET_KEY_BYTES
