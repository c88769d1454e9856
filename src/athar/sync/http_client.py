"""The device's side of `athar sync URL`: the bundle exchange carried over HTTP(S).

1. Ask the server what it holds of our ledger (its signed receipt, checked like any
   receipt: signature, and a consistency proof against our own ledger).
2. Push a bundle of the rest, in chunks; after a dropped connection ask the server
   where it stands and go on from there. The server imports it only once the whole
   bundle's SHA-256 matches, with every check of `athar bundle import`.
3. Pull a bundle of what we lack, by HTTP Range from what already arrived, and import it.
4. Leave bundles for devices the server cannot read for (--relay-to), and take those
   others left for us.

Every request is signed with this device's key (RFC 9421, see athar.sync.server) and
sent again after a drop with a fresh signature; a link that drops every few seconds
still completes. TLS with the system's CAs or a pinned certificate; plain http only to
this machine or when explicitly allowed; an optional SOCKS5 proxy (Tor).
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import ipaddress
import os
import secrets
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from http_message_signatures import HTTPMessageSigner, algorithms

from athar.crypto.identity import DeviceIdentity, fingerprint
from athar.errors import AtharError, InputError, IntegrityError
from athar.sync import service
from athar.sync.server import COMPONENTS, TAG, Conflict, Refused, Unauthenticated
from athar.vault.fsutil import open_private, private_mkdir
from athar.vault.vault import Vault

Advance = Callable[[int], None]
Progress = Callable[[str, int], AbstractContextManager[Advance]]
STALE = "the request's signature is stale or from the future; check this device's clock"
_KINDS: dict[str, type[AtharError]] = {
    c.__name__: c for c in (InputError, IntegrityError, Unauthenticated, Refused, Conflict)
}


@dataclass
class Options:
    token: str | None = None
    proxy: str | None = None
    cacert: Path | None = None
    insecure_http: bool = False
    chunk: int = 2 << 20
    timeout: float = 600.0  # a commit imports the whole bundle before it answers
    patience: int = 60  # failed attempts in a row before giving up
    relay_to: list[str] = field(default_factory=list)


@dataclass
class Summary:
    sent_events: int = 0
    sent_files: int = 0
    sent_bytes: int = 0
    received_events: int = 0
    received_files: int = 0
    received_bytes: int = 0
    resent_bytes: int = 0
    drops: int = 0
    relayed: int = 0
    mailbox: int = 0
    problems: list[AtharError] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "problems": [str(p) for p in self.problems]}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, insecure_http: bool) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError("{url} is not a server address (https://…)", url=url)
    if parts.scheme == "http" and not insecure_http and not _is_loopback(parts.hostname):
        raise InputError(
            "plain http is only for this machine; use https://, or --insecure-http if "
            "anyone on the way may read and alter what is sent"
        )
    return url.rstrip("/")


def _tls(cacert: Path | None) -> ssl.SSLContext:
    """The system's CAs, or only the given certificate (pinned)."""
    if cacert is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(cacert))
    except (OSError, ssl.SSLError):
        raise InputError("{path} is not a readable certificate file", path=str(cacert)) from None


class _Message:
    """The request as RFC 9421 signing reads (and writes) it."""

    def __init__(self, request: httpx.Request) -> None:
        self.method = request.method
        self.url = str(request.url)
        self.headers = request.headers


