"""The small API the CLI (and later the web app) call for bundles, receipts, devices."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

import pyrage

from athar.crypto.identity import fingerprint
from athar.errors import AtharError, InputError, IntegrityError
from athar.sync import agekeys, bundle, exchange, membership, parts, receipt
from athar.sync.exchange import ImportReport
from athar.sync.state import SyncState
from athar.vault.events import IMPORTED_KIND, parse_entry, unwrap
from athar.vault.fsutil import open_private, private_mkdir
from athar.vault.items import ITEM_ADDED
from athar.vault.vault import Vault

ACKS = "acks"  # receiver device key (b64) -> size of our ledger it acknowledged
WHOLE_SUFFIX = ".age"


def card(vault: Vault) -> dict[str, str]:
    """What another device needs to enrol this one and send it bundles (all public)."""
    ident = vault.keys.identity
    return {
        "fingerprint": fingerprint(ident.public_key),
        "key": base64.b64encode(ident.public_key).decode(),
        "age_recipient": agekeys.recipient_string(ident.encryption_public_key),
    }


def members(vault: Vault) -> membership.Membership:
    m = membership.Membership(vault.keys.identity.public_key)
    for batch in vault.ledger.events_after(-1):
        for _, signed in batch:
            ev = unwrap(signed).event
            if ev.kind in membership.KINDS:
                m.apply(ev.kind, ev.device, ev.dseq, ev.body)
    return m


# -- devices -------------------------------------------------------------------------
def enrol(vault: Vault, key: str, age_recipient: str, name: str, admin: bool) -> membership.Device:
    try:
        raw = base64.b64decode(key.strip(), validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise InputError("{key} is not a device key (base64 of 32 bytes)", key=key)
    enc = agekeys.recipient_key(age_recipient)
    if raw == vault.keys.identity.public_key:
        raise InputError("this is this vault's own device")
    body = {
        "device": base64.b64encode(raw).decode(),
        "encryption_key": base64.b64encode(enc).decode(),
        "name": name,
        "admin": admin,
    }
    with vault.ledger.transaction() as tx:
        tx.append(membership.ENROLLED, body)
    return members(vault).devices[raw]


def revoke(
    vault: Vault, ident: str, reason: str, after_dseq: int | None = None
) -> membership.Device:
    device = members(vault).find(ident)
    if device.revoked_after is not None:
        raise InputError("device {device} is already revoked", device=device.fingerprint)
    if after_dseq is None:
        chains = SyncState(vault.ledger).get(exchange.CHAINS)
        head = chains.get(base64.b64encode(device.key).decode())
        after_dseq = int(head[0]) if head else -1
    body = {
        "device": base64.b64encode(device.key).decode(),
        "after_dseq": after_dseq,
        "reason": reason,
    }
    with vault.ledger.transaction() as tx:
        tx.append(membership.REVOKED, body)
    return members(vault).devices[device.key]


# -- export --------------------------------------------------------------------------
@dataclass
class ExportResult:
    files: list[Path]
    since: int
    size: int
    events: int
    blobs: int
    blob_bytes: int
    wire_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "files": [str(p) for p in self.files],
            "since": self.since,
            "size": self.size,
            "events": self.events,
            "blobs": self.blobs,
            "blob_bytes": self.blob_bytes,
            "wire_bytes": self.wire_bytes,
        }


def _resolve(m: membership.Membership, text: str) -> tuple[pyrage.x25519.Recipient, bytes | None]:
    """An age recipient (age1…) or an enrolled device's name or fingerprint."""
    if text.strip().lower().startswith("age1"):
        rec = agekeys.parse_recipient(text)
        d = m.by_encryption_key(agekeys.recipient_key(text))
        return rec, d.key if d else None
    d = m.find(text)
    return agekeys.parse_recipient(agekeys.recipient_string(d.encryption_key)), d.key


def export_bundle(
    vault: Vault,
    to: Sequence[str],
    out_dir: Path,
    *,
    since: int | None = None,
    part_size: int | None = None,
    redundancy: float = 0.0,
    progress: Callable[[int], None] | None = None,
) -> ExportResult:
    if not to:
        raise InputError("give at least one recipient with --to")
    m = members(vault)
    resolved = [_resolve(m, t) for t in to]
    if since is None:
        acks = SyncState(vault.ledger).get(ACKS)
        known = [acks.get(base64.b64encode(k).decode(), 0) if k else 0 for _, k in resolved]
        since = min(int(x) for x in known)
    private_mkdir(out_dir)
    out = exchange.collect(vault, since)
    cipher = out_dir / f".athar-bundle-{os.urandom(6).hex()}.tmp"
    try:
        with open(open_private(cipher), "wb") as sink:
            bundle.write(vault, out, [r for r, _ in resolved], sink, progress)
            sink.flush()
            os.fsync(sink.fileno())
        if part_size is None:
            final = out_dir / f"athar-{os.urandom(4).hex()}{WHOLE_SUFFIX}"
            os.replace(cipher, final)
            files = [final]
        else:
            files = parts.split(cipher, out_dir, part_size, redundancy)
    finally:
        cipher.unlink(missing_ok=True)
    return ExportResult(
        files,
        since,
        out.checkpoint.checkpoint.size,
        len(out.entries),
        len(out.blobs),
        sum(n for _, n in out.blobs),
        sum(p.stat().st_size for p in files),
    )


