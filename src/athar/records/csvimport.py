"""Import records from a CSV file: check every row first, then commit all or nothing.

The format is described in docs/import-format.md. Rows get stable ids (their own `id`
column, or a digest of their content), so importing the same file again, on this device
or another, changes nothing; a row whose record exists with other values becomes an edit
of the fields that differ. A file in Windows-1256 (Arabic Excel exports) is read as such;
a file that mixes encodings is refused with the lines that differ.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select

from athar.errors import InputError
from athar.records import events as ev
from athar.records import ids, schema
from athar.records.service import Records
from athar.records.store import records as records_table
from athar.records.validate import check_record, merged, parse_fields, record_type
from athar.records.values import Problem, bad_value
from athar.vault.progress import Progress

FALLBACK_ENCODING = "cp1256"
MAX_FILE_BYTES = 1 << 30
MAX_PROBLEMS = 1000
# Person lists usually say what happened to each person in the same row.
STATUS_COLUMNS = {
    "status": "status",
    "status.date": "date",
    "status.place.name_ar": "place.name_ar",
    "status.place.name_latin": "place.name_latin",
    "status.place.admin_area": "place.admin_area",
}


@dataclass(frozen=True)
class RowProblem:
    line: int
    column: str
    template: str
    params: dict[str, Any]

    def to_json(self, render: Any = None) -> dict[str, Any]:
        message = self.template.format(**self.params) if render is None else render(self)
        return {"line": self.line, "column": self.column, "message": message}


@dataclass
class ImportReport:
    path: str
    type: str
    encoding: str
    rows: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    committed: bool = False
    dry_run: bool = False

    def summary(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "type": self.type,
            "encoding": self.encoding,
            "rows": self.rows,
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "problems": len(self.problems),
            "committed": self.committed,
            "dry_run": self.dry_run,
        }


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(text: str) -> str:
    """A text cell that a spreadsheet would run as a formula (=HYPERLINK(...) in a party's
    statement, say) gets a leading apostrophe, as OWASP advises for CSV exports. A text
    that already starts with apostrophes before such a character gets one more, so that
    import (which takes one off) gives back exactly the text exported."""
    return "'" + text if text.lstrip("'").startswith(_FORMULA_START) else text


def unescape_formula(cell: str) -> str:
    return (
        cell[1:] if cell.startswith("'") and cell.lstrip("'").startswith(_FORMULA_START) else cell
    )


def read_file(path: Path) -> bytes:
    """A user's CSV file, whole (at most 1 GiB), or an error that says what is wrong."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InputError("{path} is larger than 1 GiB; split it", path=str(path))
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such file: {path}", path=str(path)) from None
    except IsADirectoryError:
        raise InputError("{path} is a folder, not a CSV file", path=str(path)) from None
    except PermissionError:
        raise InputError("cannot read {path}: permission denied", path=str(path)) from None


def decode(data: bytes, encoding: str | None) -> tuple[str, str]:
    """The file's text and the encoding it was read in."""
    if encoding:
        try:
            codecs.lookup(encoding)
            return data.decode(encoding), encoding
        except LookupError:
            raise InputError("unknown encoding {name}", name=encoding) from None
        except UnicodeDecodeError as exc:
            line = len(data[: exc.start].splitlines()) or 1
            raise InputError(
                "line {line} is not valid {encoding}", line=line, encoding=encoding
            ) from None
    if data.startswith(codecs.BOM_UTF8):
        return _utf8_or_mixed(data[3:]), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    _refuse_mixed(data)
    return data.decode(FALLBACK_ENCODING, errors="strict"), FALLBACK_ENCODING


