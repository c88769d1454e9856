"""Parsers of outside input (command line, CSV cells, JSON): they either return a
canonical value or raise a Problem with a reason — never anything else — and every
canonical value reads back from its written form unchanged."""

from __future__ import annotations

import contextlib
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from athar.records import schema, store, textnorm
from athar.records.formats import value_text
from athar.records.values import (
    Problem,
    parse_bool,
    parse_coordinates,
    parse_date,
    parse_range,
    parse_text,
)

ANY_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["٢٠١٧-٠٣-١٢", "12/3/2017", "~2017", "2017-03..2016", "31/02/2017", "33,36,-1", "9-", "١-٣"]
)


@settings(max_examples=600, deadline=None)
@given(ANY_TEXT)
def test_parsers_only_ever_raise_problems(raw: str) -> None:
    for parse in (parse_date, parse_range, parse_coordinates, parse_bool, parse_text):
        with contextlib.suppress(Problem):
            parse(raw)


days = st.dates(min_value=date(1900, 1, 1), max_value=date.today())


@settings(max_examples=300, deadline=None)
@given(days, st.integers(0, 400), st.sampled_from(["day", "month", "year", "range"]), st.booleans())
def test_dates_round_trip(start: date, span: int, precision: str, approximate: bool) -> None:
    if precision == "day":
        text = start.isoformat()
    elif precision == "month":
        text = start.isoformat()[:7]
    elif precision == "year":
        text = str(start.year)
    else:
        end = min(start + timedelta(days=span), date.today())
        text = f"{start.isoformat()}/{end.isoformat()}"
    if approximate:
        text = "~" + text
    value = parse_date(text)
    assert value["start"] <= value["end"]
    spec = schema.Field("date", schema.DATE)
    assert parse_date(value_text(spec, value)) == value
    assert parse_date(value) == value  # the canonical value is accepted as input too


@given(st.integers(0, 10**6), st.integers(0, 10**6))
def test_ranges_round_trip(a: int, b: int) -> None:
    low, high = min(a, b), max(a, b)
    value = parse_range(f"{low}-{high}")
    assert value == {"min": low, "max": high}
    assert parse_range(value_text(schema.Field("x", schema.RANGE), value)) == value


@given(
    st.floats(-90, 90, allow_nan=False),
    st.floats(-180, 180, allow_nan=False),
    st.integers(0, 10**6) | st.none(),
)
def test_coordinates_round_trip(lat: float, lon: float, precision: int | None) -> None:
    text = f"{lat!r},{lon!r}" + ("" if precision is None else f",{precision}")
    value = parse_coordinates(text)
    assert parse_coordinates(value_text(schema.Field("c", schema.COORDS), value)) == value


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("2017-02-29", "not a real date"),
        ("2016-02-29", None),
        ("31/04/2017", "not a real date"),
        ("2017-13", "not a real date"),
        ("2017-03-12/2017-03-01", "before it starts"),
        ("17-03-12", "cannot read"),
        ("1899", "before 1900"),
        ("", "expected a date"),
    ],
)
def test_date_cases(raw: str, message: str | None) -> None:
    if message is None:
        assert parse_date(raw)["start"] == "2016-02-29"
        return
    with pytest.raises(Problem) as caught:
        parse_date(raw)
    assert message in caught.value.template.format(**caught.value.params)


def test_text_refuses_nul_and_broken_unicode() -> None:
    with pytest.raises(Problem):
        parse_text("a\x00b")
    with pytest.raises(Problem):
        parse_text("bad \udcff bytes")  # what surrogateescape makes of non-UTF-8 argv
    assert parse_text("  مُحَمَّد  ") == "مُحَمَّد"


@settings(max_examples=400, deadline=None)
@given(ANY_TEXT)
def test_folding_is_idempotent_and_query_terms_are_indexed(raw: str) -> None:
    folded = textnorm.fold(raw)
    assert textnorm.fold(folded) == folded
    indexed = set(textnorm.index_terms(raw))
    assert all(t in indexed or t in {"al", "el"} for t in textnorm.query_terms(raw))


def test_schema_head_is_alembic_head() -> None:
    from pathlib import Path

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(store.__file__).parent / "migrations"))
    assert ScriptDirectory.from_config(config).get_current_head() == store.SCHEMA_HEAD


@given(st.binary(min_size=10, max_size=10))
def test_id_encoding_is_base32(raw: bytes) -> None:
    import base64

    from athar.records.ids import _encode

    assert _encode(raw) == base64.b32encode(raw).decode().lower()


@given(st.one_of(st.text(max_size=30), st.from_regex(r"[0-9]{16}\.[0-9]{5}\n?", fullmatch=True)))
def test_is_stamp_accepts_exactly_what_parse_stamp_reads(raw: str) -> None:
    from athar.records.hlc import is_stamp, parse_stamp

    try:
        parse_stamp(raw)
        parsed = True
    except ValueError:
        parsed = False
    assert is_stamp(raw) == parsed