class Link:
    """HTTP to the server: signs each request, sends it again after a dropped connection."""

    def __init__(self, identity: DeviceIdentity, url: str, opts: Options) -> None:
        self.identity = identity
        self.opts = opts
        self.key_id = base64.b64encode(identity.public_key).decode()
        self.signer = HTTPMessageSigner(signature_algorithm=algorithms.ED25519)
        self.clock = 0.0  # server time minus ours, learnt if our clock is refused
        self.drops = 0
        self._failures = 0
        if opts.proxy and urlsplit(opts.proxy).scheme not in ("socks5", "socks5h", "http"):
            raise InputError(
                "{proxy} is not a proxy address (socks5://host:port)", proxy=opts.proxy
            )
        self.http = httpx.Client(
            base_url=check_url(url, opts.insecure_http),
            verify=_tls(opts.cacert),
            proxy=opts.proxy,
            timeout=httpx.Timeout(opts.timeout, connect=30.0),
            trust_env=False,
        )

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, *, body: bytes = b"", **kw: Any) -> httpx.Request:
        headers = dict(kw.pop("headers", {}))
        if self.opts.token:
            headers["authorization"] = f"Bearer {self.opts.token}"
        req = self.http.build_request(method, path, content=body, headers=headers, **kw)
        msg = _Message(req)
        prepared = self.signer.prepare(
            msg,
            key_id=self.key_id,
            created=datetime.fromtimestamp(time.time() + self.clock, tz=UTC),
            nonce=secrets.token_urlsafe(18),
            tag=TAG,
            covered_component_ids=COMPONENTS,
            body=body,
        )
        self.signer.apply(msg, prepared, self.identity.sign(prepared.signature_base))
        return req

    def failed(self, exc: Exception) -> None:
        """Count a drop; give up after too many in a row (at once if the server's
        certificate is not trusted: trying again will not change it)."""
        if _untrusted(exc):
            raise InputError(
                "the server's certificate is not trusted ({reason}); give the server's "
                "certificate with --cacert",
                reason=_untrusted(exc).verify_message or "?",  # type: ignore[union-attr]
            ) from None
        self.drops += 1
        self._failures += 1
        if self._failures >= self.opts.patience:
            raise InputError(
                "the server could not be reached after {count} tries: {reason}",
                count=self._failures,
                reason=str(exc) or type(exc).__name__,
            ) from None
        time.sleep(min(2.0, 0.02 * 2 ** min(self._failures, 7)))

    def send(self, req: httpx.Request, *, stream: bool = False) -> httpx.Response:
        resp = self.http.send(req, stream=stream)
        self._failures = 0
        return resp

    def call(self, method: str, path: str, data: Any = None, *, raw: bytes = b"", **kw: Any) -> Any:
        """A request (JSON *data* or *raw* bytes), sent until an answer arrives; its JSON
        answer, or its error."""
        body = raw if data is None else _dumps(data)
        headers = {"content-type": "application/json"} if data is not None else {}
        clock_fixed = False
        while True:
            try:
                resp = self.send(self.request(method, path, body=body, headers=headers, **kw))
            except httpx.TransportError as exc:
                self.failed(exc)
                continue
            if resp.status_code < 400 or resp.status_code == 409:
                return resp.json()
            err = error_of(resp)
            if err.template == STALE and not clock_fixed and "date" in resp.headers:
                server = email.utils.parsedate_to_datetime(resp.headers["date"]).timestamp()
                self.clock, clock_fixed = server - time.time(), True
                continue
            raise err

    def download(self, path: str, dest: Path, size: int, sha256: str, bar: Advance) -> int:
        """Fetch *path* into *dest*, resuming by Range after a drop; bytes fetched."""
        with open(dest, "ab") as fh:
            have = fh.tell()
            while have < size:
                req = self.request("GET", path, headers={"range": f"bytes={have}-"})
                try:
                    resp = self.send(req, stream=True)
                    try:
                        if resp.status_code >= 400:
                            resp.read()
                            raise error_of(resp)
                        if resp.status_code == 200 and have:  # Range ignored: start over
                            fh.truncate(0)
                            fh.seek(0)
                            have = 0
                        for block in resp.iter_bytes(1 << 20):
                            fh.write(block)
                            have += len(block)
                            bar(len(block))
                    finally:
                        resp.close()
                except httpx.TransportError as exc:
                    self.failed(exc)
        if _sha256_file(dest) != sha256:
            dest.unlink(missing_ok=True)
            raise IntegrityError("the bundle's bytes do not match its SHA-256; nothing was kept")
        return have


def _untrusted(exc: BaseException | None) -> ssl.SSLCertVerificationError | None:
    while exc is not None:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _dumps(data: Any) -> bytes:
    import json

    return json.dumps(data, ensure_ascii=False).encode()


def error_of(resp: httpx.Response) -> AtharError:
    """The server's refusal as the same error here (said in our language by the face)."""
    try:
        data = resp.json()
        cls = _KINDS.get(str(data.get("kind")), AtharError)
        return cls(str(data["template"]), **dict(data.get("params") or {}))
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        return AtharError(
            "the server answered {status}: {reason}",
            status=resp.status_code,
            reason=resp.reason_phrase,
        )


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


@contextmanager
def _temp(vault: Vault, what: str) -> Iterator[Path]:
    """A ciphertext file in the vault's tmp/ (swept if this process dies)."""
    tmp = vault.blobs.tmp_dir
    private_mkdir(tmp)
    path = tmp / f"{os.getpid()}-sync-{what}-{secrets.token_hex(8)}"
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


