# The two commands the README shows. Each sets up a fresh machine (a virtualenv in .venv) first.
# The bench extra is installed too, so mypy --strict checks the benchmarks against their peers' real types.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve test check

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev,bench]'
	touch $(STAMP)

## Run the gateway (SQLite state in ./tether.db): make serve [HOST=127.0.0.1] [PORT=8000]
serve: $(STAMP)
	$(BIN)/tether serve --host $(or $(HOST),127.0.0.1) --port $(or $(PORT),8000)

## Run the whole test suite, then the linters and the type checker.
test: $(STAMP)
	$(BIN)/python -m pytest -q
	$(MAKE) --no-print-directory check

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
