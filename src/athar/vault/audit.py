"""Full audit of a vault: what `athar verify` runs.

It trusts nothing it can recompute: every event is decrypted, parsed and its signature
checked; each device's hash chain is walked; the Merkle root is recomputed and compared
with every stored checkpoint (database and the separate checkpoints file, so a restored
older database is caught); every blob is decrypted and hashed. It collects every problem
instead of stopping at the first, and names the event or item each one concerns.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from athar.crypto.identity import fingerprint, verify_signature
from athar.errors import AtharError, IntegrityError
from athar.vault import merkle
from athar.vault.checkpoint import SignedCheckpoint
from athar.vault.events import SignedEvent
from athar.vault.items import project_items
from athar.vault.vault import Vault

WORKERS = 2


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


def _verify_batch(batch: list[tuple[int, bytes, bytes, bytes]]) -> list[int]:
    return [seq for seq, key, msg, sig in batch if not verify_signature(key, msg, sig)]


def _check_events(vault: Vault, report: AuditReport) -> list[SignedEvent | None]:
    ledger = vault.ledger
    events: list[SignedEvent | None] = []
    expected = 0
    for seq, tag, sealed in ledger.raw_rows():
        while expected < seq:
            report.problem(f"event #{expected}", "missing (deleted from the ledger)")
            events.append(None)
            expected += 1
        expected = seq + 1
        try:
            signed = ledger.open_event(seq, sealed)
        except IntegrityError as exc:
            report.problem(
                f"event #{seq}",
                f"cannot be opened: {exc} — the stored event was altered, moved or swapped",
            )
            events.append(None)
            continue
        if ledger.tag(signed.leaf) != tag:
            report.problem(f"event #{seq}", "its index tag does not match its content (row edited)")
        events.append(signed)
    report.events = len(events)
    return events


def _check_signatures(events: list[SignedEvent | None], report: AuditReport) -> None:
    work = [
        (seq, e.event.device, e.signed_message(), e.signature)
        for seq, e in enumerate(events)
        if e is not None
    ]
    step = max(1, len(work) // (WORKERS * 8) + 1)
    with ThreadPoolExecutor(WORKERS) as pool:
        bad = [
            seq
            for chunk in pool.map(
                _verify_batch, [work[i : i + step] for i in range(0, len(work), step)]
            )
            for seq in chunk
        ]
    for seq in sorted(bad):
        report.problem(f"event #{seq}", "signature does not verify (event edited or forged)")


def _check_devices(
    events: list[SignedEvent | None], known: set[bytes], report: AuditReport
) -> None:
    heads: dict[bytes, tuple[int, str, int]] = {}  # device -> (dseq, id, seq)
    for seq, e in enumerate(events):
        if e is None:
            continue
        ev = e.event
        if ev.device not in known:
            report.problem(
                f"event #{seq}", f"signed by unknown device {fingerprint(ev.device)} (forged)"
            )
            continue
        last = heads.get(ev.device)
        want_dseq, want_prev = (last[0] + 1, last[1]) if last else (0, None)
        if ev.dseq != want_dseq or ev.prev != want_prev:
            after = f"after event #{last[2]}" if last else "as the device's first event"
            report.problem(
                f"event #{seq}",
                f"device chain broken: expected its event {want_dseq} {after}, found event "
                f"{ev.dseq} (events deleted, inserted or reordered)",
            )
        heads[ev.device] = (ev.dseq, e.id, seq)


def _check_checkpoints(
    vault: Vault,
    events: list[SignedEvent | None],
    known: set[bytes],
    report: AuditReport,
    external: list[SignedCheckpoint],
) -> None:
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
    complete = all(e is not None for e in events)
    size = len(events)
    hashes = [e.leaf for e in events if e is not None]
    roots: dict[int, bytes] = {}
    if complete:
        wanted = sorted({cp.checkpoint.size for _, cp in checkpoints if cp.checkpoint.size <= size})
        frontier = merkle.Frontier()
        roots[0] = frontier.root()
        it = iter(wanted)
        target = next(it, None)
        for i, h in enumerate(hashes):
            frontier.append(h)
            while target is not None and target == i + 1:
                roots[target] = frontier.root()
                target = next(it, None)
        report.root = frontier.root().hex()
        report.size = size
    latest = (
        max(cp.checkpoint.size for label, cp in checkpoints if label == "database")
        if any(label == "database" for label, _ in checkpoints)
        else 0
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
        elif complete and roots.get(cp.size) != cp.root:
            report.problem(
                where, "Merkle root does not match the ledger: events before it were changed"
            )
    if size > latest:
        report.problem(
            "ledger",
            f"events #{latest}..#{size - 1} are not covered by any checkpoint "
            "(appended outside Athar)",
        )


class Progress(Protocol):
    """Where the audit reports its progress: told the total once known, then advanced."""

    def start(self, total: int) -> None: ...

    def advance(self, amount: int) -> None: ...


def _check_blobs(
    vault: Vault,
    events: list[SignedEvent | None],
    report: AuditReport,
    progress: Progress | None,
) -> None:
    items = [i for i in project_items([e for e in events if e is not None]) if not i.shredded]
    report.items = len(items)
    if progress:
        progress.start(sum(max(i.size, 1) for i in items))
    keyrows = vault.ledger.blob_keys()

    def check(item: Any) -> tuple[Any, str | None, int]:
        try:
            size = 0
            ref = vault.blobs.ref(bytes.fromhex(item.sha256))
            keyrow = keyrows.get(ref)
            for chunk in vault.read_with_key(item, keyrow[0] if keyrow else None):
                size += len(chunk)
            return item, None, size
        except AtharError as exc:
            return item, str(exc), 0

    with ThreadPoolExecutor(WORKERS) as pool:
        for item, error, size in pool.map(check, items):
            report.blobs_checked += 1
            report.bytes_checked += size
            if error:
                report.problem(f"item {item.short_id} ({item.name})", error)
            if progress:
                progress.advance(max(item.size, 1))
    refs = {vault.blobs.ref(bytes.fromhex(i.sha256)) for i in items}
    stray_keys = set(keyrows) - refs
    if stray_keys:
        report.problem("blob keys", f"{len(stray_keys)} keys belong to no recorded item")
    stray = vault.blobs.stored_refs() - set(keyrows)
    if stray:
        report.notes.append(
            f"{len(stray)} encrypted files from interrupted adds have no key and are unreadable"
        )


def audit(
    vault: Vault,
    external: list[SignedCheckpoint] | None = None,
    progress: Progress | None = None,
) -> AuditReport:
    report = AuditReport()
    events = _check_events(vault, report)
    known = {vault.keys.identity.public_key}
    _check_signatures(events, report)
    _check_devices(events, known, report)
    _check_checkpoints(vault, events, known, report, external or [])
    _check_blobs(vault, events, report, progress)
    return report


def total_blob_bytes(vault: Vault) -> int:
    return sum(max(i.size, 1) for i in vault.items() if not i.shredded)
