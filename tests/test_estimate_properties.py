"""The history and cluster readers never crash: any input gives a clean InputError or a
valid table."""

from __future__ import annotations

import contextlib
import csv
import io
import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from athar.errors import InputError
from athar.estimate import HistoryTable, estimate, parse_clusters, parse_histories
from athar.estimate.histories import MAX_LISTS, CaptureHistories

CELLS = st.sampled_from(["0", "1", "1", "0", "2", "", " 1 ", "١", "٠", "12", "-1", "x", "حلب", '"'])
NAMES = st.sampled_from(["A", "B", "C", "count", "Count", "الشبكة", "", "month", "A:B", "a"])


def valid(table: HistoryTable) -> None:
    # the reader refuses more lists than this (test_estimate_input checks the refusal)
    assert 1 <= len(table.lists) <= MAX_LISTS
    assert len(set(table.lists)) == len(table.lists)
    assert table.strata
    for stratum in table.strata:
        assert stratum.lists == table.lists
        assert stratum.counts.shape == (2 ** len(table.lists) - 1,)
        assert (stratum.counts >= 0).all()
    assert table.observed == sum(int(s.counts.sum()) for s in table.strata)


def as_csv(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_any_text(text: str) -> None:
    for parse in (parse_histories, parse_clusters):
        with contextlib.suppress(InputError):
            valid(parse(text))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes(data: bytes) -> None:
    with contextlib.suppress(InputError):
        valid(parse_histories(data))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(NAMES, min_size=1, max_size=6),
    st.lists(st.lists(CELLS, min_size=0, max_size=7), max_size=12),
    st.sampled_from([None, "month", "A"]),
)
def test_csv_like_input(header: list[str], rows: list[list[str]], stratify: str | None) -> None:
    text = as_csv(header, rows)
    try:
        table = parse_histories(text, stratify=stratify)
    except InputError:
        return
    valid(table)
    # what was read is what the file says: the positive counts add up
    assert table.observed == sum(sum(int(c) for c in s.counts) for s in table.strata)


def _wide_file(width: int) -> st.SearchStrategy[tuple[int, str]]:
    """A well-formed histories file of *width* lists: distinct histories, each on the
    first list at least, and their counts."""
    row = st.lists(st.sampled_from(["0", "1"]), min_size=width, max_size=width).map(
        lambda cells: ["1", *cells[1:], "3"]
    )
    header = [*(f"L{i}" for i in range(width)), "count"]
    rows = st.lists(row, min_size=1, max_size=5, unique_by=lambda r: tuple(r[:-1]))
    return rows.map(lambda rows: (width, as_csv(header, rows)))


@settings(max_examples=30, deadline=None)
@given(st.integers(MAX_LISTS - 2, MAX_LISTS + 2).flatmap(_wide_file))
def test_files_about_as_wide_as_the_limit(file: tuple[int, str]) -> None:
    """Around MAX_LISTS lists: read up to it (so valid()'s bound is met by tables that
    reach it), refused beyond."""
    width, text = file
    if width > MAX_LISTS:
        with pytest.raises(InputError):
            parse_histories(text)
        return
    table = parse_histories(text)
    valid(table)
    assert len(table.lists) == width


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["p1", "p2", "p3", "", "p4"]),
            st.sampled_from(["الشبكة", "B", "C", "", "D"]),
            st.sampled_from(["حلب", "حمص", ""]),
        ),
        max_size=15,
    )
)
@example(rows=[("p1", "الشبكة", "حلب"), ("", "", "")])  # found by hypothesis: a blank row
def test_clusters_like_input(rows: list[tuple[str, str, str]]) -> None:
    text = as_csv(["cluster_id", "source", "city"], [list(r) for r in rows])
    try:
        table = parse_clusters(text, stratify="city")
    except InputError:
        return
    valid(table)
    # a row with every cell empty is a blank line, which the CSV reader skips
    assert table.observed == len({r[0] for r in rows if any(c.strip() for c in r)})


@settings(max_examples=15, deadline=None)
@given(
    st.integers(3, 4).flatmap(
        lambda j: st.lists(st.integers(0, 60), min_size=2**j - 1, max_size=2**j - 1)
    ),
    st.sampled_from(["", None]),
)
def test_estimates_are_clean_or_refused(counts: list[int], interactions: str | None) -> None:
    """Any table gives a refusal or an estimate at least the number recorded, with an
    interval that starts at or above it and contains the multinomial maximum."""
    j = (len(counts) + 1).bit_length() - 1
    histories = CaptureHistories.from_mapping(
        [f"L{i}" for i in range(j)],
        {tuple(int(b) for b in format(code, f"0{j}b")): c for code, c in enumerate(counts, 1)},
    )
    try:
        result = estimate(histories, interactions=interactions)
    except InputError:
        return
    for fit in result.strata[0].result.fits:  # type: ignore[union-attr]
        assert histories.observed <= fit.N
        assert histories.observed <= fit.ci[0] <= fit.n_multinomial + 1e-6
        assert fit.n_multinomial <= fit.ci[1]
    json.dumps(result.to_json(), allow_nan=False)
