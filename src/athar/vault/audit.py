"""Full audit of a vault: what `athar verify` runs.

It trusts nothing it can recompute: every event is decrypted, parsed and its signature
checked; each device's hash chain is walked; the Merkle root is recomputed and compared
with every stored checkpoint (database and the separate checkpoints file, so a restored
older database is caught); every blob is decrypted and hashed. It collects every problem
instead of stopping at the first, and names the event or item each one concerns.

The per-event work (decrypt, parse, verify a signature, decrypt and hash the blob) is
Python-bound, so threads would not use the second core: large ledgers are cut into
chunks checked by worker processes, each opening the database itself. The keys reach the
workers through a pipe, never the disk.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from athar.crypto.identity import DeviceIdentity, fingerprint
from athar.errors import AtharError, IntegrityError
from athar.vault import merkle, rotation
from athar.vault.checkpoint import SignedCheckpoint
from athar.vault.events import IMPORTED_KIND, SignedEvent, unwrap
from athar.vault.items import ITEM_ADDED, ITEM_SHREDDED, SHORT_ID
from athar.vault.keyfile import UnlockedKeys
from athar.vault.progress import Progress
from athar.vault.vault import Vault

# Small enough that two workers finish together; large enough that per-chunk costs vanish.
CHUNK_EVENTS = 1024
PARALLEL_FROM = 8192


@dataclass(frozen=True)
class Problem:
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass
class AuditReport:
    events: int = 0
    items: int = 0
    blobs_checked: int = 0
    bytes_checked: int = 0
    checkpoints_checked: int = 0
    size: int = 0
    root: str = ""
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, where: str, what: str) -> None:
        self.problems.append(Problem(where, what))

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "items": self.items,
            "blobs_checked": self.blobs_checked,
            "bytes_checked": self.bytes_checked,
            "checkpoints_checked": self.checkpoints_checked,
            "tree_size": self.size,
            "root": self.root,
            "problems": [{"where": p.where, "what": p.what} for p in self.problems],
            "notes": self.notes,
        }


# What the whole-ledger checks need of one event that checked out: (seq, leaf hash,
# device key, device sequence, previous id, kind, item a shredding event destroys).
# A plain tuple: 100,000 of them cross the process boundary.
Facts = tuple[int, bytes, bytes, int, str | None, str, str | None]


@dataclass
class ChunkResult:
    facts: list[Facts] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    missing_keys: list[tuple[str, bytes, str]] = field(default_factory=list)  # id, ref, where
    item_refs: list[tuple[str, bytes]] = field(default_factory=list)  # (item id, blob ref)
    rotations: list[tuple[bytes, int, dict[str, Any]]] = field(default_factory=list)
    blobs_checked: int = 0
    bytes_checked: int = 0


def check_chunk(vault: Vault, lo: int, hi: int) -> ChunkResult:
    """Check events lo..hi-1 on their own: decryption, tag, signature, and their blobs."""
    ledger = vault.ledger
    out = ChunkResult()
    # Each item's key (and, for small items, its ciphertext) in one query per chunk.
    blobs = {
        seq: (bytes(ref), bytes(sealed), None if data is None else bytes(data))
        for seq, ref, sealed, data in ledger.conn.execute(
            "SELECT k.seq, k.ref, k.sealed, s.data FROM blob_keys k "
            "LEFT JOIN small_blobs s ON s.ref = k.ref WHERE k.seq >= ? AND k.seq < ?",
            (lo, hi),
        )
    }
    rows = ledger.conn.execute(
        "SELECT seq, tag, sealed FROM events WHERE seq >= ? AND seq < ? ORDER BY seq", (lo, hi)
    )
    for seq, tag, sealed in rows:
        where = f"event #{seq}"
        try:
            signed = ledger.open_event(seq, sealed)
        except IntegrityError as exc:
            out.problems.append(
                Problem(
                    where,
                    f"cannot be opened: {exc} — the stored event was altered, moved or swapped",
                )
            )
            continue
        if ledger.tag(signed.leaf) != tag:
            out.problems.append(
                Problem(where, "its index tag does not match its content (row edited)")
            )
        if not signed.signature_valid():
            out.problems.append(
                Problem(where, "signature does not verify (event edited or forged)")
            )
        ev = signed.event
        real = signed
        if ev.kind == IMPORTED_KIND:  # a foreign event carried in by athar.sync
            try:
                real = unwrap(signed, where)
            except IntegrityError as exc:
                out.problems.append(Problem(where, f"the carried event is unreadable: {exc}"))
            else:
                if real.event.kind == IMPORTED_KIND or not real.signature_valid():
                    out.problems.append(
                        Problem(where, "the carried event's signature does not verify")
                    )
        # The chain facts are the wrapper's (this device signed it); what it means for
        # items (added, shredded) is the carried event's.
        kind, body = real.event.kind, real.event.body
        target = str(body.get("item")) if kind == ITEM_SHREDDED else None
        out.facts.append((seq, signed.leaf, ev.device, ev.dseq, ev.prev, kind, target))
        if ev.kind == rotation.ROTATED:  # this device's own rotations name its former keys
            out.rotations.append((ev.device, ev.dseq, ev.body))
        if kind == ITEM_ADDED:
            _check_item_blob(vault, seq, real, blobs.get(seq), out)
    return out


def _check_item_blob(
    vault: Vault,
    seq: int,
    signed: SignedEvent,
    stored: tuple[bytes, bytes, bytes | None] | None,
    out: ChunkResult,
) -> None:
    body = signed.event.body
    sha256, size = body.get("sha256"), body.get("size")
    try:
        if not isinstance(sha256, str) or not isinstance(size, int) or isinstance(size, bool):
            raise ValueError
        ref = vault.blobs.ref(bytes.fromhex(sha256))
    except ValueError:
        out.problems.append(Problem(f"event #{seq}", "item event lacks a valid sha256 or size"))
        return
    out.item_refs.append((signed.id, ref))
    where = f"item {signed.id[:SHORT_ID]} ({body.get('name', '')})"
    if stored is None or stored[0] != ref:
        # Fine if a later event shredded it, or if the same content arrived first as
        # another item (a bundle can carry a file this vault already holds).
        out.missing_keys.append((signed.id, ref, where))
        return
    try:
        out.bytes_checked += vault.check_blob(ref, stored[1], stored[2], sha256, size, where)
    except AtharError as exc:
        out.problems.append(Problem(where, str(exc)))
        return
    out.blobs_checked += 1


_worker_vault: Vault | None = None


def _worker_init(root: str, master: bytes, identity: bytes, vault_id: bytes) -> None:
    global _worker_vault
    keys = UnlockedKeys(master, DeviceIdentity.from_bytes(identity), vault_id)
    _worker_vault = Vault(Path(root), keys)


def _worker_chunk(bounds: tuple[int, int]) -> ChunkResult:
    assert _worker_vault is not None
    return check_chunk(_worker_vault, *bounds)


def _check_all_chunks(
    vault: Vault, size: int, workers: int, progress: Progress | None, report: AuditReport
) -> list[ChunkResult]:
    bounds = [(lo, min(lo + CHUNK_EVENTS, size)) for lo in range(0, size, CHUNK_EVENTS)]
    if progress:
        progress.start(size)
    results: list[ChunkResult] = []

    def record(result: ChunkResult, lo: int, hi: int) -> None:
        results.append(result)
        if progress:
            progress.advance(hi - lo)

    def in_this_process(todo: list[tuple[int, int]]) -> list[ChunkResult]:
        for lo, hi in todo:
            record(check_chunk(vault, lo, hi), lo, hi)
        return results

    if workers <= 1 or size < PARALLEL_FROM:
        return in_this_process(bounds)
    keys = vault.keys
    try:
        with ProcessPoolExecutor(
            workers,
            mp_context=_start_method(),
            initializer=_worker_init,
            initargs=(str(vault.root), keys.master, keys.identity.to_bytes(), keys.vault_id),
        ) as pool:
            for (lo, hi), result in zip(bounds, pool.map(_worker_chunk, bounds), strict=True):
                record(result, lo, hi)
    except BrokenProcessPool:
        # Workers could not start (e.g. a caller's unguarded __main__ under spawn): the
        # audit is still complete, only slower. pool.map yields in order, so the chunks
        # not yet recorded are exactly the tail.
        report.notes.append("worker processes unavailable; the audit ran in one process")
        in_this_process(bounds[len(results) :])
    return results


def _start_method() -> multiprocessing.context.BaseContext:
    """fork when this process has no other thread (fast, and the caller's __main__ is not
    re-imported); spawn otherwise, since forking a threaded process can copy a lock held
    by another thread (a progress bar's refresher, a web server's workers) into a child
    that then waits on it forever."""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _check_devices(
    facts: list[Facts], known: set[bytes], retired: dict[bytes, int], report: AuditReport
) -> None:
    heads: dict[bytes, tuple[int, bytes, int]] = {}  # device -> (dseq, leaf, seq)
    for seq, leaf, device, dseq, prev, _kind, _target in facts:
        if device not in known:
            report.problem(
                f"event #{seq}", f"signed by unknown device {fingerprint(device)} (forged)"
            )
            continue
        if device in retired and dseq > retired[device]:
            report.problem(
                f"event #{seq}",
                f"signed by this device's former key {fingerprint(device)} after it was "
                f"rotated (its event {retired[device]}): made with a copied key",
            )
        last = heads.get(device)
        want_dseq, want_prev = (last[0] + 1, last[1].hex()) if last else (0, None)
        if dseq != want_dseq or prev != want_prev:
            after = f"after event #{last[2]}" if last else "as the device's first event"
            report.problem(
                f"event #{seq}",
                f"device chain broken: expected its event {want_dseq} {after}, found event "
                f"{dseq} (events deleted, inserted or reordered)",
            )
        heads[device] = (dseq, leaf, seq)


def _check_checkpoints(
    vault: Vault,
    leaves: list[bytes] | None,
    size: int,
    known: set[bytes],
    report: AuditReport,
    external: list[SignedCheckpoint],
) -> None:
    """Compare every checkpoint with the recomputed tree; *leaves* is None if some event
    could not be read (then only sizes can be compared)."""
    ledger = vault.ledger
    checkpoints: list[tuple[str, SignedCheckpoint]] = []
    for label, loader in (
        ("database", ledger.checkpoints),
        ("checkpoints file", ledger.file_checkpoints),
    ):
        try:
            checkpoints += [(label, cp) for cp in loader()]
        except AtharError as exc:
            report.problem(label, str(exc))
    checkpoints += [("given checkpoint", cp) for cp in external]
    if not checkpoints:
        report.problem("ledger", "has no signed checkpoint")
        return
    roots: dict[int, bytes] = {}
    if leaves is not None:
        wanted = sorted(
            {cp.checkpoint.size for _, cp in checkpoints if cp.checkpoint.size <= size} | {size}
        )
        frontier = merkle.Frontier()
        roots[0] = frontier.root()
        targets = iter(wanted)
        target = next(targets, None)
        for i, leaf in enumerate(leaves):
            frontier.append(leaf)
            while target is not None and target == i + 1:
                roots[target] = frontier.root()
                target = next(targets, None)
        report.root = frontier.root().hex()
        report.size = size
    latest = max(
        (cp.checkpoint.size for label, cp in checkpoints if label == "database"), default=0
    )
    for label, signed in checkpoints:
        cp = signed.checkpoint
        where = f"{label} checkpoint of {cp.time} (size {cp.size})"
        report.checkpoints_checked += 1
        if signed.public_key not in known:
            report.problem(where, f"signed by unknown key {fingerprint(signed.public_key)}")
        if cp.origin != ledger.origin:
            report.problem(where, "belongs to another vault")
            continue
        if cp.size > size:
            report.problem(
                where,
                f"ledger rolled back or truncated: the checkpoint covers {cp.size} events "
                f"but the ledger holds {size}",
            )
        elif leaves is not None and roots.get(cp.size) != cp.root:
            report.problem(
                where, "Merkle root does not match the ledger: events before it were changed"
            )
    try:
        head = ledger.head()
        if leaves is not None and (
            head.size != size or head.frontier.root() != roots.get(size, b"")
        ):
            report.problem("ledger head", "the stored head disagrees with the events (edited)")
    except AtharError as exc:
        report.problem("ledger head", str(exc))
    if size > latest:
        report.problem(
            "ledger",
            f"events #{latest}..#{size - 1} are not covered by any checkpoint "
            "(appended outside Athar)",
        )


def audit(
    vault: Vault,
    external: list[SignedCheckpoint] | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
) -> AuditReport:
    report = AuditReport()
    seqs = [row[0] for row in vault.ledger.conn.execute("SELECT seq FROM events ORDER BY seq")]
    size = seqs[-1] + 1 if seqs else 0
    present = set(seqs)
    for missing in (s for s in range(size) if s not in present):
        report.problem(f"event #{missing}", "missing (deleted from the ledger)")
    report.events = len(seqs)

    chunks = _check_all_chunks(
        vault, size, workers or min(2, os.cpu_count() or 1), progress, report
    )
    facts = [f for c in chunks for f in c.facts]
    for c in chunks:
        report.problems += c.problems
        report.blobs_checked += c.blobs_checked
        report.bytes_checked += c.bytes_checked
    report.problems.sort(key=_event_order)

    own = vault.keys.identity.public_key
    former = rotation.own_former_keys(own, [r for c in chunks for r in c.rotations])
    known = {own, *former}
    _check_devices(facts, known, {k: link.after for k, link in former.items()}, report)
    complete = len(facts) == size
    _check_checkpoints(
        vault, [f[1] for f in facts] if complete else None, size, known, report, external or []
    )

    shredded = {f[6] for f in facts if f[5] == ITEM_SHREDDED}
    added = sum(1 for f in facts if f[5] == ITEM_ADDED)
    report.items = added - len(shredded)
    item_refs = {r for c in chunks for _, r in c.item_refs}
    shredded_refs = {r for c in chunks for i, r in c.item_refs if i in shredded}
    key_refs = {bytes(r) for (r,) in vault.ledger.conn.execute("SELECT ref FROM blob_keys")}
    for c in chunks:
        for item_id, ref, where in c.missing_keys:
            if item_id not in shredded and ref not in shredded_refs and ref not in key_refs:
                report.problem(where, "its key is missing")
    if key_refs - item_refs:
        report.problem("blob keys", f"{len(key_refs - item_refs)} keys belong to no recorded item")
    stray = vault.blobs.stored_refs() - key_refs
    if stray:
        report.notes.append(
            f"{len(stray)} encrypted files from interrupted adds have no key and are unreadable"
        )
    return report


def _event_order(p: Problem) -> tuple[int, str]:
    if p.where.startswith("event #"):
        try:
            return int(p.where[7:]), ""
        except ValueError:
            pass
    return 1 << 62, p.where
