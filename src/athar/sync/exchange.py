"""The exchange core: what a recipient lacks, and a verifying all-or-nothing importer.

Foreign events live in the receiving vault as ``event.imported`` wrappers that this
device signs, each holding the origin device's entry byte for byte (``entry``) and the vault
it came from (``from``). The ledger stays single-signer
(its chain, Merkle tree, checkpoints and ``athar verify`` unchanged); projections read
through the wrapper (``athar.vault.events.unwrap``), so a foreign record edit merges
exactly as on its origin, attributed to its origin device. An origin entry may be at
most MAX_FOREIGN_ENTRY bytes so that its wrapper stays within the ledger's 1 MiB.
Wrappers are never wrapped again: a forwarded event is unwrapped and re-wrapped, so
nesting is at most one level.

Each sender's ledger is mirrored leaf by leaf (``athar.sync.state``): a bundle's events
must, with the mirror, hash to the root of the sender's signed checkpoint, which proves
that nothing was dropped, added or reordered on the way, and lets a receipt prove later
that the receiver holds the sender's ledger unchanged.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeGuard

from athar.crypto.identity import fingerprint
from athar.errors import InputError, IntegrityError
from athar.sync import membership
from athar.sync.state import SyncState
from athar.vault import merkle
from athar.vault.blobs import BackgroundSync, LengthMismatch, StagedBlob
from athar.vault.checkpoint import SignedCheckpoint, open_note
from athar.vault.events import IMPORTED_KIND, SignedEvent, parse_entry, unwrap
from athar.vault.fsutil import raise_if_disk_full
from athar.vault.items import ITEM_ADDED, ITEM_SHREDDED, Item, item_from_event
from athar.vault.vault import Vault

MANIFEST_TYPE = "athar.bundle/1"
CHAINS = "chains"
ORIGINS = "origins"  # origin name -> events of it held
MAX_FOREIGN_ENTRY = 760_000


@dataclass
class Outgoing:
    """What one bundle carries: the sender's entries [since, size) and their blobs."""

    checkpoint: SignedCheckpoint
    since: int
    entries: list[bytes]
    blobs: list[tuple[str, int]]  # (sha256 hex, size) of blobs this vault can send

    def manifest(self) -> dict[str, Any]:
        cp = self.checkpoint
        return {
            "type": MANIFEST_TYPE,
            "origin": cp.checkpoint.origin,
            "since": self.since,
            "size": cp.checkpoint.size,
            "checkpoint": cp.note,
            "verifier_key": cp.verifier_key,
            "events": len(self.entries),
            "blobs": [{"sha256": s, "size": n} for s, n in self.blobs],
        }


def collect(vault: Vault, since: int) -> Outgoing:
    """Everything in this vault's ledger from position *since* on, under a fresh checkpoint."""
    cp = vault.checkpoint()
    size = cp.checkpoint.size
    if since < 0 or since > size:
        raise InputError(
            "--since {since} is outside this ledger (0 to {size})", since=since, size=size
        )
    entries: list[bytes] = []
    blobs: dict[str, int] = {}
    for batch in vault.ledger.events_after(since - 1):
        for seq, signed in batch:
            if seq >= size:
                break
            entries.append(signed.entry)
            real = unwrap(signed, f"event #{seq}")
            if real.event.kind == ITEM_ADDED:
                sha = str(real.event.body.get("sha256"))
                ref = vault.blobs.ref(bytes.fromhex(sha))
                if vault.ledger.blob_key(ref) is not None:
                    blobs[sha] = int(real.event.body["size"])
    return Outgoing(cp, since, entries, sorted(blobs.items()))


def blob_plaintext(vault: Vault, sha256: str, size: int | None = None) -> Iterator[bytes]:
    """A held blob's plaintext, authenticated chunk by chunk as it streams.

    Not hashed again on the way out (a third of an export's time): the blob's data key
    is sealed under the vault's wrap key for this SHA-256 (its keyed name is the key's
    associated data), and secretstream authenticates every chunk, their order, the
    stated length and the end under that key; the only writer of a ciphertext under it
    hashed exactly the bytes it encrypted. So what decrypts is what was hashed, unless
    someone holds the vault's keys, and then the receiver, which hashes every file it
    takes and refuses the whole bundle on a mismatch, is the check that matters
    (docs/bundle-format.md, "Export and import internals"). ``athar verify`` still
    re-hashes every blob."""
    ref, data_key, item, what = blob_key(vault, sha256)
    chunks = vault.blobs.read(ref, data_key, what, vault.ledger.inline_blob(ref))
    return _counted(chunks, item.size if size is None else size, what)


