"""`make run`'s supervisor (scripts/suite.py): it names what is missing and how to start
it, and the services it starts die with it however it dies (PR_SET_PDEATHSIG), each in a
process group of its own so a terminal's Ctrl-C reaches the supervisor only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from scripts.suite import check_dependencies

from tests.conftest import DATABASE_URL, RABBITMQ_URL

ROOT = Path(__file__).resolve().parents[2]

# A parent that starts one "service" through Suite(bind_children=True), reports the
# child's pid and process group, then waits to be killed.
PARENT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from scripts.suite import ServiceSpec, Suite

    class Sleeper(ServiceSpec):
        @property
        def command(self) -> str:
            return sys.argv[1]

    suite = Suite({}, [Sleeper("sleeper", "unused", 0)], Path(sys.argv[2]), bind_children=True)
    child = suite.start("sleeper").process
    print(child.pid, os.getpgid(child.pid), flush=True)
    time.sleep(120)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too: the orphaned child's new parent (init) reaps it soon.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def test_unreachable_dependencies_are_named_with_how_to_start_them() -> None:
    problems = check_dependencies(
        "postgresql://postgres@127.0.0.1:1/postgres", "amqp://guest:guest@127.0.0.1:2/"
    )
    assert len(problems) == 2
    postgres, rabbitmq = problems
    assert postgres.startswith("PostgreSQL is not reachable at 127.0.0.1:1")
    assert "pg_ctlcluster" in postgres
    assert "DATABASE_URL" in postgres
    assert rabbitmq.startswith("RabbitMQ is not reachable at 127.0.0.1:2")
    assert "rabbitmq-server -detached" in rabbitmq
    assert check_dependencies(DATABASE_URL, RABBITMQ_URL) == []


def test_services_die_with_a_killed_supervisor(tmp_path: Path) -> None:
    service = tmp_path / "service"
    service.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(120)\n")
    service.chmod(0o755)
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(service), str(tmp_path / "logs")],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    child = 0
    try:
        assert parent.stdout is not None
        child, group = (int(word) for word in parent.stdout.readline().split())
        assert _alive(child)
        assert group == child  # its own process group: Ctrl-C is the supervisor's to handle
        assert group != os.getpgid(parent.pid)
        parent.send_signal(signal.SIGKILL)  # no handler runs: only the kernel can help
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the service outlived its supervisor"
    finally:
        parent.kill()
        parent.wait(10)
        if child and _alive(child):
            os.kill(child, signal.SIGKILL)
