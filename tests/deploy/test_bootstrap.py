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
