"""Fault injection with real processes and real file systems.

kill -9 in the middle of `athar add`, a full disk (a small tmpfs, so these tests need
root), two writers at once, a file the user may not read, missing paths, empty files and
a folder of 10,000 files. After every fault the vault must still pass a full audit, every recorded
item must decrypt to its recorded hash, and nothing half-written may remain visible.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from athar.crypto.stream import ciphertext_length
from athar.vault.audit import audit
from athar.vault.vault import Vault
from conftest import ARABIC_TEXT, PASSPHRASE, athar_subprocess

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
PAGE = 4096

Cli = Callable[..., Any]


# -- helpers ---------------------------------------------------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _source_shas(root: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in root.rglob("*"):
        if p.is_file():
            out[_sha(p.read_bytes())] = p
    return out


def _run(*args: str, vault_dir: Path, timeout: float = 120, **kwargs: Any) -> tuple[int, str, str]:
    env = {"ATHAR_LANG": "en", **kwargs.pop("env", {})}
    proc = athar_subprocess(
        *args,
        vault_dir=vault_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out.decode(), err.decode()


def _check_vault(vault_dir: Path, allowed: set[str] | None = None) -> dict[str, Any]:
    """Full audit, then read every item back; return a summary. Fails on any problem."""
    with Vault.open(vault_dir, PASSPHRASE) as v:
        report = audit(v)
        assert report.ok, [str(p) for p in report.problems]
        items = [i for i in v.items() if not i.shredded]
        shas = [i.sha256 for i in items]
        assert len(shas) == len(set(shas)), "an item is recorded twice"
        for item in items:
            digest = hashlib.sha256()
            size = 0
            for chunk in v.read(item):
                digest.update(chunk)
                size += len(chunk)
            assert digest.hexdigest() == item.sha256 and size == item.size, item
            if allowed is not None:
                assert item.sha256 in allowed, f"item {item.short_id} is not a source file"
        keyed = set(v.ledger.blob_keys())
        return {
            "events": len(v.events()),
            "shas": set(shas),
            "notes": report.notes,
            "orphans": len(v.blobs.stored_refs() - keyed),
        }


def _tmp_files(vault_dir: Path) -> list[str]:
    tmp = vault_dir / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []


@contextlib.contextmanager
def _tmpfs(where: Path, size: str) -> Iterator[Path]:
    if os.geteuid() != 0:
        reason = "mounting a small tmpfs to fill the disk needs root"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run as root so that no test is skipped")
        pytest.skip(f"{reason} (CI runs these as root)")
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(mount: Path, leave_pages: int) -> Path:
    """Allocate a filler file so that exactly *leave_pages* pages stay free."""
    st = os.statvfs(mount)
    free = st.f_bavail * st.f_frsize
    filler = mount / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        if free - leave_pages * PAGE > 0:
            os.posix_fallocate(fd, 0, free - leave_pages * PAGE)
    finally:
        os.close(fd)
    return filler


# -- kill -9 during add ----------------------------------------------------------------


def _mixed_folder(root: Path, rng: random.Random) -> dict[str, Path]:
    """~300 files: a dozen of 1-3 MiB, the rest small, Arabic names, two levels deep."""
    root.mkdir()
    for d in ("شهادات", "صور", "صور/الحي-الشرقي"):
        (root / d).mkdir()
    dirs = [root, root / "شهادات", root / "صور", root / "صور" / "الحي-الشرقي"]
    for i in range(12):
        size = rng.randint(1 << 20, 3 << 20)
        (dirs[i % 4] / f"مقطع-{i:02d}.bin").write_bytes(os.urandom(size))
    for i in range(288):
        body = f"{ARABIC_TEXT}رقم {i}\n".encode() + os.urandom(rng.randint(0, 20_000))
        (dirs[i % 4] / f"شهادة-{i:03d}.txt").write_bytes(body)
    shas = _source_shas(root)
    assert len(shas) == 300
    return shas


def _blob_count(vault_dir: Path) -> int:
    blobs = vault_dir / "blobs"
    if not blobs.exists():
        return 0
    return sum(len(os.listdir(d)) for d in os.scandir(blobs) if d.is_dir())


def _kill_when_blobs_appear(proc: subprocess.Popen[bytes], vault_dir: Path) -> float:
    """SIGKILL *proc* as soon as it renames a new blob into place, i.e. mid-commit."""
    started = time.monotonic()
    before = _blob_count(vault_dir)
    while proc.poll() is None and time.monotonic() - started < 30:
        if _blob_count(vault_dir) > before:
            break
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    return time.monotonic() - started


@pytest.mark.slow
def test_kill_9_during_add_never_damages_the_vault(
    vault: Vault, vault_dir: Path, tmp_path: Path
) -> None:
    vault.close()
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    src = tmp_path / "مجلد"
    _mixed_folder(src, rng)
    rounds = []
    for round_ in range(8):
        # A few files no earlier round can have recorded, so every round commits something.
        fresh = src / f"جولة-{round_}"
        fresh.mkdir()
        (fresh / "كبير.bin").write_bytes(os.urandom(1 << 20))
        for i in range(4):
            (fresh / f"جديد-{i}.txt").write_text(f"{ARABIC_TEXT}{round_}/{i}\n", encoding="utf-8")
        allowed = set(_source_shas(src))
        proc = athar_subprocess(
            "add",
            str(src),
            vault_dir=vault_dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if round_ in (2, 5):  # aim at the commit itself: blobs renamed in, ledger not yet
            how, delay = "mid-commit", _kill_when_blobs_appear(proc, vault_dir)
        else:
            how, delay = "random", rng.uniform(0.05, 1.5)
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        try:
            state = _check_vault(vault_dir, allowed)
        except AssertionError as exc:
            raise AssertionError(
                f"seed {seed}, round {round_} ({how}), killed after {delay:.2f}s: {exc}"
            ) from exc
        rounds.append(
            (
                how,
                round(delay, 2),
                proc.returncode,
                len(state["shas"]),
                state["orphans"],
                len(_tmp_files(vault_dir)),
            )
        )
    print("rounds (kill, after s, exit, items, orphan blobs, temp files):", rounds, "seed", seed)
    allowed = set(_source_shas(src))
    assert len(allowed) == 300 + 8 * 5
    rc, out, err = _run("add", str(src), vault_dir=vault_dir, timeout=300)
    assert rc == 0, err
    assert " 0 skipped" in out
    state = _check_vault(vault_dir, allowed)
    assert state["shas"] == allowed, f"missing {len(allowed - state['shas'])} files"
    assert _tmp_files(vault_dir) == []
    # Idempotent after the crashes too: one more run records nothing.
    rc, out, _ = _run("add", str(src), vault_dir=vault_dir, timeout=300)
    assert rc == 0 and f"0 added, {len(allowed)} already present" in out
    assert _check_vault(vault_dir)["events"] == state["events"]


# -- disk full -------------------------------------------------------------------------


def _small_files(folder: Path, n: int, tag: str) -> set[str]:
    folder.mkdir(parents=True)
    for i in range(n):
        (folder / f"{tag}-{i}.txt").write_text(f"{ARABIC_TEXT}{tag} {i}\n", encoding="utf-8")
    return set(_source_shas(folder))


def test_disk_full_while_encrypting_a_large_file(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "mnt", "3m") as mnt:
        vault_dir = mnt / "vault"
        Vault.create(vault_dir, PASSPHRASE).close()
        first = _small_files(tmp_path / "first", 3, "أولى")
        rc, _, err = _run("add", str(tmp_path / "first"), vault_dir=vault_dir)
        assert rc == 0, err
        before = _check_vault(vault_dir)
        assert before["shas"] == first
        big = tmp_path / "big.bin"
        big.write_bytes(os.urandom(5 << 20))
        rc, out, err = _run("add", str(big), vault_dir=vault_dir)
        assert rc == 7, (rc, out, err)
        assert "disk is full" in out + err
        assert "Traceback" not in err
        after = _check_vault(vault_dir)
        assert after["shas"] == first, "earlier items changed or the big file half-appeared"
        assert after["events"] == before["events"]
        assert after["orphans"] == 0
        assert _tmp_files(vault_dir) == []
        assert not any(p.name.endswith(".tmp") for p in vault_dir.iterdir())
        # The failed add gave back the room it took: a small file still fits.
        (tmp_path / "small.txt").write_text("بعد تحرير المساحة\n", encoding="utf-8")
        rc, _, err = _run("add", str(tmp_path / "small.txt"), vault_dir=vault_dir)
        assert rc == 0, err


def test_disk_completely_full_gives_a_clear_message(tmp_path: Path) -> None:
    """Not one page free: even opening the ledger (SQLite's -shm file) fails."""
    with _tmpfs(tmp_path / "mnt", "2m") as mnt:
        vault_dir = mnt / "vault"
        Vault.create(vault_dir, PASSPHRASE).close()
        (tmp_path / "a.txt").write_text(ARABIC_TEXT, encoding="utf-8")
        filler = _fill(mnt, 0)
        rc, out, err = _run("add", str(tmp_path / "a.txt"), vault_dir=vault_dir)
        filler.unlink()
        print(err)
        assert _check_vault(vault_dir)["shas"] == set()
        assert _tmp_files(vault_dir) == []
        assert "Traceback" not in err, "a full disk must not crash the CLI with a traceback"
        assert rc == 7, (rc, out, err)
        assert "disk is full" in out + err


def test_disk_full_never_records_a_truncated_blob(tmp_path: Path) -> None:
    """The blob write is cut short by a full disk, but the ledger commit still fits.

    That happens when another connection keeps the vault open (a long `verify`, the web
    app) and SQLite has checkpointed its WAL: the next commit rewrites the WAL from its
    start and needs no new disk space. `add` must then fail, not record an item whose
    encrypted file is truncated.
    """
    size = 300_000  # stored as a file under blobs/, in one write of ~300 kB
    blob_pages = -(-ciphertext_length(size) // PAGE)
    with _tmpfs(tmp_path / "mnt", "4m") as mnt:
        vault_dir = mnt / "vault"
        small = tmp_path / "small"
        first = _small_files(small, 30, "صغير")
        with Vault.create(vault_dir, PASSPHRASE) as holder:
            holder.add([small])
            holder.ledger.conn.execute("PRAGMA wal_checkpoint(RESTART)")
            big = tmp_path / "big.bin"
            big.write_bytes(os.urandom(size))
            filler = _fill(mnt, blob_pages - 10)
            rc, out, err = _run("add", str(big), vault_dir=vault_dir)
            filler.unlink()
            print(rc, out, err)
            report = audit(holder)
        assert report.ok, (rc, out, err, [str(p) for p in report.problems])
        state = _check_vault(vault_dir)
        if rc == 0:
            assert state["shas"] == first | {_sha(big.read_bytes())}
        else:
            assert rc == 7 and "disk is full" in out + err, (rc, out, err)
            assert state["shas"] == first
        assert _tmp_files(vault_dir) == []


@pytest.mark.slow
def test_disk_full_at_every_write_point(tmp_path: Path) -> None:
    """Leave room for the encrypted file, minus a few or plus 0, 1, 2, ... pages; add it.

    As the spare room grows, the failure moves from staging the blob (SQLite's -shm takes
    its pages first), to the SQLite commit (the blob is already renamed into blobs/), to
    the append to the checkpoints file (the test first makes that file's last page nearly
    full, so the append needs a new page), to success. Whatever fails, the vault must
    verify afterwards, and nothing half-written may be left behind.
    """
    size = 300_000  # stored as a file under blobs/, not inside the database
    blob_pages = -(-ciphertext_length(size) // PAGE)
    violations: list[str] = []
    observed: list[tuple[int, int]] = []
    with _tmpfs(tmp_path / "mnt", "4m") as mnt:
        vault_dir = mnt / "vault"
        with Vault.create(vault_dir, PASSPHRASE) as v:
            cpf = vault_dir / "checkpoints"
            line = len(cpf.read_bytes().splitlines()[0]) + 1
            # Make the checkpoints file's last page nearly full.
            while PAGE - cpf.stat().st_size % PAGE >= line // 2:
                v.checkpoint()
        src = tmp_path / "src"
        src.mkdir()
        successes = 0
        events_before = _check_vault(vault_dir)["events"]
        for k in [-16, -8, -2, -1, *range(40)]:
            f = src / f"k{k:02d}.bin"
            f.write_bytes(os.urandom(size))
            filler = _fill(mnt, blob_pages + k)
            rc, out, err = _run("add", str(f), vault_dir=vault_dir)
            filler.unlink()
            observed.append((k, rc))
            where = f"blob + {k} free pages (exit {rc})"
            try:
                state = _check_vault(vault_dir)
            except AssertionError as exc:
                violations.append(f"{where}: vault no longer verifies: {exc}")
                break
            if _tmp_files(vault_dir):
                violations.append(f"{where}: temp files left: {_tmp_files(vault_dir)}")
            if rc == 0:
                successes += 1
                if _sha(f.read_bytes()) not in state["shas"]:
                    violations.append(f"{where}: reported success but the item is absent")
            else:
                if "disk is full" not in out + err or "Traceback" in err:
                    violations.append(f"{where}: unclear error: {err.strip()[-300:]}")
                added = _sha(f.read_bytes()) in state["shas"]
                if state["events"] != events_before + (1 if added else 0):
                    violations.append(f"{where}: events changed unexpectedly")
            if state["orphans"]:
                violations.append(
                    f"{where}: {state['orphans']} orphan encrypted blob(s) left in blobs/ "
                    "(renamed into place, but their transaction was rolled back)"
                )
                # Count each orphan once: remove them so later rounds start clean.
                with Vault.open(vault_dir, PASSPHRASE) as v:
                    for ref in v.blobs.stored_refs() - set(v.ledger.blob_keys()):
                        v.blobs.path(ref).unlink()
            events_before = state["events"]
            if successes >= 3:
                break
    print("spare pages -> exit code:", observed)
    assert successes >= 1, observed
    assert not violations, "\n".join(violations)


# -- two writers -----------------------------------------------------------------------


@pytest.mark.slow
def test_two_adds_at_once(vault: Vault, vault_dir: Path, tmp_path: Path) -> None:
    vault.close()
    a, b = tmp_path / "أ", tmp_path / "ب"
    a.mkdir()
    b.mkdir()
    for i in range(100):
        (a / f"a-{i}.txt").write_bytes(f"a {i}\n".encode() + os.urandom(rng_size(i)))
        (b / f"b-{i}.txt").write_bytes(f"b {i}\n".encode() + os.urandom(rng_size(i + 7)))
    for i in range(15):  # the same content in both folders, under different names
        common = f"{ARABIC_TEXT} مشترك {i}\n".encode() + os.urandom(3000)
        (a / f"مشترك-{i}.txt").write_bytes(common)
        (b / f"shared-{i}.txt").write_bytes(common)
    for i in range(2):
        (a / f"big-{i}.bin").write_bytes(os.urandom(2 << 20))
    expected = set(_source_shas(a)) | set(_source_shas(b))
    assert len(expected) == 217  # 100 + 100 own files, 15 shared, 2 large
    procs = [
        athar_subprocess(
            "add",
            str(folder),
            "--json",
            vault_dir=vault_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for folder in (a, b)
    ]
    outs = [p.communicate(timeout=180) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err.decode()
    docs = [json.loads(out) for out, _ in outs]
    assert docs[0]["added"] + docs[0]["duplicate"] == 117
    assert docs[1]["added"] + docs[1]["duplicate"] == 115
    assert docs[0]["added"] + docs[1]["added"] == 217
    state = _check_vault(vault_dir, expected)
    assert state["shas"] == expected
    assert state["events"] == 1 + 217
    assert _tmp_files(vault_dir) == []


def rng_size(i: int) -> int:
    return (i * 7919) % 30_000


# -- unreadable file -------------------------------------------------------------------

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


def _without_permission_override() -> None:
    """In the child, before exec: make root obey file permissions like any other user.

    (Running as `nobody` is not possible here: the venv's interpreter lives under /root,
    which only root may enter. Dropping the two capabilities that let root ignore file
    modes has the same effect on the file being read.)
    """
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_unreadable_file_is_skipped(vault: Vault, vault_dir: Path, tmp_path: Path) -> None:
    vault.close()
    src = tmp_path / "أدلة"
    readable = _small_files(src, 5, "مقروء")
    secret = src / "سري.txt"
    secret.write_text("لا يمكن قراءته\n", encoding="utf-8")
    secret.chmod(0o000)
    try:
        # The set-up really denies the read (otherwise this test would prove nothing).
        probe = subprocess.run(
            [sys.executable, "-c", f"open({str(secret)!r}, 'rb')"],
            preexec_fn=_without_permission_override,
            capture_output=True,
            check=False,
        )
        assert probe.returncode != 0 and b"PermissionError" in probe.stderr, probe.stderr

        rc, out, err = _run(
            "add", str(src), vault_dir=vault_dir, preexec_fn=_without_permission_override
        )
        print(out, err)
        assert rc == 1, (rc, out, err)
        skipped = [ln for ln in (out + err).splitlines() if ln.startswith("skipped")]
        assert len(skipped) == 1, out + err
        assert "سري.txt" in skipped[0] and "permission denied" in skipped[0]
        assert "5 added, 0 already present, 1 skipped" in out
        state = _check_vault(vault_dir)
        assert state["shas"] == readable
        assert _tmp_files(vault_dir) == []
        # --json says the same, per file.
        rc, out, _ = _run(
            "add", str(src), "--json", vault_dir=vault_dir, preexec_fn=_without_permission_override
        )
        assert rc == 1
        doc = json.loads(out)
        assert doc["ok"] is False and (doc["added"], doc["duplicate"], doc["skipped"]) == (0, 5, 1)
        (entry,) = [r for r in doc["results"] if r["status"] == "skipped"]
        assert entry["path"] == str(secret) and "permission denied" in entry["reason"]
    finally:
        secret.chmod(0o600)


# -- bad input -------------------------------------------------------------------------


def _tree_hashes(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        out[str(p.relative_to(root))] = _sha(p.read_bytes()) if p.is_file() else "<dir>"
    return out


def test_missing_path_changes_nothing(
    cli: Cli, vault: Vault, vault_dir: Path, sample_files: Path, tmp_path: Path
) -> None:
    vault.add([sample_files])
    vault.close()
    before = _tree_hashes(vault_dir)
    events = _check_vault(vault_dir)["events"]
    missing = tmp_path / "لا-يوجد" / "ملف.txt"
    for args in (
        [str(missing)],
        [str(sample_files), str(missing)],  # a good path first: still nothing is added
        [str(missing), "--json"],
    ):
        result = cli("add", *args)
        assert result.exit_code == 2, result.output
        assert "no such file or directory" in result.output
        assert str(missing) in result.output
        assert "Traceback" not in result.output
    assert _check_vault(vault_dir)["events"] == events
    assert _tree_hashes(vault_dir) == before


def test_empty_file_round_trip(cli: Cli, vault: Vault, tmp_path: Path) -> None:
    empty = tmp_path / "فارغ.txt"
    empty.write_bytes(b"")
    result = cli("add", str(empty), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["added"] == 1
    (entry,) = doc["results"]
    assert entry["sha256"] == EMPTY_SHA256 and entry["size"] == 0
    out = tmp_path / "out" / "فارغ.txt"
    out.parent.mkdir()
    result = cli("get", entry["id"][:8], "-o", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == b""
    assert _sha(out.read_bytes()) == EMPTY_SHA256
    # Adding it again is a duplicate, not a second item.
    again = json.loads(cli("add", str(empty), "--json").stdout)
    assert again["added"] == 0 and again["duplicate"] == 1
    assert again["results"][0]["id"] == entry["id"]


# -- many files ------------------------------------------------------------------------


@pytest.mark.slow
def test_ten_thousand_small_files(vault: Vault, vault_dir: Path, tmp_path: Path) -> None:
    vault.close()
    src = tmp_path / "كثير"
    for d in range(10):
        sub = src / f"دفعة-{d}"
        sub.mkdir(parents=True)
        for i in range(1000):
            (sub / f"ملف-{i:04d}.txt").write_bytes(f"{d}/{i}\n".encode() * 3)
    started = time.monotonic()
    rc, out, err = _run("add", str(src), vault_dir=vault_dir, timeout=120)
    took = time.monotonic() - started
    assert rc == 0, err[-2000:]
    assert out.splitlines()[-1] == "10000 added, 0 already present, 0 skipped"
    assert sum(1 for ln in out.splitlines() if ln.startswith("added ")) == 10_000
    assert took < 45, f"adding 10,000 small files took {took:.1f}s"
    with Vault.open(vault_dir, PASSPHRASE) as v:
        items = v.items()
        assert len(items) == 10_000
        assert len({i.sha256 for i in items}) == 10_000
        events = len(v.events())
        assert events == 10_001
    rc, out, err = _run("add", str(src), "--json", vault_dir=vault_dir, timeout=120)
    assert rc == 0, err[-2000:]
    doc = json.loads(out)
    assert (doc["added"], doc["duplicate"], doc["skipped"]) == (0, 10_000, 0)
    with Vault.open(vault_dir, PASSPHRASE) as v:
        assert len(v.events()) == events
        assert len(v.items()) == 10_000
    assert _tmp_files(vault_dir) == []
    print(f"10,000 files added in {took:.1f}s")


@pytest.mark.parametrize("size", [1000, 700_000])  # sealed in the ledger / a blob file
def test_a_stream_that_lies_about_its_length_adds_nothing(vault: Vault, size: int) -> None:
    """add_stream (web uploads) refuses data shorter or longer than announced, and leaves
    no item, no blob file and no temp file behind."""
    import io

    from athar.errors import InputError

    data = os.urandom(size)
    before = (vault.ledger.size(), sorted(p.name for p in vault.root.rglob("*") if p.is_file()))
    with pytest.raises(InputError, match="ended before"):
        vault.add_stream("صورة.jpg", io.BytesIO(data[:-10]), size)
    with pytest.raises(InputError, match="runs past"):
        vault.add_stream("صورة.jpg", io.BytesIO(data + b"x" * 10), size)
    after = (vault.ledger.size(), sorted(p.name for p in vault.root.rglob("*") if p.is_file()))
    assert after == before
    result = vault.add_stream("صورة.jpg", io.BytesIO(data), size)
    assert result.status == "added" and result.item is not None
    assert b"".join(vault.read(result.item)) == data