class Syncer:
    def __init__(self, vault: Vault, link: Link, progress: Progress | None) -> None:
        self.vault = vault
        self.link = link
        self.progress = progress or (lambda label, total: nullcontext(lambda n: None))
        self.summary = Summary()
        self.server_key = b""
        self.server_origin = ""

    def run(self) -> Summary:
        vault, link = self.vault, self.link
        origin = vault.ledger.origin
        state = link.call("GET", "/api/sync/state", params={"origin": origin})
        server = state["server"]
        self.server_key = base64.b64decode(server["key"])
        self.server_origin = str(server["origin"])
        device = service.members(vault).devices.get(self.server_key)
        if device is None or device.revoked_after is not None or device.retired:
            raise InputError(
                "the server's device ({device}) is not enrolled in this vault (or is revoked); "
                "enrol it first with athar device enrol",
                device=fingerprint(self.server_key),
            )
        if self.server_origin == origin:
            raise InputError("the server serves this very vault; nothing to sync")
        since = (
            service.ack_from(vault, state["receipt"], self.server_key) if state["receipt"] else 0
        )
        if since < vault.ledger.size() and service.peer_lacks(vault, since, self.server_origin):
            self._push(device.encryption_key, since, self.server_origin, None)
        self._pull()
        for target in link.opts.relay_to:
            self.relay(target)
        self._mailbox()
        self.summary.drops = link.drops
        return self.summary

    def relay(self, target: str) -> None:
        """Leave on the server a bundle for the enrolled device *target*, encrypted to it
        alone, of what it has not acknowledged."""
        d = service.members(self.vault).find(target)
        since = service.acked_by(self.vault, d.key)
        if since < self.vault.ledger.size():
            self._push(d.encryption_key, since, None, d.key)
            self.summary.relayed += 1

    def _push(self, enc: bytes, since: int, peer: str | None, relay_to: bytes | None) -> None:
        link, s = self.link, self.summary
        with _temp(self.vault, "out") as path:
            with open(open_private(path), "wb") as sink:
                made = service.export_for_peer(self.vault, enc, since, sink, peer_origin=peer)
            size, sha = path.stat().st_size, _sha256_file(path)
            relay = base64.b64encode(relay_to).decode() if relay_to else None
            start = link.call(
                "POST", "/api/sync/push", {"size": size, "sha256": sha, "relay_to": relay}
            )
            tid, offset = str(start["id"]), int(start["offset"])
            chunk = max(1, min(link.opts.chunk, int(start.get("chunk", link.opts.chunk))))
            wire = 0
            with self.progress("Sending", size) as bar, open(path, "rb") as fh:
                bar(offset)
                first = offset
                while offset < size:
                    fh.seek(offset)
                    data = fh.read(chunk)
                    wire += len(data)
                    where = f"/api/sync/push/{tid}"
                    req = link.request("PUT", where, body=data, params={"offset": offset})
                    try:
                        resp = link.send(req)
                        if resp.status_code >= 400 and resp.status_code != 409:
                            raise error_of(resp)
                        now = int(resp.json()["offset"])
                    except httpx.TransportError as exc:
                        link.failed(exc)
                        now = int(link.call("GET", where)["offset"])
                    bar(now - offset)
                    offset = now
            s.resent_bytes += max(0, wire - (size - first))
            done = self._until("done", "POST", f"/api/sync/push/{tid}/commit")
        s.sent_bytes += size
        if relay_to is None:
            s.sent_events += made.events
            s.sent_files += made.blobs
            if done.get("receipt"):
                service.ack_from(self.vault, done["receipt"], self.server_key)

    def _until(self, flag: str, method: str, path: str, data: Any = None) -> Any:
        """Ask again (the server works apart from our requests) until *flag* is true."""
        wait = 0.05
        while not (answer := self.link.call(method, path, data)).get(flag):
            time.sleep(wait)
            wait = min(2.0, wait * 1.5)
        return answer

    @contextmanager
    def _fetch(self, path: str, size: int, sha: str, what: str) -> Iterator[Path]:
        with _temp(self.vault, what) as dest:
            with self.progress("Receiving", size) as bar:
                self.link.download(path, dest, size, sha, bar)
            self.summary.received_bytes += size
            yield dest

    def _pull(self) -> None:
        mine = service.receipt_for(self.vault, self.server_origin)
        ask = {"receipt": mine, "origin": self.vault.ledger.origin}
        offer = self._until("ready", "POST", "/api/sync/pull", ask)
        if not offer.get("id"):
            return
        tid = str(offer["id"])
        with self._fetch(
            f"/api/sync/pull/{tid}", int(offer["size"]), offer["sha256"], "in"
        ) as dest:
            report = service.import_file(self.vault, dest)
            self.summary.received_events += report.new_events
            self.summary.received_files += report.new_blobs
        receipt = service.receipt_for(self.vault, self.server_origin)
        self.link.call("POST", f"/api/sync/pull/{tid}/done", {"receipt": receipt})

    def _mailbox(self) -> None:
        for entry in self.link.call("GET", "/api/sync/mailbox")["bundles"]:
            mid = str(entry["id"])
            with self._fetch(
                f"/api/sync/mailbox/{mid}", int(entry["size"]), str(entry["sha256"]), "box"
            ) as dest:
                try:
                    report = service.import_file(self.vault, dest)
                except AtharError as exc:  # left on the server; said, and the rest goes on
                    self.summary.problems.append(exc)
                    continue
                self.summary.received_events += report.new_events
                self.summary.received_files += report.new_blobs
                self.summary.mailbox += 1
                self.link.call("DELETE", f"/api/sync/mailbox/{mid}")


def sync(vault: Vault, url: str, opts: Options, progress: Progress | None = None) -> Summary:
    """Exchange with the server at *url* everything either side lacks."""
    link = Link(vault.keys.identity, url, opts)
    try:
        return Syncer(vault, link, progress).run()
    except httpx.HTTPError as exc:
        raise InputError(
            "the server could not be reached after {count} tries: {reason}",
            count=link.drops,
            reason=str(exc) or type(exc).__name__,
        ) from None
    finally:
        link.close()
