# Stablegate — the commands a newcomer needs are `make run` and `make test`.
# scripts/bootstrap.py (stdlib only, run by the system python3) installs what is missing:
# uv into .tools/ (used from there by absolute path), the Python packages, node/npm, the
# test tools; and starts PostgreSQL and RabbitMQ with docker compose when they are not up.
SHELL := /bin/bash
PYTHON3 ?= python3
BOOTSTRAP := $(PYTHON3) scripts/bootstrap.py
UV ?= $(CURDIR)/.tools/uv/bin/uv
# The machine's CA store, as pip (which installed uv) and git use, rather than uv's bundled
# roots: behind a TLS-inspecting proxy only the machine's store knows the proxy's CA.
export UV_SYSTEM_CERTS ?= 1
PYTEST_ARGS ?=

.PHONY: help install run demo test test-fast lint format ci validate-deploy devnet devnet-stop clean assets bench

help:
	@echo "make run      start the devnet and every service locally, with a demo merchant"
	@echo "make demo     (beside make run) send simulated customer payments: exact, partial, late"
	@echo "make test     install what is missing and run the whole test suite"
	@echo "make lint     ruff, mypy --strict, import-linter"
	@echo "make ci       lint + deploy validation + the whole test suite (what .ci/run calls)"
	@echo "make validate-deploy  check docker-compose.yml, deploy/k8s, the Prometheus rules offline"
	@echo "make devnet   start the local chains only (anvil with test tokens)"
	@echo "make assets   refresh the vendored checkout CSS from npm (pinned versions)"
	@echo "make bench    the performance benchmarks (bench/; BENCH_ARGS=--quick for a smoke run)"

install:
	@$(BOOTSTRAP) install

# The venv's python directly, not `uv run`: make is then the supervisor's parent, and the
# supervisor (bound to it with PR_SET_PDEATHSIG) stops every service when make dies. The
# bootstrap execs it once PostgreSQL and RabbitMQ answer, so make stays its parent.
run: install
	@$(BOOTSTRAP) services -- .venv/bin/python scripts/suite.py run

demo: install
	.venv/bin/python scripts/demo.py

devnet: install
	$(UV) run python devnet/devnet.py start

devnet-stop:
	.venv/bin/python devnet/devnet.py stop

# Every tool the suite needs is checked (and installed where it can be) before pytest starts.
test: install
	@$(BOOTSTRAP) tools test
	@$(BOOTSTRAP) services -- $(UV) run python scripts/run_tests.py $(PYTEST_ARGS)

test-fast: install
	@$(BOOTSTRAP) tools test
	@$(BOOTSTRAP) services -- $(UV) run pytest -m "not slow" $(PYTEST_ARGS)

lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy libs/common/src services/*/src
	$(UV) run lint-imports

format:
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

ci: lint validate-deploy test

# Offline: docker-compose config, kustomize render + kubernetes-validate, promtool.
validate-deploy: install
	@$(BOOTSTRAP) tools deploy
	UV=$(UV) bash deploy/validate.sh

# The checkout's front-end files are vendored (committed), so installing and running need
# no npm; this refreshes them from the versions pinned in services/gateway/package.json.
CHECKOUT_VENDOR := services/gateway/src/stablegate_gateway/checkout/static/vendor
assets:
	npm ci --prefix services/gateway --no-audit --no-fund
	mkdir -p $(CHECKOUT_VENDOR)
	sed '/sourceMappingURL/d' services/gateway/node_modules/bootstrap/dist/css/bootstrap.min.css \
		> $(CHECKOUT_VENDOR)/bootstrap.min.css
	cp services/gateway/node_modules/bootstrap/LICENSE $(CHECKOUT_VENDOR)/bootstrap.LICENSE

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache devnet/build test-artifacts

# The benchmarks of bench/ (minutes; figures in README "Performance", JSON in bench/results/).
BENCH_ARGS ?=
bench: install
	$(UV) run python -m bench $(BENCH_ARGS)
