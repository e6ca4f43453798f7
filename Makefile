# Stablegate — the commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
UV ?= uv
PYTEST_ARGS ?=

.PHONY: help install run test test-fast lint format ci devnet devnet-stop clean

help:
	@echo "make run      start the devnet and every service locally, with a demo merchant"
	@echo "make test     install what is missing and run the whole test suite"
	@echo "make lint     ruff, mypy --strict, import-linter"
	@echo "make ci       lint + the whole test suite (what .ci/run calls)"
	@echo "make devnet   start the local chains only (anvil with test tokens)"

install:
	$(UV) sync --frozen
	@if [ ! -d devnet/node_modules ] || [ devnet/package-lock.json -nt devnet/node_modules/.package-lock.json ]; then \
		npm ci --prefix devnet --no-audit --no-fund; fi

run: install
	$(UV) run python scripts/suite.py run

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

ci: lint test

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache devnet/build test-artifacts
