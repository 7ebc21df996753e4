# Everything a fresh machine needs: `make quickstart` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup quickstart test test-unit test-e2e bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Runs the quickstart profile against the embedded mock LLM and collector: no keys, no network.
# The baseline and three tracers on both providers; the north-star table, and the report page.
quickstart: setup
	$(BIN)/loadgen run profiles/quickstart.toml --north-star-only --html loadgen-report.html

# The whole suite: the architecture's import contracts (pyproject.toml, docs/architecture.md),
# fast unit tests and the end-to-end tests that start servers.
test: setup
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

test-unit: setup
	$(BIN)/python -m pytest -q -m 'not e2e'

test-e2e: setup
	$(BIN)/python -m pytest -q -m e2e

bench: setup
	$(BIN)/python benchmarks/bench_rate.py
	$(BIN)/python benchmarks/bench_max_rate.py

clean:
	rm -rf $(VENV) build *.egg-info
