"""Full `athar verify` of a vault of 100,000 events (99,999 small items + vault.created).

Build (once; reused by later runs while the athar sources are unchanged, unless
--rebuild; its timing is kept and reported):
99,999 small files of ~200 bytes (a third with Arabic text), all distinct, under
benchmarks/work/verify/files/, added with one `athar add <dir>`.

Measured: `athar verify --json` as a subprocess (start-up + Argon2id unlock + full audit:
every event decrypted and signature-checked, chains, Merkle root vs every checkpoint,
every blob decrypted and hashed): wall seconds and peak RSS (wait4). Peer reference in
the same run: `xargs -0 sha256sum` over the same 99,999 plaintext files. Each timed run
waits for other load on the machine to settle first and records the CPU time other
processes used meanwhile (a noise gauge).

If the verify is over the goal (or with --profile always), a breakdown follows: audit()
timed in process as shipped and serially, and a cProfile of the serial audit() grouped by
operation.

    python benchmarks/bench_verify.py [--files 99999] [--repeats 3] [--rebuild]
"""

from __future__ import annotations

import argparse
import cProfile
import inspect
import json
import os
import pstats
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from benchcommon import (
    PASSPHRASE,
    WORK,
    Noise,
    athar_bin,
    athar_env,
    athar_init,
    check_disk,
    emit,
    log,
    median,
    mib,
    run_measured,
    source_fingerprint,
    wait_for_quiet,
    warm_cache,
)

GOAL_SECONDS = 10.0
PER_DIR = 1000
ARABIC = [
    "شهادة رقم {n}: سمعنا انفجارًا قرب السوق ثم رأينا الدخان فوق الحي.",
    "صورة {n} — مدرسة الأمل، الجدار الشرقي مدمّر، لا إصابات معروفة.",
    "ملاحظة {n}: نقل الجرحى إلى المستشفى الميداني في الساعة ٣:١٥ فجرًا.",
]


