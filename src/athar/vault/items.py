"""The item projection: what `ls` and `show` list, rebuilt from item events.

Files that arrived in a bundle are recorded inside ``event.imported`` wrappers; they are
read through the wrapper, so an imported item keeps the id its origin device gave it
(the id a later ``item.shredded`` from any device names) while its ``seq`` stays the
wrapper's position here, which is where this vault keeps the file's key."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from athar.crypto.identity import fingerprint
from athar.errors import InputError
from athar.vault.events import SignedEvent, unwrap

ITEM_ADDED = "item.added"
ITEM_SHREDDED = "item.shredded"
SHORT_ID = 12


@dataclass(frozen=True)
class Item:
    id: str
    seq: int
    sha256: str
    size: int
    name: str
    media_type: str
    note: str | None
    added: str
    device: str
    shredded: bool = False

    @property
    def short_id(self) -> str:
        return self.id[:SHORT_ID]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "seq": self.seq,
            "sha256": self.sha256,
            "size": self.size,
            "name": self.name,
            "media_type": self.media_type,
            "note": self.note,
            "added": self.added,
            "device": self.device,
            "shredded": self.shredded,
        }


def item_from_event(seq: int, signed: SignedEvent) -> Item:
    signed = unwrap(signed, f"event #{seq}")
    body = signed.event.body
    return Item(
        id=signed.id,
        seq=seq,
        sha256=str(body["sha256"]),
        size=int(body["size"]),
        name=str(body.get("name", "")),
        media_type=str(body.get("media_type", "application/octet-stream")),
        note=body.get("note"),
        added=signed.event.time,
        device=fingerprint(signed.event.device),
    )


def fold_item_event(items: dict[str, Item], seq: int, outer: SignedEvent) -> None:
    """Apply one ledger event to *items* (by id): a file added here or carried in from
    another device, or a shredding from anywhere. Other events change nothing."""
    signed = unwrap(outer, f"event #{seq}")
    kind = signed.event.kind
    if kind == ITEM_ADDED:
        items[signed.id] = item_from_event(seq, signed)
    elif kind == ITEM_SHREDDED:
        target = str(signed.event.body.get("item"))
        if target in items:
            items[target] = replace(items[target], shredded=True)


def project_items(events: list[SignedEvent]) -> list[Item]:
    items: dict[str, Item] = {}
    for seq, outer in enumerate(events):
        fold_item_event(items, seq, outer)
    return list(items.values())


def find_item(items: Iterable[Item], ident: str) -> Item:
    """The one item whose id is *ident* or starts with it (6+ hex digits, as users type)."""
    ident = ident.strip().lower()
    if len(ident) < 6 or any(c not in "0123456789abcdef" for c in ident):
        raise InputError("an item id is at least 6 hexadecimal characters: {id}", id=ident)
    found = [i for i in items if i.id.startswith(ident)]
    if not found:
        raise InputError("no item with id {id}", id=ident)
    if len(found) > 1:
        raise InputError("{id} matches several items; give more characters", id=ident)
    return found[0]
