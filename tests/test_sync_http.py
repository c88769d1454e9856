"""`athar sync URL` against a real server on 127.0.0.1 (uvicorn), through a proxy that
cuts every connection after a random number of bytes: push and pull converge, a second
sync sends nothing, drops are survived and counted, and each refusal (tampered chunk,
revoked or unknown device, stale or replayed signature) leaves the server as it was.
Relayed bundles wait on the server as ciphertext it cannot open."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyrage
import pytest
from typer.testing import CliRunner

from athar.cli.main import app as cli_app
from athar.errors import InputError, IntegrityError
from athar.i18n import translate
from athar.records.service import Records
from athar.sync import agekeys, service
from athar.sync.http_client import Link, Options, Summary, Syncer, sync
from athar.sync.server import Refused
from athar.vault.vault import Vault
from test_web_fixtures import free_port, live_server

PASS = "كلمة سر المزامنة — sync test"
VICTIM = "سامر عبد الرحمن الحمصي"
SERVER_NOTE = "شاهد من مكتب الإعلام"
SECRET = "شهادة سرية: أم يوسف رأت القصف عند الفرن"


# -- a real server, and a proxy that cuts -------------------------------------------------
@dataclass
class Running:
    url: str
    app: Any

    def call(self, fn: Any, *args: Any) -> Any:
        """Run *fn(vault, *args)* on the server's vault thread."""
        state = self.app.state.athar
        return state.worker.call(fn, state.vault, *args)


@contextmanager
def serve(vault_dir: Path) -> Iterator[Running]:

    from athar.web.app import create_app
    from athar.web.state import Settings

    app = create_app(vault_dir, PASS, Settings())
    with live_server(app) as base:
        yield Running(base, app)


class LoopServer:
    """A TCP server on its own thread and event loop, stopped cleanly on exit."""

    def __init__(self) -> None:
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self._main(),), daemon=True
        )

    async def _main(self) -> None:
        server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self._ready.set()
        await self._stop.wait()
        server.close()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _handle(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)
        self._loop.close()


class CuttingProxy(LoopServer):
    """A TCP proxy that closes each connection after N bytes (both directions counted),
    N drawn per connection from a seeded RNG."""

    def __init__(self, target: int, low: int, high: int, seed: int) -> None:
        super().__init__()
        self.target, self.low, self.high = target, low, high
        self.rng = random.Random(seed)
        self.cuts = 0
        self.wire = 0

    async def _handle(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        budget = [self.rng.randint(self.low, self.high)]
        sr, sw = await asyncio.open_connection("127.0.0.1", self.target)

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(16384):
                    if len(data) >= budget[0]:
                        w.write(data[: budget[0]])
                        self.wire += budget[0]
                        budget[0] = 0
                        self.cuts += 1
                        break
                    budget[0] -= len(data)
                    self.wire += len(data)
                    w.write(data)
                    await w.drain()
            except (ConnectionError, OSError):
                pass
            for x in (cw, sw):
                x.close()

        await asyncio.gather(pipe(cr, sw), pipe(sr, cw))


# -- vaults ---------------------------------------------------------------------------------
SERVER_PERSON = "فاطمة علي"


def _enrol(v: Vault, card: dict[str, str], name: str, admin: bool = False) -> None:
    service.enrol(v, card["key"], card["age_recipient"], name, admin)


@dataclass
class World:
    srv: Running
    root: Path
    client_dir: Path
    person: str
    server_person: str

    def enrol_on_server(self, v: Vault, name: str) -> None:
        card = service.card(v)
        self.srv.call(lambda s: _enrol(s, card, name))
        # as an admin: the devices the office enrols are trusted here too
        _enrol(v, self.srv.call(service.card), "office", admin=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, str]]:
    sdir = tmp_path_factory.mktemp("server") / "vault"
    with Vault.create(sdir, PASS) as s, Records(s) as r:
        person = r.create("person", {"name_ar.full": SERVER_PERSON})
    with serve(sdir) as srv:
        yield srv, person


