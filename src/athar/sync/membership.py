"""Who may sign: an organisation's admin keys, enrolled devices, revocations.

Membership is itself signed events in the ledger, so it travels in bundles like any
record and every vault computes the same answer from the same events:

    device.enrolled  {device, encryption_key, name, admin}   signed by an admin
    device.revoked   {device, after_dseq, reason}            signed by an admin

A vault's own device is the root of its trust (an admin in its own eyes). A device
enrolled with ``admin: true`` by an admin is an admin too, so a field laptop that
enrolled the office's key accepts the devices the office enrols. Revocation is by the
revoked device's own sequence number: its events up to ``after_dseq`` stay valid, later
ones are refused wherever and whenever they arrive (order of delivery does not matter).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from athar.crypto.identity import fingerprint
from athar.errors import InputError

ENROLLED = "device.enrolled"
REVOKED = "device.revoked"
KINDS = (ENROLLED, REVOKED)


@dataclass
class Device:
    key: bytes
    encryption_key: bytes
    name: str
    admin: bool
    revoked_after: int | None = None  # last valid dseq, when revoked

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key)

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "key": base64.b64encode(self.key).decode(),
            "encryption_key": base64.b64encode(self.encryption_key).decode(),
            "name": self.name,
            "admin": self.admin,
            "revoked_after": self.revoked_after,
        }


@dataclass
class Membership:
    own: bytes
    devices: dict[bytes, Device] = field(default_factory=dict)

    def is_admin(self, key: bytes) -> bool:
        if key == self.own:
            return True
        d = self.devices.get(key)
        return d is not None and d.admin and d.revoked_after is None

    def apply(self, kind: str, signer: bytes, dseq: int, body: dict[str, Any]) -> None:
        """Take one membership event into account; events by non-admins are ignored."""
        if kind not in KINDS or not self.is_admin(signer) or not self.allows(signer, dseq):
            return
        try:
            key = base64.b64decode(str(body["device"]), validate=True)
            if kind == ENROLLED:
                enc = base64.b64decode(str(body["encryption_key"]), validate=True)
                old = self.devices.get(key)
                revoked = old.revoked_after if old else None
                self.devices[key] = Device(
                    key, enc, str(body.get("name", "")), bool(body.get("admin")), revoked
                )
            elif key != self.own:
                after = int(body["after_dseq"])
                d = self.devices.get(key) or Device(key, b"", "", False)
                d.revoked_after = after if d.revoked_after is None else min(after, d.revoked_after)
                self.devices[key] = d
        except (KeyError, ValueError, TypeError):
            return  # a malformed membership event changes nothing

    def known(self, key: bytes) -> bool:
        return key == self.own or key in self.devices

    def allows(self, key: bytes, dseq: int) -> bool:
        """Whether an event with this device sequence number may be trusted."""
        d = self.devices.get(key)
        return d is None or d.revoked_after is None or dseq <= d.revoked_after

    def by_encryption_key(self, enc: bytes) -> Device | None:
        for d in self.devices.values():
            if d.encryption_key == enc:
                return d
        return None

    def find(self, ident: str) -> Device:
        """A device by fingerprint (prefix), base64 key or name."""
        ident = ident.strip()
        found = [
            d
            for d in self.devices.values()
            if d.fingerprint.startswith(ident) or d.name == ident or d.to_json()["key"] == ident
        ]
        if len(found) != 1:
            raise InputError("no single enrolled device matches {device}", device=ident)
        return found[0]


def build(own: bytes, events: Iterable[tuple[str, bytes, int, dict[str, Any]]]) -> Membership:
    """Membership from (kind, signer, dseq, body) in ledger order."""
    m = Membership(own)
    for kind, signer, dseq, body in events:
        m.apply(kind, signer, dseq, body)
    return m
