# Dure: two commands on a fresh machine, `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export FLWR_TELEMETRY_ENABLED := 0
export FLWR_DISABLE_UPDATE_CHECK := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint typecheck imports unit bench bench-learning clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# The CPU build of torch first (a local wheel here), so no multi-GB CUDA build is pulled in.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[importers,sim,postgres,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/dure demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck imports unit

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH)

bench-learning: $(STAMP)
	$(BIN)/python -m benchmarks learning

clean:
	rm -rf $(VENV) bench-results .mypy_cache .pytest_cache .ruff_cache .hypothesis
