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

## fuzz: atheris (coverage-guided) on each parser of the pure core for FUZZ_SECONDS (default 60) each;
## a crash stops it and its input is kept under FUZZ_OUT (replay: python -m tests.fuzz.run TARGET FILE)
FUZZ_SECONDS ?= 60
FUZZ_OUT ?= /tmp/sigwatch-fuzz
FUZZ_TARGETS ?= authorization presigned canonical chunked dates error_body
fuzz: $(STAMP)
	$(BIN)/pip install --quiet -e '.[fuzz]'
	@mkdir -p $(FUZZ_OUT)
	@for target in $(FUZZ_TARGETS); do \
		echo "== fuzz $$target ($(FUZZ_SECONDS) s)"; \
		$(BIN)/python -m tests.fuzz.run $$target -max_total_time=$(FUZZ_SECONDS) \
			-artifact_prefix=$(FUZZ_OUT)/$$target- -print_final_stats=1 2>&1 | grep -E "^(Done|stat::number|stat::new|==|Traceback)|ERROR:|crash-" \
			|| true; \
		test -z "$$(ls $(FUZZ_OUT)/$$target-* 2>/dev/null)" || { echo "fuzz $$target: crash in $(FUZZ_OUT)"; exit 1; }; \
	done

## soak: 5 minutes of mixed traffic with injected faults against `sigwatch run` (127.0.0.1 only): RSS
## growth, fds at rest, and sent = log lines = metrics = answered; options via SOAK_ARGS (--duration ...)
.PHONY: soak
soak: $(STAMP)
	$(BIN)/python -m tests.soak.soak $(SOAK_ARGS)

## catalogs: regenerate proxy/catalogs/data from ../shared/seeds
catalogs: $(STAMP)
	$(BIN)/python tools/build_catalogs.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
