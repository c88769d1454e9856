"""Bundles through either age engine (the Debian `age` program or pyrage), the unchanged
tar layout, the export's reliance on the vault's authentication instead of a second
SHA-256, and fsyncs batched before the commit point (issue 5, bundle speed)."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyrage
import pytest

from athar.errors import DiskFull, InputError, IntegrityError
from athar.sync import agekeys, bundle, exchange, service
from athar.vault.blobs import BackgroundSync
from athar.vault.vault import Vault

PW = "كلمة سر طويلة للمحركين"
ENGINES = ["program", "pyrage"]


def need_age() -> None:
    if shutil.which("age") is None:
        if os.environ.get("CI"):
            pytest.fail("the age tool is missing; CI must install it (apt age)", pytrace=False)
        pytest.skip("age is not installed")


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    name = str(request.param)
    if name == "program":
        need_age()
        monkeypatch.delenv(bundle.ENGINE_ENV, raising=False)
    else:
        monkeypatch.setenv(bundle.ENGINE_ENV, "pyrage")
    return name


def use(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    if name == "pyrage":
        monkeypatch.setenv(bundle.ENGINE_ENV, "pyrage")
    else:
        monkeypatch.delenv(bundle.ENGINE_ENV, raising=False)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Vault, Vault]]:
    a, b = Vault.create(tmp_path / "ميدان", PW), Vault.create(tmp_path / "مكتب", PW)
    for v, other in ((a, b), (b, a)):
        c = service.card(other)
        service.enrol(v, c["key"], c["age_recipient"], other.root.name, admin=False)
    yield a, b
    a.close()
    b.close()


def to(v: Vault) -> str:
    return service.card(v)["age_recipient"]


def state(v: Vault) -> tuple[int, int]:
    blobs = v.root / "blobs"
    return v.ledger.size(), sum(1 for p in blobs.rglob("*") if p.is_file())


def add_files(a: Vault, folder: Path) -> dict[str, bytes]:
    """Files across the vault's inline limit and its 1 MiB chunks, Arabic names."""
    folder.mkdir()
    contents = {
        "شهادة-الشاهد.txt": ("رأيت القصف على السوق في الصباح\n" * 40).encode(),
        "تسجيل-قصير.bin": os.urandom(300_000),
        "فيديو-الحي.bin": os.urandom(3 * (1 << 20) + 12_345),
        "صورة-فارغة.bin": b"",
    }
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    a.add(sorted(folder.iterdir()))
    return {hashlib.sha256(d).hexdigest(): d for d in contents.values()}


def held(v: Vault, sha: str) -> bytes:
    return b"".join(exchange.blob_plaintext(v, sha))


@pytest.mark.parametrize(
    ("out_engine", "in_engine"), [("program", "pyrage"), ("pyrage", "program")]
)
def test_each_engine_opens_what_the_other_wrote(
    pair: tuple[Vault, Vault],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    out_engine: str,
    in_engine: str,
) -> None:
    need_age()
    a, b = pair
    files = add_files(a, tmp_path / "ملفات")
    use(monkeypatch, out_engine)
    sent = service.export_bundle(a, [to(b)], tmp_path / "out")
    use(monkeypatch, in_engine)
    (report,) = service.import_bundles(b, sent.files).imported
    assert report.new_blobs == len(files) and report.blob_bytes == sum(map(len, files.values()))
    for sha, data in files.items():
        assert held(b, sha) == data
    assert service.import_bundles(b, sent.files).imported[0].nothing_new  # idempotent


