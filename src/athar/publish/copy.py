"""`publish copy`: a working copy for the public, and a signed record of how it was made.

Following the Berkeley Protocol's separation of evidentiary and working copies, the
original in the vault is never touched; the public copy is written only to the file the
user named, and a `publish.copy` event in the ledger says which original it came from,
what was done to it and the SHA-256 of the result, so anyone holding the vault can later
show that a published picture is a faithful, redacted derivative of a preserved original.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from athar.errors import InputError
from athar.publish import media
from athar.publish.faces import Box, Mode, detector_name
from athar.vault.fsutil import atomic_write
from athar.vault.items import Item
from athar.vault.vault import Vault

PUBLISH_COPY = "publish.copy"
BLUR_CHOICES = ("faces", "none")
MODES: tuple[Mode, ...] = ("blur", "pixelate")


@dataclass(frozen=True)
class CopyOptions:
    faces: bool = True
    mode: Mode = "blur"
    regions: tuple[Box, ...] = ()


def plaintext(vault: Vault, item: Item) -> bytes:
    """The original's bytes, in memory only (checked against the recorded hash)."""
    return b"".join(vault.read(item))


def make_copy(
    vault: Vault,
    item: Item,
    suffix: str,
    options: CopyOptions,
    progress: Callable[[int], None] | None = None,
) -> media.CopyResult:
    """The public copy's bytes (not yet written anywhere)."""
    kind = media.kind_of(suffix)
    if not item.media_type.startswith(("image/", "video/")):
        raise InputError(
            "item {id} is {type}, not an image or a video; only pictures get public copies",
            id=item.short_id,
            type=item.media_type,
        )
    if item.media_type.split("/")[0] != kind:
        raise InputError(
            "item {id} is {type}; give --out a name ending in one of {suffixes}",
            id=item.short_id,
            type=item.media_type,
            suffixes=", ".join(
                media.IMAGE_FORMATS if item.media_type.startswith("image/") else media.VIDEO_FORMATS
            ),
        )
    data = plaintext(vault, item)
    regions = list(options.regions)
    if kind == "image":
        return media.image_copy(data, suffix, options.faces, options.mode, regions)
    return media.video_copy(data, suffix, options.faces, options.mode, regions, progress)


def event_body(item: Item, result: media.CopyResult, options: CopyOptions) -> dict[str, Any]:
    body: dict[str, Any] = {
        "original": item.id,
        "original_sha256": item.sha256,
        "sha256": hashlib.sha256(result.data).hexdigest(),
        "size": len(result.data),
        "kind": result.kind,
        "width": result.width,
        "height": result.height,
        "metadata": "removed (pixels re-encoded; audio dropped)",
        "faces": {
            "detector": detector_name() if options.faces else None,
            "hidden": result.faces,
            "mode": options.mode,
        },
        "regions": [b.to_json() for b in options.regions],
    }
    if result.kind == "video":
        body["frames"] = result.frames
    return body


def record(vault: Vault, body: dict[str, Any]) -> str:
    """Sign and append the copy's provenance; returns the event id."""
    with vault.ledger.transaction() as tx:
        signed = tx.append(PUBLISH_COPY, body)
    return signed.id


def public_copy(
    vault: Vault,
    item_id: str,
    out: Path,
    options: CopyOptions,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Make, check, write and record a public copy; the file appears whole or not at all.

    Nothing is recorded if the file cannot be written, and no file is left if the event
    cannot be recorded."""
    if out.exists():
        raise InputError("{path} already exists; choose another name", path=str(out))
    if not out.parent.is_dir():
        raise InputError("cannot write {path}: folder does not exist", path=str(out))
    item = vault.item(item_id)
    result = make_copy(vault, item, out.suffix.lower(), options, progress)
    body = event_body(item, result, options)
    atomic_write(out, result.data)
    try:
        event = record(vault, body)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return {"event": event, "out": str(out), **body}


def copies_of(vault: Vault, item_id: str | None = None) -> list[dict[str, Any]]:
    """Every public copy recorded in the ledger (of one original, if given)."""
    out = []
    for signed in vault.events():
        ev = signed.event
        if ev.kind == PUBLISH_COPY and (item_id is None or ev.body.get("original") == item_id):
            out.append({"event": signed.id, "time": ev.time, **ev.body})
    return out