def content(n: int) -> bytes:
    if n % 3 == 0:
        text = ARABIC[(n // 3) % len(ARABIC)].format(n=n).encode("utf-8")
    else:
        text = f"record {n}: field note, sensor reading, witness id {n * 7919 % 100003}\n".encode()
    # Random tail: every file distinct (so none is deduplicated) and ~200 bytes in all.
    return text + b"\n" + os.urandom(max(16, 200 - len(text) - 1))


def dataset(root: Path, count: int) -> list[Path]:
    files_dir = root / "files"
    stamp = root / "files.json"
    paths = [files_dir / f"d{n // PER_DIR:03d}" / f"note-{n:06d}.txt" for n in range(count)]
    if stamp.exists() and json.loads(stamp.read_text()).get("count") == count:
        return paths
    if files_dir.exists():
        shutil.rmtree(files_dir)
    log(f"writing {count:,} small files")
    for n, path in enumerate(paths):
        if n % PER_DIR == 0:
            path.parent.mkdir(parents=True)
        path.write_bytes(content(n))
    stamp.write_text(json.dumps({"count": count}))
    return paths


def build_vault(root: Path, count: int, rebuild: bool) -> dict[str, Any]:
    vault = root / "vault"
    stamp = root / "vault.json"
    if not rebuild and stamp.exists() and vault.exists():
        info: dict[str, Any] = json.loads(stamp.read_text())
        if info.get("files") == count and info.get("source") == source_fingerprint():
            info["reused"] = True
            log(f"reusing the vault built {info['built_at']} (add took {info['add_s']} s)")
            return info
    stamp.unlink(missing_ok=True)
    athar_init(vault)
    log(f"athar add of {count:,} files (takes a few minutes)")
    out_file = root / "add.out.json"
    with open(out_file, "wb") as out:
        run = run_measured(
            [athar_bin(), "add", str(root / "files"), "--json"], env=athar_env(vault), stdout=out
        )
    report = json.loads(out_file.read_text(encoding="utf-8"))
    out_file.unlink()
    if report.get("added") != count:
        raise RuntimeError(f"athar add reported {report.get('added')} added, expected {count}")
    info = {
        "files": count,
        "events": count + 1,
        "add_s": round(run.seconds, 2),
        "add_files_per_s": round(count / run.seconds),
        "add_peak_rss_mib": mib(run.peak_rss_kib),
        "built_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "source": source_fingerprint(),
    }
    stamp.write_text(json.dumps(info))
    info["reused"] = False
    log(f"  added in {run.seconds:.1f} s ({info['add_files_per_s']} files/s)")
    return info


# (label, (file suffix, function name)) for the profile breakdown. Cumulative times
# overlap (a caller includes its callees); functions the current code lacks are left out.
PROFILE_FUNCS = [
    ("event decrypt + parse (Ledger.open_event)", ("vault/ledger.py", "open_event")),
    ("AEAD open, all records (aead.open_sealed)", ("crypto/aead.py", "open_sealed")),
    ("event parse: JSON + base64 (parse_entry)", ("vault/events.py", "parse_entry")),
    ("index tag HMAC (Ledger.tag)", ("vault/ledger.py", "tag")),
    ("leaf hash (merkle.leaf_hash)", ("vault/merkle.py", "leaf_hash")),
    ("Ed25519 verify (verify_signature)", ("crypto/identity.py", "verify_signature")),
    ("item projection (item_from_event)", ("vault/items.py", "item_from_event")),
    ("blob check per item (Vault.check_blob)", ("vault/vault.py", "check_blob")),
    ("blob key unseal (BlobStore.open_key)", ("vault/blobs.py", "open_key")),
    ("blob file read + decrypt (BlobStore.read)", ("vault/blobs.py", "read")),
    ("small item open (open_small)", ("crypto/stream.py", "open_small")),
    ("stream decrypt (decrypt_stream)", ("crypto/stream.py", "decrypt_stream")),
    ("file open (builtin open)", ("~", "<built-in method io.open>")),
    (
        "SQLite queries (Connection.execute)",
        ("~", "<method 'execute' of 'sqlite3.Connection' objects>"),
    ),
    ("device chains (_check_devices)", ("vault/audit.py", "_check_devices")),
    ("Merkle + checkpoints (_check_checkpoints)", ("vault/audit.py", "_check_checkpoints")),
    ("Merkle: Frontier.append", ("vault/merkle.py", "append")),
    ("checkpoint signatures (open_note)", ("vault/checkpoint.py", "open_note")),
    ("blob directory scan (BlobStore.stored_refs)", ("vault/blobs.py", "stored_refs")),
]


def profile_breakdown(vault_dir: Path) -> dict[str, Any]:
    """In-process timings of audit() and a cProfile of it, using only its public API.

    audit() may use worker threads or processes, which cProfile (this thread only) does
    not see; if audit() takes a ``workers`` argument the profile is run with workers=1.
    """
    from athar.vault.audit import audit
    from athar.vault.vault import Vault

    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    vault = Vault.open(vault_dir, PASSPHRASE)
    out["open_unlock_s"] = round(time.perf_counter() - t0, 3)
    serial_kw: dict[str, Any] = {}
    if "workers" in inspect.signature(audit).parameters:
        serial_kw["workers"] = 1
    out["profile_is_serial"] = bool(serial_kw)
    try:
        wait_for_quiet()
        noise = Noise()
        t0 = time.perf_counter()
        report = audit(vault)
        out["audit_wall_s"] = round(time.perf_counter() - t0, 3)
        out["audit_foreign_cpu_s"] = round(noise.foreign_cpu_s(), 2)
        if not report.ok:
            raise RuntimeError(f"audit found problems: {report.problems[:3]}")
        if serial_kw:
            wait_for_quiet()
            noise = Noise()
            t0 = time.perf_counter()
            audit(vault, **serial_kw)
            out["audit_serial_wall_s"] = round(time.perf_counter() - t0, 3)
            out["audit_serial_foreign_cpu_s"] = round(noise.foreign_cpu_s(), 2)
        profiler = cProfile.Profile()
        t0 = time.perf_counter()
        profiler.enable()
        audit(vault, **serial_kw)
        profiler.disable()
        out["audit_profiled_s"] = round(time.perf_counter() - t0, 3)
    finally:
        vault.close()
    stats = pstats.Stats(profiler)
    table: dict[tuple[str, int, str], Any] = stats.stats  # type: ignore[attr-defined]
    breakdown: dict[str, dict[str, Any]] = {}
    for label, (suffix, name) in PROFILE_FUNCS:
        calls, cum = 0, 0.0
        for (filename, _line, func), (_cc, nc, _tt, ct, _callers) in table.items():
            if func == name and filename.endswith(suffix):
                calls += nc
                cum += ct
        if calls:
            breakdown[label] = {"calls": calls, "cumtime_s": round(cum, 3)}
    top = sorted(table.items(), key=lambda kv: kv[1][2], reverse=True)[:15]
    out["profile_cumulative"] = breakdown
    out["profile_top_tottime"] = [
        {
            "function": f"{Path(f).name}:{line}({func})",
            "calls": nc,
            "tottime_s": round(tt, 3),
            "cumtime_s": round(ct, 3),
        }
        for (f, line, func), (_cc, nc, tt, ct, _callers) in top
    ]
    return out


def build_events_vault(root: Path, count: int) -> tuple[Path, float]:
    """A vault of *count* signed events with no blobs (what record events look like),
    built in process through the ledger API in batches of 1,000."""
    from athar.vault.vault import Vault

    vault_dir = root / "vault-events"
    marker = vault_dir / "built-from"
    if marker.exists() and marker.read_text() == f"{source_fingerprint()} {count}":
        return vault_dir, 0.0
    shutil.rmtree(vault_dir, ignore_errors=True)
    started = time.perf_counter()
    with Vault.create(vault_dir, PASSPHRASE) as v:
        done = 0
        while done < count:
            with v.ledger.transaction() as tx:
                for n in range(done, min(done + 1000, count)):
                    tx.append("note.added", {"n": n, "text": ARABIC[n % 3].format(n=n)})
            done = min(done + 1000, count)
    marker.write_text(f"{source_fingerprint()} {count}")
    return vault_dir, time.perf_counter() - started


def time_events_only(root: Path, count: int, repeats: int) -> dict[str, Any]:
    vault_dir, build_s = build_events_vault(root, count)
    warm_cache([p for p in vault_dir.rglob("*") if p.is_file()])
    runs = []
    for r in range(repeats):
        wait_for_quiet()
        out_file = root / "verify-events.out.json"
        with open(out_file, "wb") as out:
            run = run_measured(
                [athar_bin(), "verify", "--json"], env=athar_env(vault_dir), stdout=out
            )
        report = json.loads(out_file.read_text(encoding="utf-8"))
        out_file.unlink()
        if not report.get("ok") or report.get("events") != count + 1:
            raise RuntimeError(f"verify did not pass: {str(report)[:500]}")
        log(f"events only, repeat {r + 1}: athar verify {run.seconds:.2f} s")
        runs.append(
            {
                "athar_verify_s": run.seconds,
                "athar_peak_rss_kib": run.peak_rss_kib,
                "athar_foreign_cpu_s": round(run.foreign_cpu_s, 2),
            }
        )
    verify_s = median([r["athar_verify_s"] for r in runs])
    return {
        "events": count + 1,
        "build_s": round(build_s, 2),
        "repeats": runs,
        "median_verify_s": round(verify_s, 3),
        "verify_peak_rss_mib": mib(max(r["athar_peak_rss_kib"] for r in runs)),
        "goal_met": verify_s <= GOAL_SECONDS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=99_999)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true", help="rebuild the vault")
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto")
    args = parser.parse_args()
    root = WORK / "verify"
    check_disk(WORK)
    files = dataset(root, args.files)
    build = build_vault(root, args.files, args.rebuild)
    vault = root / "vault"
    env = athar_env(vault)
    listing = root / "files.list"
    listing.write_bytes(b"".join(str(p).encode() + b"\0" for p in files))

    log("warming the page cache (plain files and vault)")
    warm_cache(files)
    warm_cache([p for p in vault.rglob("*") if p.is_file()])
    startup = run_measured([athar_bin(), "version"])
    runs = []
    for r in range(args.repeats):
        order = ["peer", "athar"] if r % 2 == 0 else ["athar", "peer"]
        row: dict[str, Any] = {"repeat": r + 1}
        for side in order:
            wait_for_quiet()
            if side == "peer":
                with open(listing, "rb") as stdin:
                    peer = run_measured(["xargs", "-0", "sha256sum"], stdin=stdin)
                row["sha256sum_s"] = peer.seconds
                row["sha256sum_foreign_cpu_s"] = round(peer.foreign_cpu_s, 2)
            else:
                out_file = root / "verify.out.json"
                with open(out_file, "wb") as out:
                    run = run_measured([athar_bin(), "verify", "--json"], env=env, stdout=out)
                report = json.loads(out_file.read_text(encoding="utf-8"))
                out_file.unlink()
                if not report.get("ok") or report.get("events") != args.files + 1:
                    raise RuntimeError(f"verify did not pass: {str(report)[:500]}")
                row["athar_verify_s"] = run.seconds
                row["athar_peak_rss_kib"] = run.peak_rss_kib
                row["athar_foreign_cpu_s"] = round(run.foreign_cpu_s, 2)
                row["events"] = report["events"]
                row["blobs_checked"] = report["blobs_checked"]
        log(
            f"repeat {r + 1}: athar verify {row['athar_verify_s']:.2f} s, "
            f"sha256sum {row['sha256sum_s']:.2f} s"
        )
        runs.append(row)

    verify_s = median([r["athar_verify_s"] for r in runs])
    sha_s = median([r["sha256sum_s"] for r in runs])
    result: dict[str, Any] = {
        "benchmark": "verify",
        "files": args.files,
        "events": runs[0]["events"],
        "blobs_checked": runs[0]["blobs_checked"],
        "build": build,
        "repeats": runs,
        "athar_startup_s": round(startup.seconds, 3),
        "median_verify_s": round(verify_s, 3),
        "median_sha256sum_s": round(sha_s, 3),
        "ratio_vs_sha256sum": round(verify_s / sha_s, 2),
        "verify_peak_rss_mib": mib(max(r["athar_peak_rss_kib"] for r in runs)),
        "goal": f"athar verify of 100,000 events <= {GOAL_SECONDS:.0f} s (here each with a blob)",
        "goal_met": verify_s <= GOAL_SECONDS,
    }
    log("ledger-only vault: signed events without blobs")
    result["events_only"] = time_events_only(root, args.files, args.repeats)
    if args.profile == "always" or (args.profile == "auto" and verify_s > GOAL_SECONDS):
        log("profiling audit() in process")
        result["breakdown"] = profile_breakdown(vault)
    emit(result)


if __name__ == "__main__":
    sys.exit(main())