def _utf8_or_mixed(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        _refuse_mixed(data)
        raise InputError("the file starts as UTF-8 but is not valid UTF-8") from None


def _refuse_mixed(data: bytes) -> None:
    """A file whose lines are partly UTF-8 Arabic and partly another encoding (two
    exports pasted together) would import as mojibake either way: name both lines."""
    utf8_line = other_line = 0
    for number, line in enumerate(data.splitlines(), start=1):  # \n, \r\n and old Mac \r
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            utf8_line = utf8_line or number
        except UnicodeDecodeError:
            other_line = other_line or number
        if utf8_line and other_line:
            raise InputError(
                "the file mixes encodings: line {utf8} is UTF-8 but line {other} is not; "
                "save it again as UTF-8",
                utf8=utf8_line,
                other=other_line,
            )


def read_rows(text: str) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError("the file is empty") from None
    except csv.Error as exc:
        raise InputError(
            "line 1: the CSV header cannot be read: {reason}", reason=str(exc)
        ) from None

    def rows() -> Iterator[tuple[int, list[str]]]:
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise InputError("line {line}: {reason}", line=start, reason=str(exc)) from None
            if row and any(cell.strip() for cell in row):
                yield start, row

    return [h.strip().lstrip("\ufeff") for h in header], rows()


def column_map(
    kind: schema.RecordType, header: Sequence[str], mapping: Mapping[str, str], ignore: set[str]
) -> dict[int, str]:
    """Column index → field path ('id' and status columns included)."""
    out: dict[int, str] = {}
    unknown: list[str] = []
    for index, name in enumerate(header):
        target = mapping.get(name, name)
        if name in ignore or target in ignore or not name:
            continue  # an unnamed column (Excel leaves them) must be empty: see _plan
        if (
            target in kind.fields
            or target == "id"
            or (kind.name == "person" and target in STATUS_COLUMNS)
        ):
            if target in out.values():
                raise InputError("two columns map to {field}", field=target)
            out[index] = target
        else:
            unknown.append(name)
    if unknown:
        raise InputError(
            "columns that are not {type} fields: {columns}; map them with --map COLUMN=FIELD "
            "or skip them with --ignore COLUMN (athar fields {type} lists the fields)",
            type=kind.name,
            columns=", ".join(unknown),
        )
    if not out:
        raise InputError("no column of the file is a {type} field", type=kind.name)
    return out


def import_csv(
    service: Records,
    path: Path,
    type_name: str,
    *,
    mapping: Mapping[str, str] | None = None,
    ignore: Sequence[str] = (),
    encoding: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    kind = record_type(type_name)
    data = read_file(path)
    if b"\x00" in data[:4096] and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError("{path} is not a text file", path=str(path))
    text_data, used = decode(data, encoding)
    header, rows = read_rows(text_data)
    columns = column_map(kind, header, mapping or {}, set(ignore))
    report = ImportReport(str(path), kind.name, used, dry_run=dry_run)
    planned = _plan(service, kind, header, columns, rows, report, progress)
    if report.problems or dry_run:
        return report
    digest = hashlib.sha256(data).hexdigest()
    service.commit(
        [
            (
                ev.RECORDS_IMPORTED,
                {
                    "file": path.name,
                    "sha256": digest,
                    "type": kind.name,
                    "changes": planned[start : start + ev.IMPORT_BATCH],
                },
            )
            for start in range(0, len(planned), ev.IMPORT_BATCH)
        ]
    )
    report.committed = True
    return report


def _plan(
    service: Records,
    kind: schema.RecordType,
    header: Sequence[str],
    columns: dict[int, str],
    rows: Iterator[tuple[int, list[str]]],
    report: ImportReport,
    progress: Progress | None,
) -> list[dict[str, Any]]:
    """Check every row and work out the events; nothing is written here."""
    parsed: list[tuple[int, str, dict[str, Any], dict[str, Any] | None]] = []
    seen: dict[str, int] = {}
    status_kind = schema.TYPES["status"]
    width = len(header)
    # Problems name the file's own column, even when --map renamed it.
    column_name = {target: header[index] for index, target in columns.items()}
    status_column = {field: column for column, field in STATUS_COLUMNS.items()}
    unnamed = [i for i, name in enumerate(header) if not name and i not in columns]

    def note(line: int, field: str, exc: Problem) -> None:
        if len(report.problems) < MAX_PROBLEMS:
            name = column_name.get(field, field)
            report.problems.append(RowProblem(line, name, exc.template, exc.params))

    def note_status(line: int, field: str, exc: Problem) -> None:
        note(line, status_column.get(field, f"status.{field}"), exc)

    for line, row in rows:
        report.rows += 1
        if progress is not None and report.rows % 1000 == 0:
            progress.advance(1000)
        if len(row) != width:
            note(line, "", bad_value("expected {n} cells, found {found}", n=width, found=len(row)))
            continue
        filled = [i for i in unnamed if row[i].strip()]
        if filled:
            note(
                line,
                "",
                bad_value(
                    "column {n} has no name but holds {value}; name it or delete it",
                    n=filled[0] + 1,
                    value=row[filled[0]][:40],
                ),
            )
            continue
        raw: dict[str, str] = {}
        status_raw: dict[str, str] = {}
        external = ""
        for index, target in columns.items():
            cell = row[index]
            if target == "id":
                external = cell.strip()
            elif target in STATUS_COLUMNS and kind.name == "person":
                status_raw[STATUS_COLUMNS[target]] = cell
            else:
                raw[target] = unescape_formula(cell)
        before = len(report.problems)
        values = parse_fields(
            kind,
            raw,
            service.vocab,
            creating=True,
            on_problem=partial(note, line),
        )
        status_values: dict[str, Any] | None = None
        if any(v.strip() for v in status_raw.values()):
            status_values = parse_fields(
                status_kind,
                status_raw,
                service.vocab,
                creating=True,
                on_problem=partial(note_status, line),
            )
            if "status" not in status_values and len(report.problems) == before:
                note(line, "status", bad_value("a status date or place needs a status"))
        if len(report.problems) > before:
            continue
        for column, exc in check_record(kind, values):
            note(line, column, exc)
        if len(report.problems) > before:
            continue
        if external:
            if ids.is_record_id(external.lower()):
                record_id = external.lower()
                if ids.type_of(record_id) != kind.name:
                    note(
                        line,
                        "id",
                        bad_value(
                            "{value} is not the id of a {target} record",
                            value=external,
                            target=kind.name,
                        ),
                    )
                    continue
            else:
                record_id = ids.derived_id(kind.name, "ref\x00" + external)
                values.setdefault("ref", external)
        else:
            record_id = ids.derived_id(
                kind.name, "row\x00" + json.dumps(values, sort_keys=True, ensure_ascii=False)
            )
        if record_id in seen:
            if external:
                duplicate = bad_value(
                    "duplicate id {value}, also on line {other}",
                    value=external,
                    other=seen[record_id],
                )
            else:
                duplicate = bad_value("the same record as line {other}", other=seen[record_id])
            note(line, "id", duplicate)
            continue
        try:
            service.check_refs(kind, values)
        except InputError as exc:
            note(line, exc.field or "", Problem(exc.template, exc.params))
            continue
        seen[record_id] = line
        parsed.append((line, record_id, values, status_values))
    if progress is not None:
        progress.advance(report.rows % 1000)
    if report.problems:
        return []
    return _events(service, kind, parsed, report)


def _events(
    service: Records,
    kind: schema.RecordType,
    parsed: list[tuple[int, str, dict[str, Any], dict[str, Any] | None]],
    report: ImportReport,
) -> list[dict[str, Any]]:
    existing = _current(
        service,
        [rid for _, rid, _, _ in parsed]
        + [ids.derived_id("status", rid) for _, rid, _, s in parsed if s],
    )
    out: list[dict[str, Any]] = []
    status_kind = schema.TYPES["status"]
    for line, record_id, values, status_values in parsed:
        changed = _change(service, kind, record_id, values, existing, out, line, report)
        if status_values is not None:
            status_values["person"] = record_id
            status_changed = _change(
                service,
                status_kind,
                ids.derived_id("status", record_id),
                status_values,
                existing,
                out,
                line,
                None,
            )
            if changed == "unchanged" and status_changed != "unchanged":
                changed = "updated"  # the row changed: its person's status did
        if changed == "new":
            report.new += 1
        elif changed == "updated":
            report.updated += 1
        else:
            report.unchanged += 1
    return out


def _change(
    service: Records,
    kind: schema.RecordType,
    record_id: str,
    values: dict[str, Any],
    existing: dict[str, tuple[str, dict[str, Any]]],
    out: list[dict[str, Any]],
    line: int,
    report: ImportReport | None,
) -> str:
    current = existing.get(record_id)
    if current is None:
        out.append({"op": "created", "line": line, **service.event_body(record_id, kind, values)})
        return "new"
    current_type, current_data = current
    if current_type != kind.name:
        if report is not None:
            report.problems.append(
                RowProblem(
                    line,
                    "id",
                    "{id} is already a {type} record",
                    {"id": record_id, "type": current_type},
                )
            )
        return "unchanged"
    changes = {p: v for p, v in values.items() if current_data.get(p) != v}
    if current_data.get(schema.DELETED):
        changes[schema.DELETED] = None  # importing a deleted record again brings it back
    if not changes:
        return "unchanged"
    problems = check_record(kind, merged(current_data, changes))
    if problems and report is not None:
        for column, exc in problems:
            report.problems.append(RowProblem(line, column, exc.template, exc.params))
        return "unchanged"
    out.append({"op": "updated", "line": line, **service.event_body(record_id, kind, changes)})
    return "updated"


def _current(service: Records, record_ids: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    cols = records_table.c
    with service.engine.connect() as conn:
        for start in range(0, len(record_ids), 500):
            part = record_ids[start : start + 500]
            for row in conn.execute(select(cols.id, cols.type, cols.data).where(cols.id.in_(part))):
                out[row.id] = (row.type, orjson.loads(row.data))
    return out