# -- import --------------------------------------------------------------------------
@dataclass
class ImportOutcome:
    imported: list[ImportReport] = field(default_factory=list)
    damaged: list[AtharError] = field(default_factory=list)
    incomplete: list[tuple[str, int, list[str]]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "imported": [r.to_json() for r in self.imported],
            "damaged": [str(e) for e in self.damaged],
            "incomplete": [
                {"bundle": b, "need": n, "missing": miss} for b, n, miss in self.incomplete
            ],
        }


def import_bundles(
    vault: Vault, inputs: Sequence[Path], *, accept_unknown: bool = False
) -> ImportOutcome:
    """Import every complete bundle among *inputs* (whole files or parts, any order)."""
    found = parts.sort_parts(parts.expand(inputs))
    outcome = ImportOutcome(damaged=list(found.damaged))
    jobs: list[tuple[str, Callable[[], ImportReport]]] = []
    for path in found.others:
        jobs.append((path.name, partial(_import_file, vault, path, accept_unknown)))
    for bid, ps in found.bundles.items():
        if ps.complete():
            jobs.append((bid.hex()[:8], partial(_import_parts, vault, ps, accept_unknown)))
        else:
            need, absent = ps.missing()
            outcome.incomplete.append((bid.hex()[:8], need, absent))
    # Bundles may arrive in any order: one that starts past what is held waits for the
    # others and is tried again while any progress is made.
    pending = jobs
    while pending:
        failed: list[tuple[str, Callable[[], ImportReport]]] = []
        errors: list[AtharError] = []
        for name, job in pending:
            try:
                outcome.imported.append(job())
            except AtharError as exc:
                failed.append((name, job))
                errors.append(exc)
        if len(failed) == len(pending):
            if errors:
                raise errors[0]
            break
        pending = failed
    if not outcome.imported and outcome.incomplete:
        name, need, absent = outcome.incomplete[0]
        raise InputError(
            "bundle {bundle} is incomplete: {need} more part(s) needed, from parts {missing}",
            bundle=name,
            need=need,
            missing=", ".join(absent),
        )
    if not outcome.imported and not outcome.incomplete and outcome.damaged:
        raise outcome.damaged[0]
    return outcome


def _import_file(vault: Vault, path: Path, accept_unknown: bool) -> ImportReport:
    try:
        with open(path, "rb") as fh:
            return bundle.read(vault, fh, accept_unknown=accept_unknown)
    except OSError as exc:
        raise InputError(
            "cannot read {path}: {reason}", path=str(path), reason=exc.strerror or str(exc)
        ) from None


def _import_parts(vault: Vault, ps: parts.PartSet, accept_unknown: bool) -> ImportReport:
    vault.blobs.ensure_dirs()
    cipher = vault.blobs.tmp_dir / f"{os.getpid()}-{os.urandom(8).hex()}"
    try:
        ps.assemble(cipher)
        with open(cipher, "rb") as fh:
            return bundle.read(vault, fh, accept_unknown=accept_unknown)
    finally:
        cipher.unlink(missing_ok=True)


# -- receipts ------------------------------------------------------------------------
def make_receipt(vault: Vault, sender: str | None = None, *, short: bool = False) -> str:
    state = SyncState(vault.ledger)
    origins = state.get(exchange.ORIGINS)
    if sender is None:
        if len(origins) != 1:
            raise InputError("say which sender the receipt is for (--sender athar.vault/…)")
        sender = next(iter(origins))
    elif not sender.startswith("athar.vault/"):
        sender = "athar.vault/" + sender
    if sender not in origins:
        raise InputError("nothing has been imported from {sender}", sender=sender)
    leaves = state.mirror(sender)
    make = receipt.make_short if short else receipt.make
    return make(vault.keys.identity, vault.ledger.origin, sender, leaves)


