"""scripts/bootstrap.py, what `make run`, `make test` and `.ci/run` start with: on a fresh
clone with an empty HOME and no uv on PATH, `make install` brings uv and the virtual
environment; what it cannot fix it names in one line, with the command that fixes it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from scripts import bootstrap

ROOT = Path(__file__).resolve().parents[2]
BARE_PATH = "/usr/bin:/bin"


def _bare_env(home: Path, **extra: str) -> dict[str, str]:
    env = {"HOME": str(home), "PATH": BARE_PATH, **extra}
    # Only a download cache, so CI does not fetch every wheel again; HOME stays empty.
    cache = os.environ.get("UV_CACHE_DIR") or str(Path.home() / ".cache" / "uv")
    if Path(cache).is_dir():
        env["UV_CACHE_DIR"] = cache
    return env


@pytest.mark.slow
def test_make_install_on_a_fresh_clone_brings_uv_and_the_venv(tmp_path: Path) -> None:
    if shutil.which("uv", path=BARE_PATH) or shutil.which("make") is None:
        pytest.skip(f"needs make, and no uv on {BARE_PATH}")
    clone, home = tmp_path / "fresh", tmp_path / "home"
    home.mkdir()
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = _bare_env(home)

    first = subprocess.run(
        ["make", "install"], cwd=clone, env=env, capture_output=True, text=True, timeout=1200
    )
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert f"installing uv {bootstrap.UV_VERSION}" in first.stdout
    uv = clone / ".tools" / "uv" / "bin" / "uv"
    version = subprocess.run([str(uv), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.split()[1] == bootstrap.UV_VERSION
    assert (clone / ".venv" / "bin" / "python").exists()
    assert (clone / "devnet" / "node_modules").is_dir()
    imported = subprocess.run(
        [str(uv), "run", "--frozen", "python", "-c", "import stablegate_gateway"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert imported.returncode == 0, imported.stderr[-3000:]

    again = subprocess.run(
        ["make", "install"], cwd=clone, env=env, capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "installing uv" not in again.stdout  # the pinned uv in .tools/ is reused
    assert "npm ci" not in again.stdout


def _bootstrap(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bootstrap.py"), *args],
        cwd=ROOT,
        env={"HOME": os.environ.get("HOME", "/tmp"), "PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_services_without_them_or_docker_says_the_two_ways_out(tmp_path: Path) -> None:
    # Closed ports, and a PATH on which neither docker nor docker-compose can be found.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    result = _bootstrap(
        "services",
        "--",
        "/bin/echo",
        "ran",
        DATABASE_URL="postgresql://postgres:hunter2@127.0.0.1:1/postgres",
        RABBITMQ_URL="amqp://guest:hunter2@127.0.0.1:2/",
        PATH=str(fake_bin),
    )
    assert result.returncode == 1
    assert "ran" not in result.stdout
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "bootstrap: PostgreSQL (127.0.0.1:1) and RabbitMQ (127.0.0.1:2) are not answering, "
        "and no Docker engine answers (docker info) to start them. Two ways out:"
    )
    assert "docker-compose.yml" in lines[1]
    assert "apt-get install -y postgresql rabbitmq-server" in lines[2]
    assert "hunter2" not in result.stderr
    assert "Traceback" not in result.stderr


def test_services_that_answer_exec_the_command_unchanged(tmp_path: Path) -> None:
    import socket

    with socket.socket() as pg, socket.socket() as mq:
        for listener in (pg, mq):
            listener.bind(("127.0.0.1", 0))
            listener.listen()
        database_url = f"postgresql://postgres@127.0.0.1:{pg.getsockname()[1]}/postgres"
        rabbitmq_url = f"amqp://guest:guest@127.0.0.1:{mq.getsockname()[1]}/"
        result = _bootstrap(
            "services", "--", "/usr/bin/env", DATABASE_URL=database_url, RABBITMQ_URL=rabbitmq_url
        )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert f"DATABASE_URL={database_url}" in result.stdout.splitlines()
    assert f"RABBITMQ_URL={rabbitmq_url}" in result.stdout.splitlines()


def test_a_missing_tool_is_named_with_the_command_that_installs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bootstrap, "can_apt", lambda: False)
    monkeypatch.setattr(bootstrap, "on_debian", lambda: True)
    with pytest.raises(bootstrap.Stop) as stop:
        bootstrap.require({"promtool": ["prometheus"], "docker-compose": ["docker-compose"]})
    assert str(stop.value) == (
        "missing promtool, docker-compose; install them, then run this again: "
        "sudo apt-get install -y docker-compose prometheus"
    )
    bootstrap.require({})  # nothing missing: nothing to say


def test_the_suite_stops_at_once_without_its_services_or_docker() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/common", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": "postgresql://postgres:hunter2@127.0.0.1:1/postgres",
            "DOCKER_HOST": "unix:///nonexistent/docker.sock",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "PostgreSQL (127.0.0.1:1) not answering, and no Docker engine for testcontainers" in (
        output
    )
    assert "passed" not in output
    assert "hunter2" not in output


# A stand-in for `docker` and `docker-compose`: the engine answers, `up -d` starts a
# listener on each service's published port (read from the override file), every service
# is healthy. Each call is logged, one line of argv per call.
FAKE_DOCKER = r"""#!/usr/bin/env python3
import os, re, subprocess, sys
from pathlib import Path
state = Path(os.environ["FAKE_DOCKER_DIR"])
args = sys.argv[1:]
with open(state / "calls.log", "a") as log:
    print(" ".join([Path(sys.argv[0]).name, *args]), file=log)