def test_the_tar_inside_is_byte_for_byte_what_tarfile_writes(
    pair: tuple[Vault, Vault], tmp_path: Path, engine: str
) -> None:
    """The larger buffers change no byte of the format: the bundle's plaintext equals a
    tar written by tarfile with its defaults from the same manifest, events and files."""
    a, b = pair
    files = add_files(a, tmp_path / "ملفات")
    sent = service.export_bundle(a, [to(b)], tmp_path / "out")
    ident = pyrage.x25519.Identity.from_str(
        agekeys.identity_string(b.keys.identity.encryption_secret)
    )
    plain = pyrage.decrypt(sent.files[0].read_bytes(), [ident])
    with tarfile.open(fileobj=io.BytesIO(plain), mode="r:") as tar:
        manifest = tar.extractfile(bundle.MANIFEST).read()  # type: ignore[union-attr]
        events = tar.extractfile(bundle.EVENTS).read()  # type: ignore[union-attr]
    listed = json.loads(manifest)["blobs"]
    assert {x["sha256"] for x in listed} == set(files)
    expected = io.BytesIO()
    with tarfile.open(fileobj=expected, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [(bundle.MANIFEST, manifest), (bundle.EVENTS, events)] + [
            (bundle.BLOBS + x["sha256"], files[x["sha256"]]) for x in listed
        ]:
            tar.addfile(bundle._info(name, len(data)), io.BytesIO(data))
    assert plain == expected.getvalue()


@pytest.mark.parametrize("fault", ["tampered", "truncated", "stranger"])
def test_damage_and_wrong_recipient_are_refused_by_either_engine(
    pair: tuple[Vault, Vault], tmp_path: Path, engine: str, fault: str
) -> None:
    a, b = pair
    add_files(a, tmp_path / "ملفات")
    target = b
    if fault == "stranger":
        target = Vault.create(tmp_path / "غريب", PW)
    sent = service.export_bundle(a, [to(b)], tmp_path / "out")
    path = sent.files[0]
    data = bytearray(path.read_bytes())
    if fault == "tampered":
        data[len(data) // 2] ^= 0x20
    elif fault == "truncated":
        del data[len(data) - 40_000 :]
    path.write_bytes(bytes(data))
    before = state(target)
    if fault == "stranger":
        with pytest.raises(InputError, match="not addressed to this device"):
            service.import_bundles(target, [path], accept_unknown=True)
    else:
        with pytest.raises(IntegrityError, match="damaged or truncated"):
            service.import_bundles(target, [path])
    assert state(target) == before
    tmp = target.root / "tmp"
    assert not tmp.exists() or not list(tmp.iterdir())  # no staged ciphertext left behind


def test_a_tar_that_is_not_a_bundle_is_refused(
    pair: tuple[Vault, Vault], tmp_path: Path, engine: str
) -> None:
    a, b = pair
    del a
    junk = io.BytesIO()
    with tarfile.open(fileobj=junk, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = "ليس حزمة".encode()
        tar.addfile(bundle._info("athar-bundle/غريب.txt", len(data)), io.BytesIO(data))
    rec = pyrage.x25519.Recipient.from_str(to(b))
    for name, plain in [("tar", junk.getvalue()), ("noise", os.urandom(50_000))]:
        path = tmp_path / f"{name}.age"
        path.write_bytes(pyrage.encrypt(plain, [rec]))
        before = state(b)
        with pytest.raises(IntegrityError):
            service.import_bundles(b, [path])
        assert state(b) == before


def test_the_age_program_never_sees_the_identity_on_disk_or_in_its_arguments(
    pair: tuple[Vault, Vault], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_age()
    use(monkeypatch, "program")
    a, b = pair
    files = add_files(a, tmp_path / "ملفات")
    sent = service.export_bundle(a, [to(b)], tmp_path / "out")
    secret = agekeys.identity_string(b.keys.identity.encryption_secret)
    seen: list[tuple[list[str], dict[str, str]]] = []
    real_popen = subprocess.Popen

    def spy(args: list[str], **kw: Any) -> Any:
        seen.append((list(args), dict(kw.get("env") or os.environ)))
        return real_popen(args, **kw)

    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(subprocess, "Popen", spy)  # the module bundle.py calls through
    service.import_bundles(b, sent.files)
    assert seen and all(Path(args[0]).name == "age" for args, _ in seen)
    for args, env in seen:
        assert not any(secret in x for x in args)
        assert not any(secret in v for v in env.values())
    for root in (b.root, scratch, tmp_path / "out"):
        for f in root.rglob("*"):
            if f.is_file():
                assert secret.encode() not in f.read_bytes(), f
    assert all(held(b, sha) == data for sha, data in files.items())


def test_export_still_refuses_a_blob_altered_on_disk(
    pair: tuple[Vault, Vault], tmp_path: Path, engine: str
) -> None:
    """The export no longer re-hashes: secretstream's authentication under the blob's own
    key is what catches a changed byte, and the export stops with nothing written."""
    a, b = pair
    files = add_files(a, tmp_path / "ملفات")
    big = next(s for s, d in files.items() if len(d) > (1 << 20))
    path = a.blobs.path(a.blobs.ref(bytes.fromhex(big)))
    data = bytearray(path.read_bytes())
    data[(1 << 20) + 100] ^= 0x01  # inside the second chunk
    path.chmod(0o600)
    path.write_bytes(bytes(data))
    out = tmp_path / "out"
    with pytest.raises(IntegrityError, match="failed authentication"):
        service.export_bundle(a, [to(b)], out)
    assert not list(out.iterdir())


def test_staged_files_are_synced_before_the_commit_point(
    pair: tuple[Vault, Vault], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    """fsyncs run on a helper thread, all waited for before the ledger transaction: a
    full disk reported by one of them refuses the import, nothing committed."""
    a, b = pair
    add_files(a, tmp_path / "ملفات")
    sent = service.export_bundle(a, [to(b)], tmp_path / "out")
    real_fsync = os.fsync

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    before = state(b)
    with pytest.raises(DiskFull):
        service.import_bundles(b, sent.files)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert state(b) == before
    assert not [p for p in (b.root / "tmp").iterdir() if p.is_file()]
    assert service.import_bundles(b, sent.files).imported[0].new_blobs == 4


def test_background_sync_reports_the_first_error() -> None:
    syncer = BackgroundSync()
    r, w = os.pipe()
    os.close(w)
    syncer.add(r)  # fsync of a pipe: EINVAL, reported by wait()
    with pytest.raises(OSError):
        syncer.wait()
    syncer.close()


def test_a_full_disk_while_writing_the_bundle_is_said_plainly(
    pair: tuple[Vault, Vault], tmp_path: Path, engine: str
) -> None:
    a, b = pair
    add_files(a, tmp_path / "ملفات")
    out = exchange.collect(a, 0)
    with open("/dev/full", "wb", buffering=0) as full, pytest.raises(DiskFull):
        bundle.write(a, out, [agekeys.parse_recipient(to(b))], full)
