"""The Spark backend (local mode) gives the same clusters as DuckDB with the same model.

One test: a Spark session takes long to start. Needs Java; under CI it must run (CI
installs default-jre-headless), elsewhere it is skipped when Java is missing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from athar.linkage import synth
from athar.linkage.lists import ListRow, read_lists
from athar.linkage.service import link_records

RECORDS = int(os.environ.get("ATHAR_SPARK_TEST_RECORDS", "2000"))


def _rows(n: int, folder: Path) -> list[ListRow]:
    rows, truth = synth.generate(n, "hard", seed=11)
    lists, _ = synth.write(rows[:n], truth, folder)
    return read_lists([lists]).rows


def test_spark_gives_the_same_clusters_as_duckdb(tmp_path: Path) -> None:
    if shutil.which("java") is None:
        if os.environ.get("CI"):
            pytest.fail(
                "Java is needed for the Spark backend (apt-get install default-jre-headless)"
            )
        pytest.skip("no Java on this machine")
    rows = _rows(RECORDS, tmp_path)
    duck = link_records(rows)
    assert duck.parameters["run"]["trained"]
    spark = link_records(rows, backend="spark", trained=duck.parameters["splink_model"])
    assert spark.clustering.cluster_of == duck.clustering.cluster_of
    assert spark.clusters < len(rows)  # something was linked
    assert {(p.left, p.right) for p in spark.review} == {(p.left, p.right) for p in duck.review}
