"""Large uploads in chunks, resumable after a dropped connection or a server restart,
never in plaintext on disk.

The browser (static/upload.js) announces a file's name and size, then sends it in
chunks, each at the offset the server says it has reached; after a dropped connection it
asks for that offset and carries on. Each chunk is sealed (ChaCha20-Poly1305, a fresh
key per upload) and appended to a file in the vault's uploads/ folder. The upload's key,
owner, name and size sit beside it in a small file sealed under a key derived from the
vault's master key, so a server that restarts (power cuts are the rule where this is
used) finds its unfinished uploads again, while a copied disk without the passphrase
shows only their sizes. A restart may cut the last chunk short: loading keeps the whole
chunks that still open and the client resends from there. When the last chunk arrives
the sealed chunks are opened one by one and streamed into the vault's own blob
encryption and ledger, so the plaintext only ever exists in memory, a chunk at a time.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import os
import secrets
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, cast

import filetype

from athar.crypto import aead
from athar.errors import AtharError, InputError
from athar.vault.fsutil import atomic_write, open_private, private_mkdir
from athar.vault.items import Item
from athar.vault.vault import Vault

MAX_CHUNK = 8 << 20
MAX_SIZE = 64 << 30
STALE_SECONDS = 24 * 3600
_LEN = struct.Struct(">I")
SNIFF_BYTES = 8192
# Families whose content can be recognised from its first bytes: a name claiming one of
# these must be borne out by the content.
CHECKED_FAMILIES = ("image", "video", "audio")


@dataclass
class Upload:
    id: str
    user: str
    name: str
    size: int
    note: str | None
    path: Path
    key: bytes = field(repr=False)
    resume_key: str = field(default="", repr=False)
    offset: int = 0
    chunks: int = 0
    head: bytes = b""
    touched: float = field(default_factory=time.time)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def check_name(name: str) -> str:
    name = os.path.basename(name.replace("\\", "/")).strip()
    if not name or name in (".", "..") or len(name) > 255 or not name.isprintable():
        raise InputError("a file needs a name of 1 to 255 printable characters").at("name")
    return name


def claimed_type(name: str) -> str | None:
    return mimetypes.guess_type(name)[0]


def sniffed_type(head: bytes) -> str | None:
    kind = filetype.guess(head)
    return str(kind.mime) if kind is not None else None


def check_content(name: str, head: bytes) -> str:
    """The media type the content really has; refuses a name that lies about it (a
    program or archive named photo.jpg)."""
    claimed, actual = claimed_type(name), sniffed_type(head)
    family = (claimed or "").split("/")[0]
    if actual is not None and claimed is not None and actual.split("/")[0] != family:
        raise InputError(
            "{name} is named as {claimed} but its content is {actual}",
            name=name,
            claimed=claimed,
            actual=actual,
        )
    if actual is None and family in CHECKED_FAMILIES:
        raise InputError(
            "{name} is named as {claimed} but its content is not", name=name, claimed=claimed
        )
    return actual or claimed or "application/octet-stream"


class Uploads:
    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.folder = vault.root / "uploads"
        self._meta_key = vault.keys.subkey("web/uploads")
        self._by_id: dict[str, Upload] = {}
        self._lock = threading.Lock()
        self._load()

    def start(
        self, user: str, name: str, size: int, note: str | None = None, resume_key: str = ""
    ) -> Upload:
        """A new upload, or, when *resume_key* (the browser's name|size|modified time of
        the file) matches an unfinished upload of the same user, that one: after a
        restart and a new login the user picks the file again and it carries on."""
        name = check_name(name)
        if size <= 0:
            raise InputError("{name} is empty (0 bytes); there is nothing to keep", name=name)
        if size > MAX_SIZE:
            raise InputError("{name} is larger than {limit} GB", name=name, limit=MAX_SIZE >> 30)
        self._sweep()
        resume_key = resume_key[:1024]
        if resume_key:
            with self._lock:
                for known in self._by_id.values():
                    if (known.user, known.resume_key, known.name, known.size) == (
                        user,
                        resume_key,
                        name,
                        size,
                    ):
                        return known
        private_mkdir(self.folder)
        upload_id = secrets.token_hex(16)
        path = self.folder / f"{upload_id}.part"
        os.close(open_private(path))
        upload = Upload(upload_id, user, name, size, note, path, aead.random_key(), resume_key)
        self._write_meta(upload)
        with self._lock:
            self._by_id[upload_id] = upload
        return upload

    def _meta_path(self, upload_id: str) -> Path:
        return self.folder / f"{upload_id}.meta"

    def _meta_ad(self, upload_id: str) -> bytes:
        return f"athar.web.upload-meta/{upload_id}".encode()

    def _write_meta(self, upload: Upload) -> None:
        meta = {
            "user": upload.user,
            "name": upload.name,
            "size": upload.size,
            "note": upload.note,
            "key": base64.b64encode(upload.key).decode(),
            "resume_key": upload.resume_key,
        }
        sealed = aead.seal(
            self._meta_key, json.dumps(meta).encode(), self._meta_ad(upload.id), cache=False
        )
        atomic_write(self._meta_path(upload.id), sealed)

    def _load(self) -> None:
        """Find the uploads an earlier run left unfinished. One whose description does not
        open (another vault's, damaged) cannot be finished and is removed."""
        if not self.folder.is_dir():
            return
        for meta_path in sorted(self.folder.glob("*.meta")):
            upload_id = meta_path.stem
            part = self.folder / f"{upload_id}.part"
            try:
                meta = json.loads(
                    aead.open_sealed(
                        self._meta_key,
                        meta_path.read_bytes(),
                        self._meta_ad(upload_id),
                        what="upload",
                        cache=False,
                    )
                )
                upload = Upload(
                    upload_id,
                    str(meta["user"]),
                    str(meta["name"]),
                    int(meta["size"]),
                    meta.get("note"),
                    part,
                    base64.b64decode(meta["key"]),
                    str(meta.get("resume_key", "")),
                    touched=part.stat().st_mtime,
                )
                self._recover(upload)
            except (AtharError, OSError, ValueError, KeyError, TypeError):
                meta_path.unlink(missing_ok=True)
                part.unlink(missing_ok=True)
                continue
            self._by_id[upload_id] = upload
        for part in self.folder.glob("*.part"):  # a start cut short before its description
            if not self._meta_path(part.stem).exists():
                part.unlink(missing_ok=True)

    def _recover(self, upload: Upload) -> None:
        """Count the whole chunks in the part file and cut off a torn or unreadable last
        one; the sniffed head comes back from the first chunks."""
        ends: list[tuple[int, int]] = []  # (file position, plaintext offset) after each chunk
        position = offset = 0
        with open(upload.path, "rb") as fh:
            while True:
                prefix = fh.read(_LEN.size)
                if len(prefix) < _LEN.size:
                    break
                (length,) = _LEN.unpack(prefix)
                fh.seek(length, os.SEEK_CUR)
                if length < aead.OVERHEAD or fh.tell() > os.fstat(fh.fileno()).st_size:
                    break
                position += _LEN.size + length
                offset += length - aead.OVERHEAD
                ends.append((position, offset))
        while ends:  # the last chunk is the one a power cut can damage: check it opens
            start = ends[-2][0] if len(ends) > 1 else 0
            try:
                self._chunk_at(upload, start, len(ends) - 1)
                break
            except AtharError:
                ends.pop()
        position, offset = ends[-1] if ends else (0, 0)
        if os.path.getsize(upload.path) != position:
            os.truncate(upload.path, position)
        upload.chunks, upload.offset = len(ends), offset
        head = b""
        for index, chunk in enumerate(self.plaintext(upload)):
            head += chunk[: SNIFF_BYTES - len(head)]
            if len(head) >= SNIFF_BYTES or index >= upload.chunks - 1:
                break
        upload.head = head

    def _chunk_at(self, upload: Upload, position: int, index: int) -> bytes:
        with open(upload.path, "rb") as fh:
            fh.seek(position)
            (length,) = _LEN.unpack(fh.read(_LEN.size))
            return aead.open_sealed(
                upload.key, fh.read(length), self._ad(upload, index), what="upload", cache=False
            )

    def get(self, upload_id: str, user: str) -> Upload:
        with self._lock:
            upload = self._by_id.get(upload_id)
        if upload is None or upload.user != user:
            raise InputError("no upload {id}; start again", id=upload_id[:16])
        return upload

    def put(self, upload: Upload, offset: int, data: bytes) -> bool:
        """Append one chunk if it starts where the upload stands; False (nothing stored)
        for a resend or a gap: the client is told the real offset and resumes there."""
        with upload.lock:
            if offset != upload.offset:
                return False
            if not data:
                raise InputError("an empty chunk")
            if len(data) > MAX_CHUNK:
                raise InputError("a chunk is at most {n} MiB", n=MAX_CHUNK >> 20)
            if upload.offset + len(data) > upload.size:
                raise InputError("more data than the announced size {size}", size=upload.size)
            if len(upload.head) < SNIFF_BYTES:
                upload.head += data[: SNIFF_BYTES - len(upload.head)]
                if upload.offset == 0:
                    check_content(upload.name, upload.head)  # refuse a lie at once
            sealed = aead.seal(upload.key, data, self._ad(upload, upload.chunks), cache=False)
            with open(upload.path, "ab") as fh:
                fh.write(_LEN.pack(len(sealed)) + sealed)
            upload.offset += len(data)
            upload.chunks += 1
            upload.touched = time.time()
            return True

    @staticmethod
    def _ad(upload: Upload, index: int) -> bytes:
        return f"athar.web.upload/{upload.id}/{index}".encode()

    def plaintext(self, upload: Upload) -> Iterator[bytes]:
        with open(upload.path, "rb") as fh:
            for index in range(upload.chunks):
                (length,) = _LEN.unpack(fh.read(_LEN.size))
                yield aead.open_sealed(
                    upload.key, fh.read(length), self._ad(upload, index), what="upload", cache=False
                )

    def finish(self, upload: Upload) -> tuple[Item, str, bool]:
        """Move a complete upload into the vault (call on the vault thread): the item,
        its real media type, and whether it was already there."""
        with upload.lock:
            if upload.offset != upload.size:
                raise InputError(
                    "the upload is incomplete: {got} of {size} bytes",
                    got=upload.offset,
                    size=upload.size,
                )
            media_type = check_content(upload.name, upload.head)
            try:
                # the vault's own commit: blob durable first, then the signed event
                result = self.vault.add_stream(
                    upload.name,
                    cast(BinaryIO, _Reader(self.plaintext(upload))),
                    upload.size,
                    upload.note,
                )
            finally:
                self.discard(upload)
        assert result.item is not None
        return result.item, media_type, result.status == "duplicate"

    def discard(self, upload: Upload) -> None:
        with self._lock:
            self._by_id.pop(upload.id, None)
        self._meta_path(upload.id).unlink(missing_ok=True)
        upload.path.unlink(missing_ok=True)

    def _sweep(self) -> None:
        now = time.time()
        with self._lock:
            stale = [u for u in self._by_id.values() if now - u.touched > STALE_SECONDS]
        for upload in stale:
            self.discard(upload)

    def close(self) -> None:
        """Forget the uploads in memory; their files stay for the next start."""
        with self._lock:
            self._by_id.clear()

    def discard_all(self) -> None:
        """Remove every unfinished upload (after a wipe: their key is gone anyway)."""
        with self._lock:
            uploads = list(self._by_id.values())
        for upload in uploads:
            self.discard(upload)


class _Reader:
    """A file-like view of an iterator of byte chunks, for encrypt_stream."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            try:
                self._buf += next(self._chunks)
            except StopIteration:
                break
        if n < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out
