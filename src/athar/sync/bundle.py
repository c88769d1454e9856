"""A bundle: a tar stream of the exchange, encrypted with age to its recipients.

Inside the age encryption (documented in docs/bundle-format.md)::

    athar-bundle/manifest.json       origin, range, sender's signed checkpoint, file list
    athar-bundle/events.jsonl        the sender's ledger entries [since, size), one a line
    athar-bundle/blobs/<sha256>      each file's plaintext (encrypted only by age)

Both directions stream through a pipe (tar on one side, age on the other), so memory
stays flat whatever the size, and plaintext never touches the disk: the receiver stages
each file straight into its own vault encryption.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, BinaryIO

import pyrage

from athar.errors import AtharError, InputError, IntegrityError
from athar.sync.exchange import Importer, ImportReport, Outgoing, blob_plaintext
from athar.vault.vault import Vault

ROOT = "athar-bundle"
MANIFEST = f"{ROOT}/manifest.json"
EVENTS = f"{ROOT}/events.jsonl"
BLOBS = f"{ROOT}/blobs/"
MAX_MANIFEST = 64 << 20


class _IterReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (tarfile wants read())."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            try:
                self._left = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._left))
        buffer[:n] = self._left[:n]
        self._left = self._left[n:]
        return n


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    info.mtime = 0  # no timestamps, owners or modes of the sender's machine
    return info


def _write_tar(
    vault: Vault, out: Outgoing, sink: BinaryIO, progress: Callable[[int], None] | None
) -> None:
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        # 16 KiB by default: a Python-level read and write per 16 KiB of file. The
        # attribute exists since Python 3.8; typeshed does not list it.
        tar.copybufsize = 1 << 20  # type: ignore[attr-defined]
        manifest = json.dumps(out.manifest(), ensure_ascii=False).encode()
        tar.addfile(_info(MANIFEST, len(manifest)), io.BytesIO(manifest))
        events = b"".join(e + b"\n" for e in out.entries)
        tar.addfile(_info(EVENTS, len(events)), io.BytesIO(events))
        for sha, size in out.blobs:
            reader = io.BufferedReader(_IterReader(blob_plaintext(vault, sha)), 1 << 20)
            tar.addfile(_info(BLOBS + sha, size), reader)
            if progress is not None:
                progress(size)


def _pump(
    produce: Callable[[BinaryIO], None],
    consume: Callable[[BinaryIO], None],
    *,
    thread_produces: bool,
) -> None:
    """Run *produce* (writes) and *consume* (reads) joined by a pipe, one on a helper
    thread: age on the helper, the vault (SQLite is tied to its thread) on this one."""
    rfd, wfd = os.pipe()
    errors: list[BaseException] = []

    def run_produce() -> None:
        with open(wfd, "wb", buffering=1 << 20) as w:
            produce(w)

    def run_consume() -> None:
        with open(rfd, "rb", buffering=1 << 20) as r:
            consume(r)
            while r.read(1 << 20):  # let the producer finish even if not all was read
                pass

    helper, here = (run_produce, run_consume) if thread_produces else (run_consume, run_produce)

    def guarded() -> None:
        try:
            helper()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=guarded, daemon=True)
    thread.start()
    try:
        here()
    except BaseException:
        thread.join()
        if errors and isinstance(errors[0], AtharError):
            raise errors[0] from None  # the age side's reason comes first
        raise
    thread.join()
    if errors:
        raise errors[0]


def write(
    vault: Vault,
    out: Outgoing,
    recipients: Sequence[pyrage.x25519.Recipient],
    sink: BinaryIO,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Encrypt the bundle to *recipients* into *sink*."""
    _pump(
        lambda w: _write_tar(vault, out, w, progress),
        lambda r: pyrage.encrypt_io(r, sink, list(recipients)),
        thread_produces=False,
    )


def _read_tar(importer: Importer, stream: BinaryIO, box: list[ImportReport]) -> None:
    try:
        tar = tarfile.open(fileobj=stream, mode="r|")  # noqa: SIM115 - read to the end below
        manifest: dict[str, Any] | None = None
        for member in tar:
            if not member.isfile():
                raise IntegrityError("unexpected entry in the bundle: {name}", name=member.name)
            fh = tar.extractfile(member)
            assert fh is not None
            if member.name == MANIFEST and manifest is None:
                if member.size > MAX_MANIFEST:
                    raise IntegrityError("the bundle manifest is malformed")
                manifest = json.loads(fh.read())
            elif member.name == EVENTS and manifest is not None and not box:
                entries = [line for line in fh.read().split(b"\n") if line]
                box.append(importer.check(manifest, entries))
            elif member.name.startswith(BLOBS) and box:
                sha = member.name[len(BLOBS) :]
                if importer.wants(sha):
                    importer.stage(sha, fh, member.size)  # type: ignore[arg-type]
            else:
                raise IntegrityError("unexpected entry in the bundle: {name}", name=member.name)
        # Read to the end so that age authenticates the final chunk (truncation).
        while stream.read(1 << 20):
            pass
    except (tarfile.TarError, ValueError, UnicodeDecodeError, EOFError):
        raise IntegrityError("the bundle's contents are damaged or truncated") from None
    if not box:
        raise IntegrityError("the bundle's contents are damaged or truncated")


def read(vault: Vault, source: BinaryIO, *, accept_unknown: bool = False) -> ImportReport:
    """Decrypt, verify and import one bundle stream; all or nothing."""
    from athar.sync.agekeys import identity

    importer = Importer(vault, accept_unknown=accept_unknown)
    ident = identity(vault.keys.identity.encryption_secret)
    box: list[ImportReport] = []

    def decrypt(w: BinaryIO) -> None:
        try:
            pyrage.decrypt_io(source, w, [ident])
        except BrokenPipeError:
            return  # the reader stopped first and says why
        except pyrage.DecryptError as exc:
            text = str(exc).lower()
            if "no matching keys" in text or "no identity matched" in text:
                raise InputError(
                    "this bundle is not addressed to this device (it is encrypted to other keys)"
                ) from None
            raise IntegrityError(
                "the bundle is damaged or truncated (age: {reason})", reason=str(exc)
            ) from None

    try:
        _pump(decrypt, lambda r: _read_tar(importer, r, box), thread_produces=True)
        return importer.commit()
    finally:
        importer.discard()
