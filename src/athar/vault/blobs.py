"""Encrypted, content-addressed blob store.

A blob is addressed by the SHA-256 of its plaintext, but stored under a *keyed* name,
HMAC-SHA256(name key, SHA-256), so that someone holding the disk but not the key cannot
look for a known file by its hash. Each blob has its own random data key, sealed under
the vault's wrap key and kept in the ledger database (not in the blob), so one item can
be destroyed alone by deleting its sealed key (crypto-shredding).

Writes go to ``tmp/`` first and are renamed into place only after an fsync, so a crash
leaves either a whole blob or a stray temp file of ciphertext that is swept later.

Small items (up to INLINE_MAX bytes: testimonies, notes, most documents) are sealed in
memory as one message (athar.crypto.stream.seal_small) and stored inside the ledger
database in the same
transaction as their event: one fsync per batch instead of one per file, and a seized
disk does not show one file per testimony with its (padded) size.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import os
import stat
import struct
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from nacl import bindings as sodium
from nacl._sodium import ffi as _ffi
from nacl._sodium import lib as _lib

from athar.crypto import aead
from athar.crypto.stream import (
    ABYTES,
    CHUNK_SIZE,
    HEADER_BYTES,
    MAGIC,
    TAG_FINAL,
    TAG_MESSAGE,
    SourceLengthChanged,
    ciphertext_length,
    decrypt_stream,
    encrypt_stream,
    open_small,
    padded_length,
    seal_small,
)
from athar.errors import InputError, IntegrityError
from athar.vault.fsutil import fsync_dir, open_private, private_mkdir, raise_if_disk_full

INLINE_MAX = 256 * 1024
SLOTS = 3  # chunks in flight in a pipelined stage: read, encrypted, being written
FLUSH_BYTES = 16 << 20  # a pipelined stage starts writeback every 16 MiB
_PREFIX = struct.Struct(">8sI")
_LENGTH = struct.Struct(">Q")


class Readable(Protocol):
    """A source that fills a caller's buffer (a bundle member read from age's pipe)."""

    def readinto(self, buffer: memoryview, /) -> int: ...

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class StagedBlob:
    """A blob encrypted into tmp/ (large) or into memory (small), not yet in the store."""

    temp: Path | None
    sha256: bytes
    size: int
    data_key: bytes
    inline: bytes | None = None


class LengthMismatch(Exception):
    """A stream held a different number of bytes than announced (got -1: unknown, short)."""

    def __init__(self, got: int, expected: int) -> None:
        super().__init__(f"{got} of {expected} bytes")
        self.got, self.expected = got, expected


class BlobStore:
    def __init__(self, root: Path, name_key: bytes, wrap_key: bytes) -> None:
        self.root = root
        self.blob_dir = root / "blobs"
        self.tmp_dir = root / "tmp"
        self._name_mac = hmac.new(name_key, digestmod=hashlib.sha256)
        self._wrap_key = wrap_key

    def ensure_dirs(self) -> None:
        private_mkdir(self.blob_dir)
        private_mkdir(self.tmp_dir)

    def ref(self, sha256: bytes) -> bytes:
        mac = self._name_mac.copy()
        mac.update(sha256)
        return mac.digest()

    def path(self, ref: bytes) -> Path:
        name = ref.hex()
        return self.blob_dir / name[:2] / name[2:]

    def seal_key(self, ref: bytes, data_key: bytes) -> bytes:
        return aead.seal(self._wrap_key, data_key, b"blob-key\n" + ref)

    def open_key(self, ref: bytes, sealed: bytes, what: str) -> bytes:
        return aead.open_sealed(self._wrap_key, sealed, b"blob-key\n" + ref, what=what)

    def stage(self, source: Path, progress: Callable[[int], None] | None = None) -> StagedBlob:
        """Encrypt *source* into a temp file, fsynced; return its hash and data key."""
        try:
            fh = open(source, "rb", buffering=0)  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise InputError("no such file: {path}", path=str(source)) from None
        except PermissionError:
            raise InputError("cannot read {path}: permission denied", path=str(source)) from None
        except IsADirectoryError:
            raise InputError("{path} is a directory", path=str(source)) from None
        except OSError as exc:
            raise InputError(
                "cannot read {path}: {reason}", path=str(source), reason=exc.strerror or str(exc)
            ) from None
        with fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise InputError("{path} is not a regular file", path=str(source))
            try:
                return self.stage_stream(fh, info.st_size, progress)
            except LengthMismatch as exc:
                if exc.got < exc.expected:
                    raise InputError("file shrank while it was being read") from None
                raise InputError("file grew while it was being read") from None
            except OSError as exc:
                raise_if_disk_full(exc)
                raise _unreadable(source, exc) from None

    def stage_stream(
        self,
        source: BinaryIO,
        size: int,
        progress: Callable[[int], None] | None = None,
        *,
        syncer: BackgroundSync | None = None,
    ) -> StagedBlob:
        """Encrypt exactly *size* bytes read from *source* (a file, an upload reassembled
        from chunks, a member of a bundle) into a staged blob: sealed in memory when small,
        else a private temp file of ciphertext only, fsynced. Raises LengthMismatch when the
        stream holds fewer or more bytes; each caller says what that means for its input.

        With a *syncer*, the fsync is handed to its thread instead of waited for here, so
        the disk flushes one file while the next is encrypted (a bundle of many files);
        the caller must call ``syncer.wait()`` before anything refers to the blob."""
        data_key = aead.random_key()
        if size <= INLINE_MAX:
            content = _read_up_to(source, size + 1)
            if len(content) != size:
                raise LengthMismatch(len(content), size)
            if progress is not None:
                progress(len(content))
            sealed = seal_small(content, data_key)
            return StagedBlob(None, hashlib.sha256(content).digest(), size, data_key, sealed)
        self.ensure_dirs()
        temp = self.tmp_dir / f"{os.getpid()}-{os.urandom(8).hex()}"
        try:
            with open(open_private(temp), "wb", buffering=0) as out:
                try:
                    if syncer is not None and hasattr(source, "readinto"):
                        digest = _encrypt_pipelined(
                            source, out.fileno(), data_key, size, syncer, progress
                        )
                    else:
                        digest = encrypt_stream(source, out, data_key, size, progress=progress)
                except SourceLengthChanged as exc:
                    raise LengthMismatch(size + 1 if exc.grew else -1, size) from None
                written = os.fstat(out.fileno()).st_size
                if written != ciphertext_length(size):
                    raise OSError(errno.EIO, "encrypted file has the wrong length")
                if syncer is None:
                    os.fsync(out.fileno())
                else:  # the descriptor that wrote it: a write-back error is reported to it
                    syncer.add(os.dup(out.fileno()))
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return StagedBlob(temp, digest, size, data_key)

    def install(self, staged: StagedBlob, ref: bytes) -> Path:
        """Rename a staged file blob into place; the caller fsyncs the returned directory."""
        assert staged.temp is not None, "inline blobs are stored by the ledger"
        target = self.path(ref)
        private_mkdir(target.parent)
        os.replace(staged.temp, target)
        return target.parent

    def discard(self, staged: StagedBlob) -> None:
        if staged.temp is not None:
            staged.temp.unlink(missing_ok=True)

    @staticmethod
    def sync(directories: set[Path]) -> None:
        for d in directories:
            fsync_dir(d)

    def read(
        self, ref: bytes, data_key: bytes, what: str, inline: bytes | None = None
    ) -> Iterator[bytes]:
        """Yield the plaintext of a blob (from *inline* ciphertext if given, else its file);
        raise IntegrityError if it is missing or altered."""
        if inline is not None:
            yield open_small(inline, data_key, what=what)
            return
        try:
            fh = open(self.path(ref), "rb")  # noqa: SIM115 - closed in finally
        except FileNotFoundError:
            raise IntegrityError("{what}: encrypted file is missing", what=what) from None
        try:
            yield from decrypt_stream(fh, data_key, what=what)
        finally:
            fh.close()

    def copy_plaintext(
        self,
        ref: bytes,
        data_key: bytes,
        what: str,
        inline: bytes | None,
        write: Callable[[memoryview], object],
    ) -> None:
        """read(), for a caller that copies the plaintext on at once (a bundle's tar
        stream): *write* gets views of buffers that are reused as soon as it returns.
        The file is read on a helper thread while this one decrypts, and no buffer is
        allocated per chunk. Every check of decrypt_stream is made, in the same order."""
        if inline is not None:
            write(memoryview(open_small(inline, data_key, what=what)))
            return
        try:
            fh = open(self.path(ref), "rb", buffering=0)  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise IntegrityError("{what}: encrypted file is missing", what=what) from None
        with fh:
            _decrypt_pipelined(fh, data_key, what, write)

    def sweep_temp(self) -> int:
        """Delete temp files left by processes that no longer run; return how many."""
        removed = 0
        if not self.tmp_dir.exists():
            return 0
        for entry in self.tmp_dir.iterdir():
            pid_text = entry.name.split("-", 1)[0]
            if pid_text.isdigit() and (int(pid_text) == os.getpid() or _alive(int(pid_text))):
                continue
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed += 1
        return removed

    def stored_refs(self) -> set[bytes]:
        refs: set[bytes] = set()
        if not self.blob_dir.exists():
            return refs
        for sub in self.blob_dir.iterdir():
            for f in sub.iterdir():
                with contextlib.suppress(ValueError):
                    refs.add(bytes.fromhex(sub.name + f.name))
        return refs


class BackgroundSync:
    """fsync files on one helper thread, in the order given; wait() before relying on them.

    fsync is a system call that releases the GIL, so the disk writes one staged file back
    while this thread reads, hashes and encrypts the next. wait() re-raises the first
    error (a full disk shows up here, not later)."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []
        self._lock = threading.Lock()  # flush() is called from a writer thread

    def _submit(self, job: Callable[[int], None], fd: int) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="athar-fsync")
            self._pending.append(self._pool.submit(job, fd))

    def add(self, fd: int) -> None:
        """fsync then close *fd* (the caller hands it over, e.g. an os.dup of its own)."""
        self._submit(_fsync_close, fd)

    def flush(self, fd: int) -> None:
        """Start writing *fd* back now (fdatasync on the helper thread, not waited for):
        a large file being staged reaches the disk while it is written, so the fsync
        before the commit point finds little left. Called from the writer thread after
        its writes, so it always flushes what was written before it."""
        self._submit(_fdatasync_close, os.dup(fd))

    def wait(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        errors = [f.exception() for f in pending]
        for exc in errors:
            if exc is not None:
                raise exc

    def close(self) -> None:
        """Wait for the thread (errors are dropped: the caller is already failing)."""
        with contextlib.suppress(OSError):
            self.wait()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _read_exactly(source: Readable, view: memoryview) -> None:
    while view:
        got = source.readinto(view)
        if not got:
            raise SourceLengthChanged("file shrank while it was being read", grew=False)
        view = view[got:]


def _write_fd(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]


def _encrypt_pipelined(
    source: Readable,
    fd: int,
    key: bytes,
    size: int,
    syncer: BackgroundSync,
    progress: Callable[[int], None] | None,
) -> bytes:
    """encrypt_stream's exact format (athar.crypto.stream; a test decrypts it with
    decrypt_stream), spread over three threads and reusing SLOTS buffers.

    This thread reads each chunk from *source* straight into its plaintext buffer and
    encrypts it into its ciphertext buffer; one helper hashes the content (the same
    buffer that is encrypted), another writes the ciphertext, and every FLUSH_BYTES the
    syncer's thread starts writeback. hashlib, libsodium (through cffi) and the system
    calls all release the GIL, so on two cores the work overlaps; no buffer is
    allocated per chunk (a fresh 1 MiB buffer costs more in page faults than its copy).
    """
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    header = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, key)
    prefix = _PREFIX.pack(MAGIC, CHUNK_SIZE)
    total = padded_length(size)
    digest = hashlib.sha256()
    with _spare_lock:
        plain, cipher = _spare.pop() if _spare else _new_buffers()
    busy: list[list[Future[Any]]] = [[] for _ in range(SLOTS)]
    hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="athar-hash")
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="athar-write")
    try:
        _write_fd(fd, memoryview(prefix + header))
        produced, left, unflushed, n = 0, size, 0, 0
        while produced < total:
            slot = n % SLOTS
            for future in busy[slot]:
                future.result()  # its hash and write are done: the buffers are free
            busy[slot] = []
            want = min(CHUNK_SIZE, total - produced)
            buf = plain[slot]
            start = 0
            if n == 0:
                _LENGTH.pack_into(buf, 0, size)
                start = _LENGTH.size
            take = min(want - start, left)
            view = memoryview(buf)
            _read_exactly(source, view[start : start + take])
            if start + take < want:
                view[start + take : want] = bytes(want - start - take)  # the padding
            if take:
                busy[slot].append(hasher.submit(digest.update, view[start : start + take]))
            left -= take
            produced += want
            ad = prefix if n == 0 else b""
            rc = _lib.crypto_secretstream_xchacha20poly1305_push(
                state.statebuf,
                _ffi.from_buffer(cipher[slot]),
                _ffi.NULL,
                _ffi.from_buffer(buf),
                want,
                ad if ad else _ffi.NULL,
                len(ad),
                TAG_FINAL if produced == total else TAG_MESSAGE,
            )
            if rc != 0:
                raise RuntimeError("secretstream push failed")
            out = memoryview(cipher[slot])[: want + ABYTES]
            busy[slot].append(writer.submit(_write_fd, fd, out))
            unflushed += want
            if unflushed >= FLUSH_BYTES and produced < total:
                unflushed = 0
                busy[slot].append(writer.submit(syncer.flush, fd))
            if progress is not None:
                progress(take)
            n += 1
        for futures in busy:
            for future in futures:
                future.result()
        if source.read(1):
            raise SourceLengthChanged("file grew while it was being read", grew=True)
    finally:
        hasher.shutdown(wait=True)
        writer.shutdown(wait=True)
        with _spare_lock:
            if len(_spare) < 2:
                _spare.append((plain, cipher))
    return digest.digest()


