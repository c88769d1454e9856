"""The team server's side of `athar sync`: signed requests, resumable pushes, pulls
served by byte range, and a mailbox of bundles the server cannot read.

The web face (athar.web.routes.sync) only parses HTTP and calls this. Every check the
bundle importer makes applies unchanged, because what travels is a bundle: the push is
imported by ``bundle.read`` once its bytes are complete and their SHA-256 matches.

Requests are signed by the device's Ed25519 key as RFC 9421 HTTP Message Signatures
(method, authority, path, query and the RFC 9530 Content-Digest of the body, with
``created`` and a ``nonce``); a signature older than MAX_AGE, from the future, or whose
nonce was seen already (by this process or, through athar.sync.nonces, by an earlier one)
is refused, and so is a device the server's vault does not know
or has revoked. The staging files hold only age ciphertext, under names that say
nothing, in the vault's tmp/ (swept of dead processes' leftovers); relayed bundles wait in
``sync-mailbox/`` and are addressed to keys the server does not hold.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from http_message_signatures import (
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    algorithms,
)
from http_message_signatures.exceptions import HTTPMessageSignaturesException

from athar.crypto.identity import fingerprint
from athar.errors import AtharError, InputError, IntegrityError
from athar.sync import membership, service
from athar.sync.nonces import NonceBook
from athar.vault.events import unwrap
from athar.vault.fsutil import open_private, private_mkdir
from athar.vault.vault import Vault

PROTOCOL = "athar.sync/1"
TAG = "athar-sync"  # the signed application tag (RFC 9421 "tag" parameter)
COMPONENTS = ("@method", "@authority", "@path", "@query", "content-digest")
MAX_AGE = 300  # seconds a signature stays acceptable
MAX_SKEW = 30  # seconds a signature may come from the future
MAX_CHUNK = 8 << 20
MAX_BUNDLE = 64 << 30
STALE_SECONDS = 24 * 3600
FAILED_SECONDS = 600  # a refused transfer's answer is kept this long for a device to ask again
MAILBOX_DIR = "sync-mailbox"


class Unauthenticated(AtharError):
    """The request does not prove which device sent it (HTTP 401)."""

    status = 401


class Refused(AtharError):
    """The device is known to be unwelcome: unknown here, or revoked (HTTP 403)."""

    status = 403


class Conflict(AtharError):
    """A chunk not at the offset the server stands at (HTTP 409); nothing stored."""

    status = 409


class Headers(Protocol):
    def items(self) -> Any: ...


@dataclass
class SignedRequest:
    """What RFC 9421 verification reads of a request."""

    method: str
    url: str
    headers: Headers


@dataclass
class Transfer:
    """A bundle on its way: a push being received, or a pull or relay being served."""

    id: str
    kind: str  # "push", "relay" or "pull"
    device: bytes
    path: Path
    size: int
    sha256: str
    offset: int = 0
    relay_to: bytes | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    hasher: Any = field(default_factory=hashlib.sha256, repr=False)
    touched: float = field(default_factory=time.time)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    started: bool = False  # its job (import, or export for a pull) was launched
    result: dict[str, Any] | None = None  # the job's answer, once done
    error: AtharError | None = None  # or its refusal, kept to answer every later ask
    finished: bool = False  # a pull the device took (its staged file is gone)

    def status(self) -> dict[str, Any]:
        return {"id": self.id, "offset": self.offset, "size": self.size}


class _DeviceKeys(HTTPSignatureKeyResolver):
    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(_device_key(key_id))

    def resolve_private_key(self, key_id: str) -> Any:
        raise NotImplementedError("the server verifies only")


class _Verifier(HTTPMessageVerifier):
    # The library's own window is widened: MAX_AGE and MAX_SKEW are checked below, so
    # that a stale stamp gets its own message.
    max_clock_skew = timedelta(days=3650)


def _device_key(key_id: str) -> bytes:
    try:
        raw = base64.b64decode(key_id, validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise Unauthenticated("the request is not signed by a device key")
    return raw


class SyncServer:
    """One per running server; thread-safe. Methods that touch the vault (named so
    below) must run on the vault's thread; the others on any thread."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self._verifier = _Verifier(
            signature_algorithm=algorithms.ED25519, key_resolver=_DeviceKeys()
        )
        self._nonces = NonceBook(
            vault.root, vault.keys.subkey("sync/nonces"), vault.keys.subkey("sync/nonce-tags")
        )
        self._transfers: dict[str, Transfer] = {}
        self._lock = threading.Lock()
        self._members: tuple[int, membership.Membership] | None = None

    # -- authentication (any thread) -------------------------------------------------
    def verify(self, req: SignedRequest, body: bytes, now: float | None = None) -> bytes:
        """The device key that signed this request, or Unauthenticated."""
        now = time.time() if now is None else now
        try:
            results = self._verifier.verify(
                req, max_age=None, expect_tag=TAG, require_components=COMPONENTS, body=body
            )
        except (InvalidSignature, HTTPMessageSignaturesException, ValueError):
            raise Unauthenticated("the request's signature is missing or does not verify") from None
        params = results[0].parameters
        created, nonce = params.get("created"), params.get("nonce")
        if not isinstance(created, int) or not isinstance(nonce, str) or len(nonce) < 16:
            raise Unauthenticated("the request's signature is missing or does not verify")
        if created < now - MAX_AGE or created > now + MAX_SKEW:
            raise Unauthenticated(
                "the request's signature is stale or from the future; check this device's clock"
            )
        key = _device_key(str(params.get("keyid")))
        with self._lock:
            if not self._nonces.accept(key, nonce, float(created), now - MAX_AGE - MAX_SKEW):
                raise Unauthenticated("a replayed request was refused")
        return key

    # -- membership (vault thread) ---------------------------------------------------
    def members(self) -> membership.Membership:
        """The vault's membership, brought up to date with the events added since it
        was last asked (as service.members, without reading the whole ledger again)."""
        size = self.vault.ledger.size()
        if self._members is None:
            self._members = (0, membership.Membership(self.vault.keys.identity.public_key))
        seen, m = self._members
        if seen != size:
            for batch in self.vault.ledger.events_after(seen - 1):
                for seq, signed in batch:
                    ev = unwrap(signed).event
                    if seq < size and ev.kind in membership.KINDS:
                        m.apply(ev.kind, ev.device, ev.dseq, ev.body)
            self._members = (size, m)
        return m

    def device(self, key: bytes) -> membership.Device:
        """The enrolled, unrevoked device *key*, or Refused (vault thread)."""
        d = self.members().devices.get(key)
        if d is None:
            raise Refused(
                "this device ({device}) is not enrolled on the server; ask an admin to enrol it",
                device=fingerprint(key),
            )
        if d.revoked_after is not None or d.retired:  # retired: its key was rotated
            raise Refused(
                "this device ({device}) is revoked on the server and may not sync",
                device=fingerprint(key),
            )
        return d

    def state(self, key: bytes, origin: str) -> dict[str, Any]:
        """What the server is, and its signed receipt of what it holds of *origin*
        (vault thread)."""
        self.device(key)
        card = service.card(self.vault)
        return {
            "protocol": PROTOCOL,
            "server": {**card, "origin": self.vault.ledger.origin},
            "receipt": service.receipt_for(self.vault, origin) if origin else None,
            "held": service.held_of(self.vault, origin) if origin else 0,
        }

    # -- pushes (start and commit on the vault thread, chunks on any) -----------------
    def start_push(self, key: bytes, size: int, sha256: str, relay_to: str | None) -> Transfer:
        self.device(key)
        if not 0 < size <= MAX_BUNDLE:
            raise InputError("a bundle must be 1 byte to {limit} GB", limit=MAX_BUNDLE >> 30)
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise InputError("expected the bundle's SHA-256 in hex")
        target = None
        if relay_to:
            try:
                target = base64.b64decode(relay_to, validate=True)
            except ValueError:
                target = b""
            if len(target) != 32:
                raise InputError("{key} is not a device key (base64 of 32 bytes)", key=relay_to)
            self.device_for_relay(target)
        kind = "relay" if target else "push"
        with self._lock:  # the same announcement again (its answer was cut off): resume
            for t in self._transfers.values():
                same = (t.kind, t.device, t.size, t.sha256, t.relay_to)
                if same == (kind, key, size, sha256, target) and not t.started:
                    return t
        return self._new(kind, key, size, sha256, relay_to=target)

    def device_for_relay(self, target: bytes) -> None:
        d = self.members().devices.get(target)
        if d is None or d.revoked_after is not None:
            raise InputError(
                "the server does not know device {device}; it cannot keep bundles for it",
                device=fingerprint(target),
            )

    def transfer(self, key: bytes, tid: str, kind: str) -> Transfer:
        with self._lock:
            t = self._transfers.get(tid)
        if t is None or t.device != key or t.kind not in kind.split("|"):
            raise InputError("no transfer {id} on the server; start again", id=tid[:16])
        t.touched = time.time()
        return t

    def put_chunk(self, t: Transfer, offset: int, data: bytes) -> None:
        """Append one chunk where the transfer stands; Conflict (nothing stored) if it
        starts elsewhere, e.g. a chunk sent again after a dropped connection."""
        with t.lock:
            if offset != t.offset:
                raise Conflict(
                    "the server holds {offset} bytes of this bundle; continue from there",
                    offset=t.offset,
                )
            if not data or len(data) > MAX_CHUNK:
                raise InputError("a chunk is 1 byte to {n} MiB", n=MAX_CHUNK >> 20)
            if t.offset + len(data) > t.size:
                raise InputError("more data than the announced size {size}", size=t.size)
            with open(t.path, "ab") as fh:
                fh.write(data)
            t.hasher.update(data)
            t.offset += len(data)

    # -- jobs: long work runs apart from the request that asked for it -------------------
    # An import or an export may take longer than the link stays up; the request that
    # starts one answers at once, and the device asks again until the answer is ready.
    def claim(self, t: Transfer) -> bool:
        """Whether the caller must launch *t*'s job (only the first ask does)."""
        with self._lock:
            if t.started:
                return False
            t.started = True
            return True

    @staticmethod
    def outcome(t: Transfer) -> dict[str, Any] | None:
        """The job's answer, None while it runs, or its refusal raised again."""
        if t.error is not None:
            raise t.error
        return t.result

    def _run(self, t: Transfer, job: Callable[[], dict[str, Any]]) -> None:
        try:
            t.result = job()
        except AtharError as exc:
            t.error = exc
        except Exception as exc:  # a bug: said, not left running forever
            t.error = AtharError("the server could not finish: {reason}", reason=type(exc).__name__)
        if t.error is not None:
            t.path.unlink(missing_ok=True)
            t.touched = time.time() - STALE_SECONDS + FAILED_SECONDS

    def commit(self, key: bytes, t: Transfer) -> None:
        """Check the whole bundle, then import it or file it in the mailbox (vault thread)."""
        self._run(t, lambda: self._commit(key, t))

    def ready_to_commit(self, t: Transfer) -> None:
        if t.offset != t.size:
            raise InputError(
                "the bundle is incomplete: {got} of {size} bytes", got=t.offset, size=t.size
            )

    def _commit(self, key: bytes, t: Transfer) -> dict[str, Any]:
        self.device(key)
        if t.hasher.hexdigest() != t.sha256:
            raise IntegrityError("the bundle's bytes do not match its SHA-256; nothing was kept")
        if t.relay_to is not None:
            return {"mailbox": self._file_in_mailbox(t)}
        try:
            report = service.import_file(self.vault, t.path)
        finally:
            t.path.unlink(missing_ok=True)
        return {
            "report": report.to_json(),
            "receipt": service.receipt_for(self.vault, report.origin),
        }

    # -- pulls -------------------------------------------------------------------------
    def pull_job(self, key: bytes, receipt: str | None, origin: str) -> tuple[Transfer, bool]:
        """The device's pull for this receipt: the one asked for already, or a new one
        (True: launch run_pull). A device follows one pull at a time; older ones go."""
        ask = [receipt or "", origin]
        with self._lock:
            mine = [
                t
                for t in self._transfers.values()
                if t.kind == "pull" and t.device == key and not t.finished
            ]
        for t in mine:
            if t.meta.get("ask") == ask:
                return t, False
            self._drop(t)
        tid = secrets.token_hex(16)
        t = self._new("pull", key, 0, "", tid=tid, path=self._staging(tid))
        t.meta["ask"] = ask
        t.started = True
        return t, True

    def run_pull(self, key: bytes, t: Transfer) -> None:
        """Stage a bundle of what the device lacks (vault thread)."""
        self._run(t, lambda: self._pull(key, t))

    def _pull(self, key: bytes, t: Transfer) -> dict[str, Any]:
        d = self.device(key)
        receipt, origin = t.meta["ask"]
        since = service.ack_from(self.vault, receipt, key) if receipt else 0
        size = self.vault.ledger.size()
        if since >= size or not service.peer_lacks(self.vault, since, origin or None):
            return {"id": None}
        with open(open_private(t.path), "wb") as sink:
            done = service.export_for_peer(
                self.vault, d.encryption_key, since, sink, peer_origin=origin or None
            )
        t.sha256 = _sha256_file(t.path)
        t.size = t.offset = t.path.stat().st_size
        return {**t.status(), "sha256": t.sha256, "events": done.events, "blobs": done.blobs}

    def pull_outcome(self, t: Transfer) -> dict[str, Any] | None:
        """As outcome(); "nothing new" is said once (the next ask looks again)."""
        result = self.outcome(t)
        if result is not None and not result.get("id"):
            self._drop(t)
        return result

    def pulled(self, t: Transfer) -> Path:
        """The staged file of a pull ready to download."""
        if t.finished or not t.result or not t.result.get("id"):
            raise InputError("no transfer {id} on the server; start again", id=t.id[:16])
        return t.path

    def finish_pull(self, key: bytes, t: Transfer, receipt: str | None) -> int:
        """The device imported the pull: take its receipt, drop the staged file."""
        with t.lock:
            if not t.finished:
                size = service.ack_from(self.vault, receipt, key) if receipt else 0
                t.path.unlink(missing_ok=True)
                t.finished = True
                t.meta["held"] = size
            return int(t.meta.get("held", 0))

    # -- mailbox ---------------------------------------------------------------------
    def _file_in_mailbox(self, t: Transfer) -> str:
        box = service.mailbox(self.vault)
        folder = self.vault.root / MAILBOX_DIR
        private_mkdir(folder)
        os.replace(t.path, folder / t.id)
        assert t.relay_to is not None
        box[t.id] = {
            "to": base64.b64encode(t.relay_to).decode(),
            "from": base64.b64encode(t.device).decode(),
            "size": t.size,
            "sha256": t.sha256,
        }
        service.put_mailbox(self.vault, box)
        return t.id

    def mailbox(self, key: bytes) -> list[dict[str, Any]]:
        """Bundles waiting for this device (vault thread)."""
        self.device(key)
        mine = base64.b64encode(key).decode()
        return [
            {
                "id": mid,
                "size": m["size"],
                "sha256": m["sha256"],
                "from": fingerprint(base64.b64decode(m["from"])),
            }
            for mid, m in service.mailbox(self.vault).items()
            if m["to"] == mine
        ]

    def mailbox_file(self, key: bytes, mid: str) -> Path:
        """The file of one bundle waiting for this device (vault thread)."""
        entry = service.mailbox(self.vault).get(mid)
        if entry is None or entry["to"] != base64.b64encode(key).decode():
            raise InputError("no bundle {id} waits for this device", id=mid[:16])
        return self.vault.root / MAILBOX_DIR / mid

    def mailbox_delete(self, key: bytes, mid: str) -> None:
        """Forget a bundle its recipient took (again: nothing happens)."""
        box = service.mailbox(self.vault)
        if mid not in box:
            return
        path = self.mailbox_file(key, mid)
        del box[mid]
        service.put_mailbox(self.vault, box)
        path.unlink(missing_ok=True)

    # -- housekeeping ----------------------------------------------------------------
    def _staging(self, tid: str) -> Path:
        tmp = self.vault.blobs.tmp_dir
        private_mkdir(tmp)
        return tmp / f"{os.getpid()}-sync-{tid}"

    def _new(
        self,
        kind: str,
        key: bytes,
        size: int,
        sha256: str,
        *,
        tid: str | None = None,
        path: Path | None = None,
        relay_to: bytes | None = None,
    ) -> Transfer:
        self._sweep()
        tid = tid or secrets.token_hex(16)
        if path is None:
            path = self._staging(tid)
            os.close(open_private(path))
        t = Transfer(tid, kind, key, path, size, sha256, relay_to=relay_to)
        with self._lock:
            self._transfers[tid] = t
        return t

    def _drop(self, t: Transfer) -> None:
        with self._lock:
            self._transfers.pop(t.id, None)
        t.path.unlink(missing_ok=True)

    def _sweep(self) -> None:
        now = time.time()
        with self._lock:
            stale = [t for t in self._transfers.values() if now - t.touched > STALE_SECONDS]
        for t in stale:
            self._drop(t)

    def close(self) -> None:
        with self._lock:
            transfers = list(self._transfers.values())
        for t in transfers:
            self._drop(t)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()
