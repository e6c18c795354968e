# `make up` and `make test` work from a fresh clone with only python3 installed: both
# bootstrap .venv first, and re-install only when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv up test lint fmt bench histories clean

help:
	@echo "make up     run the whole stack locally (Temporal dev server, worker, API)"
	@echo "make test   lint, type-check and run the test suite"
	@echo "make lint   ruff check, ruff format --check, mypy"
	@echo "make fmt    ruff format and ruff check --fix"
	@echo "make bench  run the benchmarks in bench/"
	@echo "make histories  re-record the replay histories in tests/histories/ (only on purpose)"
	@echo "make clean  remove .venv and caches (keeps ticket data in .escalator/)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(STAMP)

up: $(STAMP)
	$(BIN)/escalator up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy workflows policies activities store runtime sinks api worker bench

test: lint
	$(BIN)/pytest -q

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	@if [ -e bench/__main__.py ]; then $(BIN)/python -m bench; \
	else echo "no benchmarks yet (bench/__main__.py is missing)"; fi

# Re-records tests/histories/*.json. Never part of `make test`, which only replays them.
histories: $(STAMP)
	$(BIN)/python -m tests.histories.record

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	@echo "kept .escalator/ (Temporal history and the read model); delete it to start over"
