"""`publish copy`: a working copy for the public, and a signed record of how it was made.

Following the Berkeley Protocol's separation of evidentiary and working copies, the
original in the vault is never touched. The public copy is kept, encrypted, in the vault
as a file of its own (so the web app can show it for human confirmation without writing
plaintext anywhere, and the site can take it from there), and also written to the file the
user named, if any. A `publish.copy` event in the ledger says which original it came from,
what was done to it, the SHA-256 of the result and which vault file holds it, so anyone
holding the vault can later show that a published picture is a faithful, redacted
derivative of a preserved original. Nothing is published until a person has looked at
the copy and confirmed it (athar.publish.confirm).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from athar.errors import InputError, IntegrityError
from athar.publish import media
from athar.publish.faces import Box, Mode, detector_name
from athar.vault.events import unwrap
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


def store(vault: Vault, item: Item, data: bytes, suffix: str) -> str:
    """Keep the public copy encrypted in the vault; returns its item id. The name says
    only which original it derives from (by id), never the original's file name."""
    name = f"public-copy-{item.short_id}{suffix}"
    result = vault.add_stream(name, io.BytesIO(data), len(data), f"public copy of {item.id}")
    if result.item is None:  # add_stream raises rather than skip; kept for the type
        raise IntegrityError("the public copy could not be kept in the vault")
    return result.item.id


def check_out(out: Path | None) -> None:
    if out is None:
        return
    if out.exists():
        raise InputError("{path} already exists; choose another name", path=str(out))
    if not out.parent.is_dir():
        raise InputError("cannot write {path}: folder does not exist", path=str(out))


def public_copy(
    vault: Vault,
    item_id: str,
    out: Path | None,
    options: CopyOptions,
    progress: Callable[[int], None] | None = None,
    suffix: str | None = None,
) -> dict[str, Any]:
    """Make, check, keep, write and record a public copy; the file appears whole or not at all.

    Nothing is recorded if the file cannot be written, and no file is left if the event
    cannot be recorded. Without *out* the copy is only kept in the vault (the web app's
    way), written as *suffix* (default: the original's own kind of file)."""
    check_out(out)
    item = vault.item(item_id)
    suffix = out.suffix.lower() if out is not None else (suffix or default_suffix(item))
    result = make_copy(vault, item, suffix, options, progress)
    return keep(vault, item, result, options, suffix, out)


def default_suffix(item: Item) -> str:
    return ".mp4" if item.media_type.startswith("video/") else ".jpg"


def keep(
    vault: Vault,
    item: Item,
    result: media.CopyResult,
    options: CopyOptions,
    suffix: str,
    out: Path | None = None,
) -> dict[str, Any]:
    """Store, write and record a copy already made (the web makes it off the vault thread).

    If recording fails after the copy was stored, the stored copy stays in the vault as a
    file that no `publish.copy` names: it can never be published, and making the copy
    again records it (adding the same bytes twice stores nothing new)."""
    body = event_body(item, result, options)
    body["copy_item"] = store(vault, item, result.data, suffix)
    if out is not None:
        atomic_write(out, result.data)
    try:
        event = record(vault, body)
    except BaseException:
        if out is not None:
            out.unlink(missing_ok=True)
        raise
    return {"event": event, "out": str(out) if out is not None else None, **body}


def copies_of(vault: Vault, item_id: str | None = None) -> list[dict[str, Any]]:
    """Every public copy recorded in the ledger (of one original, if given), also those
    made on another device and carried in by a bundle."""
    out = []
    for outer in vault.events():
        signed = unwrap(outer)
        ev = signed.event
        if ev.kind == PUBLISH_COPY and (item_id is None or ev.body.get("original") == item_id):
            out.append({"event": signed.id, "time": ev.time, **ev.body})
    return out


def kept_item(copy: dict[str, Any], items: Iterable[Item]) -> Item | None:
    """The vault file holding the copy; None for a copy made before copies were kept
    (or whose file was shredded since)."""
    ident = copy.get("copy_item")
    if not isinstance(ident, str):
        return None
    found = [i for i in items if i.id == ident and not i.shredded]
    return found[0] if found else None


def copy_bytes(vault: Vault, copy: dict[str, Any], items: Iterable[Item] | None = None) -> bytes:
    """The public copy kept in the vault, decrypted in memory only and checked against
    the hash its event recorded."""
    item = kept_item(copy, vault.items() if items is None else items)
    if item is None:
        raise InputError(
            "the public copy {id} is not kept in the vault; make it again",
            id=str(copy.get("event", ""))[:12],
        )
    data = b"".join(vault.read(item))
    if hashlib.sha256(data).hexdigest() != copy.get("sha256"):
        raise IntegrityError("the kept public copy {id} is not the one recorded", id=item.short_id)
    return data
