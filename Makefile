# The commands of the quick start: `make demo`, `make serve` and `make test`.
# Each sets up what it needs on a fresh machine (a virtual environment, and the Debian
# packages the tests use) and is safe to run again.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR ?= data
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
SCALE ?= 0.1
DEMO_OUT ?= demo-out

.PHONY: demo serve test setup setup-demo setup-test system-packages lint clean

# Case 1 told end to end (CI runs it with SCALE=0.01).
demo: setup-demo
	$(BIN)/deletion-audit demo --scale $(SCALE) --out $(DEMO_OUT)

serve: setup
	$(BIN)/deletion-audit serve --data-dir $(DATA_DIR) --host $(HOST) --port $(PORT)

test: setup-test system-packages
	$(BIN)/ruff check deletion_audit agents tests benchmarks
	$(BIN)/mypy
	# Three workers on two cores (many tests wait on a server process or PostgreSQL); an idle
	# worker takes tests queued for a busy one, so one long test does not hold the end.
	$(BIN)/python -m pytest -n 3 --dist worksteal $(PYTEST_ARGS)

setup: $(VENV)/.server-installed

setup-demo: $(VENV)/.demo-installed

setup-test: $(VENV)/.test-installed

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.server-installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[server]'
	touch $@

$(VENV)/.demo-installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[server,demo]'
	touch $(VENV)/.server-installed $@

$(VENV)/.test-installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[server,test]'
	touch $(VENV)/.server-installed $@

system-packages:
	deploy/dev/system-packages.sh

lint: setup-test
	$(BIN)/ruff check deletion_audit agents tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
