"""Ingest throughput: `athar add` of 1 GiB vs `sha256sum` + Debian `age`, same run.

Data set (written once under benchmarks/work/ingest/data, then reused): 6 files of
128 MiB and 64 files of 4 MiB of random bytes = 1 GiB.

Peer baseline = wall time of `sha256sum` over every file + `age -r <recipient> -o <out>`
per file (one process each), summed. Athar = wall time of `athar add <dir> --json` as a
subprocess on a fresh vault (created outside the timing); this includes process start-up
and the Argon2id unlock. The page cache is warmed first so both sides read from memory.
The order alternates between repeats; the medians are compared.

Athar fsyncs every blob (and the ledger); `age` does not. For a like-for-like durability
comparison a second peer figure adds `sync <age outputs>` (fsync of each output file).
Debian's `sha256sum` (coreutils, not linked to a crypto library) does not use the CPU's
SHA extensions, while Python's hashlib (OpenSSL) does; so a third, stricter peer figure
replaces it with `openssl dgst -sha256` over the same files.

Before each timed side the script waits (up to 2 min) for other load on the machine to
settle, and records the CPU time other processes used during the timing (a noise gauge).

Peak RSS is the ru_maxrss of the `athar` process (from wait4), for the 1 GiB add and, to
show that memory does not grow with the data, for an add of a single 4 MiB file and for
an unlock alone (`athar ls`).

    python benchmarks/bench_ingest.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchcommon import (
    WORK,
    athar_bin,
    athar_env,
    athar_init,
    check_disk,
    emit,
    log,
    median,
    mib,
    require_tools,
    run_measured,
    wait_for_quiet,
    warm_cache,
)

BIG_FILES, BIG_SIZE = 6, 128 << 20
SMALL_FILES, SMALL_SIZE = 64, 4 << 20
CHUNK = 4 << 20
GOAL_RATIO = 1.0


def dataset(root: Path) -> list[Path]:
    """Create (or reuse) the 1 GiB data set; return its files in a stable order."""
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    specs = [(data / f"big-{i:02d}.bin", BIG_SIZE) for i in range(BIG_FILES)]
    specs += [(data / f"small-{i:02d}.bin", SMALL_SIZE) for i in range(SMALL_FILES)]
    wanted = {p for p, _ in specs}
    for extra in data.iterdir():
        if extra not in wanted:
            extra.unlink()
    todo = [(p, n) for p, n in specs if not (p.exists() and p.stat().st_size == n)]
    if todo:
        log(f"writing {len(todo)} files, {sum(n for _, n in todo) >> 20} MiB of random bytes")
    for path, size in todo:
        tmp = path.with_suffix(".partial")
        with open(tmp, "wb") as fh:
            for _ in range(size // CHUNK):
                fh.write(os.urandom(CHUNK))
        tmp.replace(path)
    return [p for p, _ in specs]


def age_recipient(root: Path) -> str:
    key = root / "age-key.txt"
    if not key.exists():
        subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    out = subprocess.run(["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def run_peer(files: list[Path], recipient: str, out_dir: Path) -> dict[str, float]:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    wait_for_quiet()
    sha = run_measured(["sha256sum", *map(str, files)])
    ossl = run_measured(["openssl", "dgst", "-sha256", *map(str, files)])
    age_s = foreign = 0.0
    outs = []
    for f in files:
        out = out_dir / (f.name + ".age")
        outs.append(str(out))
        run = run_measured(["age", "-r", recipient, "-o", str(out), str(f)])
        age_s += run.seconds
        foreign += run.foreign_cpu_s
    sync = run_measured(["sync", *outs])
    shutil.rmtree(out_dir)
    return {
        "sha256sum_s": sha.seconds,
        "age_s": age_s,
        "peer_s": sha.seconds + age_s,
        "sync_s": sync.seconds,
        "peer_durable_s": sha.seconds + age_s + sync.seconds,
        "openssl_sha256_s": ossl.seconds,
        "peer_openssl_s": ossl.seconds + age_s,
        "peer_foreign_cpu_s": sha.foreign_cpu_s + foreign,
    }


def run_athar(data: Path, vault: Path, expect: int) -> dict[str, Any]:
    athar_init(vault)
    out_file = vault.parent / (vault.name + ".out.json")
    wait_for_quiet()
    with open(out_file, "wb") as out:
        run = run_measured(
            [athar_bin(), "add", str(data), "--json"], env=athar_env(vault), stdout=out
        )
    report = json.loads(out_file.read_text(encoding="utf-8"))
    out_file.unlink()
    if report.get("added") != expect:
        raise RuntimeError(f"athar add reported {report.get('added')} added, expected {expect}")
    shutil.rmtree(vault)
    return {
        "athar_s": run.seconds,
        "athar_peak_rss_kib": run.peak_rss_kib,
        "athar_foreign_cpu_s": run.foreign_cpu_s,
    }


def memory_reference(root: Path, one_file: Path) -> dict[str, float]:
    """Peak RSS of an unlock alone and of adding one 4 MiB file, for comparison."""
    vault = root / "vault-mem"
    athar_init(vault)
    env = athar_env(vault)
    unlock = run_measured([athar_bin(), "ls", "--json"], env=env)
    small = run_measured([athar_bin(), "add", str(one_file), "--json"], env=env)
    shutil.rmtree(vault)
    return {
        "unlock_only_s": round(unlock.seconds, 3),
        "unlock_only_peak_rss_mib": mib(unlock.peak_rss_kib),
        "add_4mib_s": round(small.seconds, 3),
        "add_4mib_peak_rss_mib": mib(small.peak_rss_kib),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    require_tools("sha256sum", "openssl", "age", "age-keygen", "sync")
    root = WORK / "ingest"
    free = check_disk(WORK)
    files = dataset(root)
    total_bytes = sum(f.stat().st_size for f in files)
    recipient = age_recipient(root)
    for stale in root.glob("vault-*"):
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink()

    repeats: list[dict[str, Any]] = []
    for r in range(args.repeats):
        log(f"repeat {r + 1}/{args.repeats}: warming the page cache, flushing dirty pages")
        warm_cache(files)
        os.sync()  # so no write-back of earlier output competes with the timed runs
        order = ["peer", "athar"] if r % 2 == 0 else ["athar", "peer"]
        row: dict[str, Any] = {"repeat": r + 1, "order": order}
        for side in order:
            if side == "peer":
                row.update(run_peer(files, recipient, root / "age-out"))
                log(
                    f"  peer sha256sum+age: {row['peer_s']:.2f} s "
                    f"(+sync {row['sync_s']:.2f} s; openssl+age {row['peer_openssl_s']:.2f} s)"
                )
            else:
                row.update(run_athar(root / "data", root / f"vault-{r}", len(files)))
                log(
                    f"  athar add: {row['athar_s']:.2f} s, "
                    f"peak RSS {mib(row['athar_peak_rss_kib'])} MiB"
                )
        repeats.append(row)

    athar = median([r["athar_s"] for r in repeats])
    peer = median([r["peer_s"] for r in repeats])
    peer_durable = median([r["peer_durable_s"] for r in repeats])
    peer_openssl = median([r["peer_openssl_s"] for r in repeats])
    peak = max(r["athar_peak_rss_kib"] for r in repeats)
    log("memory reference: unlock alone and a single 4 MiB add")
    mem = memory_reference(root, files[-1])
    ratio = athar / peer
    emit(
        {
            "benchmark": "ingest",
            "files": len(files),
            "bytes": total_bytes,
            "repeats": repeats,
            "median_athar_s": round(athar, 3),
            "median_sha256sum_s": round(median([r["sha256sum_s"] for r in repeats]), 3),
            "median_age_s": round(median([r["age_s"] for r in repeats]), 3),
            "median_peer_s": round(peer, 3),
            "median_peer_durable_s": round(peer_durable, 3),
            "median_openssl_sha256_s": round(median([r["openssl_sha256_s"] for r in repeats]), 3),
            "median_peer_openssl_s": round(peer_openssl, 3),
            "ratio": round(ratio, 3),
            "ratio_vs_durable_peer": round(athar / peer_durable, 3),
            "ratio_vs_openssl_peer": round(athar / peer_openssl, 3),
            "athar_mib_per_s": round(total_bytes / 2**20 / athar, 1),
            "peer_mib_per_s": round(total_bytes / 2**20 / peer, 1),
            "athar_peak_rss_mib": mib(peak),
            **mem,
            "goal": f"athar/(sha256sum+age) <= {GOAL_RATIO}",
            "goal_met": ratio <= GOAL_RATIO,
            "disk_free_bytes_at_start": free,
        }
    )


if __name__ == "__main__":
    sys.exit(main())
