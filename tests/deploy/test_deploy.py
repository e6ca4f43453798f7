"""The deployment files against the code they deploy: metric names the alerts and the
dashboard query, the services and workspace members the images and manifests cover, the
devnet token addresses the Kubernetes dev overlay pins, and `deploy/validate.sh` itself
(Compose, Kustomize + kubernetes-validate, promtool), which `make ci` also runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from devnet.devnet import NETWORKS, free_port, start_anvil

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
# The signer is a package under services/ but never deployed with the suite: it holds the
# seed and runs on the business's own isolated machine (docs/funds-out.md).
OFFLINE_PACKAGES = {"signer"}
SERVICES = sorted(
    p.parent.name
    for p in (ROOT / "services").glob("*/pyproject.toml")
    if p.parent.name not in OFFLINE_PACKAGES
)

_DECLARED = re.compile(r"\b(Counter|Gauge|Histogram|Summary|Info)\(\s*\"(stablegate_\w+)\"")
# A metric name, not a Python module path such as `stablegate_common.watcher`.
_QUERIED = re.compile(r"\bstablegate_[a-z0-9_]+\b(?!\.)")


def exported_metric_names() -> set[str]:
    """The sample names prometheus_client exposes for every metric declared in the code."""
    names: set[str] = set()
    sources = [*ROOT.glob("libs/*/src/**/*.py"), *ROOT.glob("services/*/src/**/*.py")]
    for path in sources:
        for kind, name in _DECLARED.findall(path.read_text()):
            if kind == "Info":
                names.add(f"{name}_info")
            elif kind in ("Histogram", "Summary"):
                names.update({f"{name}_bucket", f"{name}_count", f"{name}_sum", name})
            else:
                names.add(name)
    return names


def queried_metric_names() -> dict[str, set[str]]:
    files = [
        DEPLOY / "prometheus" / "alerts.yml",
        DEPLOY / "prometheus" / "alerts.test.yml",
        DEPLOY / "grafana" / "stablegate.json",
    ]
    found = {}
    for path in files:
        lines = path.read_text().splitlines()
        text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
        found[path.name] = set(_QUERIED.findall(text))
    return found


def test_every_queried_metric_is_exported_by_the_code() -> None:
    exported = exported_metric_names()
    assert "stablegate_watcher_lag_blocks" in exported  # the scan itself works
    assert "stablegate_http_request_duration_seconds_bucket" in exported
    for name, queried in queried_metric_names().items():
        assert queried, f"{name} queries no stablegate metric"
        unknown = queried - exported
        assert not unknown, f"{name} queries metrics no service exports: {unknown}"


def test_alerts_cover_what_the_issue_names() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs = {rule["alert"]: rule["expr"] for group in rules["groups"] for rule in group["rules"]}
    wanted = {
        "watcher lag": "stablegate_watcher_lag_blocks",
        "outbox backlog": "stablegate_outbox_backlog",
        "consumer dead letters": 'stablegate_bus_consumed_total{outcome="rejected"}',
        "webhook failure rate": "stablegate_webhook_deliveries_total",
        "reconciliation discrepancies": "stablegate_reconciler_open_discrepancies",
        "API error rate": 'status=~"5.."',
        "API latency": "stablegate_http_request_duration_seconds_bucket",
    }
    for what, needle in wanted.items():
        assert any(needle in expr for expr in exprs.values()), f"no alert on {what}"
    for rule in (r for group in rules["groups"] for r in group["rules"]):
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]


def test_the_dashboard_shows_each_rpc_provider_and_the_quorum() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "stablegate.json").read_text())
    panels = dashboard["panels"]
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    per_provider = [
        "stablegate_rpc_requests_total",
        "stablegate_rpc_errors_total",
        "stablegate_rpc_head_lag_blocks",
        "stablegate_rpc_provider_healthy",
    ]
    for metric in per_provider:
        assert any(metric in e and "provider" in e.split(metric)[0] for e in exprs), metric
    healthy_vs_quorum = [
        p
        for p in panels
        if {"stablegate_rpc_healthy_providers", "stablegate_rpc_quorum"}
        <= {m for t in p.get("targets", []) for m in _QUERIED.findall(t["expr"])}
    ]
    assert healthy_vs_quorum, "no panel sets the healthy providers against the quorum"
    # Grafana lays panels out by gridPos: distinct ids, no two panels on one cell.
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        covered = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not covered & cells, f"{panel['title']} overlaps another panel"
        assert all(x < 24 for x, _ in covered), f"{panel['title']} is wider than the grid"
        cells |= covered


def test_every_service_has_an_image_a_compose_entry_and_manifests() -> None:
    assert "gateway" in SERVICES
    assert len(SERVICES) >= 6
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    base = yaml.safe_load((DEPLOY / "k8s" / "base" / "kustomization.yaml").read_text())
    for service in SERVICES:
        args = compose[service]["build"]["args"]
        assert args["SERVICE"] == service
        assert compose[f"{service}-migrate"]["command"] == ["migrate"]
        package = args["PACKAGE"]
        project = (ROOT / "services" / service / "pyproject.toml").read_text()
        assert f'name = "{package}"' in project
        assert f"{package} = " in project  # the console script the image runs
        assert f"{service}.yaml" in base["resources"]
        manifests = (DEPLOY / "k8s" / "base" / f"{service}.yaml").read_text()
        kinds = [doc["kind"] for doc in yaml.safe_load_all(manifests)]
        assert {"Deployment", "Service", "PodDisruptionBudget", "Job"} <= set(kinds), service


def _secret_template(name: str) -> dict[str, str]:
    docs = yaml.safe_load_all((DEPLOY / "k8s" / "secrets.template.yaml").read_text())
    found = [d for d in docs if d["metadata"]["name"] == name]
    assert found, f"secrets.template.yaml has no Secret {name}"
    data: dict[str, str] = found[0]["stringData"]
    return data


def _container_env(manifest: str) -> dict[str, dict[str, object]]:
    docs = yaml.safe_load_all((DEPLOY / "k8s" / "base" / manifest).read_text())
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    return {e["name"]: e for e in env}


def test_every_funds_out_setting_is_wired_in_compose_and_kubernetes() -> None:
    """Each funds-out setting the code reads is in the base ConfigMap, or (node URLs,
    which may carry API keys) the gateway's Secret; the ops token reaches the gateway
    and the dashboard from one Secret key in Kubernetes and one anchor in Compose."""
    from stablegate_gateway.disbursements.config import DisbursementSettings
    from stablegate_gateway.outgoing.config import OutgoingSettings
    from stablegate_gateway.outgoing.sweep_config import SweepSettings

    names = {
        f"GATEWAY_{field.upper()}"
        for cls in (OutgoingSettings, SweepSettings, DisbursementSettings)
        for field in cls.model_fields
    }
    assert "GATEWAY_TREASURY_ADDRESS_TRON" in names
    assert "GATEWAY_SWEEP_GAS_MARGIN" in names
    base = yaml.safe_load((DEPLOY / "k8s" / "base" / "kustomization.yaml").read_text())
    config = dict(line.split("=", 1) for g in base["configMapGenerator"] for line in g["literals"])
    node_urls = {n for n in names if "_URL" in n}
    assert node_urls == {
        "GATEWAY_RPC_URL_ETHEREUM",
        "GATEWAY_RPC_URL_BSC",
        "GATEWAY_TRON_API_URL",
        "GATEWAY_TRON_SOLIDITY_URL",
    }
    wired = set(config) | set(_secret_template("stablegate-gateway")) | {"GATEWAY_OPS_TOKEN"}
    assert not names - wired, f"not in the ConfigMap or the Secret: {names - wired}"
    assert not node_urls & set(config), "node URLs may carry API keys: Secret, not ConfigMap"
    assert "RECONCILER_IN_FLIGHT_GRACE_SECONDS" in config
    # Empty by default: no network is swept until the operator names its treasury.
    for network in ("ETHEREUM", "BSC", "TRON"):
        assert config[f"GATEWAY_TREASURY_ADDRESS_{network}"] == ""
    fields = {k.removeprefix("GATEWAY_").lower(): v for k, v in config.items() if k in names}
    OutgoingSettings.model_validate(fields)
    DisbursementSettings.model_validate(fields)

    ops_ref = {"name": "stablegate-ops", "key": "token", "optional": True}
    gateway = _container_env("gateway.yaml")["GATEWAY_OPS_TOKEN"]
    dashboard = _container_env("dashboard.yaml")["DASHBOARD_GATEWAY_OPS_TOKEN"]
    assert gateway["valueFrom"] == dashboard["valueFrom"] == {"secretKeyRef": ops_ref}
    assert "token" in _secret_template("stablegate-ops")

    text = (ROOT / "docker-compose.yml").read_text()
    assert "GATEWAY_OPS_TOKEN: *ops-token" in text
    assert "DASHBOARD_GATEWAY_OPS_TOKEN: *ops-token" in text
    compose = yaml.safe_load(text)["services"]
    token = compose["gateway"]["environment"]["GATEWAY_OPS_TOKEN"]
    assert compose["dashboard"]["environment"]["DASHBOARD_GATEWAY_OPS_TOKEN"] == token
    OutgoingSettings(ops_token=token)  # long enough for the gateway to accept it


def test_dockerfiles_copy_every_workspace_member_and_only_existing_paths() -> None:
    members = {f"{p.relative_to(ROOT)}" for p in ROOT.glob("services/*/pyproject.toml")}
    members.add("libs/common/pyproject.toml")
    for dockerfile in (DEPLOY / "docker").glob("*Dockerfile"):
        sources: list[str] = []
        for line in dockerfile.read_text().splitlines():
            words = line.split()
            if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
                sources += [w for w in words[1:-1] if not w.startswith("--")]
        for source in sources:
            if "${" not in source:
                assert (ROOT / source).exists(), f"{dockerfile.name} copies missing {source}"
        # `uv sync --frozen` needs every member's pyproject to resolve the workspace.
        assert members <= set(sources), f"{dockerfile.name} misses {members - set(sources)}"


def test_dev_overlay_pins_the_addresses_a_fresh_devnet_deploys_to(tmp_path: Path) -> None:
    """The Kubernetes dev overlay ships the devnet's token addresses as a static file; a
    fresh anvil must put the tokens exactly there, and `devnet_node.py deploy --expect`
    must refuse a chain where they landed elsewhere."""
    pinned = DEPLOY / "k8s" / "overlays" / "dev" / "devnet-assets.json"
    from devnet.tron.genesis import DevnetConfig
    from devnet.tron.node import DevnetNode

    tron = DevnetNode(DevnetConfig(solidification_depth=19)).assets_overlay()["networks"]["tron"]
    assert json.loads(pinned.read_text())["networks"]["tron"] == tron

    anvils = [
        start_anvil(free_port(), NETWORKS[n].chain_id, log_path=tmp_path / f"{n}.log")
        for n in ("ethereum", "bsc")
    ]
    try:
        nodes = [f"{n}={a.rpc_url}" for n, a in zip(("ethereum", "bsc"), anvils, strict=True)]

        def deploy(state: str) -> subprocess.CompletedProcess[str]:
            command = [sys.executable, str(DEPLOY / "docker" / "devnet_node.py"), "deploy"]
            command += ["--state-dir", str(tmp_path / state), "--expect", str(pinned), *nodes]
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)

        fresh = deploy("fresh")
        assert fresh.returncode == 0, fresh.stderr
        written = json.loads((tmp_path / "fresh" / "assets.json").read_text())["networks"]
        assert written == {
            k: v for k, v in json.loads(pinned.read_text())["networks"].items() if k != "tron"
        }
        # A second deployment on the same chains (no state: a new volume) lands elsewhere.
        again = deploy("again")
        assert again.returncode == 1
        assert "landed at other addresses" in again.stderr
    finally:
        for anvil in anvils:
            anvil.stop()


def _tools_missing() -> list[str]:
    tools = {"promtool": "promtool", "docker-compose": "docker-compose", "kubectl": "kubectl"}
    missing = [name for name, binary in tools.items() if shutil.which(binary) is None]
    if "kubectl" in missing and shutil.which("kustomize"):
        missing.remove("kubectl")
    return missing


@pytest.mark.slow
def test_validate_deploy_script_passes() -> None:
    missing = _tools_missing()
    if missing and not os.environ.get("CI"):
        pytest.skip(f"not installed here: {', '.join(missing)} (.ci/run installs them)")
    result = subprocess.run(
        ["bash", str(DEPLOY / "validate.sh")], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "validate-deploy: all checks passed" in result.stdout
