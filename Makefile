# Salon: the two commands a newcomer needs are `make dev` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
PACKAGE_DIR := build/package
STAGE ?= dev

.PHONY: dev test lint typecheck unit integration e2e package package-check bench clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "pip>=24,<26.3"  # chalice 1.34 needs pip<26.3
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

## make dev: the whole stack on loopback (embedded AWS, REST API, WebSocket gateway). Ctrl-C stops it.
dev: $(STAMP)
	$(BIN)/python -m local.stack

## make test: lint, types, unit, integration (moto), e2e (the local stack), and the package check.
test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest tests
	$(MAKE) package-check

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e

## make package: the deployable SAM template, built offline, merged with the tables and policies.
package: $(STAMP)
	$(BIN)/python -m deploy.package --stage $(STAGE) --out $(PACKAGE_DIR)/$(STAGE)

package-check: $(STAMP)
	$(BIN)/python -m deploy.package --stage dev --out $(PACKAGE_DIR)/dev --lint
	$(BIN)/python -m deploy.package --stage prod --out $(PACKAGE_DIR)/prod --lint

bench: $(STAMP)
	$(BIN)/python -m bench.cold_import

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
