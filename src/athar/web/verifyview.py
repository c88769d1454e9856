"""What the verification pages show: the queue (every file with its verification status,
files nobody has looked at yet counted as unverified) and an item's panel (its record,
corroborating files and the near-copies the archive holds).

Decisions go through ``athar.verify.verification.set_verdict``, the call behind
``athar verdict``, so a verdict made in the browser is the same signed record event as
one made on the command line. Everything here runs on the vault thread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from athar.errors import AtharError, InputError
from athar.i18n import translate
from athar.records import hlc, schema
from athar.records.service import RecordView
from athar.records.values import Problem
from athar.vault.items import Item
from athar.verify import c2pa_manifest, verification
from athar.verify.service import Similar
from athar.web import forms
from athar.web.state import State

KIND = schema.TYPES[verification.TYPE]
# The form's fields: everything but the item the record belongs to (fixed by the page).
FORM_FIELDS = tuple(p for p in KIND.fields if p != "item")
UNVERIFIED = "unverified"
MAX_CORROBORATING = 50


@dataclass(frozen=True)
class QueueRow:
    item: Item
    record: str | None  # the verification record's id; None: never looked at
    status: str
    updated: str  # the record's last change, or when the file arrived
    checks: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "item": self.item.id,
            "name": self.item.name,
            "media_type": self.item.media_type,
            "record": self.record,
            "status": self.status,
            "updated": self.updated,
            "checks": self.checks,
        }


@dataclass
class Panel:
    item: Item
    view: RecordView | None
    values: dict[str, str]  # the record as form text
    corroborating: list[Item]
    similar: list[Similar] = field(default_factory=list)
    similar_error: AtharError | None = None
    described: dict[str, Any] | None = None  # metadata + C2PA as recorded at ingest


def queue(state: State, status: str | None = None) -> list[QueueRow]:
    """Every file that still exists, with its verification status, latest change first;
    *status* (an id or a label, in either language) keeps only that status."""
    wanted = None
    if status:
        try:
            wanted = state.records.vocab.resolve("verification_status", status)
        except Problem as exc:
            raise exc.as_error("status") from None
    records = {r["item"]: r for r in verification.queue(state.records) if "item" in r}
    rows = []
    for item in state.items():
        if item.shredded:
            continue
        rec = records.get(item.id)
        row = QueueRow(
            item=item,
            record=rec["id"] if rec else None,
            status=str(rec.get("status", UNVERIFIED)) if rec else UNVERIFIED,
            updated=_iso(str(rec["updated"])) if rec else item.added,
            checks={c: str(rec.get(f"check.{c}", "")) for c in schema.CHECKS} if rec else {},
        )
        if wanted is not None and row.status != wanted:
            continue
        rows.append(row)
    rows.sort(key=lambda r: r.updated, reverse=True)
    return rows


def _iso(stamp: str) -> str:
    """A record's clock stamp (milliseconds.counter) as UTC ISO text, comparable with
    the files' arrival times."""
    if not hlc.is_stamp(stamp):
        return stamp
    ms = hlc.parse_stamp(stamp)[0]
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def panel(state: State, item_id: str, with_similar: bool = True) -> Panel:
    item = state.item(item_id)
    view = verification.get(state.records, item)
    values = forms.current_values(KIND, view.data) if view else {}
    if values.get("verifier"):  # events name team members by account id; show the name
        values["verifier"] = state.accounts.names().get(values["verifier"], values["verifier"])
    by_id = {i.id: i for i in state.items()}
    corroborating = []
    if view is not None:
        for link in view.links:
            if link.get("rel") == "corroborating" and link.get("direction") == "out":
                other = by_id.get(str(link.get("dst")))
                if other is not None and not other.shredded:
                    corroborating.append(other)
    out = Panel(item, view, values, corroborating)
    if not item.shredded:
        out.described = state.media.recorded_description(item)
    if with_similar and not item.shredded:
        try:
            _, out.similar = state.media.similar_to_item(item)
        except AtharError as exc:  # not a picture or video, or unreadable: said on the page
            out.similar_error = exc
    return out


def description(described: dict[str, Any] | None, lang: str) -> dict[str, Any] | None:
    """The recorded self-description with its messages and C2PA failure codes put in the
    reader's language (the record keeps them as message ids and specification codes)."""
    if described is None:
        return None
    meta = described.get("metadata") or {}
    prov = described.get("provenance") or {"verdict": "none"}
    return {
        "kind": meta.get("kind", ""),
        "format": meta.get("format") or "",
        "valid": bool(meta.get("valid", True)),
        "error": _message(meta.get("error"), lang),
        "summary": dict(meta.get("summary") or {}),
        "blocks": {str(k): dict(v) for k, v in (meta.get("blocks") or {}).items()},
        "problems": [_message(p, lang) for p in meta.get("problems") or []],
        "pdq": described.get("pdq"),
        "pdq_quality": described.get("pdq_quality"),
        "video_frames": described.get("video_frames"),
        "c2pa": {
            **prov,
            "explained": [c2pa_manifest.explain(r, lang) for r in prov.get("reasons") or []],
        },
    }


def _message(entry: Any, lang: str) -> str:
    if not isinstance(entry, dict) or "message" not in entry:
        return ""
    return translate(str(entry["message"]), lang, **dict(entry.get("params") or {}))


def corroborating_items(state: State, text: str) -> list[Item]:
    """Item ids (or unique prefixes) separated by spaces or commas."""
    idents = [p for p in re.split(r"[\s,،]+", text.strip()) if p]
    if len(idents) > MAX_CORROBORATING:
        raise InputError("at most {n} items", n=MAX_CORROBORATING).at("corroborating")
    out = []
    for ident in idents:
        try:
            out.append(state.item(ident))
        except InputError as exc:
            raise exc.at("corroborating") from None
    return out


def decide(
    state: State,
    item_id: str,
    fields: dict[str, str],
    corroborating: str,
    user: str,
    *,
    partial: bool = False,
) -> tuple[str, bool]:
    """Record the verdict: only the fields that changed (a form sends them all; an API
    call only those it names, *partial*), signed as *user*. Nothing is written when any
    value is invalid."""
    item = state.item(item_id)
    view = verification.get(state.records, item)
    before = forms.current_values(KIND, view.data) if view else {}
    before.pop("item", None)  # fixed by the page, never part of the form
    fields = dict(fields)
    if fields.get("verifier"):  # a team member's name becomes their account id again
        fields["verifier"] = state.accounts.account_of(fields["verifier"]) or fields["verifier"]
    changed = dict(fields) if partial else forms.changes(before, fields)
    if not before.get("verifier") and not fields.get("verifier"):
        changed["verifier"] = user  # who decided, unless the form names someone else
    others = corroborating_items(state, corroborating)
    if any(o.id == item.id for o in others):  # said of the form's field, not the record
        raise InputError("an item cannot corroborate itself").at("corroborating")
    return verification.set_verdict(state.records, item, changed, others, user)
