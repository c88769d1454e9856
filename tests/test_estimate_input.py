"""Reading histories and clusters, and refusing where the data cannot support an estimate:
every refusal is an InputError whose message says why."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from athar.errors import InputError
from athar.estimate import estimate, parse_clusters, parse_histories
from athar.estimate.histories import MAX_LISTS, CaptureHistories
from athar.estimate.refusals import check
from athar.estimate.report import (
    ASSUMPTIONS_COMMON,
    ASSUMPTIONS_LCMCR,
    ASSUMPTIONS_LOGLINEAR,
    LCMCR_COLUMNS,
    MODEL_COLUMNS,
    STRATA_COLUMNS,
)
from athar.i18n import catalog

DATA = Path(__file__).parent / "data" / "estimate"
GOOD = "A,B,C,count\n1,1,1,5\n1,1,0,10\n1,0,1,8\n0,1,1,7\n1,0,0,40\n0,1,0,35\n0,0,1,30\n"


def refused(text: str | bytes, match: str, **kwargs: object) -> InputError:
    with pytest.raises(InputError, match=match) as info:
        estimate(text, **kwargs)  # type: ignore[arg-type]
    return info.value


def test_good_file_reads() -> None:
    table = parse_histories(GOOD)
    assert table.lists == ("A", "B", "C")
    assert table.observed == 135
    assert dict(table.strata[0].rows())[(1, 1, 1)] == 5


def test_fewer_than_three_lists() -> None:
    refused("A,B,count\n1,1,5\n1,0,3\n0,1,4\n", "at least 3 are needed")


def test_a_list_with_no_records_is_left_out_with_a_notice() -> None:
    text = "A,B,C,D,count\n1,1,1,0,5\n1,1,0,0,10\n1,0,1,0,8\n0,1,1,0,7\n1,0,0,0,40\n0,0,1,0,3\n"
    result = estimate(text, interactions="")
    assert result.lists == ("A", "B", "C", "D")
    assert result.strata[0].result.lists == ("A", "B", "C")
    assert any("D records no one" in n.text() for n in result.notices)
    refused("A,B,C,count\n1,1,0,5\n1,0,0,3\n0,1,0,4\n", "at least 3 are needed")


def test_no_overlap() -> None:
    refused("A,B,C,count\n1,0,0,5\n0,1,0,3\n0,0,1,4\n", "no one appears on more than one list")


def test_a_list_that_captures_everyone() -> None:
    refused("A,B,C,count\n1,1,0,5\n1,0,1,3\n1,0,0,4\n1,1,1,2\n", "list A holds every recorded")


def test_zero_counts_everywhere() -> None:
    refused("A,B,C,count\n1,1,0,0\n1,0,1,0\n", "no one is recorded")


def test_empty_stratum() -> None:
    text = (
        "A,B,C,count,month\n1,1,0,5,2017-01\n1,0,1,3,2017-01\n0,1,1,4,2017-01\n1,0,0,9,2017-01\n"
        "1,1,0,0,2017-02\n1,0,0,0,2017-02\n"
    )
    error = refused(text, "no recorded people", stratify="month")
    assert error.field == "month=2017-02"


@pytest.mark.parametrize(
    ("cell", "match"),
    [
        ("-3", "not a whole number"),
        ("2.5", "not a whole number"),
        ("", "not a whole number"),
        ("ten", "not a whole number"),
        ("1e3", "not a whole number"),
        ("9" * 14, "too large"),
    ],
)
def test_bad_counts(cell: str, match: str) -> None:
    error = refused(f"A,B,C,count\n1,1,0,5\n1,0,1,{cell}\n", match)
    assert "line 3" in str(error) and "count" in str(error)


@pytest.mark.parametrize("cell", ["2", "yes", "", "0.5", "-1", "١١"])
def test_history_values_must_be_0_or_1(cell: str) -> None:
    error = refused(f"A,B,C,count\n1,{cell},0,5\n", "is not 0 or 1")
    assert "column B" in str(error)


def test_arabic_indic_digits_are_read() -> None:
    table = parse_histories("A,B,C,count\n١,١,٠,١٢\n١,٠,١,٣\n٠,١,١,4\n")
    assert dict(table.strata[0].rows()) == {(1, 1, 0): 12, (1, 0, 1): 3, (0, 1, 1): 4}


def test_duplicated_history_rows_are_refused() -> None:
    error = refused("A,B,C,count\n1,1,0,5\n1,0,1,3\n1,1,0,2\n", "appears on lines 2 and 4")
    assert "110" in str(error)


def test_missing_count_column() -> None:
    refused("A,B,C\n1,1,0\n1,0,1\n", "no count column")


def test_unobservable_history_must_not_be_given() -> None:
    refused("A,B,C,count\n1,1,0,5\n0,0,0,40\n", "0 on every list has a count")
    parse_histories("A,B,C,count\n1,1,0,5\n0,0,0,0\n")  # an empty placeholder is harmless


def test_row_length_and_unnamed_columns() -> None:
    refused("A,B,C,count\n1,1,0\n", "has 3 cells but the header has 4")
    parse_histories("A,B,C,count,\n1,1,0,5,\n1,0,1,3,\n")  # Excel's empty trailing column
    refused("A,B,C,count,\n1,1,0,5,x\n", "a column with no name holds x")


def test_list_names_that_break_interactions_are_refused() -> None:
    refused("A:1,B,C,count\n1,1,0,5\n", "contains ':' or ','")


def test_two_columns_with_one_name() -> None:
    refused("A,B,a,count\n1,1,0,5\n", "two columns are named a")


def test_unknown_stratify_column() -> None:
    refused(GOOD, "no column named region", stratify="region")


def test_bom_and_cp1256_with_arabic_names() -> None:
    text = "دمشق,حلب,حمص,count\n1,1,1,5\n1,1,0,10\n1,0,1,8\n0,1,1,7\n1,0,0,40\n0,1,0,35\n"
    for data, encoding in (
        (text.encode("utf-8-sig"), "utf-8-sig"),
        (text.encode("cp1256"), "cp1256"),
        (text.replace("\n", "\r\n").encode("utf-8"), "utf-8"),
    ):
        table = parse_histories(data)
        assert table.lists == ("دمشق", "حلب", "حمص")
        assert table.encoding == encoding
        assert table.observed == 105


def test_arabic_names_work_end_to_end() -> None:
    result = estimate(
        (DATA / "syria_strata.csv").read_bytes(),
        stratify="المحافظة",
        interactions="الشبكة:لجنة الحي",
    )
    assert result.lists == ("مركز التوثيق", "الشبكة", "لجنة الحي", "المستشفى")
    assert [s.stratum for s in result.strata] == ["حلب", "حمص", "دمشق"]
    body = result.to_json()
    assert body["stratify"] == "المحافظة"
    assert body["strata"][0]["stratum"] == "حلب"
    assert body["strata"][0]["selected"] == "الشبكة:لجنة الحي"
    assert body["strata"][0]["models"][0]["interactions"] == ["الشبكة:لجنة الحي"]
    assert body["observed"] == sum(s["observed"] for s in body["strata"])


@pytest.mark.parametrize(
    ("interactions", "match"),
    [
        ("A:Z", "unknown list Z"),
        ("A-B", "not a pair of lists"),
        ("A:A", "with itself"),
        ("A:B:C", "not a pair of lists"),
    ],
)
def test_bad_interactions(interactions: str, match: str) -> None:
    refused(GOOD, match, interactions=interactions)


def test_interaction_of_lists_that_share_no_one() -> None:
    text = "A,B,C,count\n1,0,1,8\n0,1,1,7\n1,0,0,40\n0,1,0,35\n0,0,1,30\n"
    refused(text, "no one is on both A and B", interactions="A:B")
    search = estimate(text)
    assert all((0, 1) not in f.model.pairs for f in search.strata[0].result.fits)  # type: ignore[union-attr]
    assert any(
        "models with their interaction were left out" in n.text() for n in search.all_notices()
    )


def test_too_many_models_for_a_search() -> None:
    lists = [f"L{i}" for i in range(6)]
    rows = [",".join([*lists, "count"])]
    for code in range(1, 64):
        rows.append(",".join([*format(code, "06b"), "3"]))
    refused("\n".join(rows) + "\n", "too many to fit")


def test_more_lists_than_can_be_estimated_together_are_refused() -> None:
    """Histories or clusters over MAX_LISTS lists are read; one list more is refused,
    whichever file format brings it."""

    def histories(n: int) -> str:
        lists = [f"قائمة{i}" for i in range(n)]
        return ",".join([*lists, "count"]) + "\n" + ",".join(["1"] * n + ["4"]) + "\n"

    def clusters(n: int) -> str:
        return "cluster_id,source\n" + "".join(f"p{i},الشبكة{i}\n" for i in range(n))

    for text_of, parse in ((histories, parse_histories), (clusters, parse_clusters)):
        assert len(parse(text_of(MAX_LISTS)).lists) == MAX_LISTS
        with pytest.raises(InputError, match=f"{MAX_LISTS + 1} lists given; at most {MAX_LISTS}"):
            parse(text_of(MAX_LISTS + 1))


def test_method_and_criterion_are_checked() -> None:
    refused(GOOD, "unknown method", method="magic")
    refused(GOOD, "unknown criterion", criterion="waic")
    refused(GOOD, "needs --method loglinear", method="lcmcr", interactions="A:B")


def test_clusters_become_histories() -> None:
    text = (
        "cluster_id,source\n"
        "p1,الشبكة\np1,المستشفى\np2,الشبكة\np2,الشبكة\np3,لجنة الحي\np3,الشبكة\n"
        "p3,المستشفى\np4,المستشفى\n"
    )
    table = parse_clusters(text)
    assert table.lists == tuple(sorted(["الشبكة", "المستشفى", "لجنة الحي"]))
    assert table.source == "clusters"
    counts = dict(table.strata[0].rows())
    on = {name: i for i, name in enumerate(table.lists)}

    def history(*names: str) -> tuple[int, ...]:
        return tuple(1 if n in names else 0 for n in table.lists)

    assert counts == {
        history("الشبكة", "المستشفى"): 1,
        history("الشبكة"): 1,  # two records in one list count once
        history("الشبكة", "المستشفى", "لجنة الحي"): 1,
        history("المستشفى"): 1,
    }
    assert len(on) == 3


def test_clusters_file_with_strata() -> None:
    data = (DATA / "clusters_syria.csv").read_bytes()
    by_cluster = parse_clusters(data, stratify="المحافظة")
    by_histories = parse_histories((DATA / "syria_strata.csv").read_bytes(), stratify="المحافظة")
    assert by_cluster.lists == tuple(sorted(by_histories.lists))
    for a, b in zip(by_cluster.strata, by_histories.strata, strict=True):
        assert a.stratum == b.stratum
        reorder = [by_histories.lists.index(name) for name in by_cluster.lists]
        assert dict(a.rows()) == {tuple(h[i] for i in reorder): c for h, c in b.rows()}


def test_clusters_refusals() -> None:
    with pytest.raises(InputError, match="needs the columns cluster_id and source"):
        parse_clusters("id,source\n1,A\n")
    with pytest.raises(InputError, match="line 3: the cluster_id is empty"):
        parse_clusters("cluster_id,source\n1,A\n,B\n")
    with pytest.raises(InputError, match="line 2: the source is empty"):
        parse_clusters("cluster_id,source\n1, \n")
    with pytest.raises(InputError, match="cluster 7 is in stratum حلب on line 2 and in حمص"):
        parse_clusters("cluster_id,source,city\n7,A,حلب\n7,B,حمص\n", stratify="city")
    with pytest.raises(InputError, match="the stratum column city is empty"):
        parse_clusters("cluster_id,source,city\n7,A,\n", stratify="city")
    with pytest.raises(InputError, match="the file has no records"):
        parse_clusters("cluster_id,source\n")


def test_not_text_and_empty_files() -> None:
    refused(b"\x00\x01\x02binary", "not a text file")
    refused(b"", "the file is empty")
    refused("A,B,C,count\n", "no histories")


def test_check_keeps_good_tables() -> None:
    table = CaptureHistories.from_mapping(
        ["A", "B", "C"], {(1, 1, 0): 3, (1, 0, 1): 2, (0, 1, 1): 1}
    )
    checked, notices = check(table)
    assert checked is table and notices == []


def _templates() -> set[str]:
    """Every message the estimate package and its command can show: error and notice
    templates, report sentences (t("…")), table headings and the assumptions."""
    found: set[str] = set(ASSUMPTIONS_COMMON + ASSUMPTIONS_LOGLINEAR + ASSUMPTIONS_LCMCR)
    found |= set(MODEL_COLUMNS + LCMCR_COLUMNS + STRATA_COLUMNS)
    root = Path(__file__).parents[1] / "src" / "athar"
    files = [*(root / "estimate").glob("*.py"), root / "cli" / "estimate_cmds.py"]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name | ast.Attribute)
                and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr)
                in {"InputError", "notice", "t", "progress"}
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value)
    return found


SENTINEL = (
    "no one appears on more than one list; capture–recapture learns from the overlap between "
    "lists, so without overlap there is no estimate"
)


def test_every_message_has_an_arabic_translation() -> None:
    templates = _templates()
    assert SENTINEL in templates
    assert sorted(templates - set(catalog("ar"))) == []