Buffers = tuple[list[bytearray], list[bytearray]]
_spare: list[Buffers] = []  # reused by the next file: new pages cost page faults
_spare_lock = threading.Lock()


def _new_buffers() -> Buffers:
    return (
        [bytearray(CHUNK_SIZE) for _ in range(SLOTS)],
        [bytearray(CHUNK_SIZE + ABYTES) for _ in range(SLOTS)],
    )


def _read_block(source: Readable, buffer: bytearray) -> int:
    """Fill *buffer* unless the file ends first; how many bytes it holds."""
    view = memoryview(buffer)
    at = 0
    while at < len(buffer) and (got := source.readinto(view[at:])):
        at += got
    return at


def _decrypt_pipelined(
    source: Readable, key: bytes, what: str, write: Callable[[memoryview], object]
) -> None:
    """decrypt_stream (athar.crypto.stream) with the file read one chunk ahead on a
    helper thread into reused buffers, and each chunk decrypted into a reused buffer."""
    head = bytearray(_PREFIX.size)
    if _read_block(source, head) < _PREFIX.size:
        raise IntegrityError("{what} is truncated (no header)", what=what)
    prefix = bytes(head)
    magic, chunk_size = _PREFIX.unpack(prefix)
    if magic != MAGIC or not 0 < chunk_size <= 64 * CHUNK_SIZE:
        raise IntegrityError("{what} is not an Athar encrypted stream", what=what)
    header = bytearray(HEADER_BYTES)
    if _read_block(source, header) < HEADER_BYTES:
        raise IntegrityError("{what} is truncated (no header)", what=what)
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, bytes(header), key)
    blocks = [bytearray(chunk_size + ABYTES) for _ in range(2)]
    plain = bytearray(chunk_size)
    plain_ptr = _ffi.from_buffer(plain)
    length = _ffi.new("unsigned long long *")
    tag = _ffi.new("unsigned char *")
    reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="athar-read")
    try:
        ahead = reader.submit(_read_block, source, blocks[0])
        content_left = -1
        index = 0
        while True:
            got = ahead.result()
            block = blocks[index % 2]
            if not got:
                raise IntegrityError("{what} is truncated (final chunk missing)", what=what)
            ahead = reader.submit(_read_block, source, blocks[(index + 1) % 2])
            ad = prefix if index == 0 else b""
            rc = _lib.crypto_secretstream_xchacha20poly1305_pull(
                state.statebuf,
                plain_ptr,
                length,
                tag,
                _ffi.from_buffer(block),
                got,
                ad if ad else _ffi.NULL,
                len(ad),
            )
            if rc != 0 or got < ABYTES:
                raise IntegrityError(
                    "{what}: chunk {index} failed authentication (altered or reordered)",
                    what=what,
                    index=index,
                )
            size = int(length[0])
            start = 0
            if index == 0:
                if size < _LENGTH.size:
                    raise IntegrityError("{what} has a malformed first chunk", what=what)
                (content_left,) = _LENGTH.unpack_from(plain)
                start = _LENGTH.size
            take = min(content_left, size - start)
            if take:
                write(memoryview(plain)[start : start + take])
                content_left -= take
            end = start + take
            if end < size and plain.count(0, end, size) != size - end:
                raise IntegrityError("{what} has non-zero padding", what=what)
            index += 1
            if tag[0] == TAG_FINAL:
                break
        if content_left:
            raise IntegrityError("{what} ended before its stated length", what=what)
        if ahead.result():
            raise IntegrityError("{what} has data after its final chunk", what=what)
    finally:
        reader.shutdown(wait=True)


def _fsync_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fdatasync_close(fd: int) -> None:
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def _read_up_to(fh: BinaryIO, limit: int) -> bytes:
    """Read until EOF or *limit* bytes (a raw read may legally return fewer)."""
    parts, got = [], 0
    while got < limit:
        part = fh.read(limit - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _unreadable(source: Path, exc: OSError) -> InputError:
    return InputError(
        "cannot read {path}: {reason}", path=str(source), reason=exc.strerror or str(exc)
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
