# The two commands of the quick start: `make demo` and `make test`.
# Both set up what they need on a fresh machine (a virtual environment, and the Debian
# packages the tests use) and are safe to run again.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR ?= data
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: demo test setup setup-test system-packages lint clean

demo: setup
	$(BIN)/deletion-audit serve --data-dir $(DATA_DIR) --host $(HOST) --port $(PORT)

test: setup-test system-packages
	$(BIN)/ruff check deletion_audit agents tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

setup: $(VENV)/.server-installed

setup-test: $(VENV)/.test-installed

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.server-installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[server]'
	touch $@

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
