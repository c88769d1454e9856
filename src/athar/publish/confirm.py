"""Human confirmation of public copies: nothing goes out until a person has looked.

A face detector misses faces (small, turned, covered, badly lit), so every public copy
waits for a publisher to look at it and decide. Each decision is a signed ledger event
naming the copy (by its `publish.copy` event), the acting account (a pseudonymous
`acct-…` id and role, never a name) and, for a rejection, the reason. Decisions merge like
every other event: a copy is publishable when someone confirmed it and no one rejected it,
whatever order two devices' decisions arrive in. A rejection is final for that copy (a
better copy is a new copy); rejecting a confirmed copy withdraws it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any
from weakref import WeakKeyDictionary

from athar.errors import InputError
from athar.publish import media
from athar.publish.copy import PUBLISH_COPY, CopyOptions, keep, kept_item, plaintext
from athar.publish.faces import Box
from athar.vault.events import unwrap
from athar.vault.items import Item
from athar.vault.vault import Vault

PUBLISH_CONFIRMED = "publish.confirmed"
PUBLISH_REJECTED = "publish.rejected"
PENDING, CONFIRMED, REJECTED = "pending", "confirmed", "rejected"
STATUSES = (PENDING, CONFIRMED, REJECTED)
MAX_REASON = 500
SUPERSEDED = "superseded by public copy {event}: more regions hidden"


@dataclass(frozen=True)
class Actor:
    """Who decided: the web app's pseudonymous account id and role; None from the CLI,
    where the signing device alone answers for the decision."""

    account: str | None = None
    role: str | None = None

    def fields(self) -> dict[str, str]:
        out = {}
        if self.account:
            out["user"] = self.account
        if self.role:
            out["role"] = self.role
        return out


@dataclass
class CopyState:
    copy: dict[str, Any]  # the publish.copy body, with "event" and "time"
    decisions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def event(self) -> str:
        return str(self.copy["event"])

    @property
    def status(self) -> str:
        kinds = {d["kind"] for d in self.decisions}
        if PUBLISH_REJECTED in kinds:
            return REJECTED
        return CONFIRMED if PUBLISH_CONFIRMED in kinds else PENDING

    @property
    def regions(self) -> tuple[Box, ...]:
        return tuple(Box(**r) for r in self.copy.get("regions", []))

    def to_json(self) -> dict[str, Any]:
        return {**self.copy, "status": self.status, "decisions": self.decisions}


class CopyIndex:
    """Copies and decisions folded from the ledger incrementally: the first call reads the
    whole ledger, later ones only the events appended since (the web page is asked often;
    a full read costs about 0.15 ms an event). A decision carried in before the copy it
    names waits for it."""

    def __init__(self) -> None:
        self.seen = -1
        self.copies: dict[str, dict[str, Any]] = {}
        self.decisions: dict[str, list[dict[str, Any]]] = {}

    def refresh(self, vault: Vault) -> list[CopyState]:
        if vault.ledger.size() <= self.seen:  # a ledger that shrank is another ledger
            self.seen, self.copies, self.decisions = -1, {}, {}
        for batch in vault.ledger.events_after(self.seen):
            for _, outer in batch:
                signed = unwrap(outer)
                ev = signed.event
                if ev.kind == PUBLISH_COPY:
                    self.copies[signed.id] = {"event": signed.id, "time": ev.time, **ev.body}
                elif ev.kind in (PUBLISH_CONFIRMED, PUBLISH_REJECTED):
                    decision = {"kind": ev.kind, "event": signed.id, "time": ev.time, **ev.body}
                    self.decisions.setdefault(str(ev.body.get("copy")), []).append(decision)
            self.seen = batch[-1][0]
        return [
            CopyState(dict(copy), list(self.decisions.get(event, [])))
            for event, copy in self.copies.items()
        ]


_INDEXES: WeakKeyDictionary[object, CopyIndex] = WeakKeyDictionary()


def copy_states(vault: Vault) -> list[CopyState]:
    """Every public copy and the decisions about it, oldest copy first. Call on the
    thread that owns the vault (the index is per open ledger, not locked)."""
    index = _INDEXES.get(vault.ledger)
    if index is None:
        index = _INDEXES[vault.ledger] = CopyIndex()
    return index.refresh(vault)


def find_copy(states: list[CopyState], ref: str) -> CopyState:
    """The copy whose event id is *ref* or starts with it (6+ hex digits)."""
    ref = ref.strip().lower()
    if len(ref) < 6 or any(c not in "0123456789abcdef" for c in ref):
        raise InputError("a public copy id is at least 6 hexadecimal characters: {id}", id=ref[:80])
    found = [s for s in states if s.event.startswith(ref)]
    if not found:
        raise InputError("no public copy with id {id}", id=ref)
    if len(found) > 1:
        raise InputError("{id} matches several items; give more characters", id=ref)
    return found[0]


def _decide(
    vault: Vault, kind: str, state: CopyState, actor: Actor, **extra: str
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "copy": state.event,
        "original": state.copy.get("original"),
        "sha256": state.copy.get("sha256"),
        **actor.fields(),
        **extra,
    }
    with vault.ledger.transaction() as tx:
        signed = tx.append(kind, body)
    return {"event": signed.id, "kind": kind, **body}


def confirm(vault: Vault, ref: str, actor: Actor | None = None) -> dict[str, Any]:
    """Record that a person looked at the copy and it may go out."""
    state = find_copy(copy_states(vault), ref)
    if state.status == CONFIRMED:
        raise InputError("public copy {id} is already confirmed", id=state.event[:12])
    if state.status == REJECTED:
        raise InputError(
            "public copy {id} was rejected; make a new copy instead", id=state.event[:12]
        )
    return _decide(vault, PUBLISH_CONFIRMED, state, actor or Actor())


def check_reason(reason: str) -> str:
    reason = " ".join(reason.split())
    if not reason:
        raise InputError("give a reason for rejecting the copy").at("reason")
    if len(reason) > MAX_REASON:
        raise InputError("a reason is at most {n} characters", n=MAX_REASON).at("reason")
    return reason


def reject(vault: Vault, ref: str, reason: str, actor: Actor | None = None) -> dict[str, Any]:
    """Record that the copy must never go out (withdrawing it if it was confirmed)."""
    reason = check_reason(reason)
    state = find_copy(copy_states(vault), ref)
    if state.status == REJECTED:
        raise InputError("public copy {id} is already rejected", id=state.event[:12])
    return _decide(vault, PUBLISH_REJECTED, state, actor or Actor(), reason=reason)


@dataclass
class Remake:
    """A new copy of the same original with one more region hidden, in three steps so
    the web app can do the slow middle one (decoding, detecting, encoding) off the vault
    thread: prepare (vault) → make (any thread) → finish (vault)."""

    old: CopyState
    item: Item
    data: bytes
    suffix: str
    options: CopyOptions

    def make(self) -> media.CopyResult:
        kind = media.kind_of(self.suffix)
        faces, mode, regions = self.options.faces, self.options.mode, list(self.options.regions)
        if kind == "image":
            return media.image_copy(self.data, self.suffix, faces, mode, regions)
        return media.video_copy(self.data, self.suffix, faces, mode, regions)


def check_region(state: CopyState, box: Box) -> Box:
    width, height = int(state.copy.get("width") or 0), int(state.copy.get("height") or 0)
    if width and height and (box.x >= width or box.y >= height):
        raise InputError(
            "the region {x},{y},{w},{h} lies outside the picture ({width}×{height})",
            x=box.x,
            y=box.y,
            w=box.w,
            h=box.h,
            width=width,
            height=height,
        ).at("region")
    return box


def prepare_remake(vault: Vault, ref: str, region: Box, items: list[Item] | None = None) -> Remake:
    state = find_copy(copy_states(vault), ref)
    if state.status != PENDING:
        raise InputError(
            "public copy {id} is already {status}; only a copy awaiting confirmation is remade",
            id=state.event[:12],
            status=state.status,
        )
    check_region(state, region)
    items = vault.items() if items is None else items
    original = next((i for i in items if i.id == state.copy.get("original")), None)
    if original is None or original.shredded:
        raise InputError("the original of public copy {id} is gone", id=state.event[:12])
    kept = kept_item(state.copy, items)
    suffix = PurePath(kept.name).suffix.lower() if kept else ""
    if suffix not in media.IMAGE_FORMATS and suffix not in media.VIDEO_FORMATS:
        suffix = ".mp4" if state.copy.get("kind") == "video" else ".jpg"
    faces = state.copy.get("faces") or {}
    options = CopyOptions(
        faces=faces.get("detector") is not None,
        mode="pixelate" if faces.get("mode") == "pixelate" else "blur",
        regions=(*state.regions, region),
    )
    return Remake(state, original, plaintext(vault, original), suffix, options)


def finish_remake(
    vault: Vault, remake: Remake, result: media.CopyResult, actor: Actor | None = None
) -> dict[str, Any]:
    """Keep and record the new copy, and reject the old one as superseded."""
    made = keep(vault, remake.item, result, remake.options, remake.suffix)
    state = find_copy(copy_states(vault), remake.old.event)
    if state.status != REJECTED:
        _decide(
            vault,
            PUBLISH_REJECTED,
            state,
            actor or Actor(),
            reason=SUPERSEDED.format(event=made["event"][:12]),
            superseded_by=made["event"],
        )
    return made


def remake(vault: Vault, ref: str, region: Box, actor: Actor | None = None) -> dict[str, Any]:
    """A new copy with one more region hidden, all on this thread (CLI and tests)."""
    job = prepare_remake(vault, ref, region)
    return finish_remake(vault, job, job.make(), actor)