if Path(sys.argv[0]).name == "docker":
    if args[:1] == ["info"]:
        print("27.0.3"); sys.exit(0)
    if args[:1] == ["inspect"]:
        print("healthy"); sys.exit(0)
    if args[:1] != ["compose"] or os.environ.get("FAKE_COMPOSE_V1"):
        sys.exit(1)
    args = args[1:]
if args == ["version"]:
    sys.exit(0)
files = [args[i + 1] for i, a in enumerate(args) if a == "-f"]
rest = [a for i, a in enumerate(args) if a != "-f" and (i == 0 or args[i - 1] != "-f")]
if rest[:2] == ["up", "-d"]:
    published = re.findall(r'127\.0\.0\.1:(\d+):\d+', Path(files[-1]).read_text())
    for port in published:
        listener = subprocess.Popen([sys.executable, "-c",
            "import socket, time; s = socket.socket(); "
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
            f"s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(60)"],
            start_new_session=True)
        with open(state / "pids", "a") as pids:
            print(listener.pid, file=pids)
    sys.exit(0)
if rest[:2] == ["ps", "-q"]:
    if not (state / "down").exists():
        print(f"cid-{rest[2]}")
    sys.exit(0)
sys.exit(1)
"""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("compose", ["docker compose", "docker-compose"])
def test_services_that_do_not_answer_are_started_with_docker_compose(
    compose: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for name in ("docker", "docker-compose"):
        (fake_bin / name).write_text(FAKE_DOCKER)
        (fake_bin / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_DOCKER_DIR", str(tmp_path))
    if compose == "docker-compose":
        monkeypatch.setenv("FAKE_COMPOSE_V1", "1")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("RABBITMQ_URL", raising=False)
    pg_port, mq_port = _free_port(), _free_port()
    monkeypatch.setattr(
        bootstrap, "DEFAULT_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{pg_port}/postgres"
    )
    monkeypatch.setattr(
        bootstrap, "DEFAULT_RABBITMQ_URL", f"amqp://guest:guest@127.0.0.1:{mq_port}/"
    )
    monkeypatch.setattr(bootstrap, "TOOLS", tmp_path / "tools")
    monkeypatch.setattr(bootstrap, "COMPOSE_STATE", tmp_path / "tools" / "compose-services.json")
    monkeypatch.setattr(bootstrap, "COMPOSE_OVERRIDE", tmp_path / "tools" / "compose.yml")
    try:
        env = bootstrap.services_env()
        # The defaults were not answering: Compose's services, with Compose's credentials.
        assert env == {
            "DATABASE_URL": f"postgresql://stablegate:stablegate@127.0.0.1:{pg_port}/stablegate",
            "RABBITMQ_URL": f"amqp://stablegate:stablegate@127.0.0.1:{mq_port}/",
        }
        calls = (tmp_path / "calls.log").read_text().splitlines()
        override = bootstrap.COMPOSE_OVERRIDE
        compose_file = f"-f {bootstrap.ROOT / 'docker-compose.yml'} -f {override}"
        assert f"{compose} {compose_file} up -d postgres rabbitmq" in calls
        assert f'ports: ["127.0.0.1:{pg_port}:5432"]' in override.read_text()
        # The next run uses them again: the same `up -d` (a no-op for Compose while they
        # run, a start after a reboot), with the credentials the state file remembers.
        assert bootstrap.services_env() == env
        calls = (tmp_path / "calls.log").read_text().splitlines()
        ups = [call for call in calls if " up -d " in call]
        assert ups == [f"{compose} {compose_file} up -d postgres rabbitmq"] * 2
        # After `docker compose down` the state is forgotten: what answers is used as is
        # (here the stand-in's listeners, at the default URLs).
        (tmp_path / "down").touch()
        assert bootstrap.services_env() == {}
        assert not bootstrap.COMPOSE_STATE.exists()
    finally:
        pids = tmp_path / "pids"
        for pid in pids.read_text().split() if pids.exists() else []:
            os.kill(int(pid), 15)


def test_a_local_server_that_is_still_starting_is_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CI boots RabbitMQ beside the run: its init script exists and its port opens late.
    init_d = tmp_path / "init.d"
    init_d.mkdir()
    (init_d / "rabbitmq-server").touch()
    monkeypatch.setattr(bootstrap, "INIT_D", init_d)
    monkeypatch.setattr(bootstrap, "LOCAL_START_TIMEOUT_S", 30)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # not root: wait, start nothing
    calls = {"n": 0}

    def answers(host: str, port: int) -> bool:
        calls["n"] += 1
        return calls["n"] > 3  # the third probe after the first still finds it closed

    monkeypatch.setattr(bootstrap, "answers", answers)
    monkeypatch.setattr(bootstrap.time, "sleep", lambda _: None)
    down = {"rabbitmq": ("127.0.0.1", 5672)}
    assert bootstrap.wait_for_local(down) == {}
    # Not on its default port, or not installed: nothing to wait for.
    calls["n"] = 0
    assert bootstrap.wait_for_local({"rabbitmq": ("127.0.0.1", 5999)}) == {
        "rabbitmq": ("127.0.0.1", 5999)
    }
    assert bootstrap.wait_for_local({"postgres": ("127.0.0.1", 5432)}) == {
        "postgres": ("127.0.0.1", 5432)
    }
    assert calls["n"] == 0
