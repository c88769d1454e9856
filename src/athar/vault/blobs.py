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
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from athar.crypto import aead
from athar.crypto.stream import (
    SourceLengthChanged,
    ciphertext_length,
    decrypt_stream,
    encrypt_stream,
    open_small,
    seal_small,
)
from athar.errors import InputError, IntegrityError
from athar.vault.fsutil import fsync_dir, open_private, private_mkdir, raise_if_disk_full

INLINE_MAX = 256 * 1024


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

    def add(self, fd: int) -> None:
        """fsync then close *fd* (the caller hands it over, e.g. an os.dup of its own)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="athar-fsync")
        self._pending.append(self._pool.submit(_fsync_close, fd))

    def wait(self) -> None:
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


def _fsync_close(fd: int) -> None:
    try:
        os.fsync(fd)
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
