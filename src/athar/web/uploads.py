"""Large uploads in chunks, resumable after a dropped connection, never in plaintext on
disk.

The browser (static/upload.js) announces a file's name and size, then sends it in
chunks, each at the offset the server says it has reached; after a dropped connection it
asks for that offset and carries on. Each chunk is sealed (ChaCha20-Poly1305, a key per
upload held only in memory) into a temp file in the vault's tmp/ folder, which the vault
already sweeps of leftovers from dead processes. When the last chunk arrives the sealed
chunks are opened one by one and streamed into the vault's own blob encryption and
ledger, so the plaintext only ever exists in memory, a chunk at a time. A server restart
loses unfinished uploads (their key is gone): the file must be sent again.
"""

from __future__ import annotations

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
from athar.errors import InputError
from athar.vault.fsutil import open_private, private_mkdir
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
        self._by_id: dict[str, Upload] = {}
        self._lock = threading.Lock()

    def start(self, user: str, name: str, size: int, note: str | None = None) -> Upload:
        name = check_name(name)
        if size <= 0:
            raise InputError("{name} is empty (0 bytes); there is nothing to keep", name=name)
        if size > MAX_SIZE:
            raise InputError("{name} is larger than {limit} GB", name=name, limit=MAX_SIZE >> 30)
        self._sweep()
        private_mkdir(self.vault.blobs.tmp_dir)
        upload_id = secrets.token_hex(16)
        path = self.vault.blobs.tmp_dir / f"{os.getpid()}-upload-{upload_id}"
        os.close(open_private(path))
        upload = Upload(upload_id, user, name, size, note, path, aead.random_key())
        with self._lock:
            self._by_id[upload_id] = upload
        return upload

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
        upload.path.unlink(missing_ok=True)

    def _sweep(self) -> None:
        now = time.time()
        with self._lock:
            stale = [u for u in self._by_id.values() if now - u.touched > STALE_SECONDS]
        for upload in stale:
            self.discard(upload)

    def close(self) -> None:
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
