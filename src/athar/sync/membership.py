"""Who may sign: an organisation's admin keys, enrolled devices, revocations, rotations.

Membership is itself signed events in the ledger, so it travels in bundles like any
record and every vault computes the same answer from the same events:

    device.enrolled  {device, encryption_key, name, admin}   signed by an admin
    device.revoked   {device, after_dseq, reason}            signed by an admin
    device.rotated   {old, new, new_encryption_key, after_dseq, new_signature}
                     signed by the old key, counter-signed by the new (athar.vault.rotation)

A vault's own device is the root of its trust (an admin in its own eyes), and so are its
own former keys up to their rotation. A device enrolled with ``admin: true`` by an admin
is an admin too, so a field laptop that enrolled the office's key accepts the devices
the office enrols: the organisation's trust root is its set of admin devices. Revocation
is by the revoked device's own sequence number: its events up to ``after_dseq`` stay
valid, later ones are refused wherever and whenever they arrive.

A rotated device keeps its enrolment (name, admin flag) under its new key, so an admin's
rotation carries its authority to the new key everywhere the rotation travels; its old
key's events after the rotation are refused like a revoked key's. Rotations are
resolved from the whole set of events, not their order (athar.vault.rotation.resolve),
and a rotation by a key an admin revoked before it is void. State is recomputed lazily
from the events taken in: there are few membership events, and a recomputation makes
the answer independent of when a rotation arrived relative to the enrolment it extends.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from athar.crypto.identity import fingerprint
from athar.errors import InputError, IntegrityError
from athar.vault import rotation
from athar.vault.events import IMPORTED_KIND, parse_entry, parse_essentials, unwrap

ENROLLED = "device.enrolled"
REVOKED = "device.revoked"
ROTATED = rotation.ROTATED
KINDS = (ENROLLED, REVOKED, ROTATED)

Taken = tuple[str, bytes, int, dict[str, Any]]  # kind, signer, dseq, body


@dataclass
class Device:
    key: bytes
    encryption_key: bytes
    name: str
    admin: bool
    revoked_after: int | None = None  # last valid dseq, when revoked
    rotated_to: bytes | None = None  # its next key, when rotated
    rotated_after: int | None = None  # last valid dseq of this key, when rotated

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key)

    @property
    def retired(self) -> bool:
        return self.rotated_after is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "key": base64.b64encode(self.key).decode(),
            "encryption_key": base64.b64encode(self.encryption_key).decode(),
            "name": self.name,
            "admin": self.admin,
            "revoked_after": self.revoked_after,
            "rotated_to": fingerprint(self.rotated_to) if self.rotated_to else None,
            "rotated_after": self.rotated_after,
        }


@dataclass
class _State:
    devices: dict[bytes, Device] = field(default_factory=dict)
    own_former: dict[bytes, rotation.Link] = field(default_factory=dict)
    links: dict[bytes, rotation.Link] = field(default_factory=dict)  # every honoured retirement
    preds: dict[bytes, rotation.Link] = field(default_factory=dict)  # new key -> its rotation


class Membership:
    def __init__(self, own: bytes) -> None:
        self.own = own
        self._taken: list[Taken] = []
        self._seen: set[tuple[str, bytes, int, str]] = set()
        self._state: _State | None = None

    # -- taking events in ----------------------------------------------------------
    def apply(self, kind: str, signer: bytes, dseq: int, body: dict[str, Any]) -> None:
        """Take one membership event into account (others are ignored); whether it counts
        (signed by an admin, not after a revocation) is decided when state is computed."""
        if kind not in KINDS:
            return
        # The same event taken twice (a bundle previewed, then imported) counts once; two
        # different events with one sequence number (a fork) are both kept.
        seen = (kind, signer, dseq, json.dumps(body, sort_keys=True, default=str))
        if seen in self._seen:
            return
        self._seen.add(seen)
        self._taken.append((kind, signer, dseq, body))
        self._state = None

    def preview(self, entries: Sequence[bytes]) -> None:
        """Take in the membership events a bundle carries before its events are checked
        one by one, so that their order inside the bundle does not matter: a device's
        rotation counts for its events before it in the bundle (its old key signed the
        first events, its new key the checkpoint) and a forged event placed before the
        rotation that retires its key is refused like one placed after it. Only events
        whose signatures verify are taken; the importer still checks every event."""
        for n, entry in enumerate(entries):
            try:
                if parse_essentials(entry)[0] not in KINDS:  # most: skip the full parse
                    continue
                outer = parse_entry(entry, f"entry {n}")
                real = unwrap(outer) if outer.event.kind == IMPORTED_KIND else outer
            except IntegrityError:
                continue  # the importer names it
            ev = real.event
            if ev.kind in KINDS and real.signature_valid() and outer.signature_valid():
                self.apply(ev.kind, ev.device, ev.dseq, ev.body)

    # -- computing -----------------------------------------------------------------
    def _computed(self) -> _State:
        if self._state is None:
            self._state = self._compute()
        return self._state

    def _compute(self) -> _State:
        parsed = [
            rotation.parse(signer, dseq, body)
            for kind, signer, dseq, body in self._taken
            if kind == ROTATED
        ]
        best, forked = rotation.resolve(link for link in parsed if link is not None)
        preds = rotation.predecessors(best, forked)
        st = _State(own_former=rotation.lineage(self.own, preds), links=best, preds=preds)
        enrolled: dict[bytes, Device] = {}
        revoked: dict[bytes, int] = {}
        for kind, signer, dseq, body in self._taken:
            if kind == ROTATED or not self._admin_at(st, enrolled, revoked, signer, dseq):
                continue
            try:
                key = base64.b64decode(str(body["device"]), validate=True)
                if kind == ENROLLED:
                    enc = base64.b64decode(str(body["encryption_key"]), validate=True)
                    enrolled[key] = Device(
                        key, enc, str(body.get("name", "")), bool(body.get("admin"))
                    )
                elif key != self.own and key not in st.own_former:
                    after = int(body["after_dseq"])
                    revoked[key] = min(after, revoked.get(key, after))
            except (KeyError, ValueError, TypeError, binascii.Error):
                continue  # a malformed membership event changes nothing
        for key in [*enrolled, *revoked]:
            self._materialise(st, enrolled, revoked, key)
        for old, link in best.items():  # a retired key keeps saying so, honoured or not
            if old in st.devices:
                d = st.devices[old]
                d.rotated_after = link.after
                d.rotated_to = None if old in forked else link.new
        return st

    def _record(
        self,
        st: _State,
        enrolled: dict[bytes, Device],
        revoked: dict[bytes, int],
        key: bytes,
        seen: frozenset[bytes] = frozenset(),
    ) -> Device | None:
        """The enrolment *key* acts under: its own, or (for a rotated device's new key)
        the one of the key it was rotated from, if that rotation is honoured: made before
        any revocation of the old key."""
        if key in enrolled:
            return enrolled[key]
        link = st.preds.get(key)
        if link is None or key in seen:
            return None
        cut = revoked.get(link.old)
        if cut is not None and cut < link.after:
            return None  # rotated after its revocation: a thief's rotation, void
        base = self._record(st, enrolled, revoked, link.old, seen | {key})
        if base is None:
            return None
        return Device(key, link.encryption_key, base.name, base.admin)

    def _materialise(
        self, st: _State, enrolled: dict[bytes, Device], revoked: dict[bytes, int], key: bytes
    ) -> None:
        """Put *key* and the keys its device rotated to into the public view."""
        while key not in st.devices:
            rec = self._record(st, enrolled, revoked, key)
            d = (
                Device(key, b"", "", False)
                if rec is None
                else Device(key, rec.encryption_key, rec.name, rec.admin)
            )
            d.revoked_after = revoked.get(key)
            st.devices[key] = d
            link = st.links.get(key)
            if rec is None or link is None or st.preds.get(link.new) is not link:
                return
            if self._record(st, enrolled, revoked, link.new) is None:
                return  # a void rotation: its new key stays unknown
            key = link.new

    def _admin_at(
        self,
        st: _State,
        enrolled: dict[bytes, Device],
        revoked: dict[bytes, int],
        signer: bytes,
        dseq: int,
    ) -> bool:
        link = st.links.get(signer)
        if link is not None and dseq > link.after:
            return False  # signed by a retired key after its rotation
        if signer == self.own or signer in st.own_former:
            return True
        cut = revoked.get(signer)
        if cut is not None:
            return False
        rec = self._record(st, enrolled, revoked, signer)
        return rec is not None and rec.admin

    # -- questions -----------------------------------------------------------------
    @property
    def devices(self) -> dict[bytes, Device]:
        """Every device this vault has heard of (not itself), keyed by key; a rotated
        device appears under each of its keys, the old ones marked retired."""
        return self._computed().devices

    @property
    def own_former(self) -> dict[bytes, rotation.Link]:
        return self._computed().own_former

    def is_own(self, key: bytes) -> bool:
        return key == self.own or key in self._computed().own_former

    def is_admin(self, key: bytes) -> bool:
        if self.is_own(key):
            return True
        d = self.devices.get(key)
        return d is not None and d.admin and d.revoked_after is None and not d.retired

    def known(self, key: bytes) -> bool:
        return self.is_own(key) or key in self.devices

    def allows(self, key: bytes, dseq: int) -> bool:
        """Whether an event with this device sequence number may be trusted."""
        st = self._computed()
        link = st.links.get(key)
        if link is not None and dseq > link.after:
            return False
        d = st.devices.get(key)
        return d is None or d.revoked_after is None or dseq <= d.revoked_after

    def same_device(self, key: bytes, current: bytes) -> bool:
        """Whether an event signed by *key* may stand in the ledger of the device whose key
        is now *current*: the same key or one it was rotated from. Whether the key was
        still valid at that event is the importer's per-event check (allows)."""
        return key == current or key in rotation.lineage(current, self._computed().preds)

    def by_encryption_key(self, enc: bytes) -> Device | None:
        for d in self.devices.values():
            if d.encryption_key == enc and not d.retired:
                return d
        for d in self.devices.values():
            if d.encryption_key == enc:
                return d
        return None

    def find(self, ident: str) -> Device:
        """A device by fingerprint (prefix), base64 key or name; a rotated device by its
        current key when its name is given."""
        ident = ident.strip()
        found = [
            d
            for d in self.devices.values()
            if d.fingerprint.startswith(ident) or d.name == ident or d.to_json()["key"] == ident
        ]
        if len(found) > 1:
            found = [d for d in found if not d.retired] or found
        if len(found) != 1:
            raise InputError("no single enrolled device matches {device}", device=ident)
        return found[0]


def build(own: bytes, events: Iterable[Taken]) -> Membership:
    """Membership from (kind, signer, dseq, body) in ledger order."""
    m = Membership(own)
    for kind, signer, dseq, body in events:
        m.apply(kind, signer, dseq, body)
    return m
