"""The media service: what ``athar add``, ``inspect`` and ``similar`` call.

Analysing an item (metadata + perceptual hashes) appends one signed ``media.analysed``
event to the vault's ledger, so what a file said about itself when it arrived, and
which archive items it resembled then, is part of the audited record, travels with sync
and is never written anywhere in plain. The search index is a projection of those
events: rebuilt from the ledger, and cached in one file sealed under a vault subkey
(hashes, like names, can tell a seizer what the archive holds).

Items are read back from the vault (decrypted in memory, SHA-256 checked), never from
the path they were added from: the file may have changed since, and the analysis must
describe exactly the bytes that are in the ledger.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from athar.crypto import aead
from athar.errors import AtharError, InputError, IntegrityError
from athar.vault.fsutil import atomic_write
from athar.vault.items import Item
from athar.vault.vault import Vault
from athar.verify import c2pa_manifest
from athar.verify.metadata import Metadata, extract
from athar.verify.neardup import MediaIndex
from athar.verify.phash import HASH_BYTES, ImageHashes, hash_image
from athar.verify.videohash import VideoHashes, VideoIndex, hash_video

MEDIA_ANALYSED = "media.analysed"
INDEX_FILE = "media-index"
_INDEX_AD = b"athar.media-index.v1"
_INDEX_MAGIC = b"ATHARMI1"
# Items larger than this are not decoded in memory for hashing (metadata still is read
# up to it); a 2 GiB video is already 2 GiB of RAM on a field laptop.
MAX_ANALYSE_BYTES = 2 << 30


@dataclass(frozen=True)
class Similar:
    """An archive item that is the same picture or footage as the query, or a near-copy."""

    item: Item
    distance: float  # bits of 256 (mean over matched frames for video)
    kind: str  # "image" | "video" | "frame" (a still that is a frame of an archived video)
    via_region: bool = False  # only a crop relation explains it: worth a human look
    offset: float | None = None  # video: seconds into the archived video
    matched_frames: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.item.id,
            "name": self.item.name,
            "distance": self.distance,
            "kind": self.kind,
            "via_region": self.via_region,
            "first_seen": self.item.added,
            "device": self.item.device,
            "note": self.item.note,
        }
        if self.offset is not None:
            out.update(offset=round(self.offset, 2), matched_frames=self.matched_frames)
        return out


@dataclass
class Analysis:
    """One file's metadata and hashes (the hashes only when it is a picture or video)."""

    metadata: Metadata
    provenance: c2pa_manifest.Provenance | None = None  # C2PA; None: not a media kind
    image: ImageHashes | None = None
    video: VideoHashes | None = None
    hash_error: dict[str, Any] | None = None


@dataclass
class Ingested:
    item: Item
    analysis: Analysis
    similar: list[Similar] = field(default_factory=list)


def analyse(data: bytes, anchors: str | None = None) -> Analysis:
    """Metadata, C2PA provenance and hashes of a file's content; bad content is
    reported, never raised. ``anchors``: PEM roots a C2PA signer must chain to."""
    meta = extract(data)
    out = Analysis(meta)
    if meta.kind in ("image", "video", "audio", "pdf"):
        out.provenance = c2pa_manifest.read(data, meta.format, anchors)
    if not meta.valid or meta.kind not in ("image", "video"):
        return out
    try:
        if meta.kind == "image":
            out.image = hash_image(data)
        else:
            out.video = hash_video(data)
    except AtharError as exc:
        out.hash_error = {"message": exc.template, "params": exc.params}
    return out


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    return base64.b64decode(str(text), validate=True)


def _event_body(item: Item, analysis: Analysis, similar: list[Similar]) -> dict[str, Any]:
    body: dict[str, Any] = {"item": item.id, "metadata": analysis.metadata.to_json()}
    if analysis.provenance is not None:
        body["provenance"] = analysis.provenance.to_json()
    if analysis.image is not None:
        img = analysis.image
        body["image"] = {
            "pdq": img.pdq_hex,
            "quality": img.quality,
            "hashes": _b64(img.stored_hashes.tobytes()),
            "kinds": _b64(img.stored_kinds.tobytes()),
        }
    if analysis.video is not None:
        v = analysis.video
        keep = np.flatnonzero(v.stored)
        body["video"] = {
            "times_ms": [round(float(t) * 1000) for t in v.times[keep]],
            "hashes": _b64(v.hashes[keep].tobytes()),
            "core": _b64(v.core_hashes[keep].tobytes()),
            "qualities": [int(q) for q in v.qualities[keep]],
            "truncated": v.truncated,
            "damaged": v.damaged,
        }
    if analysis.hash_error is not None:
        body["hash_error"] = analysis.hash_error
    if similar:
        body["similar"] = [
            {"item": s.item.id, "distance": s.distance, "kind": s.kind} for s in similar
        ]
    return body


