# Two commands: `make demo` runs the main job, `make test` runs every check.
# Needs only python3 and make; everything else is installed into .venv from the lock.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck unit bench clean

$(STAMP): requirements.lock pyproject.toml
	@$(PY) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3 cannot create a venv; installing python3-venv"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq python3-venv; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq python3-venv; fi; \
	  rm -rf $(VENV); $(PY) -m venv $(VENV); }
	@command -v gcc >/dev/null && $(PY) -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' || { \
	  echo "pdqhash is compiled from source: installing gcc and python3-dev"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq gcc python3-dev; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq gcc python3-dev; fi; }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/athar demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) athar-demo
