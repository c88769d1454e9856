"""The modules setup.py compiles with mypyc: that they run compiled, are not older than
their sources, and give exactly what the same sources give interpreted."""

from __future__ import annotations

import importlib
import importlib.machinery
import json
import os
import random
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from athar.vault.vault import Vault
from conftest import PASSPHRASE
from test_rebuild import IDS, make_events

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
PURE = os.environ.get("ATHAR_PURE_PYTHON") == "1"


def compiled_paths() -> list[str]:
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return list(tomllib.load(handle)["tool"]["athar"]["compiled"])


def module_name(path: str) -> str:
    return path.removeprefix("src/").removesuffix(".py").replace("/", ".")


def test_the_listed_modules_run_compiled_and_are_current() -> None:
    """Python imports a compiled module in preference to its source: a source edited
    after the build would silently not run. `make` builds again when one changes."""
    paths = compiled_paths()
    assert "src/athar/records/merge.py" in paths
    for path in paths:
        module = importlib.import_module(module_name(path))
        is_compiled = isinstance(module.__loader__, importlib.machinery.ExtensionFileLoader)
        assert is_compiled != PURE, f"{module.__name__} is loaded by {module.__loader__}"
        if is_compiled:  # (its __file__ may name a directory that does not exist)
            source = ROOT / path
            built = [
                source.with_name(source.stem + suffix)
                for suffix in importlib.machinery.EXTENSION_SUFFIXES
                if source.with_name(source.stem + suffix).exists()
            ]
            assert built, f"no compiled file beside {source}"
            assert built[0].stat().st_mtime >= source.stat().st_mtime, (
                f"{source.name} changed after it was compiled: run `make` (or "
                "`pip install --no-deps -e .`) to build it again"
            )


# Run in a child process, over a copy of a vault: rebuild its records store from the
# ledger in small batches, print every row of it and which file each module came from.
_REBUILD_AND_DUMP = """
import json, sys
from pathlib import Path
import athar.records.rebuild as rebuild
from athar.records.service import Records
from athar.vault.vault import Vault

rebuild.READ_BATCH = 7
vault = Vault.open(Path(sys.argv[1]), sys.argv[2])
with Records(vault) as records:
    stats = records.rebuild()
    with records.engine.connect() as conn:
        def rows(sql):
            return [list(row) for row in conn.exec_driver_sql(sql)]
        tables = {
            table: rows(f"SELECT * FROM {table} ORDER BY 1, 2, 3")
            for table in ("records", "terms", "links", "history", "vocab_terms")
        }
        tables["meta"] = rows("SELECT * FROM meta ORDER BY 1")
        conn.exec_driver_sql(
            "CREATE VIRTUAL TABLE temp.pairs USING fts5vocab(main, records_fts, instance)"
        )
        tables["search"] = rows("SELECT term, doc FROM temp.pairs ORDER BY 1, 2")
vault.close()
print(json.dumps({
    "stats": [stats.applied, stats.ignored],
    "tables": tables,
    "files": {name: type(sys.modules[name].__loader__).__name__ for name in sys.argv[3:]},
}, ensure_ascii=False))
"""


def _rebuilt(vault_dir: Path, copy: Path, pythonpath: Path, modules: list[str]) -> Any:
    shutil.copytree(vault_dir, copy)
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}  # first on the path, before .pth
    done = subprocess.run(
        [sys.executable, "-c", _REBUILD_AND_DUMP, str(copy), PASSPHRASE, *modules],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def _random_ops(seed: int, count: int) -> list[tuple[Any, ...]]:
    """Operations as the rebuild property test draws them (tests/test_rebuild.py), bad
    clocks, type clashes, imports, links and relabelled terms included."""
    rng = random.Random(seed)
    types = sorted(IDS)

    def change() -> tuple[Any, ...]:
        flaw = rng.choice(["good"] * 8 + ["bad clock", "no fields"])
        return (
            rng.choice(types),
            rng.randrange(3),
            rng.choice(types) if rng.random() < 0.1 else None,
            rng.randrange(4),
            rng.randrange(4),
            flaw,
        )

    def fill(spec: tuple[Any, ...]) -> tuple[Any, ...]:
        return (spec[0], spec[1], spec[2] or spec[0], *spec[3:])

    ops: list[tuple[Any, ...]] = []
    for _ in range(count):
        kind = rng.choices(["single", "import", "link", "term", "other"], [10, 3, 2, 1, 1])[0]
        if kind == "single":
            ops.append(("single", fill(change())))
        elif kind == "import":
            ops.append(("import", [fill(change()) for _ in range(rng.randrange(5))]))
        elif kind == "link":
            ops.append(("link", rng.randrange(2), rng.randrange(3), rng.random() < 0.7))
        elif kind == "term":
            ops.append(("term", rng.randrange(2)))
        else:
            ops.append(("other", 0))
    return ops


@pytest.mark.parametrize("seed", [1, 2])
def test_compiled_and_interpreted_rebuilds_are_identical(
    vault: Vault, vault_dir: Path, tmp_path: Path, seed: int
) -> None:
    """The same ledger rebuilt by the compiled modules and by their sources, each in
    processes of its own: every row, the search index's (word, record) pairs and the
    counts are the same."""
    events = make_events(_random_ops(seed, 400), [1, 0, 2, -1, 3])
    with vault.ledger.transaction() as tx:
        for signed in events:
            tx.append(signed.event.kind, signed.event.body)
    vault.close()
    interpreted_src = tmp_path / "interpreted"
    shutil.copytree(SRC, interpreted_src, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    modules = [module_name(path) for path in compiled_paths()]

    compiled = _rebuilt(vault_dir, tmp_path / "a", SRC, modules)
    interpreted = _rebuilt(vault_dir, tmp_path / "b", interpreted_src, modules)

    assert set(interpreted["files"].values()) == {"SourceFileLoader"}
    if not PURE:
        assert set(compiled["files"].values()) == {"ExtensionFileLoader"}
    assert compiled["tables"]["records"] and compiled["tables"]["links"]
    assert compiled["tables"]["search"] and compiled["tables"]["vocab_terms"]
    assert compiled["stats"][1] > 0  # bad events were met, and ignored alike
    assert compiled == {**interpreted, "files": compiled["files"]}