def blob_key(vault: Vault, sha256: str) -> tuple[bytes, bytes, Item, str]:
    """A held blob's reference, its opened data key, its item and how errors name it."""
    ref = vault.blobs.ref(bytes.fromhex(sha256))
    row = vault.ledger.blob_key(ref)
    if row is None:
        raise IntegrityError("blob {sha} is no longer held", sha=sha256[:12])
    item = item_from_event(row[1], unwrap(vault.ledger.event_at(row[1])))
    what = f"item {item.short_id}"
    return ref, vault.blobs.open_key(ref, row[0], what), item, what


def _counted(chunks: Iterator[bytes], size: int, what: str) -> Iterator[bytes]:
    seen = 0
    for chunk in chunks:
        seen += len(chunk)
        yield chunk
    if seen != size:
        raise IntegrityError("{what}: content does not match its recorded SHA-256", what=what)


def _is_sha256(value: object) -> TypeGuard[str]:
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )


@dataclass
class ImportReport:
    origin: str
    sender: str
    since: int
    size: int
    new_events: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    devices: Counter[str] = field(default_factory=Counter)
    new_blobs: int = 0
    blob_bytes: int = 0
    shredded: int = 0  # files held here destroyed because their item was shredded there

    @property
    def nothing_new(self) -> bool:
        return self.new_events == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "sender": self.sender,
            "since": self.since,
            "size": self.size,
            "new_events": self.new_events,
            "kinds": dict(self.kinds),
            "devices": dict(self.devices),
            "new_blobs": self.new_blobs,
            "blob_bytes": self.blob_bytes,
            "shredded": self.shredded,
        }


