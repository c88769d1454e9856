"""Signed events: the unit of the ledger.

An event is a JSON object serialised canonically (RFC 8785 JCS) and signed by a device's
Ed25519 key inside a DSSE envelope (the in-toto / Sigstore "Dead Simple Signing
Envelope"), itself serialised with JCS. The ledger entry is those envelope bytes; the
event id is the RFC 9162 leaf hash of the entry, so the id is also the Merkle leaf.

Each event names its device, a per-device sequence number and the id of that device's
previous event: a hash chain per device, so a withheld or reordered event is named
precisely, not just noticed as "the root differs".
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from athar.crypto.identity import DeviceIdentity, fingerprint, verify_signature
from athar.errors import IntegrityError
from athar.vault.canonical import canonical_json
from athar.vault.merkle import leaf_hash

PAYLOAD_TYPE = "application/vnd.athar.event+json"
EVENT_VERSION = 1
MAX_ENTRY_BYTES = 1 << 20


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature actually covers."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


@dataclass(frozen=True)
class Event:
    kind: str
    device: bytes
    dseq: int
    prev: str | None
    time: str
    body: dict[str, Any]

    def payload(self) -> bytes:
        return canonical_json(
            {
                "v": EVENT_VERSION,
                "kind": self.kind,
                "device": base64.b64encode(self.device).decode(),
                "dseq": self.dseq,
                "prev": self.prev,
                "time": self.time,
                "body": self.body,
            }
        )


@dataclass(frozen=True)
class SignedEvent:
    entry: bytes
    event: Event
    payload: bytes
    signature: bytes
    leaf: bytes = b""  # RFC 9162 leaf hash of entry; filled in by __post_init__

    def __post_init__(self) -> None:
        # Computed once here: every event's leaf is needed, and functools.cached_property
        # takes a lock per first access on Python 3.11.
        object.__setattr__(self, "leaf", leaf_hash(self.entry))

    @property
    def id(self) -> str:
        return self.leaf.hex()

    def signature_valid(self) -> bool:
        return verify_signature(self.event.device, self.signed_message(), self.signature)

    def signed_message(self) -> bytes:
        return pae(PAYLOAD_TYPE, self.payload)


def sign_event(event: Event, identity: DeviceIdentity) -> SignedEvent:
    if event.device != identity.public_key:
        raise ValueError("event names another device than the signer")
    payload = event.payload()
    signature = identity.sign(pae(PAYLOAD_TYPE, payload))
    envelope: dict[str, Any] = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [
            {"keyid": fingerprint(event.device), "sig": base64.b64encode(signature).decode()}
        ],
    }
    return SignedEvent(canonical_json(envelope, known_simple=True), event, payload, signature)


def _field(obj: dict[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = obj.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise IntegrityError(
            "{where}: field {name} is missing or malformed", where=where, name=name
        )
    return value


_ENVELOPE_HEAD = b'{"payload":"'
_ENVELOPE_MID = b'","payloadType":"' + PAYLOAD_TYPE.encode() + b'","signatures":[{"keyid":"'
_ENVELOPE_SIG = b'","sig":"'
_ENVELOPE_TAIL = b'"}]}'


_ENVELOPE_QUOTES = 18  # the envelope's own quotes; its values (base64, hex id) have none


def _b64(text: str | bytes) -> bytes:
    """Strict base64: what ``base64.b64decode(text, validate=True)`` accepts, without its
    regular-expression pass over the text (a rebuild decodes a million payloads)."""
    return binascii.a2b_base64(text, strict_mode=True)


def _split_canonical_envelope(entry: bytes) -> tuple[bytes, bytes] | None:
    """(payload b64, sig b64) if *entry* is exactly the JCS envelope Athar writes.

    Every entry Athar signs has this shape; reading it by slicing skips a JSON parse per
    event in `verify` and in a rebuild. With exactly the envelope's own quotes and no
    backslash, no value can hold a quote or an escape, so the separators found are the
    envelope's. Anything else takes the general path.
    """
    if (
        not entry.startswith(_ENVELOPE_HEAD)
        or not entry.endswith(_ENVELOPE_TAIL)
        or entry.count(b'"') != _ENVELOPE_QUOTES
        or b"\\" in entry
    ):
        return None
    mid = entry.find(b'"', len(_ENVELOPE_HEAD))
    if not entry.startswith(_ENVELOPE_MID, mid):
        return None
    sig_at = entry.find(b'"', mid + len(_ENVELOPE_MID))
    if not entry.startswith(_ENVELOPE_SIG, sig_at):
        return None
    return (
        entry[len(_ENVELOPE_HEAD) : mid],
        entry[sig_at + len(_ENVELOPE_SIG) : -len(_ENVELOPE_TAIL)],
    )


def _split_envelope(entry: bytes, where: str) -> tuple[str, str]:
    envelope = json.loads(entry)
    if not isinstance(envelope, dict) or envelope.get("payloadType") != PAYLOAD_TYPE:
        raise ValueError
    sigs = _field(envelope, "signatures", list, where)
    if len(sigs) != 1 or not isinstance(sigs[0], dict):
        raise ValueError
    return _field(envelope, "payload", str, where), _field(sigs[0], "sig", str, where)


def _payload_and_signature(entry: bytes, where: str) -> tuple[bytes, str | bytes]:
    """(payload, signature b64) of an entry; ValueError if malformed."""
    if len(entry) > MAX_ENTRY_BYTES:
        raise IntegrityError("{where} is larger than 1 MiB", where=where)
    parts = _split_canonical_envelope(entry) or _split_envelope(entry, where)
    return _b64(parts[0]), parts[1]


def _payload(entry: bytes, where: str) -> tuple[bytes, str | bytes, dict[str, Any]]:
    """(payload, signature b64, payload object) of an entry; ValueError if malformed."""
    payload, signature = _payload_and_signature(entry, where)
    data = orjson.loads(payload)
    if not isinstance(data, dict) or data.get("v") != EVENT_VERSION:
        raise ValueError
    return payload, signature, data


@lru_cache(maxsize=1024)
def _device_key(b64: str) -> bytes:
    return _b64(b64)


def parse_essentials(entry: bytes, where: str = "event") -> tuple[str, bytes, dict[str, Any]]:
    """(kind, device, body) of a ledger entry, as strictly as parse_entry checks them.

    For projections, which read every event and need only these: no signature decoded,
    no leaf hash, no objects built (a rebuild reads a million events)."""
    return essentials_of_payload(entry_payload(entry, where), where)


def entry_payload(entry: bytes, where: str = "event") -> bytes:
    """The payload of a ledger entry, checked as parse_entry checks it: the first half
    of parse_essentials, which a rebuild runs in a process of its own."""
    try:
        return _payload_and_signature(entry, where)[0]
    except IntegrityError:
        raise
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):  # deep JSON
        raise IntegrityError("{where} is not a well-formed signed event", where=where) from None


def essentials_of_payload(
    payload: bytes, where: str = "event"
) -> tuple[str, bytes, dict[str, Any]]:
    """The second half of parse_essentials: (kind, device, body) of an entry's payload."""
    try:
        data = orjson.loads(payload)
        if not isinstance(data, dict) or data.get("v") != EVENT_VERSION:
            raise ValueError
        kind = _field(data, "kind", str, where)
        body = _field(data, "body", dict, where)
        if kind == IMPORTED_KIND:  # seen as the origin device made it (athar.sync)
            return parse_essentials(inner_entry(body, where), where)
        return (kind, _device_key(_field(data, "device", str, where)), body)
    except IntegrityError:
        raise
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):  # deep JSON
        raise IntegrityError("{where} is not a well-formed signed event", where=where) from None