@pytest.fixture
def world(server: tuple[Running, str], tmp_path: Path) -> World:
    srv, server_person = server
    cdir = tmp_path / "client"
    with Vault.create(cdir, PASS) as c:
        with Records(c) as r:
            person = r.create("person", {"name_ar.full": VICTIM})
        photo = tmp_path / "شهادة.bin"
        photo.write_bytes(random.Random(5).randbytes(300_000))
        c.add([photo], note=SERVER_NOTE)
        w = World(srv, tmp_path, cdir, person, server_person)
        w.enrol_on_server(c, "laptop")
    return w


def _ledger_size(v: Vault) -> int:
    return v.ledger.size()


def _server_dir(w: World) -> Path:
    return Path(w.srv.app.state.athar.vault.root)


# -- tests ----------------------------------------------------------------------------------
def _items(v: Vault) -> list[int]:
    return sorted(i.size for i in v.items())


def _state(v: Vault) -> tuple[int, list[int]]:
    return v.ledger.size(), _items(v)


def test_push_pull_converge_then_nothing_to_send(world: World) -> None:
    srv = world.srv
    before = srv.call(_state)
    with Vault.open(world.client_dir, PASS) as c:
        first = sync(c, srv.url, Options())
        assert first.sent_events >= 3 and first.sent_files == 1
        assert first.received_events >= 1 and first.received_files == 0
        assert first.drops == 0 and first.resent_bytes == 0
        # Both sides now hold both records, Arabic text as it was typed.
        with Records(c) as r:
            assert r.get(world.server_person).to_json()["fields"]["name_ar.full"] == SERVER_PERSON

        def server_view(v: Vault) -> str:
            with Records(v) as r:
                return str(r.get(world.person).to_json()["fields"]["name_ar.full"])

        assert srv.call(server_view) == VICTIM
        assert srv.call(_items) == sorted([*before[1], 300_000])
        after = srv.call(_ledger_size)
        second = sync(c, srv.url, Options())
        assert second.to_json() == Summary().to_json()  # nothing either way
        assert srv.call(_ledger_size) == after


def test_sync_through_a_cutting_proxy_resumes(world: World) -> None:
    srv = world.srv
    with Vault.open(world.client_dir, PASS) as c:
        big = world.root / "فيديو.bin"
        big.write_bytes(random.Random(9).randbytes(1_500_000))
        c.add([big])
    before = srv.call(_items)
    port = int(srv.url.rsplit(":", 1)[1])
    with (
        CuttingProxy(port, 40_000, 200_000, seed=20) as proxy,
        Vault.open(world.client_dir, PASS) as c,
    ):
        url = f"http://127.0.0.1:{proxy.port}"
        done = sync(c, url, Options(chunk=32 << 10))
        assert proxy.cuts >= 5 and done.drops >= 1
        assert done.resent_bytes > 0
        assert done.sent_files == 2 and done.received_events >= 1
        assert srv.call(_items) == sorted([*before, 300_000, 1_500_000])
        again = sync(c, url, Options(chunk=32 << 10))
        assert again.sent_bytes == 0 and again.received_bytes == 0


