#!/usr/bin/env bash
# Offline checks of everything under deploy/ and of docker-compose.yml (`make
# validate-deploy`, part of `make ci`). Nothing here talks to a cluster or a Docker engine:
#   1. docker-compose.yml resolves (`docker-compose config`, with and without profiles);
#   2. every Kustomize tree renders (`kubectl kustomize`, or a standalone `kustomize`) and
#      the output, with the Secret template, validates against the Kubernetes $K8S_VERSION
#      API schemas in strict mode (kubernetes-validate: unknown fields are errors);
#   3. the Prometheus rules load, their unit tests pass, and the Compose scrape config
#      loads (`promtool`); the Kubernetes scrape config and the Grafana dashboard parse.
# Tools: .ci/run installs Debian's docker-compose and prometheus (for promtool);
# kubernetes-validate comes with `uv sync` (the dev group).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
K8S_VERSION="${K8S_VERSION:-1.30}"
UV="${UV:-uv}"
cd "$ROOT"

OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
started=$(date +%s%N)

step() { printf '== %s\n' "$*"; }
fail() { printf 'validate-deploy: %s\n' "$*" >&2; exit 1; }

# --- tools ---------------------------------------------------------------------------------
if command -v docker-compose >/dev/null 2>&1; then
  COMPOSE=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
else
  fail "docker-compose is missing: apt-get install docker-compose (or the Compose plugin)"
fi
if command -v kustomize >/dev/null 2>&1; then
  KUSTOMIZE=(kustomize build)
elif command -v kubectl >/dev/null 2>&1; then
  KUSTOMIZE=(kubectl kustomize)
else
  fail "neither kustomize nor kubectl (which embeds it) is installed"
fi
command -v promtool >/dev/null 2>&1 ||
  fail "promtool is missing: apt-get install --no-install-recommends prometheus"

# --- 1. Compose ----------------------------------------------------------------------------
step "docker-compose config ($("${COMPOSE[@]}" version --short 2>/dev/null || echo '?'))"
"${COMPOSE[@]}" -f docker-compose.yml config -q
"${COMPOSE[@]}" -f docker-compose.yml --profile monitoring config -q

# --- 2. Kubernetes -------------------------------------------------------------------------
rendered=()
for tree in deploy/k8s/base deploy/k8s/overlays/*/; do
  tree="${tree%/}"
  name="$(basename "$tree")"
  step "${KUSTOMIZE[*]} $tree"
  "${KUSTOMIZE[@]}" "$tree" >"$OUT/$name.yaml"
  rendered+=("$OUT/$name.yaml")
done
step "kubernetes-validate --kubernetes-version $K8S_VERSION --strict"
"$UV" run --frozen kubernetes-validate --kubernetes-version "$K8S_VERSION" --strict --quiet \
  "${rendered[@]}" deploy/k8s/secrets.template.yaml

# --- 3. Prometheus and Grafana -------------------------------------------------------------
step "promtool check rules / test rules / check config"
promtool check rules deploy/prometheus/alerts.yml
(cd deploy/prometheus && promtool test rules alerts.test.yml)
(cd deploy/prometheus && promtool check config prometheus.compose.yml)
"$UV" run --frozen python - <<'EOF'
import json
import yaml

with open("deploy/prometheus/prometheus.k8s.yml") as f:
    config = yaml.safe_load(f)
assert config["rule_files"] == ["alerts.yml"], "prometheus.k8s.yml must load alerts.yml"
with open("deploy/grafana/stablegate.json") as f:
    dashboard = json.load(f)
targets = [t for p in dashboard["panels"] for t in p.get("targets", [])]
assert targets and all(t["expr"] for t in targets), "every Grafana panel query needs an expr"
print(f"prometheus.k8s.yml parses; stablegate.json has {len(targets)} queries")
EOF

elapsed=$((($(date +%s%N) - started) / 1000000))
printf 'validate-deploy: all checks passed in %d.%03d s\n' $((elapsed / 1000)) $((elapsed % 1000))
