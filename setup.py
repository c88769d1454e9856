"""Compiles the modules a rebuild runs for every event with mypyc (typed Python to C).

Everything else about the package is in pyproject.toml, and the list of compiled
modules too ([tool.athar] compiled). ATHAR_PURE_PYTHON=1 at install time skips the
compilation (no C compiler needed); the sources then run interpreted, with the same
results (tests/test_compiled.py), a rebuild only slower (docs/benchmarks.md §4.7).
"""

import os
import tomllib

from setuptools import setup


def compiled_modules() -> list[object]:
    if os.environ.get("ATHAR_PURE_PYTHON") == "1":
        return []
    from mypyc.build import mypycify

    with open("pyproject.toml", "rb") as handle:
        paths = tomllib.load(handle)["tool"]["athar"]["compiled"]
    # No config file: pyproject's strict settings are for `make typecheck`, which checks
    # these modules with every dependency's types; an isolated build may lack those.
    options = ["--config-file=", "--ignore-missing-imports", "--python-version=3.11"]
    return list(mypycify([*options, *paths], group_name="athar._compiled"))


setup(ext_modules=compiled_modules())
