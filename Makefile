# sigwatch — the two set-up commands of the README are `make run` and `make test`.
# Each creates its own virtualenv (.venv) and installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck unit functional e2e tools bench fuzz catalogs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,speed]'
	touch $(STAMP)

## run: the emulator and the proxy together (sigwatch demo) on the default ports
run: $(STAMP)
	$(BIN)/sigwatch demo

## test: everything CI runs: tools, lint, types, the whole pytest suite
test: $(STAMP) tools lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider

## tools: external tools some tests need (installed here, never by hand)
tools:
	@bash .ci/install-tools.sh

lint: $(STAMP)
	$(BIN)/ruff check proxy tests tools deploy
	$(BIN)/ruff format --check proxy tests tools deploy

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

functional: $(STAMP)
	$(BIN)/pytest -q tests/functional

e2e: $(STAMP)
	$(BIN)/pytest -q tests/e2e

## bench: the benchmark harness of issue 9 (installs wrk, nginx-light, mitmproxy, py-spy; several minutes;
## never part of `make test`); options via BENCH_ARGS, e.g. make bench BENCH_ARGS="--runs 5 --duration 20"
bench: $(STAMP)
	@bash .ci/install-bench-tools.sh
	$(BIN)/python -m tests.benchmarks.harness $(BENCH_ARGS)

## catalogs: regenerate proxy/catalogs/data from ../shared/seeds
catalogs: $(STAMP)
	$(BIN)/python tools/build_catalogs.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
