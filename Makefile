# Two commands: `make demo` runs the main job, `make test` runs every check.
# Needs only python3 and make; everything else is installed into .venv from the lock.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
BUILT := $(VENV)/.built-stamp
# the modules setup.py compiles with mypyc (listed in pyproject.toml): built again when
# one of them changes, since the compiled module is the one Python imports
COMPILED := $(shell sed -n 's/^ *"\(src\/athar\/[^"]*\.py\)",$$/\1/p' pyproject.toml)

.PHONY: demo test lint typecheck unit bench fuzz clean

$(STAMP): requirements.lock scripts/system-deps
	@scripts/system-deps
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	@touch $(STAMP)

# Athar itself, editable; pip builds it in an environment of its own, with the setuptools
# and mypy that pyproject.toml asks for (a venv's own setuptools may be too old to build)
$(BUILT): $(STAMP) pyproject.toml setup.py $(COMPILED)
	$(BIN)/pip install -q --no-deps -e .
	@touch $(BUILT)

# the command-line walk-through, then the web application on a synthetic demo dataset
demo: $(BUILT)
	$(BIN)/athar demo
	$(BIN)/athar serve --demo

lint: $(BUILT)
	$(BIN)/ruff check src tests benchmarks

typecheck: $(BUILT)
	$(BIN)/mypy

# two workers, each taking whole test files (their module fixtures are built once)
unit: $(BUILT)
	@scripts/system-deps --test
	$(BIN)/pytest -n 2 --dist loadfile

test: lint typecheck unit

# a bounded fuzzing campaign over every parser of outside input (figures in fuzz/out/)
fuzz: $(BUILT)
	$(BIN)/python fuzz/run.py --minutes 10

bench: $(BUILT)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) athar-demo athar-demo-web build
	find src -name '*.so' -delete
