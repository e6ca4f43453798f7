"""What `make run`, `make test` and `.ci/run` need before they start, installed or started.

The one place that bootstraps a machine. It runs under the system `python3` and uses the
standard library only, because it is what installs everything else:

    python3 scripts/bootstrap.py install           uv (pinned, into .tools/), `uv sync
                                                   --frozen`, node/npm, the devnet's npm deps
    python3 scripts/bootstrap.py tools test|deploy Chromium, docker-compose, promtool, kubectl
    python3 scripts/bootstrap.py services -- CMD…  PostgreSQL and RabbitMQ answer (started
                                                   with `docker compose up -d` when they do
                                                   not and a Docker engine does), then exec CMD

A missing tool is installed with apt-get when running as root on Debian/Ubuntu; anywhere
else the check prints what is missing and the command that installs it, and exits 1.
Every check prints one line; no traceback for anything a newcomer can fix.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / ".tools"  # gitignored; the Makefile uses what is here by absolute path
UV_VERSION = "0.13.10"
UV = TOOLS / "uv" / "bin" / "uv"

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"
# The credentials docker-compose.yml gives its postgres and rabbitmq services.
COMPOSE_DATABASE_URL = "postgresql://stablegate:stablegate@127.0.0.1:{port}/stablegate"
COMPOSE_RABBITMQ_URL = "amqp://stablegate:stablegate@127.0.0.1:{port}/"
# Written when this script started the Compose services, so later runs use them too.
COMPOSE_STATE = TOOLS / "compose-services.json"
COMPOSE_OVERRIDE = TOOLS / "compose.services.yml"
READY_TIMEOUT_S = 180
# A server installed on this machine may still be starting (CI boots it beside us).
LOCAL_START_TIMEOUT_S = 90
# The init scripts of Debian's packages, by compose service.
LOCAL_INIT_SCRIPTS = {"postgres": "postgresql", "rabbitmq": "rabbitmq-server"}
INIT_D = Path("/etc/init.d")

_apt_updated = False


class Stop(Exception):
    """A problem the user can fix; its message is printed as is, and the exit code is 1."""


def say(message: str) -> None:
    print(f"bootstrap: {message}", flush=True)


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, text=True, check=False, **kwargs)


def quiet(cmd: list[str], timeout: float = 20) -> subprocess.CompletedProcess[str] | None:
    """Run a probe; None when the program is missing or hangs."""
    try:
        return run(cmd, capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None


# --- installing with apt-get ---------------------------------------------------------------


def can_apt() -> bool:
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def on_debian() -> bool:
    return Path("/etc/debian_version").exists()


def apt_install(packages: list[str], *, recommends: bool = True) -> None:
    global _apt_updated
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        say("apt-get update")
        if run(["apt-get", "update", "-qq"], env=env).returncode != 0:
            raise Stop("apt-get update failed (see above); check the machine's apt sources")
        _apt_updated = True
    say(f"apt-get install {' '.join(packages)}")
    flags = [] if recommends else ["--no-install-recommends"]
    cmd = ["apt-get", "install", "-y", "-qq", *flags, *packages]
    if run(cmd, env=env).returncode != 0:
        raise Stop(f"apt-get install {' '.join(packages)} failed (see above)")


def require(missing: dict[str, list[str]], *, recommends: bool = True) -> None:
    """Install the Debian packages of each missing tool, or stop naming them all."""
    if not missing:
        return
    packages = sorted({p for pkgs in missing.values() for p in pkgs})
    names = ", ".join(missing)
    if can_apt():
        apt_install(packages, recommends=recommends)
        return
    if on_debian():
        how = f"sudo apt-get install -y {' '.join(packages)}"
    else:
        how = f"install {names} with your package manager (Debian: {' '.join(packages)})"
    them = "it" if len(missing) == 1 else "them"
    raise Stop(f"missing {names}; install {them}, then run this again: {how}")


# --- install: uv, the Python packages, node/npm and the devnet's packages ------------------


def ensure_uv() -> None:
    probe = quiet([str(UV), "--version"])
    if probe is not None and probe.returncode == 0 and UV_VERSION in probe.stdout:
        return
    venv = UV.parent.parent
    if importlib_missing("ensurepip"):
        require({"python3-venv": ["python3-venv"]})
    say(f"installing uv {UV_VERSION} into {venv.relative_to(ROOT)}/ (python3 -m venv + pip)")
    shutil.rmtree(venv, ignore_errors=True)
    if run([sys.executable, "-m", "venv", str(venv)], capture_output=True).returncode != 0:
        require({"python3-venv": ["python3-venv"]})
        if run([sys.executable, "-m", "venv", str(venv)]).returncode != 0:
            raise Stop(f"python3 -m venv {venv} failed (see above)")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    if run([*pip, "--disable-pip-version-check", f"uv=={UV_VERSION}"]).returncode != 0:
        raise Stop(f"could not install uv {UV_VERSION} with pip (see above); is PyPI reachable?")


def importlib_missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


def npm_deps_stale() -> bool:
    modules = ROOT / "devnet" / "node_modules"
    marker = modules / ".package-lock.json"
    lock = ROOT / "devnet" / "package-lock.json"
    return not marker.exists() or lock.stat().st_mtime > marker.stat().st_mtime


def install() -> None:
    ensure_uv()
    if run([str(UV), "sync", "--frozen"]).returncode != 0:
        raise Stop("uv sync --frozen failed (see above)")
    missing = {t: ["nodejs", "npm"] for t in ("node", "npm") if shutil.which(t) is None}
    require(missing)  # the devnet's pinned anvil and solc come from npm
    if npm_deps_stale():
        say("npm ci --prefix devnet (the pinned anvil and solc)")
        npm = ["npm", "ci", "--prefix", "devnet", "--no-audit", "--no-fund", "--no-update-notifier"]
        # The machine's CA store (as for uv, see the Makefile), for npm and the packages'
        # install scripts, which download the anvil and solc binaries.
        options = os.environ.get("NODE_OPTIONS", "")
        env = {**os.environ, "NODE_OPTIONS": f"{options} --use-openssl-ca".strip()}
        if run(npm, cwd=ROOT, env=env).returncode != 0:
            raise Stop("npm ci --prefix devnet failed (see above)")


# --- tools: what the browser tests and the deploy checks run -------------------------------


def compose_command() -> list[str] | None:
    """`docker compose` (v2 plugin) or `docker-compose` (v1), whichever is installed."""
    for cmd in (["docker", "compose"], ["docker-compose"]):
        probe = quiet([*cmd, "version"])
        if probe is not None and probe.returncode == 0:
            return cmd
    return None


def tools(purpose: str) -> None:
    missing: dict[str, list[str]] = {}
    if purpose == "test":
        chromium = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
        if not chromium.exists():
            missing[f"Chromium ({chromium}, for the browser tests)"] = ["chromium"]
    require(missing)  # Chromium with its recommends (fonts)
    missing = {}
    if compose_command() is None:
        missing["docker-compose"] = ["docker-compose"]
    if shutil.which("promtool") is None:
        # Debian's prometheus package; only promtool is used, no daemon is started.
        missing["promtool"] = ["prometheus"]
    require(missing, recommends=False)
    if shutil.which("kubectl") is None and shutil.which("kustomize") is None:
        how = "install kubectl (https://kubernetes.io/docs/tasks/tools/) or kustomize"
        if purpose == "deploy":
            raise Stop(f"kubectl is missing (it renders deploy/k8s): {how}")
        say(f"kubectl is missing, so tests/deploy skips its Kustomize check: {how}")


# --- services: PostgreSQL and RabbitMQ -----------------------------------------------------


def endpoint(url: str, default_port: int) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or default_port


def answers(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return False
    return True


def docker_engine_answers() -> bool:
    probe = quiet(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=20)
    return probe is not None and probe.returncode == 0 and bool(probe.stdout.strip())


# What each docker-compose.yml service is, where it listens, and the URL of it this gives.
COMPOSE_SERVICES = {
    "postgres": ("PostgreSQL", 5432, "DATABASE_URL", COMPOSE_DATABASE_URL),
    "rabbitmq": ("RabbitMQ", 5672, "RABBITMQ_URL", COMPOSE_RABBITMQ_URL),
}


def compose_up(compose: list[str], ports: dict[str, int]) -> dict[str, str]:
    """`docker compose up -d` the services of `ports` (postgres, rabbitmq) with their ports
    published on 127.0.0.1, wait until they are healthy and answer; returns their URLs."""
    TOOLS.mkdir(exist_ok=True)
    lines = ["# Written by scripts/bootstrap.py: publishes the services on 127.0.0.1.", "services:"]
    for service, port in ports.items():
        inner = COMPOSE_SERVICES[service][1]
        lines += [f"  {service}:", f'    ports: ["127.0.0.1:{port}:{inner}"]']
    COMPOSE_OVERRIDE.write_text("\n".join(lines) + "\n")
    cmd = with_files(compose)
    names = " and ".join(COMPOSE_SERVICES[s][0] for s in ports)
    say(f"starting {names}: {' '.join(compose)} up -d {' '.join(ports)}")
    if run([*cmd, "up", "-d", *ports], cwd=ROOT).returncode != 0:
        raise Stop(f"{' '.join(compose)} up -d {' '.join(ports)} failed (see above)")
    deadline = time.monotonic() + READY_TIMEOUT_S
    waiting = dict(ports)
    while waiting:
        for service, port in list(waiting.items()):
            if health(cmd, service) == "healthy" and answers("127.0.0.1", port):
                del waiting[service]
        if waiting and time.monotonic() > deadline:
            raise Stop(
                f"not healthy after {READY_TIMEOUT_S} s: {' and '.join(waiting)}; "
                f"see {' '.join(compose)} logs {' '.join(waiting)}"
            )
        if waiting:
            time.sleep(2)
    where = ", ".join(f"{COMPOSE_SERVICES[s][0]} on 127.0.0.1:{p}" for s, p in ports.items())
    say(f"ready: {where}")
    return {COMPOSE_SERVICES[s][2]: COMPOSE_SERVICES[s][3].format(port=p) for s, p in ports.items()}


def with_files(compose: list[str]) -> list[str]:
    return [*compose, "-f", str(ROOT / "docker-compose.yml"), "-f", str(COMPOSE_OVERRIDE)]


def health(cmd: list[str], service: str) -> str:
    ps = quiet([*cmd, "ps", "-q", service])
    if ps is None or not ps.stdout.strip():
        return "absent"
    fmt = "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}"
    probe = quiet(["docker", "inspect", "--format", fmt, ps.stdout.split()[0]])
    return probe.stdout.strip() if probe is not None and probe.returncode == 0 else "unknown"


def no_engine_message(missing: list[str]) -> str:
    names = " and ".join(missing)
    verb, them = ("is", "it") if len(missing) == 1 else ("are", "them")
    return "\n".join(
        [
            f"{names} {verb} not answering, and no Docker engine answers (docker info) "
            f"to start {them}. Two ways out:",
            "  1. start Docker (with Compose), then run this again: it starts the "
            "postgres and rabbitmq services of docker-compose.yml;",
            "  2. or install them locally: sudo apt-get install -y postgresql "
            "rabbitmq-server, then set DATABASE_URL and RABBITMQ_URL "
            '(see README "Two commands").',
        ]
    )


def wait_for_local(down: dict[str, tuple[str, int]]) -> dict[str, tuple[str, int]]:
    """Give servers installed on this machine the time to start (as root, start them with
    their init script); returns what still does not answer."""
    installed = {
        s: LOCAL_INIT_SCRIPTS[s]
        for s, (_, port) in down.items()
        # The init script starts the server on its own port, not on one a URL names.
        if port == COMPOSE_SERVICES[s][1] and (INIT_D / LOCAL_INIT_SCRIPTS[s]).exists()
    }
    if not installed:
        return down
    for service, script in installed.items():
        name = f"{COMPOSE_SERVICES[service][0]} ({':'.join(map(str, down[service]))})"
        if os.geteuid() == 0 and shutil.which("service"):
            say(f"{name} is installed here but not answering: service {script} start")
            quiet(["service", script, "start"], timeout=LOCAL_START_TIMEOUT_S)
        else:
            say(f"{name} is installed here but not answering yet: waiting")
    deadline = time.monotonic() + LOCAL_START_TIMEOUT_S
    waiting = dict(down)
    while True:
        waiting = {s: hp for s, hp in waiting.items() if not answers(*hp)}
        if not waiting or not set(waiting) & set(installed) or time.monotonic() > deadline:
            return waiting
        time.sleep(1)


def services_env() -> dict[str, str]:
    """The DATABASE_URL/RABBITMQ_URL to set (empty when the configured ones answer); starts
    with docker compose what does not answer, or stops saying how to get it."""
    configured = {k: os.environ.get(k) for k in ("DATABASE_URL", "RABBITMQ_URL")}
    ours: dict[str, int] = {}  # compose service -> port, started by an earlier run
    urls: dict[str, str] = {}
    if COMPOSE_STATE.exists() and not any(configured.values()):
        # Use them again while their containers exist (`docker compose down` ends that).
        compose = compose_command()
        ours = json.loads(COMPOSE_STATE.read_text())
        if not (
            compose is not None
            and docker_engine_answers()
            and all(health(with_files(compose), service) != "absent" for service in ours)
        ):
            COMPOSE_STATE.unlink()
            ours = {}
        if compose is not None and ours:
            urls = compose_up(compose, ours)
    wanted = {
        "DATABASE_URL": configured["DATABASE_URL"] or DEFAULT_DATABASE_URL,
        "RABBITMQ_URL": configured["RABBITMQ_URL"] or DEFAULT_RABBITMQ_URL,
    }
    down: dict[str, tuple[str, int]] = {}  # compose service -> (host, port) not answering
    for service, (_, port, variable, _) in COMPOSE_SERVICES.items():
        host, port = endpoint(wanted[variable], port)
        if service not in ours and not answers(host, port):
            down[service] = (host, port)
    if down and all(host in ("127.0.0.1", "localhost", "::1") for host, _ in down.values()):
        down = wait_for_local(down)
    if not down:
        return urls
    missing = [f"{COMPOSE_SERVICES[s][0]} ({h}:{p})" for s, (h, p) in down.items()]
    if any(host not in ("127.0.0.1", "localhost", "::1") for host, _ in down.values()):
        raise Stop(f"not answering: {' and '.join(missing)}; check DATABASE_URL/RABBITMQ_URL")
    compose = compose_command()
    if compose is None or not docker_engine_answers():
        raise Stop(no_engine_message(missing))
    ports = {service: port for service, (_, port) in down.items()}
    started = compose_up(compose, ports)
    if not any(configured.values()):
        COMPOSE_STATE.write_text(json.dumps({**ours, **ports}))
    # A URL the user set is theirs to keep; a default one becomes Compose's credentials.
    return {**urls, **{k: v for k, v in started.items() if not configured[k]}}


def services(command: list[str]) -> None:
    env = {**os.environ, **services_env()}
    if not command:
        return
    try:
        os.execvpe(command[0], command, env)  # noqa: S606 - the Makefile's own command
    except OSError as exc:
        raise Stop(f"cannot run {command[0]}: {exc.strerror}") from exc


def main(argv: list[str]) -> int:
    usage = "usage: bootstrap.py install | tools test|deploy | services [-- CMD ...]"
    try:
        if argv[:1] == ["install"]:
            install()
        elif argv[:1] == ["tools"] and argv[1:] in (["test"], ["deploy"]):
            tools(argv[1])
        elif argv[:1] == ["services"]:
            rest = argv[1:]
            services(rest[1:] if rest[:1] == ["--"] else rest)
        else:
            print(usage, file=sys.stderr)
            return 2
    except Stop as problem:
        for line in str(problem).splitlines():
            print(f"bootstrap: {line}" if not line.startswith(" ") else line, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
