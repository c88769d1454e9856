"""The vault service: the small API the CLI and (later) the web app call.

Vault.create(dir, passphrase) / Vault.open(dir, passphrase)
vault.add(paths, note)            -> AddReport    (batched, atomic, idempotent)
vault.items() / vault.item(id)    -> Item
vault.export(id, path)            decrypts, checking the hash before the file appears
vault.events() / vault.checkpoint() / vault.prove(id)
wipe(dir)                         destroys the key file; needs no passphrase
set_decoy(vault, duress passphrase) / clear_decoy(vault)    see athar.vault.duress
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from athar.crypto.identity import b64, fingerprint
from athar.errors import InputError, IntegrityError, VaultNotFound
from athar.vault import duress, keyfile, merkle
from athar.vault.blobs import BlobStore, LengthMismatch, StagedBlob
from athar.vault.checkpoint import SignedCheckpoint
from athar.vault.events import SignedEvent
from athar.vault.fsutil import (
    atomic_write,
    fsync_dir,
    open_private,
    private_mkdir,
    raise_if_disk_full,
)
from athar.vault.items import (
    ITEM_ADDED,
    ITEM_SHREDDED,
    Item,
    find_item,
    item_from_event,
    project_items,
)
from athar.vault.keyfile import UnlockedKeys
from athar.vault.ledger import Ledger
from athar.vault.progress import Progress

KEY_FILE = "key"
MARKER = "ATHAR-VAULT"
BATCH_FILES = 512
BATCH_BYTES = 256 << 20
BATCH_SECONDS = 2.0
PROOF_TYPE = "athar.inclusion-proof/1"

ProgressFn = Callable[[int], None]


@dataclass(frozen=True)
class AddResult:
    path: str
    status: str  # "added" | "duplicate" | "skipped"
    item: Item | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "status": self.status}
        if self.item is not None:
            out.update(id=self.item.id, sha256=self.item.sha256, size=self.item.size)
        if self.reason is not None:
            out["reason"] = self.reason
        return out


@dataclass
class AddReport:
    results: list[AddResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)


def is_vault(root: Path) -> bool:
    return (root / MARKER).exists()


def collect_files(paths: Sequence[Path]) -> tuple[list[Path], list[AddResult]]:
    """Expand directories (sorted, so runs are reproducible); refuse missing paths up front."""
    missing = [p for p in paths if not p.exists() and not p.is_symlink()]
    if missing:
        raise InputError("no such file or directory: {path}", path=str(missing[0]))
    files: list[Path] = []
    skipped: list[AddResult] = []
    for p in paths:
        if not p.is_dir():
            files.append(p)
            continue
        for dirpath, dirnames, filenames in os.walk(p):
            dirnames.sort()
            # os.walk silently skips unreadable directories; say so instead.
            for d in dirnames:
                full = Path(dirpath) / d
                if not os.access(full, os.R_OK | os.X_OK):
                    skipped.append(AddResult(str(full), "skipped", reason="directory not readable"))
            files.extend(Path(dirpath) / name for name in sorted(filenames))
    return files, skipped


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # staging will report why it cannot read it


class Vault:
    def __init__(self, root: Path, keys: UnlockedKeys) -> None:
        self.root = root
        self.keys = keys
        self.ledger = Ledger(root, keys)
        self.blobs = BlobStore(root, keys.subkey("blob-names"), keys.subkey("blob-keys"))

    # -- lifecycle -----------------------------------------------------------------
    @classmethod
    def create(cls, root: Path, passphrase: str) -> Vault:
        if not passphrase:
            raise InputError("the passphrase must not be empty")
        if root.exists() and any(root.iterdir()):
            raise InputError("{path} exists and is not empty", path=str(root))
        private_mkdir(root)
        keys = keyfile.create(root / KEY_FILE, passphrase)
        vault = cls(root, keys)
        vault.blobs.ensure_dirs()
        with vault.ledger.transaction() as tx:
            tx.append(
                "vault.created",
                {
                    "device": fingerprint(keys.identity.public_key),
                    "encryption_key": b64(keys.identity.encryption_public_key),
                },
            )
        atomic_write(root / MARKER, b"Athar evidence vault. Everything here is encrypted.\n")
        return vault

    @classmethod
    def open(cls, root: Path, passphrase: str) -> Vault:
        if not is_vault(root):
            raise VaultNotFound("no Athar vault at {path}", path=str(root))
        opened, keys = duress.unlock(root, passphrase)
        vault = cls(opened, keys)
        try:
            vault._settle_rotation()
        except BaseException:
            vault.close()
            raise
        return vault

    def _settle_rotation(self) -> None:
        """Finish or undo a key rotation a crash interrupted (athar.vault.rotation): it
        committed if the ledger holds the new key's acknowledgement."""
        path = self.root / KEY_FILE
        if keyfile.PENDING not in keyfile.load(path):
            return
        with duress._locked(self.root):
            document = keyfile.load(path)
            if keyfile.PENDING not in document:
                return
            new = keyfile.pending_identity(document, self.keys.master)
            if new is not None and b64(new.public_key) in self.ledger.head().devices:
                keys = UnlockedKeys(self.keys.master, new, self.keys.vault_id)
                keyfile.commit_identity(path, keys)
                self.keys = self.ledger.keys = keys
            else:
                keyfile.drop_pending(path)

    def close(self) -> None:
        self.ledger.close()

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def device_fingerprint(self) -> str:
        return fingerprint(self.keys.identity.public_key)

    # -- adding --------------------------------------------------------------------
    def add(
        self,
        paths: Sequence[Path],
        note: str | None = None,
        progress: Progress | None = None,
        on_result: Callable[[AddResult], None] | None = None,
    ) -> AddReport:
        """Encrypt and record files; commits in batches so a crash loses no committed item.

        Re-adding content already in the vault records nothing new (idempotent) and
        reports the existing item. *progress* is told the total bytes, then advanced.
        """
        files, skipped = collect_files(paths)
        if progress is not None:
            progress.start(sum(_size_or_zero(f) for f in files))
        advance = progress.advance if progress is not None else None
        report = AddReport()
        for r in skipped:
            report.results.append(r)
            if on_result:
                on_result(r)
        self.blobs.ensure_dirs()
        self.blobs.sweep_temp()
        batch: list[tuple[Path, StagedBlob]] = []
        batch_bytes = 0
        started = time.monotonic()
        try:
            for path in files:
                try:
                    staged = self.blobs.stage(path, advance)
                except InputError as exc:
                    result = AddResult(str(path), "skipped", reason=str(exc))
                    report.results.append(result)
                    if on_result:
                        on_result(result)
                    continue
                batch.append((path, staged))
                batch_bytes += staged.size
                if (
                    len(batch) >= BATCH_FILES
                    or batch_bytes >= BATCH_BYTES
                    or time.monotonic() - started >= BATCH_SECONDS
                ):
                    self._commit(batch, note, report, on_result)
                    batch, batch_bytes, started = [], 0, time.monotonic()
            if batch:
                self._commit(batch, note, report, on_result)
                batch = []
        finally:
            for _, staged in batch:
                self.blobs.discard(staged)
        return report

    def add_stream(
        self, name: str, source: BinaryIO, size: int, note: str | None = None
    ) -> AddResult:
        """Encrypt and record *size* bytes read from *source* as an item called *name* (an
        upload reassembled from chunks): the same commit as `add`, never plaintext on disk."""
        try:
            staged = self.blobs.stage_stream(source, size)
        except LengthMismatch as exc:
            if exc.got < size:
                raise InputError(
                    "{name}: the data ended before its announced {size} bytes", name=name, size=size
                ) from None
            raise InputError(
                "{name}: the data runs past its announced {size} bytes", name=name, size=size
            ) from None
        report = AddReport()
        self._commit([(Path(name), staged)], note, report, None)
        return report.results[0]

    def _commit(
        self,
        batch: list[tuple[Path, StagedBlob]],
        note: str | None,
        report: AddReport,
        on_result: Callable[[AddResult], None] | None,
    ) -> None:
        outcomes: list[tuple[Path, Item | int]] = []  # the new item, or a duplicate's seq
        recorded: dict[bytes, int] = {}  # blob ref -> seq of its item.added, this batch
        try:
            with self.ledger.transaction() as tx:
                dirs: set[Path] = set()
                for path, staged in batch:
                    ref = self.blobs.ref(staged.sha256)
                    known = tx.blob_key(ref)
                    if known is not None or ref in recorded:
                        self.blobs.discard(staged)
                        outcomes.append((path, known[1] if known else recorded[ref]))
                        continue
                    if staged.inline is not None:
                        tx.put_inline_blob(ref, staged.inline)
                    else:
                        dirs.add(self.blobs.install(staged, ref))
                        tx.on_rollback.append(self.blobs.path(ref).unlink)
                    body: dict[str, Any] = {
                        "sha256": staged.sha256.hex(),
                        "size": staged.size,
                        "name": path.name,
                        "media_type": mimetypes.guess_type(path.name)[0]
                        or "application/octet-stream",
                    }
                    if note:
                        body["note"] = note
                    seq = tx.head.size
                    signed = tx.append(ITEM_ADDED, body)
                    tx.put_blob_key(ref, self.blobs.seal_key(ref, staged.data_key), seq)
                    recorded[ref] = seq
                    outcomes.append((path, item_from_event(seq, signed)))
                # Blobs must be durable before the events that name them.
                self.blobs.sync(dirs)
        except OSError as exc:
            raise_if_disk_full(exc)
            raise
        finally:
            for _, staged in batch:
                self.blobs.discard(staged)
        for path, outcome in outcomes:
            if isinstance(outcome, Item):
                result = AddResult(str(path), "added", outcome)
            else:
                dup = item_from_event(outcome, self.ledger.event_at(outcome))
                result = AddResult(str(path), "duplicate", dup)
            report.results.append(result)
            if on_result:
                on_result(result)

    # -- reading -------------------------------------------------------------------
    def events(self) -> list[SignedEvent]:
        return self.ledger.events()

    def items(self) -> list[Item]:
        return project_items(self.events())

    def item(self, ident: str) -> Item:
        return find_item(self.items(), ident)

    def read(self, item: Item) -> Iterator[bytes]:
        """Yield an item's plaintext, checked against its recorded hash at the end."""
        ref = self.blobs.ref(bytes.fromhex(item.sha256))
        keyrow = self.ledger.blob_key(ref)
        inline = self.ledger.inline_blob(ref)
        return self.read_with_key(item, keyrow[0] if keyrow else None, inline)

    def read_with_key(
        self, item: Item, sealed_key: bytes | None, inline: bytes | None = None
    ) -> Iterator[bytes]:
        """Like read(), with the sealed key and inline data already fetched."""
        what = f"item {item.short_id}"
        if sealed_key is None:
            if item.shredded:
                raise InputError("item {id} was destroyed (crypto-shredded)", id=item.short_id)
            raise IntegrityError("{what}: its key is missing", what=what)
        ref = self.blobs.ref(bytes.fromhex(item.sha256))
        return self._checked_plaintext(ref, sealed_key, inline, item.sha256, item.size, what)

    def _checked_plaintext(
        self, ref: bytes, sealed_key: bytes, inline: bytes | None, sha256: str, size: int, what: str
    ) -> Iterator[bytes]:
        data_key = self.blobs.open_key(ref, sealed_key, what)
        digest = hashlib.sha256()
        seen = 0
        for chunk in self.blobs.read(ref, data_key, what, inline):
            digest.update(chunk)
            seen += len(chunk)
            yield chunk
        if digest.hexdigest() != sha256 or seen != size:
            raise IntegrityError("{what}: content does not match its recorded SHA-256", what=what)

    def check_blob(
        self, ref: bytes, sealed_key: bytes, inline: bytes | None, sha256: str, size: int, what: str
    ) -> int:
        """Decrypt and hash one blob without keeping it; return its size or raise."""
        return sum(
            len(c) for c in self._checked_plaintext(ref, sealed_key, inline, sha256, size, what)
        )

    def export(self, item: Item, out: Path, progress: ProgressFn | None = None) -> None:
        """Decrypt to *out*; the file appears only once its hash has been checked."""
        if out.exists():
            raise InputError("{path} already exists; choose another name", path=str(out))
        tmp = out.with_name(f".{out.name}.athar-partial")
        try:
            fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            with open(fd, "wb") as fh:
                for chunk in self.read(item):
                    fh.write(chunk)
                    if progress:
                        progress(len(chunk))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, out)
        except FileNotFoundError:
            tmp.unlink(missing_ok=True)
            raise InputError("cannot write {path}: folder does not exist", path=str(out)) from None
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise_if_disk_full(exc)
            raise InputError(
                "cannot write {path}: {reason}", path=str(out), reason=exc.strerror or str(exc)
            ) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    # -- crypto-shredding ----------------------------------------------------------
    def shred(self, item: Item, reason: str) -> SignedEvent:
        """Destroy one item's data key and blob; the ledger keeps its (signed) description."""
        ref = self.blobs.ref(bytes.fromhex(item.sha256))
        with self.ledger.transaction() as tx:
            tx.forget_blob(ref)
            signed = tx.append(ITEM_SHREDDED, {"item": item.id, "reason": reason})
        self.blobs.path(ref).unlink(missing_ok=True)
        return signed

    # -- checkpoints and proofs ----------------------------------------------------
    def checkpoint(self) -> SignedCheckpoint:
        """Sign a fresh checkpoint of the ledger as it stands now."""
        with self.ledger.transaction(always_checkpoint=True) as tx:
            pass
        return tx.checkpoint

    def prove(self, item: Item, at: SignedCheckpoint | None = None) -> dict[str, Any]:
        """An inclusion proof of the item's event, checkable without the vault."""
        events = self.events()
        hashes = [e.leaf for e in events]
        cp = at or self.ledger.latest_checkpoint()
        if cp is None:
            raise IntegrityError("the ledger has no checkpoint yet")
        size = cp.checkpoint.size
        if size > len(hashes):
            raise IntegrityError(
                "checkpoint covers {size} events but the ledger holds {held}",
                size=size,
                held=len(hashes),
            )
        if item.seq >= size:
            raise InputError("item {id} is newer than that checkpoint", id=item.short_id)
        if merkle.root_from_hashes(hashes[:size]) != cp.checkpoint.root:
            raise IntegrityError("the checkpoint does not match this ledger")
        signed = events[item.seq]
        return {
            "type": PROOF_TYPE,
            "item": item.to_json(),
            "index": item.seq,
            "tree_size": size,
            "entry": b64(signed.entry),
            "path": [h.hex() for h in merkle.inclusion_path_from_hashes(hashes[:size], item.seq)],
            "checkpoint": cp.to_json(),
        }


