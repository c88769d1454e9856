# Two commands: `make demo` runs the main job, `make test` runs every check.
# Needs only python3 and make; everything else is installed into .venv from the lock.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck unit bench fuzz clean

$(STAMP): requirements.lock pyproject.toml scripts/system-deps
	@scripts/system-deps
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	@touch $(STAMP)

# the command-line walk-through, then the web application on a synthetic demo dataset
demo: $(STAMP)
	$(BIN)/athar demo
	$(BIN)/athar serve --demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# two workers, each taking whole test files (their module fixtures are built once)
unit: $(STAMP)
	@scripts/system-deps --test
	$(BIN)/pytest -n 2 --dist loadfile

test: lint typecheck unit

# a bounded fuzzing campaign over every parser of outside input (figures in fuzz/out/)
fuzz: $(STAMP)
	$(BIN)/python fuzz/run.py --minutes 10

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) athar-demo athar-demo-web