class Importer:
    """check() every signature, chain and hash; stage blobs; commit() in one transaction.

    Nothing touches the ledger before commit(); a refusal anywhere leaves the vault as
    it was (staged blobs are ciphertext in tmp/ and are removed).
    """

    def __init__(self, vault: Vault, *, accept_unknown: bool = False) -> None:
        self.vault = vault
        self.state = SyncState(vault.ledger)
        self.accept_unknown = accept_unknown
        self.own = vault.keys.identity.public_key
        self.new: list[SignedEvent] = []
        self.new_leaves: list[bytes] = []
        self.mirror_start = 0
        self.needed: dict[str, int] = {}  # sha256 -> size, blobs new events name
        self.staged: dict[str, StagedBlob] = {}
        self.syncer = BackgroundSync()  # staged files are flushed while the next arrives
        self.report: ImportReport | None = None

    # -- checking ------------------------------------------------------------------
    def check(self, manifest: dict[str, Any], entries: list[bytes]) -> ImportReport:
        if not isinstance(manifest, dict) or manifest.get("type") != MANIFEST_TYPE:
            raise IntegrityError("this is not an Athar bundle (unknown manifest)")
        try:
            cp = open_note(str(manifest["checkpoint"]), str(manifest["verifier_key"]))
            since, size = int(manifest["since"]), int(manifest["size"])
            listed = {str(b["sha256"]): int(b["size"]) for b in manifest["blobs"]}
        except (KeyError, TypeError, ValueError):
            raise IntegrityError("the bundle manifest is malformed") from None
        origin = cp.checkpoint.origin
        sender = cp.public_key
        report = self.report = ImportReport(origin, fingerprint(sender), since, size)
        if origin == self.vault.ledger.origin:
            raise InputError("this bundle was made by this vault; nothing to import")
        if size != cp.checkpoint.size or str(manifest.get("origin")) != origin:
            raise IntegrityError("the bundle manifest disagrees with its signed checkpoint")
        if len(entries) != size - since or since < 0:
            raise IntegrityError(
                "the bundle should hold {want} events but holds {have}",
                want=max(size - since, 0),
                have=len(entries),
            )
        members = self._membership()
        members.preview(entries)  # rotations and revocations it carries count from its start
        if not self.accept_unknown:
            self._require_trusted(members, sender, None, "the bundle's sender")
        mirror = self.state.mirror(origin)
        held = len(mirror)
        if since > held:
            raise InputError(
                "this bundle starts at event {since} of {origin}, but this vault holds only "
                "its first {held}; ask the sender for a bundle since {held}",
                since=since,
                origin=origin,
                held=held,
            )
        leaves = mirror[:since] + [merkle.leaf_hash(e) for e in entries]
        if merkle.root_from_hashes(leaves) != cp.checkpoint.root:
            raise IntegrityError(
                "the bundle's events do not match its sender's signed checkpoint "
                "(events added, dropped, altered or reordered)"
            )
        if any(mirror[i] != leaves[i] for i in range(since, min(held, size))):
            raise IntegrityError(
                "the sender's ledger differs from what it sent before (history rewritten)"
            )
        if size <= held:
            return report  # an old or replayed bundle: everything in it is already here
        self.mirror_start = held
        self.new_leaves = leaves[held:]
        chains = {
            base64.b64decode(k): (int(v[0]), str(v[1])) for k, v in self.state.get(CHAINS).items()
        }
        seen: set[bytes] = set()
        for offset, entry in enumerate(entries[held - since :]):
            where = f"event {held + offset} of {origin}"
            outer = parse_entry(entry, where)
            if not members.same_device(outer.event.device, sender) or not outer.signature_valid():
                raise IntegrityError("{where}: its signature does not verify", where=where)
            real = outer
            if outer.event.kind == IMPORTED_KIND:
                real = unwrap(outer, where)
                if real.event.kind == IMPORTED_KIND or not real.signature_valid():
                    raise IntegrityError("{where}: its signature does not verify", where=where)
            if len(real.entry) > MAX_FOREIGN_ENTRY:
                raise IntegrityError("{where} is too large to carry (over 760 kB)", where=where)
            if real.leaf in seen or self.state.holds(real.leaf):
                continue
            seen.add(real.leaf)
            self._check_event(real, where, members, chains)
            members.apply(real.event.kind, real.event.device, real.event.dseq, real.event.body)
            self.new.append(real)
            report.kinds[real.event.kind] += 1
            report.devices[fingerprint(real.event.device)] += 1
            if real.event.kind == ITEM_ADDED:
                sha, length = real.event.body.get("sha256"), real.event.body.get("size")
                if not _is_sha256(sha) or not isinstance(length, int) or isinstance(length, bool):
                    raise IntegrityError(
                        "{where}: item event lacks a valid sha256 or size", where=where
                    )
                ref = self.vault.blobs.ref(bytes.fromhex(sha))
                if sha in listed and self.vault.ledger.blob_key(ref) is None:
                    if listed[sha] != length:
                        raise IntegrityError("{where}: its file size disagrees", where=where)
                    self.needed[sha] = listed[sha]
        self.chains = chains
        report.new_events = len(self.new)
        return report

    def _membership(self) -> membership.Membership:
        m = membership.Membership(self.own)
        for batch in self.vault.ledger.events_after(-1):
            for _, signed in batch:
                real = unwrap(signed)
                if real.event.kind in membership.KINDS:
                    ev = real.event
                    m.apply(ev.kind, ev.device, ev.dseq, ev.body)
        return m

    def _require_trusted(
        self, members: membership.Membership, key: bytes, dseq: int | None, who: str
    ) -> None:
        if not members.known(key):
            raise InputError(
                "{who} is an unknown device ({device}); enrol it first, or import with "
                "--accept-unknown",
                who=who,
                device=fingerprint(key),
            )
        d = members.devices.get(key)
        if d is not None and d.revoked_after is not None and dseq is None:
            raise InputError(
                "{who} is a revoked device ({device}); import with --accept-unknown to take "
                "its events from before the revocation",
                who=who,
                device=fingerprint(key),
            )

    def _check_event(
        self,
        real: SignedEvent,
        where: str,
        members: membership.Membership,
        chains: dict[bytes, tuple[int, str]],
    ) -> None:
        ev = real.event
        device = fingerprint(ev.device)
        if members.is_own(ev.device):
            raise IntegrityError(
                "{where} is signed by this device but this vault does not hold it", where=where
            )
        if not members.allows(ev.device, ev.dseq):
            raise InputError(
                "{where} was signed by device {device} after it was revoked; the bundle is refused",
                where=where,
                device=device,
            )
        if not self.accept_unknown and not members.known(ev.device):
            self._require_trusted(members, ev.device, ev.dseq, where)
        # A device's own wrappers take sequence numbers too and are not carried on, so
        # its events arrive with gaps; they must still arrive in its order, once each.
        last = chains.get(ev.device)
        if last is not None and ev.dseq <= last[0]:
            raise IntegrityError(
                "{where}: device {device}'s events arrive out of order or forked "
                "(its event {found} after its event {want})",
                where=where,
                device=device,
                want=last[0],
                found=ev.dseq,
            )
        chains[ev.device] = (ev.dseq, real.id)

    # -- blobs ---------------------------------------------------------------------
    def wants(self, sha256: str) -> bool:
        return sha256 in self.needed and sha256 not in self.staged

    def stage(self, sha256: str, source: BinaryIO, size: int) -> None:
        """Encrypt one incoming blob into tmp/ (ciphertext only), checking its hash."""
        if size != self.needed[sha256]:
            raise IntegrityError("file {sha} in the bundle has the wrong size", sha=sha256[:12])
        blobs = self.vault.blobs
        blobs.ensure_dirs()
        try:
            staged = blobs.stage_stream(source, size, syncer=self.syncer)
        except LengthMismatch:
            raise IntegrityError("file {sha} in the bundle is truncated", sha=sha256[:12]) from None
        digest = staged.sha256
        if digest.hex() != sha256:
            blobs.discard(staged)
            raise IntegrityError(
                "file {sha} in the bundle does not match its recorded SHA-256", sha=sha256[:12]
            )
        self.staged[sha256] = staged

    def discard(self) -> None:
        self.syncer.close()
        for staged in self.staged.values():
            self.vault.blobs.discard(staged)
        self.staged.clear()

    # -- committing ----------------------------------------------------------------
    def commit(self) -> ImportReport:
        assert self.report is not None, "check() first"
        missing = [s for s in self.needed if s not in self.staged]
        if missing:
            self.discard()
            raise IntegrityError(
                "the bundle lacks {count} of the files its events name", count=len(missing)
            )
        if not self.new and not self.new_leaves:
            return self.report
        vault, blobs = self.vault, self.vault.blobs
        try:
            self.syncer.wait()  # every staged file is on disk before the commit point
        except OSError as exc:
            self.discard()
            raise_if_disk_full(exc)
            raise
        dirs: set[Path] = set()
        shredded: list[bytes] = []
        contents = self._item_contents()
        try:
            with vault.ledger.transaction() as tx:
                origin = self.report.origin
                for real in self.new:
                    body = {"entry": real.entry.decode(), "from": origin}
                    seq = tx.head.size
                    tx.append(IMPORTED_KIND, body)
                    if real.event.kind == ITEM_SHREDDED:
                        # Shredding is honoured wherever the item travelled: the key and
                        # the file go here too, as they did on the device that shredded.
                        ref = contents.get(str(real.event.body.get("item")))
                        if ref is not None and tx.blob_key(ref) is not None:
                            tx.forget_blob(ref)
                            shredded.append(ref)
                            self.report.shredded += 1
                        continue
                    if real.event.kind != ITEM_ADDED:
                        continue
                    sha = str(real.event.body["sha256"])
                    contents[real.id] = blobs.ref(bytes.fromhex(sha))
                    staged = self.staged.pop(sha, None)
                    if staged is None:
                        continue
                    ref = blobs.ref(staged.sha256)
                    if staged.inline is not None:
                        tx.put_inline_blob(ref, staged.inline)
                    else:
                        dirs.add(blobs.install(staged, ref))
                        tx.on_rollback.append(blobs.path(ref).unlink)
                    tx.put_blob_key(ref, blobs.seal_key(ref, staged.data_key), seq)
                    self.report.new_blobs += 1
                    self.report.blob_bytes += staged.size
                self.state.extend_mirror(origin, self.mirror_start, self.new_leaves)
                self.state.mark_held([r.leaf for r in self.new])
                chains = {
                    base64.b64encode(k).decode(): [v[0], v[1]] for k, v in self.chains.items()
                }
                self.state.put(CHAINS, chains)
                origins = self.state.get(ORIGINS)
                origins[origin] = self.mirror_start + len(self.new_leaves)
                self.state.put(ORIGINS, origins)
                blobs.sync(dirs)
        finally:
            self.discard()
        for ref in shredded:
            blobs.path(ref).unlink(missing_ok=True)
        return self.report

    def _item_contents(self) -> dict[str, bytes]:
        """Item id -> blob ref of the items held here, when this bundle shreds any."""
        if not any(r.event.kind == ITEM_SHREDDED for r in self.new):
            return {}
        refs = self.vault.blobs.ref
        return {i.id: refs(bytes.fromhex(i.sha256)) for i in self.vault.items()}
