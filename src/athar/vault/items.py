"""The item projection: what `ls` and `show` list, rebuilt from item events."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from athar.crypto.identity import fingerprint
from athar.vault.events import SignedEvent

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


def project_items(events: list[SignedEvent]) -> list[Item]:
    items: dict[str, Item] = {}
    for seq, signed in enumerate(events):
        kind = signed.event.kind
        if kind == ITEM_ADDED:
            items[signed.id] = item_from_event(seq, signed)
        elif kind == ITEM_SHREDDED:
            target = str(signed.event.body.get("item"))
            if target in items:
                items[target] = replace(items[target], shredded=True)
    return list(items.values())
