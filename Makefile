# The README's two commands are `make serve` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup serve test lint typecheck unit system-deps train evaluate benchmark clean

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "medcode needs $(PYTHON)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,batch]'
	touch $(STAMP)

setup: $(STAMP)

## Set up and run the service on its embedded default (SQLite, champion model or the built-in one).
serve: setup
	$(BIN)/medcode serve

## Install everything the tests need (PostgreSQL, Chromium) and run lint, type checks and every test.
test: setup system-deps
	scripts/test.sh

system-deps:
	scripts/system-deps.sh

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest -m "not browser and not postgres and not slow" -q

train: setup
	$(BIN)/medcode train --dataset codiesp --data-dir $${MEDCODE_DATA_DIR:-../shared/datasets}/codiesp

evaluate: setup
	$(BIN)/medcode evaluate --dataset codiesp --data-dir $${MEDCODE_DATA_DIR:-../shared/datasets}/codiesp --split dev

benchmark: setup
	$(BIN)/python -m medcode.evaluation.benchmark

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache test-artifacts