def ack(vault: Vault, text: str) -> dict[str, Any]:
    """Check a receipt against our ledger and remember it: later exports start there."""
    leaves = [s.leaf for s in vault.events()]
    if receipt.is_short(text):
        keys = [k for k, d in members(vault).devices.items() if d.revoked_after is None]
        r = receipt.open_short(text, vault.ledger.origin, leaves, keys)
    else:
        r = receipt.parse(text)
        if r.sender != vault.ledger.origin:
            raise InputError("this receipt is for another vault ({sender})", sender=r.sender)
    path = receipt.check_against(r, leaves)
    key = base64.b64encode(r.signer).decode()
    with vault.ledger.transaction() as tx:
        del tx
        state = SyncState(vault.ledger)
        acks = state.get(ACKS)
        acks[key] = max(int(acks.get(key, 0)), r.size)
        state.put(ACKS, acks)
    return {
        "receiver": fingerprint(r.signer),
        "size": r.size,
        "ledger_size": len(leaves),
        "consistency_path": [h.hex() for h in path],
        "known_device": members(vault).known(r.signer),
    }


# -- sync over HTTP: what athar.sync.server and athar.sync.http_client call ---------------
# A peer (server or client) gets the same bundle exchange as a memory card, with two
# savings a live link allows: files the peer itself sent us are not sent back (it holds
# them), and a range made only of the peer's own events coming back is not sent at all
# (it travels with the next real bundle, so the ledgers stay contiguous).
MAILBOX = "mailbox"  # relayed bundle id -> {"to", "from", "size", "sha256"}


def _peer_files(entries: Sequence[bytes], peer_origin: str | None) -> set[str]:
    """SHA-256 of files named by events that arrived here from *peer_origin*."""
    out: set[str] = set()
    if peer_origin is None:
        return out
    for entry in entries:
        signed = parse_entry(entry)
        if signed.event.kind != IMPORTED_KIND or signed.event.body.get("from") != peer_origin:
            continue
        real = unwrap(signed)
        if real.event.kind == ITEM_ADDED:
            out.add(str(real.event.body.get("sha256")))
    return out


def peer_lacks(vault: Vault, since: int, peer_origin: str | None) -> bool:
    """Whether our events from *since* on hold anything the peer did not send us itself."""
    for batch in vault.ledger.events_after(since - 1):
        for _, signed in batch:
            if signed.event.kind != IMPORTED_KIND or signed.event.body.get("from") != peer_origin:
                return True
    return False


def export_for_peer(
    vault: Vault,
    recipient: bytes,
    since: int,
    sink: BinaryIO,
    *,
    peer_origin: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ExportResult:
    """One bundle of our events from *since* on, encrypted to the X25519 key
    *recipient*, without the files *peer_origin* sent us."""
    out = exchange.collect(vault, since)
    skip = _peer_files(out.entries, peer_origin)
    out.blobs = [(sha, n) for sha, n in out.blobs if sha not in skip]
    rec = agekeys.parse_recipient(agekeys.recipient_string(recipient))
    bundle.write(vault, out, [rec], sink, progress)
    return ExportResult(
        [],
        since,
        out.checkpoint.checkpoint.size,
        len(out.entries),
        len(out.blobs),
        sum(n for _, n in out.blobs),
        0,
    )


def held_of(vault: Vault, origin: str) -> int:
    """How many events of vault *origin*'s ledger this vault holds."""
    return int(SyncState(vault.ledger).get(exchange.ORIGINS).get(origin, 0))


def receipt_for(vault: Vault, origin: str) -> str | None:
    """Our signed receipt of what we hold of *origin*, or None when we hold nothing."""
    if held_of(vault, origin) == 0:
        return None
    return make_receipt(vault, origin)


def ack_from(vault: Vault, text: str, device: bytes) -> int:
    """Take a full receipt that *device* signed (refusing one signed by another key);
    the size of our ledger it holds."""
    try:
        r = receipt.parse(text)
    except ValueError:
        raise InputError("this is not an Athar receipt") from None
    if r.signer != device:
        raise IntegrityError("the receipt is signed by another device than the one syncing")
    SyncState(vault.ledger)  # its tables, which ack() cannot create inside its transaction
    done = ack(vault, text)
    return int(done["size"])


def import_file(vault: Vault, path: Path, *, accept_unknown: bool = False) -> ImportReport:
    """Verify and import one whole bundle file; all or nothing."""
    return _import_file(vault, path, accept_unknown)


def mailbox(vault: Vault) -> dict[str, Any]:
    return SyncState(vault.ledger).get(MAILBOX)


def put_mailbox(vault: Vault, box: dict[str, Any]) -> None:
    state = SyncState(vault.ledger)
    with vault.ledger.transaction() as tx:
        del tx
        state.put(MAILBOX, box)


def acked_by(vault: Vault, device: bytes) -> int:
    """How much of our ledger *device* acknowledged holding (0 if it never did)."""
    return int(SyncState(vault.ledger).get(ACKS).get(base64.b64encode(device).decode(), 0))
