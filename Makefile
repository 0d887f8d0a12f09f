# Salon: the two commands a newcomer needs are `make dev` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
PACKAGE_DIR := build/package
STAGE ?= dev
# checkov pins its own dependencies: it gets a venv of its own, outside the app's.
CHECKOV_VENV := build/tools/checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
CHECKOV_VERSION := 3.3.30
# The SFU bench's listeners are aiortc clients: a venv of their own too (bench/requirements.txt).
BENCH_VENV := build/tools/bench
BENCH_STAMP := $(BENCH_VENV)/.installed-$(shell cksum < bench/requirements.txt | cut -d' ' -f1)
BENCH_SFU_ARGS ?= --listeners 0,25,50,100,150,200,300

.PHONY: dev test lint lock typecheck unit integration e2e browser browser-deps janus-deps package package-check bench bench-sfu bench-media clean

# The lock first, exactly (hashes checked, nothing resolved), then the tools, held to the
# lock's versions (a constraints file without the hashes: with them pip would demand hashes
# for every tool too).
LOCK_CONSTRAINTS := build/lock-constraints.txt
$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "pip>=24,<26.3"  # chalice 1.34 needs pip<26.3
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.txt
	mkdir -p build && grep -E '^[A-Za-z0-9][^ ]*==' requirements.txt | sed 's/ .*//' > $(LOCK_CONSTRAINTS)
	$(BIN)/python -m pip install --quiet -c $(LOCK_CONSTRAINTS) -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

## make lock: recompile requirements.txt (what the Lambda zip ships, with hashes) from requirements.in.
lock: $(STAMP)
	$(BIN)/uv pip compile requirements.in --quiet --generate-hashes --no-header \
	  --python-version 3.11 --python-platform x86_64-manylinux2014 -o requirements.txt

## make dev: the whole stack on loopback (embedded AWS, REST API, WebSocket gateway). Ctrl-C stops it.
dev: $(STAMP) janus-deps
	$(BIN)/python -m local.stack

## make test: lint, types, unit, integration (moto), e2e (the local stack), browsers, package check.
test: $(STAMP) lint typecheck janus-deps browser-deps
	$(BIN)/python -m pytest tests
	$(MAKE) browser
	$(MAKE) package-check

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

integration: $(STAMP) janus-deps
	$(BIN)/python -m pytest tests/integration

e2e: $(STAMP) janus-deps
	$(BIN)/python -m pytest tests/e2e

## make browser: the web client in headless Chromium (Playwright), in a network namespace with only
## loopback (as root, or with a user namespace otherwise). `pytest tests` skips these elsewhere.
CHROMIUM := /usr/bin/chromium
ROOT_USER := $(filter 0,$(shell id -u))
SUDO := $(if $(ROOT_USER),,sudo)
browser: $(STAMP) browser-deps
	unshare --net $(if $(ROOT_USER),,--map-root-user) sh -c \
	  'PATH="$$PATH:/usr/sbin:/sbin"; ip link set lo up && exec $(BIN)/python -m pytest tests/browser'

# Debian's Chromium, `ip` and Node.js (tests/browser/test_client_ordering.py runs web/app.js's
# ordering rule in it), installed once; never `playwright install`: no test tool downloads.
browser-deps:
	@test -x $(CHROMIUM) && command -v node >/dev/null && \
	  { command -v ip || test -x /usr/sbin/ip || test -x /sbin/ip; } >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium iproute2 nodejs; }

# Debian's Janus (the SFU the local stack and the tests run on loopback), installed once, and a
# C compiler for its loopback shim (local/getifaddrs_shim.c).
janus-deps:
	@test -x /usr/bin/janus && command -v cc >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq janus gcc libc6-dev; }

## make package: the deployable SAM template, built offline, merged with the tables and policies.
package: $(STAMP)
	$(BIN)/python -m deploy.package --stage $(STAGE) --out $(PACKAGE_DIR)/$(STAGE)

## make package-check: both stages packaged offline, then cfn-lint, the zip against the lock, checkov.
package-check: $(STAMP) $(CHECKOV)
	$(BIN)/python -m deploy.package --stage dev --out $(PACKAGE_DIR)/dev --lint --checkov $(CHECKOV)
	$(BIN)/python -m deploy.package --stage prod --out $(PACKAGE_DIR)/prod --lint --checkov $(CHECKOV)

$(CHECKOV):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION)

bench: $(STAMP)
	$(BIN)/python -m bench.cold_import

## make bench-sfu: one speaker to N aiortc listeners through Janus on loopback (docs/benchmarks.md).
bench-sfu: $(BENCH_STAMP) janus-deps
	nice -n 10 $(BENCH_VENV)/bin/python -m bench.sfu_fanout $(BENCH_SFU_ARGS)

## make bench-media: how soon audio follows a reload and a mute, in Chromium through Janus
## (bench/media_timing.py; loopback only, as `make browser`).
bench-media: $(STAMP) browser-deps janus-deps
	$(BIN)/python -m deploy.package --stage dev >/dev/null
	unshare --net $(if $(ROOT_USER),,--map-root-user) sh -c \
	  'PATH="$$PATH:/usr/sbin:/sbin"; ip link set lo up && exec $(BIN)/python -m bench.media_timing $(BENCH_MEDIA_ARGS)'

$(BENCH_STAMP): bench/requirements.txt
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --no-deps -r bench/requirements.txt
	rm -f $(BENCH_VENV)/.installed-*
	touch $(BENCH_STAMP)

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
