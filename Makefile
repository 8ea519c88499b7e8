# refgraph: every entry point builds its own virtualenv in .venv from pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv demo test bench lint clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "refgraph needs Python 3.11 or newer: set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP) ## Create .venv and install refgraph with its test tools

demo: $(STAMP) ## Crawl the built-in sandbox API and print the report
	$(BIN)/refgraph demo

test: $(STAMP) ## Run the whole test suite
	$(BIN)/python -m pytest -q

bench: $(STAMP) ## Measure crawl, storage and query speed against their targets (about 6 min)
	$(BIN)/python -m bench

lint: $(STAMP) ## Lint, and check that the README matches --help
	$(BIN)/ruff check crawler tests bench
	$(BIN)/python -m pytest -q tests/test_docs.py

clean: ## Remove .venv and build leftovers
	rm -rf $(VENV) build *.egg-info bench/.data
