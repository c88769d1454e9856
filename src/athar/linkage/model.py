"""The Splink model: comparisons, blocking, training, scoring.

Fellegi-Sunter as Splink implements it. Every comparison starts from hand-set m and u
probabilities (so a list too small to train on is still scored sensibly), then u is
estimated by random sampling and m by EM over several blocking rules: a column used to
block an EM session gets no m estimate in that session, so the sessions block on
different columns. Convergence is checked here from the iteration history, not taken
from Splink's log line (which it also prints when the iteration cap was hit).

Name parts are compared on the project's own forms (features.py): the same normalised
spelling (with term-frequency adjustment: محمد agreeing says less than زهير), the same
variant-table name, two different known names (محمد / محمود: strong evidence against,
however close the letters), the same cross-script key, then edit-distance levels on keys.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no stubs installed

Backend = Literal["duckdb", "spark"]
MAX_ITERATIONS = 25
EM_CONVERGENCE = 1e-4
U_MIN_PAIRS = 2e6  # pairs sampled to estimate u, at least and at most
U_MAX_PAIRS = 5e6
M_FLOOR = 0.005  # the least m a trained level keeps (see _floor_m)
EM_MAX_PAIRS = 2e6  # a session on a bigger block learns from a sample of its pairs
MIN_TRAIN_ROWS = 200  # smaller lists are scored with the starting values
# Share of true pairs the deterministic rules are assumed to find. Unknowable without
# the truth; measured on the synthetic lists at 0.21 (hard) and 0.52 (easy), so the
# middle: too high a value makes every probability too low (λ is underestimated).
LAMBDA_RECALL = 0.35
# DuckDB's memory bound (it spills to disk beyond): the machine is shared
DUCKDB_MEMORY = os.environ.get("ATHAR_DUCKDB_MEMORY", "4GB")


def _name_levels(part: str, *, tf: bool) -> list[Any]:
    import splink.comparison_level_library as cll

    key, norm, nid = f"{part}_key", f"{part}_norm", f"{part}_id"
    return [
        cll.NullLevel(key),
        cll.ExactMatchLevel(norm, term_frequency_adjustments=tf).configure(
            m_probability=0.75, u_probability=0.02
        ),
        cll.ExactMatchLevel(nid).configure(m_probability=0.1, u_probability=0.005),
        cll.CustomLevel(
            f'"{nid}_l" IS NOT NULL AND "{nid}_r" IS NOT NULL AND "{nid}_l" <> "{nid}_r"',
            label_for_charts="two different known names",
            base_dialect_str="duckdb",  # translated for Spark, where "x" is a string
        ).configure(m_probability=0.0001, u_probability=0.9),
        cll.ExactMatchLevel(key).configure(m_probability=0.07, u_probability=0.004),
        # Edit distances, not Jaro-Winkler: an integer is the same on DuckDB and Spark,
        # whose Jaro-Winkler functions are different implementations (they disagree on
        # transpositions: abdrhnm / abdrmhn 0.971 on DuckDB, 0.957 on Spark).
        cll.LevenshteinLevel(key, 1).configure(m_probability=0.04, u_probability=0.01),
        cll.LevenshteinLevel(key, 2).configure(m_probability=0.02, u_probability=0.02),
        cll.ElseLevel().configure(m_probability=0.01, u_probability=0.9),
    ]


def comparisons(plain: bool = False) -> list[Any]:
    """The project's comparisons; `plain=True` gives the baseline that compares the
    raw written parts with plain string levels (for the benchmark)."""
    import splink.comparison_library as cl

    if plain:
        return [
            cl.JaroWinklerAtThresholds(f"{p}_raw", [0.92, 0.85])
            for p in ("given", "father", "grandfather", "family", "mother")
        ] + _other_comparisons()
    out = [
        cl.CustomComparison(_name_levels(p, tf=p in ("given", "family")), output_column_name=p)
        for p in ("given", "father", "grandfather", "family", "mother")
    ]
    return out + _other_comparisons()


def _other_comparisons() -> list[Any]:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    return [
        cl.CustomComparison(
            [
                cll.NullLevel("source"),
                cll.ExactMatchLevel("source").configure(m_probability=0.05, u_probability=0.3),
                cll.ElseLevel().configure(m_probability=0.95, u_probability=0.7),
            ],
            output_column_name="source",
        ),
        cl.CustomComparison(
            [
                cll.NullLevel("sex"),
                cll.ExactMatchLevel("sex").configure(m_probability=0.98, u_probability=0.6),
                cll.ElseLevel().configure(m_probability=0.02, u_probability=0.4),
            ],
            output_column_name="sex",
        ),
        cl.CustomComparison(
            [
                cll.NullLevel("birth_year"),
                cll.ExactMatchLevel("birth_year").configure(m_probability=0.6, u_probability=0.02),
                cll.AbsoluteDifferenceLevel("birth_year", 1).configure(
                    m_probability=0.2, u_probability=0.04
                ),
                cll.AbsoluteDifferenceLevel("birth_year", 2).configure(
                    m_probability=0.12, u_probability=0.04
                ),
                cll.AbsoluteDifferenceLevel("birth_year", 5).configure(
                    m_probability=0.05, u_probability=0.1
                ),
                cll.ElseLevel().configure(m_probability=0.01, u_probability=0.8),
            ],
            output_column_name="birth_year",
        ),
        cl.CustomComparison(
            [
                cll.NullLevel("death_day"),
                cll.ExactMatchLevel("death_day").configure(m_probability=0.6, u_probability=0.005),
                cll.AbsoluteDifferenceLevel("death_day", 3).configure(
                    m_probability=0.2, u_probability=0.003
                ),
                cll.AbsoluteDifferenceLevel("death_day", 10).configure(
                    m_probability=0.1, u_probability=0.008
                ),
                cll.AbsoluteDifferenceLevel("death_day", 60).configure(
                    m_probability=0.05, u_probability=0.05
                ),
                cll.ElseLevel().configure(m_probability=0.05, u_probability=0.94),
            ],
            output_column_name="death_day",
        ),
        cl.CustomComparison(
            [
                cll.CustomLevel(
                    "(place_key_l IS NULL OR place_key_r IS NULL) "
                    "AND (governorate_l IS NULL OR governorate_r IS NULL)",
                    label_for_charts="place missing",
                    base_dialect_str="duckdb",
                ).configure(is_null_level=True),
                cll.ExactMatchLevel("place_key").configure(m_probability=0.6, u_probability=0.03),
                cll.LevenshteinLevel("place_key", 1).configure(
                    m_probability=0.1, u_probability=0.01
                ),
                cll.ExactMatchLevel("governorate").configure(m_probability=0.25, u_probability=0.1),
                cll.ElseLevel().configure(m_probability=0.05, u_probability=0.86),
            ],
            output_column_name="place",
        ),
    ]


# Each rule is a way two spellings of one person still share something exactly; a pair
# found by any rule is scored once. Skeletons (the key's consonants) survive vowel and
# ع spellings; the date windows let dates written a few days apart meet.
# A column written LACKS + name in a rule is not compared: it asks that at least one
# of the two records lacks that column (a rule's other columns still agree).
LACKS = "!"
RULES: tuple[tuple[str, ...], ...] = (
    ("given_skel", "family_skel"),
    ("given_id", "family_skel"),
    ("given_skel", "father_skel"),
    ("family_skel", "father_skel"),
    ("family_skel", "death_win_a"),
    ("family_skel", "death_win_b"),
    ("given_skel", "death_win_a"),
    ("given_skel", "death_win_b"),
    ("father_skel", "death_win_a"),
    ("death_win_a", "birth_win"),  # a kunya or a misspelt name: the dates still agree
    ("family_skel", "birth_year"),
    ("family_skel", "place_key"),  # a kunya, or no date: the family and the town
    ("given_skel", "place_key"),
    # "Abu Khalid Hamwi" (a kunya) or a lone family name: the record has no given name,
    # and its family name meets every record of that family (few: 4 % of records lack a
    # given name on the hard lists); refined like the others when a family is large
    ("family_skel", f"{LACKS}given_key"),
)
# A rule whose blocks would give more than RULE_BUDGET comparisons per record (محمد
# son of محمد in a million records: hundreds of millions of pairs) is replaced by
# narrower rules, each adding one of these columns, and so on down to REFINE_DEPTH:
# the comparisons grow about linearly with the list instead of with its square.
RULE_BUDGET = 20
REFINE_WITH = ("place_key", "birth_win", "death_win_a", "sex")
REFINE_DEPTH = 2
IMPLIED = {  # adding the key would not narrow a rule that has one of these
    "birth_win": ("birth_win", "birth_year"),
    "death_win_a": ("death_win_a", "death_win_b", "death_day"),
}
PLAIN_RULES: tuple[tuple[str, ...], ...] = (
    ("given_raw", "family_raw"),
    ("given_raw", "father_raw"),
    ("family_raw", "father_raw"),
    ("family_raw", "death_day"),
)


def comparisons_of(frame: pd.DataFrame, columns: tuple[str, ...]) -> int:
    """Pairs of records a rule on *columns* would compare: records agreeing on every
    column (a missing value agrees with nothing), counted from the block sizes; with a
    LACKS column, only the pairs where one record at least lacks it."""
    return BlockCounter(frame).count(columns)


class BlockCounter:
    """`comparisons_of` for many rules over one frame: each column is turned into
    integer codes once, and a rule's blocks are numbered from its columns' codes (the
    rules of a million records are counted for some hundred candidate rules)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self._codes: dict[str, Any] = {}

    def _code(self, column: str) -> Any:
        if column not in self._codes:
            codes = pd.factorize(self.frame[column], use_na_sentinel=True)[0]
            self._codes[column] = np.asarray(codes, dtype=np.int64)
        return self._codes[column]

    def groups(self, equal: list[str]) -> Any:
        """Each record's block number under a rule on *equal* (-1: a column missing)."""
        key = self._code(equal[0])
        for column in equal[1:]:
            other = self._code(column)
            missing = (key < 0) | (other < 0)
            width = int(other.max()) + 2 if len(other) else 2
            key = np.asarray(pd.factorize(key * width + other)[0], np.int64)
            key[missing] = -1
        return key

    def count(self, columns: tuple[str, ...]) -> int:
        equal = [c for c in columns if not c.startswith(LACKS)]
        lacking = [c[len(LACKS) :] for c in columns if c.startswith(LACKS)]
        if not equal:
            raise ValueError("a blocking rule needs a column both records agree on")
        if any(c not in self.frame.columns for c in equal):
            raise KeyError(f"no column {[c for c in equal if c not in self.frame.columns]}")
        group = self.groups(equal)
        pairs = _pairs_in(group[group >= 0])
        if not lacking or any(c not in self.frame.columns for c in lacking):
            return pairs  # a column the frame does not have is missing from every record
        full = self.frame[lacking].notna().all(axis=1).to_numpy()
        return pairs - _pairs_in(group[(group >= 0) & full])


