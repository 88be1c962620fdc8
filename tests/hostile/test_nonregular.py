"""Issue 12, item 2: a data file that is not a regular file (/dev/zero, a named pipe) is refused
with one clear line by every command that opens a user's data file, instead of being read forever
(or blocking on a pipe).

The /dev/zero runs happen in a child process with a 1 GiB address-space limit and a timeout, so
code that does read the device fails fast instead of eating the machine's memory."""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from unitune.errors import DataError

ZERO = Path("/dev/zero")
LIMIT = 1 << 30

pytestmark = pytest.mark.skipif(not ZERO.exists() or not hasattr(os, "mkfifo"),
                                reason="needs /dev/zero and named pipes (POSIX)")


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "400"}  # one problem, one line: no wrapping by width
    return subprocess.run([sys.executable, "-m", "unitune", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, preexec_fn=_limited, env=env)


@pytest.mark.parametrize("args", [
    ["validate", "/dev/zero"],
    ["validate", "/dev/zero", "-t", "openai:gpt-4.1-mini-2025-04-14"],
    ["stats", "/dev/zero"],
    ["convert", "/dev/zero", "--to", "openai", "-o", "out.jsonl"],
    ["split", "/dev/zero", "-o", "parts"],
    ["dedupe", "/dev/zero", "-o", "dedup.jsonl"],
])
def test_cli_refuses_dev_zero_with_one_line(tmp_path, args):
    r = _cli(*args, cwd=tmp_path)
    assert r.returncode != 0
    err = r.stderr.strip().splitlines()
    assert err and err[0].startswith("error: /dev/zero is a character device, not a regular file")
    assert "Traceback" not in r.stderr and "MemoryError" not in r.stderr
    assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "dedup.jsonl").exists()


def test_validate_exit_code_is_usage(tmp_path):
    assert _cli("validate", "/dev/zero", cwd=tmp_path).returncode == 2


def test_symlink_to_a_device_is_refused(tmp_path):
    link = tmp_path / "train.jsonl"
    link.symlink_to(ZERO)
    r = _cli("validate", str(link), cwd=tmp_path)
    assert r.returncode == 2 and "is a character device, not a regular file" in r.stderr


def test_file_sha256_refuses_a_device(tmp_path):
    code = ("from unitune.data.hashing import file_sha256\n"
            "from unitune.errors import DataError\n"
            "try:\n    file_sha256('/dev/zero')\nexcept DataError as e:\n    print('refused', e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       preexec_fn=_limited, cwd=tmp_path)
    assert r.stdout.startswith("refused /dev/zero is a character device"), r.stderr[-500:]


def _fifo(tmp_path: Path) -> Path:
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    return fifo


def _unblock(fifo: Path) -> None:
    """Open the pipe's write end (non-blocking) so a reader stuck in open() returns."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return  # no reader waiting
    os.close(fd)


def _run_with_deadline(fn, fifo: Path, seconds: float = 20.0):
    """Run fn() in a thread; the raised exception (or None) and whether it finished in time."""
    box: dict = {}

    def target():
        try:
            fn()
            box["exc"] = None
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            box["exc"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    finished = not t.is_alive()
    if not finished:
        for _ in range(50):  # let a blocked open() see EOF
            _unblock(fifo)
            t.join(0.1)
            if not t.is_alive():
                break
    return box.get("exc"), finished


def _calls(tmp_path: Path, fifo: Path):
    from unitune.data.convert import convert_file
    from unitune.data.dataset import load_examples
    from unitune.data.hashing import file_sha256
    from unitune.data.split import dedupe_file, split_file
    from unitune.data.validate import validate_file

    return {
        "validate": lambda: validate_file(fifo),
        "load_examples": lambda: list(load_examples(fifo)),
        "convert": lambda: convert_file(fifo, "openai", tmp_path / "o.jsonl"),
        "split": lambda: split_file(fifo, 0.1, 0, tmp_path / "t.jsonl", tmp_path / "v.jsonl"),
        "dedupe": lambda: dedupe_file(fifo, tmp_path / "d.jsonl"),
        "sha256": lambda: file_sha256(fifo),
    }


@pytest.mark.parametrize("name", ["validate", "load_examples", "convert", "split", "dedupe",
                                  "sha256"])
def test_named_pipe_is_refused_not_waited_on(tmp_path, name):
    fifo = _fifo(tmp_path)
    exc, finished = _run_with_deadline(_calls(tmp_path, fifo)[name], fifo)
    assert finished, f"{name} blocked on a named pipe"
    assert isinstance(exc, DataError), exc
    assert "is a named pipe (FIFO), not a regular file" in exc.message
    assert exc.hint