def _until_done(link: Link, path: str) -> Any:
    deadline = time.monotonic() + 30
    while not (answer := link.call("POST", path))["done"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return answer


def test_tampered_chunk_is_refused_and_nothing_committed(world: World) -> None:
    srv = world.srv
    before = srv.call(_state)
    with Vault.open(world.client_dir, PASS) as c:
        enc = agekeys.recipient_key(srv.call(service.card)["age_recipient"])
        out = world.root / "b.age"
        with open(out, "wb") as sink:
            service.export_for_peer(c, enc, 0, sink)
        data = out.read_bytes()
        link = Link(c.keys.identity, srv.url, Options())
    sha = hashlib.sha256(data).hexdigest()
    tid = link.call("POST", "/api/sync/push", {"size": len(data), "sha256": sha})["id"]
    where = f"/api/sync/push/{tid}"
    # 1. altered on the wire after signing: the signature no longer verifies
    req = link.request("PUT", where, body=data[:1000], params={"offset": 0})
    forged = httpx.Request(req.method, req.url, headers=req.headers, content=b"X" + data[1:1000])
    resp = link.http.send(forged)
    assert resp.status_code == 401 and resp.json()["kind"] == "Unauthenticated"
    assert link.call("GET", where)["offset"] == 0
    # 2. altered before signing (a faulty or hostile sender): the whole bundle's hash fails
    bad = bytearray(data)
    bad[len(bad) // 2] ^= 1
    for off in range(0, len(bad), 100_000):
        chunk = bytes(bad[off : off + 100_000])
        assert link.call("PUT", where, raw=chunk, params={"offset": off})["offset"] > off
    with pytest.raises(IntegrityError, match="SHA-256"):
        _until_done(link, where + "/commit")
    with pytest.raises(IntegrityError, match="SHA-256"):  # asked again, as after a cut
        link.call("POST", where + "/commit")
    link.close()
    assert srv.call(_state) == before
    assert not list((_server_dir(world) / "tmp").glob("*sync*"))


def _accepted_state_request(world: World) -> tuple[Link, dict[str, str], httpx.Request]:
    """The client's link, its state query, and a signed request the server accepted."""
    with Vault.open(world.client_dir, PASS) as c:
        link = Link(c.keys.identity, world.srv.url, Options())
        params = {"origin": c.ledger.origin}
    req = link.request("GET", "/api/sync/state", params=params)
    assert link.http.send(req).status_code == 200
    return link, params, req


def test_a_replay_after_the_server_restarts_is_refused(world: World) -> None:
    """The accepted nonces outlive the server process (a power cut, a restart): a captured
    request replayed to a new server within its time window is refused too."""
    from athar.sync.nonces import FILE
    from athar.sync.server import SignedRequest, SyncServer, Unauthenticated

    srv = world.srv
    link, params, req = _accepted_state_request(world)
    link.close()
    captured = SignedRequest(req.method, str(req.url), req.headers)
    book = _server_dir(world) / FILE
    on_disk = book.read_bytes()
    nonce = req.headers["signature-input"].split('nonce="')[1].split('"')[0]
    assert nonce.encode() not in on_disk and link.key_id.encode() not in on_disk

    def restarted(v: Vault) -> None:  # a new server object reads the book from disk
        SyncServer(v).verify(captured, req.content)

    with pytest.raises(Unauthenticated, match="replayed"):
        srv.call(restarted)
    # a fresh request from the same device is still accepted by the restarted server
    fresh = link.request("GET", "/api/sync/state", params=params)
    assert srv.call(
        lambda v: SyncServer(v).verify(
            SignedRequest(fresh.method, str(fresh.url), fresh.headers), fresh.content
        )
    )
    # a book that does not open (tampered) stops sync with an integrity error, unchanged
    book.write_bytes(on_disk[:-1] + bytes([on_disk[-1] ^ 1]))
    try:
        with pytest.raises(IntegrityError, match="nonce book"):
            srv.call(lambda v: SyncServer(v))
        assert book.read_bytes()[:-1] == on_disk[:-1]
    finally:
        book.unlink()


def test_revoked_and_unknown_devices_are_refused(world: World, tmp_path: Path) -> None:
    srv = world.srv
    with Vault.open(world.client_dir, PASS) as c:
        fp = service.card(c)["fingerprint"]
    srv.call(lambda s: service.revoke(s, fp, "جهاز مفقود"))
    before = srv.call(_state)
    with Vault.create(tmp_path / "stranger", PASS) as x:
        _enrol(x, srv.call(service.card), "office", admin=True)
        with pytest.raises(Refused, match="not enrolled"):
            sync(x, srv.url, Options())
    with Vault.open(world.client_dir, PASS) as c, pytest.raises(Refused, match="revoked"):
        sync(c, srv.url, Options())
    assert srv.call(_state) == before


def test_stale_and_replayed_signatures_are_refused(world: World) -> None:
    srv = world.srv
    link, params, req = _accepted_state_request(world)
    again = link.http.send(req)  # the very same signed request, replayed
    assert again.status_code == 401
    assert again.json()["template"] == "a replayed request was refused"
    link.clock = -3600.0  # this device's clock an hour behind: stale
    stale = link.http.send(link.request("GET", "/api/sync/state", params=params))
    assert stale.status_code == 401 and "stale" in stale.json()["template"]
    # the client learns the server's clock from the refusal and goes on
    assert link.call("GET", "/api/sync/state", params=params)["server"]["origin"]
    assert abs(link.clock) < 60
    # no signature at all; and a signature claiming another key
    assert httpx.get(srv.url + "/api/sync/state").status_code == 401
    req = link.request("GET", "/api/sync/mailbox")
    other = base64.b64encode(os.urandom(32)).decode()
    req.headers["signature-input"] = req.headers["signature-input"].replace(link.key_id, other)
    assert link.http.send(req).status_code == 401
    link.close()


def test_mailbox_relay_to_a_third_device_the_server_cannot_read(world: World) -> None:
    srv = world.srv
    ddir = world.root / "third"
    secret_file = world.root / "secret.txt"
    secret_file.write_text(SECRET * 50, encoding="utf-8")
    with Vault.create(ddir, PASS) as d, Vault.open(world.client_dir, PASS) as c:
        world.enrol_on_server(d, "hq")
        _enrol(d, service.card(c), "laptop")
        _enrol(c, service.card(d), "hq")
    # The laptop's bundle for hq travels only through the mailbox: the laptop does not
    # push its own events to the server in this sync (nothing but the relay is sent).
    with Vault.open(world.client_dir, PASS) as c:
        c.add([secret_file])
        with Records(c) as r:
            secret_record = r.create("person", {"name_ar.full": SECRET})
        link = Link(c.keys.identity, srv.url, Options(relay_to=["hq"]))
        relayed = Syncer(c, link, None)
        relayed.relay("hq")
        link.close()
        assert relayed.summary.relayed == 1 and relayed.summary.sent_events == 0
    box = _server_dir(world) / "sync-mailbox"
    boxed = list(box.iterdir())
    assert len(boxed) == 1
    server_secret = srv.app.state.athar.vault.keys.identity.encryption_secret
    with pytest.raises(pyrage.DecryptError):
        pyrage.decrypt(boxed[0].read_bytes(), [agekeys.identity(server_secret)])
    # The server's disk never holds the relayed content in the clear.
    planted = [SECRET.encode(), SECRET.encode("utf-16-le"), SECRET[:12].encode()]
    for path in _server_dir(world).rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            assert not any(p in blob for p in planted), path
    with Vault.open(ddir, PASS) as d:
        got = sync(d, srv.url, Options())
        assert got.mailbox == 1 and got.problems == []
        with Records(d) as r:
            assert r.get(secret_record).to_json()["fields"]["name_ar.full"] == SECRET
        assert secret_file.stat().st_size in _items(d)
        assert sync(d, srv.url, Options()).mailbox == 0
    assert list(box.iterdir()) == []


def test_plain_http_only_to_this_machine(world: World) -> None:
    with Vault.open(world.client_dir, PASS) as c:
        with pytest.raises(InputError, match="plain http"):
            sync(c, "http://192.0.2.1:8080", Options())
        with pytest.raises(InputError, match="not a server address"):
            sync(c, "ftp://example.org", Options())


def test_cli_sync_json_then_refused_in_the_users_language(world: World) -> None:
    srv = world.srv
    runner = CliRunner()
    env = {"ATHAR_PASSPHRASE": PASS}
    res = runner.invoke(
        cli_app, ["--vault", str(world.client_dir), "sync", srv.url, "--json"], env=env
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["sent_events"] >= 3 and out["sent_files"] == 1 and out["received_events"] >= 1
    with Vault.open(world.client_dir, PASS) as c:
        fp = service.card(c)["fingerprint"]
    srv.call(lambda v: service.revoke(v, fp, "جهاز مفقود"))
    template = "this device ({device}) is revoked on the server and may not sync"
    for lang in ("en", "ar"):
        args = ["--vault", str(world.client_dir), "--lang", lang, "sync", srv.url]
        res = runner.invoke(cli_app, args, env=env)
        assert res.exit_code == Refused.exit_code
        assert translate(template, lang, device=fp) in res.output


def test_every_sync_route_needs_a_device_signature(world: World) -> None:
    """A page session's token alone opens none of them, whatever its role; a token sent
    with a device signature is checked too."""
    from fastapi.routing import APIRoute

    from athar.web.routes.sync import router

    srv = world.srv
    accounts = srv.app.state.athar.accounts
    for name, role in (("مدير", "admin"), ("قارئ", "viewer")):
        if accounts.get(name) is None:
            accounts.add(name, "a long enough password 123", role)
    admin, viewer = accounts.new_token("مدير", "sync"), accounts.new_token("قارئ", "sync")
    bearer = {"authorization": f"Bearer {admin}"}
    routes = [r for r in router.routes if isinstance(r, APIRoute)]
    assert len(routes) == 11
    for route in routes:
        path = route.path.replace("{transfer_id}", "0" * 32).replace("{bundle_id}", "0" * 32)
        for method in route.methods or ():
            resp = httpx.request(method, srv.url + path, headers=bearer, params={"offset": 0})
            assert resp.status_code == 401, (method, path, resp.text)
    with Vault.open(world.client_dir, PASS) as c:
        for token, status in (("athar_forged", 401), (viewer, 403), (admin, 200)):
            link = Link(c.keys.identity, srv.url, Options(token=token))
            resp = link.send(link.request("GET", "/api/sync/mailbox"))
            assert resp.status_code == status, resp.text
            link.close()


# -- TLS and SOCKS5 -------------------------------------------------------------------------
def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A local CA and a server certificate for 127.0.0.1 it signed (the pinned --cacert)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("مكتب التوثيق CA"))
        .issuer_name(name("مكتب التوثيق CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(leaf.public_bytes(pem))
    paths[2].write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@contextmanager
def also_tls(app: Any, cert: Path, key: Path) -> Iterator[str]:
    """The same app served over TLS on a second port (its lifespan stays with the first)."""
    with live_server(app, lifespan="off", ssl_certfile=str(cert), ssl_keyfile=str(key)) as base:
        yield base


class Socks5(LoopServer):
    """A minimal SOCKS5 proxy (no authentication, CONNECT only), counting connections."""

    def __init__(self) -> None:
        super().__init__()
        self.connections = 0

    async def _handle(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        _, n = await cr.readexactly(2)
        await cr.readexactly(n)
        cw.write(b"\x05\x00")
        _, cmd, _, atyp = await cr.readexactly(4)
        if atyp == 1:
            host = socket.inet_ntoa(await cr.readexactly(4))
        else:
            host = (await cr.readexactly((await cr.readexactly(1))[0])).decode()
        port = int.from_bytes(await cr.readexactly(2), "big")
        assert cmd == 1
        sr, sw = await asyncio.open_connection(host, port)
        self.connections += 1
        cw.write(b"\x05\x00\x00\x01" + bytes(6))

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            with suppress(ConnectionError, OSError):
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            w.close()

        await asyncio.gather(pipe(cr, sw), pipe(sr, cw))


def test_https_with_a_pinned_certificate_and_through_socks5(world: World) -> None:
    ca, cert, key = _certificates(world.root)
    with also_tls(world.srv.app, cert, key) as url, Vault.open(world.client_dir, PASS) as c:
        with pytest.raises(InputError, match="certificate is not trusted"):
            sync(c, url, Options())  # the system's CAs do not know this server
        with Socks5() as proxy:
            done = sync(c, url, Options(cacert=ca, proxy=f"socks5://127.0.0.1:{proxy.port}"))
            assert proxy.connections >= 1
        assert done.sent_files == 1 and done.received_events >= 1
        with pytest.raises(InputError, match="not a proxy address"):
            sync(c, url, Options(cacert=ca, proxy="ftp://127.0.0.1:1"))


def test_bundle_carrying_a_revoked_devices_events_is_refused(world: World) -> None:
    """The laptop took events from a phone the office has since revoked (from its first
    event on): its push is refused whole by the server's importer, nothing committed."""
    srv = world.srv
    with Vault.create(world.root / "phone", PASS) as phone, Vault.open(world.client_dir, PASS) as c:
        _enrol(phone, service.card(c), "laptop")
        _enrol(c, service.card(phone), "phone")
        phone_card = service.card(phone)
        srv.call(lambda s: _enrol(s, phone_card, "phone"))
        with Records(phone) as r:
            r.create("person", {"name_ar.full": "خبر من هاتف مسروق"})
        made = service.export_bundle(phone, [service.card(c)["age_recipient"]], world.root / "b")
        assert service.import_bundles(c, made.files).imported[0].new_events >= 1
    srv.call(lambda s: service.revoke(s, phone_card["fingerprint"], "مسروق", after_dseq=-1))
    before = srv.call(_state)
    with Vault.open(world.client_dir, PASS) as c, pytest.raises(InputError, match="revoked"):
        sync(c, srv.url, Options())
    assert srv.call(_state) == before