def wipe(root: Path) -> float:
    """Destroy the vault's key material; return the seconds it took. Needs no passphrase."""
    if not is_vault(root):
        raise VaultNotFound("no Athar vault at {path}", path=str(root))
    started = time.perf_counter()
    keyfile.destroy(root / KEY_FILE)
    fsync_dir(root)
    return time.perf_counter() - started


def set_decoy(
    vault: Vault, duress_passphrase: str, files: Sequence[Path] = (), note: str | None = None
) -> AddReport:
    """Create the decoy that the duress passphrase opens, filled with *files*."""
    if duress.has_decoy(vault.root):
        raise InputError("a decoy is already set; remove it first with: athar duress clear")
    duress.check_distinct(vault.root, duress_passphrase)
    spare = duress.decoy_root(vault.root)
    if spare.exists():  # a half-made decoy from an interrupted run
        shutil.rmtree(spare)
    try:
        with Vault.create(spare, duress_passphrase) as decoy:
            return decoy.add(files, note) if files else AddReport()
    except BaseException:
        if spare.exists():
            keyfile.destroy(spare / KEY_FILE)
            shutil.rmtree(spare)
        raise


def clear_decoy(vault: Vault) -> bool:
    """Remove the decoy (its key first); False if there was none."""
    spare = duress.decoy_root(vault.root)
    if not spare.exists():
        return False
    keyfile.destroy(spare / KEY_FILE)
    shutil.rmtree(spare)
    fsync_dir(vault.root)
    return True


__all__ = ["AddReport", "AddResult", "Vault", "clear_decoy", "is_vault", "set_decoy", "wipe"]
