"""Which records a publication holds, and the redactor that guards it.

There is no "publish" field in the record schema yet: a record is published when it is
an incident named with --include, or (once the schema has it) an incident whose
`publish` field is true; what an incident links to (victims, sources, claims, media)
follows it, through redaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from athar.errors import InputError
from athar.publish.pseudonyms import SUBKEY, Pseudonyms
from athar.publish.redact import Hit, Redactor, is_protected
from athar.records import schema
from athar.records.service import Records
from athar.records.store import records as records_table

PUBLISH_FIELD = "publish"


def redactor_for(service: Records) -> Redactor:
    """Every protected person and source in the records, whether published or not: a
    protected witness named in someone else's incident must still be caught."""
    redactor = Redactor(Pseudonyms(service.vault.keys.subkey(SUBKEY)))
    query = select(records_table.c.id, records_table.c.type, records_table.c.data).where(
        records_table.c.type.in_(("person", "source")), records_table.c.deleted.is_(False)
    )
    with service.engine.connect() as conn:
        for row in conn.execute(query):
            data = json.loads(row.data)
            if is_protected(row.type, data):
                redactor.protect(row.id, row.type, data)
    return redactor


def chosen_incidents(service: Records, include: Sequence[str]) -> list[str]:
    if include:
        out = []
        for ident in include:
            record_id = service.resolve(ident)
            if not service.exists(record_id, "incident"):
                raise InputError("{id} is not an incident record", id=record_id)
            out.append(record_id)
        return sorted(set(out))
    query = select(records_table.c.id, records_table.c.data).where(
        records_table.c.type == "incident", records_table.c.deleted.is_(False)
    )
    with service.engine.connect() as conn:
        marked = [r.id for r in conn.execute(query) if json.loads(r.data).get(PUBLISH_FIELD)]
    if not marked:
        raise InputError(
            "no incident is marked for publication; name them with --include ID (repeatable)"
        )
    return sorted(marked)


@dataclass
class Finding:
    record: str
    path: str
    hits: list[Hit] = field(default_factory=list)

    def to_json(self, pseudonyms: Pseudonyms) -> dict[str, Any]:
        return {
            "record": self.record,
            "field": self.path,
            "found": [
                {
                    "text": h.text,
                    "start": h.start,
                    "end": h.end,
                    "protected": h.record_id,
                    "replaced_by": pseudonyms.name(h.record_id, h.record_type, "en"),
                }
                for h in self.hits
            ],
        }


def free_text_fields(record_type: str) -> list[str]:
    kind = schema.TYPES[record_type]
    return [
        p
        for p, f in kind.fields.items()
        if f.kind in (schema.TEXT, schema.LONGTEXT) and not f.private
    ]


def review(service: Records, redactor: Redactor, record_ids: Sequence[str]) -> list[Finding]:
    """Protected names found in the free text of the given records (for a human to see
    before anything is published)."""
    findings: list[Finding] = []
    for record_id in record_ids:
        view = service.get(record_id)
        for path in free_text_fields(view.type):
            value = view.data.get(path)
            if isinstance(value, str):
                hits = redactor.scan(value)
                if hits:
                    findings.append(Finding(record_id, path, hits))
    return findings
