"""`make test`: the whole suite as two pytest processes side by side.

The `slow` suites (e2e, deploy, bench: several processes each, mostly waiting on chains,
brokers and timers) run beside the rest (mostly CPU: unit and database tests), so the
wall time is about the longer of the two instead of their sum. Each process has its own
base temp directory and no cache, so neither disturbs the other; their output is
streamed line by line, prefixed `[fast]` / `[slow]`, and each prints its own summary.
The exit status is the first failing process's (0 when both passed).

With arguments (`make test PYTEST_ARGS="tests/gateway -x"`), one plain pytest runs them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
GROUPS = (("fast", "not slow"), ("slow", "slow"))


def _stream(name: str, process: subprocess.Popen[str], lock: threading.Lock) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        with lock:
            sys.stdout.write(f"[{name}] {line}")
            sys.stdout.flush()


def main(argv: list[str]) -> int:
    pytest = [sys.executable, "-m", "pytest"]
    if argv:
        return subprocess.call([*pytest, *argv], cwd=ROOT)
    ARTIFACTS.mkdir(exist_ok=True)
    lock = threading.Lock()
    running = []
    for name, marks in GROUPS:
        command = [
            *pytest,
            "-m",
            marks,
            "-p",
            "no:cacheprovider",
            f"--basetemp={ARTIFACTS / f'pytest-{name}'}",
        ]
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        reader = threading.Thread(target=_stream, args=(name, process, lock), daemon=True)
        reader.start()
        running.append((name, process, reader))
    codes = {}
    try:
        for name, process, reader in running:
            codes[name] = process.wait()
            reader.join()
    except KeyboardInterrupt:
        for _, process, _ in running:
            process.terminate()
        raise
    for name, code in codes.items():
        print(f"[{name}] pytest exited {code}")
    return next((code for code in codes.values() if code != 0), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