def _rows(raw: bytes) -> np.ndarray[Any, np.dtype[np.uint8]]:
    if len(raw) % HASH_BYTES:
        raise ValueError("hash block length")
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, HASH_BYTES).copy()


def _stored_image(body: dict[str, Any]) -> ImageHashes:
    """The archive side of a picture, as kept in its event (no probes: never searched
    with; a search decodes the query file itself)."""
    hashes = _rows(_unb64(body["hashes"]))
    kinds = np.frombuffer(_unb64(body["kinds"]), dtype=np.uint8).copy()
    if kinds.size != hashes.shape[0]:
        raise ValueError("kinds length")
    empty = np.zeros((0, HASH_BYTES), dtype=np.uint8)
    return ImageHashes(
        pdq=bytes.fromhex(str(body["pdq"])),
        quality=int(body["quality"]),
        dihedral=hashes[:1],
        core_box=None,
        core_dihedral=None,
        core_quality=None,
        stored_hashes=hashes,
        stored_kinds=kinds,
        probe_hashes=empty,
        probe_kinds=np.zeros(0, dtype=np.uint8),
        mirror_hashes=empty,
        mirror_kinds=np.zeros(0, dtype=np.uint8),
    )


def _stored_video(body: dict[str, Any]) -> VideoHashes:
    hashes = _rows(_unb64(body["hashes"]))
    core = _rows(_unb64(body["core"]))
    times = np.array([int(t) / 1000 for t in body["times_ms"]], dtype=np.float64)
    qualities = np.array([int(q) for q in body["qualities"]], dtype=np.int64)
    n = hashes.shape[0]
    if not (core.shape[0] == times.size == qualities.size == n):
        raise ValueError("video lengths")
    return VideoHashes(
        times=times,
        stored=np.ones(n, dtype=bool),
        hashes=hashes,
        qualities=qualities,
        core_hashes=core,
        dihedral=hashes[:, None, :],  # archive side: never searched with
        width=0,
        height=0,
        duration=None,
        truncated=bool(body.get("truncated")),
        damaged=bool(body.get("damaged")),
    )


class _Indexes:
    """Pictures and videos by the ledger position of their item.added event."""

    def __init__(self) -> None:
        self.images = MediaIndex()
        self.videos = VideoIndex()
        self.covered = -1  # last ledger position applied
        self.analysed: dict[str, int] = {}  # item id -> seq of its media.analysed event

    def apply(self, seq: int, kind: str, body: dict[str, Any], item_seq: dict[str, int]) -> None:
        self.covered = seq
        if kind != MEDIA_ANALYSED:
            return
        item = str(body.get("item"))
        if item in self.analysed or item not in item_seq:
            return  # analysed twice (two devices): the first one counts
        self.analysed[item] = seq
        try:
            if isinstance(body.get("image"), dict):
                self.images.add(item_seq[item], _stored_image(body["image"]))
            if isinstance(body.get("video"), dict):
                video = _stored_video(body["video"])
                if len(video):
                    self.videos.add(item_seq[item], video)
        except (ValueError, KeyError, TypeError):
            pass  # a malformed body from another device is skipped, not fatal

    def to_bytes(self) -> bytes:
        images, videos = self.images.to_bytes(), self.videos.to_bytes()
        analysed = json.dumps(self.analysed).encode()
        head = struct.pack("<qQQQ", self.covered, len(images), len(videos), len(analysed))
        return _INDEX_MAGIC + head + images + videos + analysed

    @classmethod
    def from_bytes(cls, data: bytes) -> _Indexes:
        if data[:8] != _INDEX_MAGIC:
            raise ValueError("magic")
        covered, n_img, n_vid, n_an = struct.unpack_from("<qQQQ", data, 8)
        at = 8 + 32
        out = cls()
        out.covered = covered
        out.images = MediaIndex.from_bytes(memoryview(data)[at : at + n_img])
        at += n_img
        out.videos = VideoIndex.from_bytes(memoryview(data)[at : at + n_vid])
        at += n_vid
        out.analysed = {str(k): int(v) for k, v in json.loads(data[at : at + n_an]).items()}
        if at + n_an != len(data):
            raise ValueError("length")
        return out