def _pairs_in(group: Any) -> int:
    sizes = np.bincount(group) if len(group) else np.zeros(0, dtype=np.int64)
    return int((sizes * (sizes - 1) // 2).sum())


def block_rule(columns: tuple[str, ...]) -> Any:
    """The Splink rule for a column tuple of `rule_columns`."""
    from splink import block_on
    from splink.blocking_rule_library import And, CustomRule

    equal = [c for c in columns if not c.startswith(LACKS)]
    lacking = [c[len(LACKS) :] for c in columns if c.startswith(LACKS)]
    rule = block_on(*equal)
    for column in lacking:
        rule = And(rule, CustomRule(f"(l.{column} IS NULL OR r.{column} IS NULL)"))
    return rule


def rule_columns(
    frame: pd.DataFrame | None,
    plain: bool = False,
    budget: float = RULE_BUDGET,
    counter: BlockCounter | None = None,
) -> list[tuple[str, ...]]:
    """The blocking rules for *frame*, as column tuples, the broad ones refined until
    their comparisons fit the budget (none when *frame* is None)."""
    base = PLAIN_RULES if plain else RULES
    if frame is None or plain:
        return list(base)
    count = (counter or BlockCounter(frame)).count
    limit = max(1.0, budget * len(frame))
    out: list[tuple[str, ...]] = []

    def add(columns: tuple[str, ...], depth: int) -> None:
        if any(set(rule) <= set(columns) for rule in out):
            return  # a broader rule already finds every pair this one would
        if depth >= REFINE_DEPTH or count(columns) <= limit:
            out.append(columns)
            return
        for extra in REFINE_WITH:
            narrower = (*columns, extra)
            if not set(IMPLIED.get(extra, (extra,))) & set(columns):
                add(narrower, depth + 1)

    for columns in base:
        add(columns, 0)
    # a narrow rule refined early may be covered by a broad rule kept later
    return [r for r in out if not any(set(o) < set(r) for o in out)]


def blocking_rules(plain: bool = False, frame: pd.DataFrame | None = None) -> list[Any]:
    """Splink rules for `rule_columns`."""
    return [block_rule(columns) for columns in rule_columns(frame, plain)]


# Candidate pairs on DuckDB. Splink's own blocking joins the records once per rule on
# the rule's text columns and, to score a pair once, tests every pair a rule finds
# against all earlier rules (32 rules at a million records: a pair of the last rule is
# tested against 31 others). The same pairs are found here with one integer per record
# and rule (the rule's group), every rule's pairs appended, and the pairs found twice
# dropped once at the end; records are numbered in the order of their ids as text, so
# every pair keeps the orientation (left id < right id) Splink gives it. The same pairs
# with the same probabilities (tests/test_linkage_speed.py); at 300,892 records 17 CPU s
# instead of 66 for 30.7 M pairs, and the scoring's joins are on integers, not ids.
# What DuckDB spills of this step are numbers, never names.
PAIRS_TABLE = "__athar_blocked_pairs"


def numbered(frame: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
    """*frame* with each record's id replaced by its place among the ids sorted as text,
    and the inverse: `order[n]` is the row of the record numbered n."""
    ids = frame["unique_id"].astype(str).tolist()
    order = np.array(sorted(range(len(ids)), key=ids.__getitem__), dtype=np.int64)
    rank = np.empty(len(ids), dtype=np.int32)  # the join keys Splink reads back
    rank[order] = np.arange(len(ids), dtype=np.int32)
    out = frame.copy()
    out["unique_id"] = rank
    return out, order


def block_keys(
    frame: pd.DataFrame, rules: list[tuple[str, ...]], counter: BlockCounter | None = None
) -> pd.DataFrame:
    """Per record, `id`, one group number per rule (`k0`, `k1`, …: two records have the
    same number when they agree on every column the rule compares; none when one is
    missing), and `lacks_<column>` for each LACKS column. *counter* may be one over
    another frame with the same rows in the same order (the records before `numbered`)."""
    counter = counter or BlockCounter(frame)
    out: dict[str, Any] = {"id": frame["unique_id"].to_numpy(dtype=np.int64)}
    for i, columns in enumerate(rules):
        group = counter.groups([c for c in columns if not c.startswith(LACKS)])
        out[f"k{i}"] = pd.arrays.IntegerArray(np.maximum(group, 0).astype(np.int32), group < 0)
        for column in columns:
            if column.startswith(LACKS):
                name = column[len(LACKS) :]
                lacks = frame[name].isna() if name in frame.columns else True
                out[f"lacks_{name}"] = np.broadcast_to(np.asarray(lacks), len(frame)).copy()
    return pd.DataFrame(out)


def pairs_sql(rules: list[tuple[str, ...]], keys: str) -> str:
    """SELECT of the distinct pairs (a < b) that at least one rule finds, from the
    `block_keys` table *keys*."""
    parts = []
    for i, columns in enumerate(rules):
        sql = (
            f"SELECT l.id AS a, r.id AS b FROM {keys} l JOIN {keys} r "  # noqa: S608 - our names
            f"ON l.k{i} = r.k{i} WHERE l.id < r.id"
        )
        for column in columns:
            if column.startswith(LACKS):
                name = f"lacks_{column[len(LACKS) :]}"
                sql += f" AND (l.{name} OR r.{name})"
        parts.append(sql)
    if not parts:  # no rule: no pair
        parts.append(f"SELECT id AS a, id AS b FROM {keys} WHERE false")  # noqa: S608
    # one BIGINT per pair (a, b < 2^31): the distinct step hashes one number, not two;
    # b is below 2^31, so the low 31 bits hold it
    return (
        "SELECT CAST(p >> 32 AS INTEGER) AS join_key_l, "  # noqa: S608 - our names
        "CAST(p & 2147483647 AS INTEGER) AS join_key_r "
        "FROM (SELECT DISTINCT (CAST(a AS BIGINT) << 32) | b AS p FROM ("
        + " UNION ALL ".join(parts)
        + "))"
    )


def register_pairs(
    link: Any,
    frame: pd.DataFrame,
    rules: list[tuple[str, ...]],
    counter: BlockCounter | None = None,
) -> int:
    """Find the candidate pairs of *rules* on the DuckDB linker *link* (over *frame* as
    `numbered` returns it) and register them for Splink to score instead of its own
    blocking; returns how many there are."""
    api = link._db_api
    con = api.duckdb_con
    keys = block_keys(frame, rules, counter)
    con.register("__athar_keys_frame", keys)
    try:
        con.execute("CREATE OR REPLACE TABLE __athar_keys AS SELECT * FROM __athar_keys_frame")
    finally:
        con.unregister("__athar_keys_frame")
    del keys
    try:
        con.execute(
            f"CREATE OR REPLACE TABLE {PAIRS_TABLE}_ids AS {pairs_sql(rules, '__athar_keys')}"
        )
    finally:
        con.execute("DROP TABLE IF EXISTS __athar_keys")
    # Splink reads a match_key (which rule found the pair); a constant costs nothing in a view
    con.execute(
        f"CREATE OR REPLACE VIEW {PAIRS_TABLE} AS SELECT '0' AS match_key, * FROM {PAIRS_TABLE}_ids"  # noqa: S608
    )
    pairs = api.table_to_splink_dataframe("__splink__blocked_id_pairs", PAIRS_TABLE)
    link.table_management.register_blocked_pairs_for_predict(pairs)
    return int(con.sql(f"SELECT count(*) FROM {PAIRS_TABLE}_ids").fetchall()[0][0])  # noqa: S608


def drop_pairs(link: Any) -> None:
    """Free the pairs of `register_pairs` once scored (a gigabyte at a million records)."""
    con = link._db_api.duckdb_con
    con.execute(f"DROP VIEW IF EXISTS {PAIRS_TABLE}")
    con.execute(f"DROP TABLE IF EXISTS {PAIRS_TABLE}_ids")


def _deterministic_rules(plain: bool) -> list[Any]:
    """Pairs that are almost surely one person, to estimate how many pairs match."""
    from splink import block_on

    if plain:
        return [block_on("given_raw", "father_raw", "family_raw", "birth_year")]
    return [
        block_on("given_norm", "father_norm", "family_norm"),
        block_on("given_key", "family_key", "birth_year", "death_day"),
    ]


def _em_rules(plain: bool) -> list[Any]:
    from splink import block_on

    if plain:
        return [block_on("given_raw", "family_raw"), block_on("family_raw", "death_day")]
    # Not father + date or family + year of birth: those blocks are full of brothers
    # and sisters, whom EM would take for the "match" class (they agree on everything
    # but the given name), teaching it that a different given name means little. Nor
    # given + family alone: those blocks are mostly namesakes (محمد الأحمد), and EM
    # learnt from them that a different father or year of birth means little; with the
    # father too they are mostly one person. (A third session, given + year of birth,
    # did not converge and changed nothing measurable: dropped.)
    return [
        block_on("given_skel", "father_skel", "family_skel"),
        block_on("birth_year", "death_day"),
    ]


def prior(n_records: int) -> float:
    """The starting probability that two records match: lists name most people once or
    twice, so about one pair per record of the n(n-1)/2 is a match. Training replaces it
    with an estimate from the lists; small lists keep it."""
    return min(0.3, max(1e-9, 1.0 / max(n_records, 1)))


def settings(
    plain: bool = False,
    explain: bool = False,
    n_records: int = 100_000,
    frame: pd.DataFrame | None = None,
    rules: list[tuple[str, ...]] | None = None,
) -> Any:
    from splink import SettingsCreator

    return SettingsCreator(
        link_type="dedupe_only",
        comparisons=comparisons(plain),
        blocking_rules_to_generate_predictions=(
            [block_rule(r) for r in rules] if rules is not None else blocking_rules(plain, frame)
        ),
        probability_two_random_records_match=prior(n_records),
        max_iterations=MAX_ITERATIONS,
        em_convergence=EM_CONVERGENCE,
        retain_intermediate_calculation_columns=explain,
        retain_matching_columns=False,
    )


@dataclass
class Training:
    """What training did, saved with the run's parameters."""

    trained: bool = False
    degenerate: bool = False  # the lists name too few people to estimate anything
    sessions: list[dict[str, Any]] = field(default_factory=list)
    notes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return all(s["converged"] for s in self.sessions)


def db_api(backend: Backend, spark: Any = None) -> Any:
    if backend == "spark":
        from splink import SparkAPI

        # persist, not checkpoint: intermediate tables stay in the executors' memory
        # (spilling as Spark must) instead of being written out as files of names.
        return SparkAPI(  # type: ignore[no-untyped-call]
            spark_session=spark or spark_session(),
            break_lineage_method="persist",
            num_partitions_on_repartition=2,
        )
    import duckdb
    from splink import DuckDBAPI

    # DuckDB would take 80% of the machine's memory and spill to a folder beside the
    # database: bounded here, spilling into a private (0700) folder removed at exit,
    # since what it spills are names.
    con = duckdb.connect(":memory:")
    con.execute(f"SET temp_directory = '{_scratch('athar-duckdb-')}'")
    con.execute(f"SET memory_limit = '{DUCKDB_MEMORY}'")
    con.execute("SET preserve_insertion_order = false")
    return DuckDBAPI(connection=con)


RAM_SCRATCH = "/dev/shm"  # noqa: S108 - a RAM-backed tmpfs on Linux, not a shared temp file


def _scratch(prefix: str) -> str:
    """A private (0700) folder for what DuckDB or Spark spill, removed at exit. What they
    spill are names, so it lives in RAM (/dev/shm) when the machine has it: a seized
    laptop's disk never held them, even after a crash (DuckDB cannot encrypt its spill
    files offline: that needs its httpfs extension, a download). $ATHAR_SCRATCH chooses
    another folder, e.g. for lists larger than half the memory."""
    import atexit
    import shutil
    import tempfile

    base = os.environ.get("ATHAR_SCRATCH") or None
    if base is None and os.path.isdir(RAM_SCRATCH) and os.access(RAM_SCRATCH, os.W_OK):
        base = RAM_SCRATCH
    folder = tempfile.mkdtemp(prefix=prefix, dir=base)
    atexit.register(shutil.rmtree, folder, True)
    return folder


def spark_session() -> Any:
    """Local Spark with as many cores as the machine has, the similarity UDF jar on its
    class path, quiet logs and no web UI (no listening port)."""
    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    # Spark's scratch and warehouse folders hold names while it runs: one private (0700)
    # folder for this process, removed at exit, never the current directory
    scratch = _scratch("athar-spark-")
    session = (
        SparkSession.builder.master("local[*]")
        .appName("athar-linkage")
        .config("spark.jars", similarity_jar_location())
        .config("spark.local.dir", scratch)
        .config("spark.sql.warehouse.dir", f"{scratch}/warehouse")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "4")
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def linker(
    frame: pd.DataFrame,
    backend: Backend = "duckdb",
    plain: bool = False,
    spark: Any = None,
    explain: bool = False,
    trained: dict[str, Any] | None = None,
    rules: list[tuple[str, ...]] | None = None,
) -> Any:
    """A Splink linker over *frame*: a new model, or one saved by an earlier run;
    *rules* (from `rule_columns`) spares counting the blocks again."""
    from splink import Linker

    api = db_api(backend, spark)
    if backend == "spark":
        session = spark or spark_session()
        clean = frame.astype(object).where(frame.notna(), None)
        table = api.register(session.createDataFrame(clean), dataset_display_name="records")
    else:
        table = api.register(frame, dataset_display_name="records")
    logging.getLogger("splink").setLevel(logging.ERROR)  # its notes are not for our users
    link = Linker(table, settings(plain, explain, len(frame), frame, rules), log_level=None)
    if trained is not None:
        load_parameters(link, trained)
    return link


def load_parameters(link: Any, trained: dict[str, Any]) -> None:
    """Put a saved model's m and u probabilities into *link*, level by level.

    The saved JSON's SQL is in the dialect of the backend that trained it (DuckDB quotes
    names with ", Spark with `), so the comparisons are rebuilt for this backend and
    only the numbers are carried over; the two must describe the same comparisons."""
    obj = link._settings_obj
    saved = trained.get("comparisons", [])
    if len(saved) != len(obj.comparisons):
        raise ValueError("the saved model has other comparisons than this version's")
    for comparison, stored in zip(obj.comparisons, saved, strict=True):
        levels = stored.get("comparison_levels", [])
        if len(levels) != len(comparison.comparison_levels):
            raise ValueError("the saved model has other comparison levels than this version's")
        for level, values in zip(comparison.comparison_levels, levels, strict=True):
            if level.is_null_level:
                continue
            for name in ("m_probability", "u_probability"):
                if isinstance(values.get(name), (int, float)):
                    setattr(level, name, float(values[name]))
    prior = trained.get("probability_two_random_records_match")
    if isinstance(prior, (int, float)):
        obj._probability_two_random_records_match = float(prior)


def train(
    link: Any, n_rows: int, plain: bool = False, seed: int = 42, empty: frozenset[str] = frozenset()
) -> Training:
    """Estimate u by sampling and m by EM; record each session's iterations and whether
    it converged (the largest parameter change fell under EM_CONVERGENCE before the
    iteration cap)."""
    out = Training()
    if n_rows < MIN_TRAIN_ROWS:
        out.notes.append(("too few records to estimate parameters: starting values used", {}))
        return out
    # Splink samples rows and compares all pairs of the sample: a few hundred rows (the
    # 1e5 pairs this once allowed for 7,000 records) gave u for "same sex" 0.41 or 0.62
    # by the luck of the draw, so at least U_MIN_PAIRS pairs (a couple of seconds)
    max_pairs = min(U_MAX_PAIRS, max(U_MIN_PAIRS, n_rows * 20.0))
    try:
        link.training.estimate_probability_two_random_records_match(
            _deterministic_rules(plain), recall=LAMBDA_RECALL
        )
    except Exception as exc:
        out.notes.append(
            (
                "the share of matching pairs could not be estimated ({error}); "
                "the starting value was used",
                {"error": type(exc).__name__},
            )
        )
    link.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
    if _few_people(link):
        out.notes.append(
            (
                "random pairs of records mostly agree on the name: the lists seem to name "
                "very few people, so the starting values were used",
                {},
            )
        )
        out.degenerate = True
        return out
    for rule in _em_rules(plain):
        sql = _rule_sql(rule)
        if any(f'"{column}"' in sql for column in empty):
            # A block on a column no record fills has no pairs; Splink would then drop
            # that column's comparison from the model altogether.
            out.notes.append(
                (
                    "an EM session found nothing to learn from and was skipped ({rule})",
                    {"rule": sql},
                )
            )
            continue
        saved = copy.deepcopy(link._settings_obj.core_model_settings)
        try:
            session = link.training.estimate_parameters_using_expectation_maximisation(
                rule, estimate_without_term_frequencies=True, max_pairs=EM_MAX_PAIRS
            )
        except ValueError:
            # Splink 5 raises when an M step gives some level m = 0 (never observed among
            # that block's likely matches), leaving the model without the comparisons
            # the block used: put the model back as it was before the session.
            link._settings_obj.core_model_settings = saved
            link._populate_m_u_from_trained_values()
            out.notes.append(
                (
                    "an EM session was skipped: a comparison level never occurs among "
                    "the likely matches of its block ({rule})",
                    {"rule": _rule_sql(rule)},
                )
            )
            continue
        history = session._core_model_settings_history
        iterations = max(0, len(history) - 1)
        change = _last_change(session)
        out.sessions.append(
            {
                "blocking_rule": _rule_sql(rule),
                "iterations": iterations,
                "last_max_change": change,
                "converged": change is not None and change < EM_CONVERGENCE,
            }
        )
    out.trained = bool(out.sessions)
    if out.trained:
        _floor_m(link)
    return out


def _floor_m(link: Any) -> None:
    """Keep every level's m at or above M_FLOOR (the rest scaled down to sum to one).

    EM sharpens: a level rare among the pairs it already calls matches (a family name
    misspelt beyond two edits) gets an m that shrinks every iteration towards zero, and a
    weight of -50 bits then vetoes pairs whose other fields all agree. Real lists always
    hold some such errors, so no level of a trained model may rule a match out."""
    for comparison in link._settings_obj.comparisons:
        levels = comparison._comparison_levels_excluding_null
        ms = [lv.m_probability for lv in levels]
        if not all(isinstance(m, float) and not math.isnan(m) for m in ms):
            continue
        raised = [max(m, M_FLOOR) for m in ms]
        excess = sum(raised) - 1.0  # Splink's averaged m need not sum to one exactly
        spare = sum(m - M_FLOOR for m in raised if m > M_FLOOR)
        share = min(1.0, excess / spare) if excess > 0 and spare > 0 else 0.0
        for lv, m in zip(levels, raised, strict=True):
            lv.m_probability = m - share * (m - M_FLOOR)


def _few_people(link: Any) -> bool:
    """Random pairs agree on the given and the family name more often than not: EM would
    find no non-matches to learn from (a list where every row is the same person)."""
    agree = {}
    for comparison in link._settings_obj.comparisons:
        if comparison.output_column_name not in ("given", "family"):
            continue
        levels = comparison._comparison_levels_excluding_null
        # every level but "two different known names" and "all other" says "alike"
        alike = [lv for i, lv in enumerate(levels) if i != 2 and not lv._is_else_level]
        agree[comparison.output_column_name] = sum(
            lv.u_probability for lv in alike if isinstance(lv.u_probability, float)
        )
    return len(agree) == 2 and min(agree.values()) > 0.5


def _rule_sql(rule: Any) -> str:
    try:
        return str(rule.get_blocking_rule("duckdb").blocking_rule_sql)
    except Exception:
        return str(rule)


def _last_change(session: Any) -> float | None:
    """The largest change of any m probability (or λ) in the last iteration."""
    history = session._core_model_settings_history
    if len(history) < 2:
        return None
    before, after = history[-2], history[-1]
    change = float(
        abs(
            after.probability_two_random_records_match - before.probability_two_random_records_match
        )
    )
    for ca, cb in zip(before.comparisons, after.comparisons, strict=False):
        for la, lb in zip(
            ca._comparison_levels_excluding_null,
            cb._comparison_levels_excluding_null,
            strict=False,
        ):
            ma, mb = la.m_probability, lb.m_probability
            if isinstance(ma, float) and isinstance(mb, float) and not math.isnan(ma - mb):
                change = max(change, abs(ma - mb))
    return change


def predict(link: Any, threshold: float) -> pd.DataFrame:
    """Scored pairs at or above *threshold*: unique_id_l, unique_id_r, match_probability."""
    result = link.inference.predict(threshold_match_probability=threshold)
    frame = result.as_pandas_dataframe()
    return frame[["unique_id_l", "unique_id_r", "match_probability"]]
