# Stablegate — the commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
UV ?= uv
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
	$(UV) sync --frozen
	@if [ ! -d devnet/node_modules ] || [ devnet/package-lock.json -nt devnet/node_modules/.package-lock.json ]; then \
		npm ci --prefix devnet --no-audit --no-fund; fi

# The venv's python directly, not `uv run`: make is then the supervisor's parent, and the
# supervisor (bound to it with PR_SET_PDEATHSIG) stops every service when make dies.
run: install
	.venv/bin/python scripts/suite.py run

demo: install
	.venv/bin/python scripts/demo.py

devnet: install
	$(UV) run python devnet/devnet.py start

devnet-stop:
	$(UV) run python devnet/devnet.py stop

test: install
	$(UV) run pytest $(PYTEST_ARGS)

test-fast: install
	$(UV) run pytest -m "not slow" $(PYTEST_ARGS)

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