ANALYSES_KEPT = 32  # items whose hashes a long-running service (the web app) keeps


class MediaService:
    def __init__(self, vault: Vault, c2pa_anchors: str | None = None) -> None:
        self.vault = vault
        self.anchors = c2pa_anchors  # PEM roots for C2PA signers (see c2pa_manifest)
        self._key = vault.keys.subkey("verify/media-index")
        self._path = vault.root / INDEX_FILE
        self._indexes: _Indexes | None = None
        self._items: dict[str, Item] = {}
        self._analyses: dict[str, Analysis] = {}  # the last few items compared, oldest first

    # -- the index projection ------------------------------------------------------
    def _load(self) -> _Indexes:
        if self._indexes is None:
            self._indexes = self._read_cache() or _Indexes()
        idx = self._indexes
        items = self.vault.items()
        self._items = {i.id: i for i in items}
        item_seq = {i.id: i.seq for i in items}
        for batch in self.vault.ledger.events_after(idx.covered):
            for seq, signed in batch:
                idx.apply(seq, signed.event.kind, signed.event.body, item_seq)
        return idx

    def _read_cache(self) -> _Indexes | None:
        try:
            sealed = self._path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            idx = _Indexes.from_bytes(aead.open_sealed(self._key, sealed, _INDEX_AD, what="index"))
        except (IntegrityError, ValueError, struct.error, InputError):
            return None  # damaged or from another key: rebuilt from the ledger
        if idx.covered >= self.vault.ledger.size():
            return None  # the ledger was replaced by an older one
        return idx

    def save_index(self) -> None:
        if self._indexes is not None:
            atomic_write(self._path, aead.seal(self._key, self._indexes.to_bytes(), _INDEX_AD))

    def analysed_event(self, item: Item) -> dict[str, Any] | None:
        seq = self._load().analysed.get(item.id)
        return None if seq is None else dict(self.vault.ledger.event_at(seq).event.body)

    def recorded_description(self, item: Item) -> dict[str, Any] | None:
        """What the item said about itself when it was analysed, from the signed record
        only (never a fresh decode: pages call this on every view); None when it has
        not been analysed."""
        body = self.analysed_event(item)
        return None if body is None else {"recorded": True, **_public(body)}

    # -- reading items ------------------------------------------------------------
    def content(self, item: Item) -> bytes:
        if item.size > MAX_ANALYSE_BYTES:
            raise InputError(
                "item {id} is larger than {limit} bytes; too large to analyse in memory",
                id=item.short_id,
                limit=MAX_ANALYSE_BYTES,
            )
        return b"".join(self.vault.read(item))

    # -- ingest ------------------------------------------------------------------------
    def ingest(
        self, items: Iterable[Item], on_done: Callable[[Ingested], None] | None = None
    ) -> list[Ingested]:
        """Analyse items not analysed yet: metadata, hashes, and earlier near-copies
        (flagged in the item's event). Each item is one signed event, so an interrupted
        ingest keeps what it finished and the next run does the rest."""
        idx = self._load()
        done: list[Ingested] = []
        for item in items:
            if item.id in idx.analysed or item.shredded:
                continue
            try:
                analysis = analyse(self.content(item), self.anchors)
            except InputError as exc:
                analysis = Analysis(Metadata("other").fail(exc))
            if analysis.metadata.kind == "other" and analysis.metadata.valid:
                continue  # text, unknown binary: nothing to record, nothing to compare
            similar = [s for s in self._search(analysis) if s.item.id != item.id]
            with self.vault.ledger.transaction() as tx:
                seq = tx.head.size
                signed = tx.append(MEDIA_ANALYSED, _event_body(item, analysis, similar))
            self._items[item.id] = item
            idx.apply(seq, MEDIA_ANALYSED, signed.event.body, {item.id: item.seq})
            result = Ingested(item, analysis, similar)
            done.append(result)
            if on_done is not None:
                on_done(result)
        self.save_index()
        return done

    # -- search ------------------------------------------------------------------------
    def similar_to_file(self, path: Path) -> tuple[Analysis, list[Similar]]:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(
                "cannot read {path}: {reason}", path=str(path), reason=exc.strerror or str(exc)
            ) from None
        analysis = analyse(data, self.anchors)
        self._load()
        return analysis, self._checked_search(analysis)

    def similar_to_item(self, item: Item) -> tuple[Analysis, list[Similar]]:
        analysis = self._analyses.get(item.id)
        if analysis is None:  # an item's content never changes: decode and hash it once
            analysis = analyse(self.content(item), self.anchors)
            self._analyses[item.id] = analysis
            while len(self._analyses) > ANALYSES_KEPT:
                self._analyses.pop(next(iter(self._analyses)))
        self._load()
        found = self._checked_search(analysis)
        return analysis, [s for s in found if s.item.id != item.id]

    def _checked_search(self, analysis: Analysis) -> list[Similar]:
        meta = analysis.metadata
        for error in (meta.error, analysis.hash_error):
            if error is not None:  # a stored error, its template already translated
                template, params = error["message"], error["params"]
                raise InputError(template, **params)
        if analysis.image is None and analysis.video is None:
            raise InputError("only pictures and videos can be compared")
        return self._search(analysis)

    def _search(self, analysis: Analysis) -> list[Similar]:
        idx = self._indexes if self._indexes is not None else self._load()
        by_seq = {i.seq: i for i in self._items.values() if not i.shredded}
        out: list[Similar] = []
        if analysis.image is not None:
            for m in idx.images.search(analysis.image):
                if m.item_id in by_seq:
                    out.append(Similar(by_seq[m.item_id], m.distance, "image", m.via_region))
            for seq, when, dist in idx.videos.search_image(analysis.image):
                if seq in by_seq:
                    out.append(Similar(by_seq[seq], dist, "frame", offset=when))
        if analysis.video is not None:
            for v in idx.videos.search(analysis.video):
                if v.item_id in by_seq:
                    out.append(
                        Similar(
                            by_seq[v.item_id],
                            round(v.mean_distance, 1),
                            "video",
                            offset=v.offset,
                            matched_frames=v.matched_frames,
                        )
                    )
        out.sort(key=lambda s: (s.via_region, s.distance, s.item.added))
        return out

    # -- inspect -------------------------------------------------------------------------
    def inspect_item(self, item: Item) -> dict[str, Any]:
        """What the item said about itself when it was analysed (the signed record), or
        a fresh reading when it has not been analysed yet. The C2PA verdict is the one
        recorded at ingest (with the trust anchors of that day); items analysed before
        C2PA was read get a fresh one, marked ``provenance_recorded: false``."""
        body = self.analysed_event(item)
        if body is not None:
            out = {"item": item.to_json(), "recorded": True, **_public(body)}
            if "provenance" not in body and body.get("metadata", {}).get("kind") != "other":
                fresh = c2pa_manifest.read(self.content(item), None, self.anchors)
                out.update(provenance=fresh.to_json(), provenance_recorded=False)
            return out
        analysis = analyse(self.content(item), self.anchors)
        return {"item": item.to_json(), "recorded": False, **_analysis_json(analysis)}