def parse_entry(entry: bytes, where: str = "event") -> SignedEvent:
    """Parse ledger entry bytes into a SignedEvent, strictly; does not check the signature."""
    try:
        payload, signature_b64, data = _payload(entry, where)
        signature = _b64(signature_b64)
        prev = data.get("prev")
        if prev is not None and not isinstance(prev, str):
            raise ValueError
        event = Event(
            kind=_field(data, "kind", str, where),
            device=_b64(_field(data, "device", str, where)),
            dseq=_field(data, "dseq", int, where),
            prev=prev,
            time=_field(data, "time", str, where),
            body=_field(data, "body", dict, where),
        )
    except IntegrityError:
        raise
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):  # deep JSON
        raise IntegrityError("{where} is not a well-formed signed event", where=where) from None
    return SignedEvent(entry=entry, event=event, payload=payload, signature=signature)


# -- events carried in from another device (athar.sync) ------------------------------
# The receiving device appends a wrapper it signs itself, holding the origin's entry
# byte for byte; the ledger's own chain, Merkle tree and audit stay single-signer, and
# readers that care about content (projections) look through the wrapper.
IMPORTED_KIND = "event.imported"


def inner_entry(body: dict[str, Any], where: str = "event") -> bytes:
    entry = body.get("entry")
    if not isinstance(entry, str):
        raise IntegrityError(
            "{where}: field {name} is missing or malformed", where=where, name="entry"
        )
    return entry.encode("utf-8")


def unwrap(signed: SignedEvent, where: str = "event") -> SignedEvent:
    """The event as its origin device signed it (itself when it was made here)."""
    if signed.event.kind != IMPORTED_KIND:
        return signed
    return parse_entry(inner_entry(signed.event.body, where), where)