def _public(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"metadata": body.get("metadata", {})}
    if isinstance(body.get("provenance"), dict):
        out["provenance"] = body["provenance"]
        out["provenance_recorded"] = True
    if isinstance(body.get("image"), dict):
        out["pdq"] = body["image"].get("pdq")
        out["pdq_quality"] = body["image"].get("quality")
    if isinstance(body.get("video"), dict):
        out["video_frames"] = len(body["video"].get("times_ms", []))
    if body.get("similar"):
        out["similar_at_ingest"] = body["similar"]
    return out


def inspect_file(path: Path, anchors: str | None = None) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(
            "cannot read {path}: {reason}", path=str(path), reason=exc.strerror or str(exc)
        ) from None
    return {"recorded": False, **_analysis_json(analyse(data, anchors))}


def _analysis_json(analysis: Analysis) -> dict[str, Any]:
    out: dict[str, Any] = {"metadata": analysis.metadata.to_json()}
    if analysis.provenance is not None:
        out["provenance"] = analysis.provenance.to_json()
    if analysis.image is not None:
        out["pdq"] = analysis.image.pdq_hex
        out["pdq_quality"] = analysis.image.quality
    if analysis.video is not None:
        out["video_frames"] = int(analysis.video.stored.sum())
    if analysis.hash_error is not None:
        out["hash_error"] = analysis.hash_error
    return out
