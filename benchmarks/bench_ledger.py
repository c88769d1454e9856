"""Durable ledger appends per second, Athar vs raw SQLite, same run.

Athar: ``with vault.ledger.transaction() as tx: tx.append("bench.event", {...})`` in
batches of 1, 10, 100 and 1000 events. Each transaction signs every event (Ed25519,
DSSE + JCS), seals it (XChaCha20-Poly1305), inserts it, then signs and stores a
checkpoint, commits with a WAL fsync (synchronous=FULL) and fsyncs the checkpoints file.

Peer: the same number of rows, same batch size, into a raw SQLite WAL database with
synchronous=FULL, one transaction per batch, rows of the same size as Athar's sealed
events (random bytes, generated before the timing) with a 16-byte unique tag column.

Each setting runs until it has done its event target or its time budget is spent.

    python benchmarks/bench_ledger.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from athar.vault.vault import Vault
from benchcommon import PASSPHRASE, WORK, Noise, check_disk, emit, log, wait_for_quiet

BATCHES = (1, 10, 100, 1000)
TARGET = {1: 3_000, 10: 20_000, 100: 20_000, 1000: 20_000}
GOAL_APPENDS_PER_S = 5_000
ARABIC = "شاهد عيان: قصف على حيّ سكني قرب المدرسة، الساعة ١٠:٣٠"


def body(n: int) -> dict[str, Any]:
    return {"n": n, "text": ARABIC, "place": "حلب", "ok": True}


def bench_athar(root: Path, batch: int, target: int, budget: float) -> dict[str, Any]:
    vault_dir = root / f"vault-b{batch}"
    if vault_dir.exists():
        shutil.rmtree(vault_dir)
    vault = Vault.create(vault_dir, PASSPHRASE)  # Argon2id etc.: outside the timing
    try:
        n = 0
        wait_for_quiet()
        noise = Noise()
        started = time.perf_counter()
        while n < target:
            with vault.ledger.transaction() as tx:
                for _ in range(batch):
                    tx.append("bench.event", body(n))
                    n += 1
            if time.perf_counter() - started >= budget:
                break
        seconds = time.perf_counter() - started
        foreign = noise.foreign_cpu_s()
        row = vault.ledger.conn.execute(
            "SELECT avg(length(sealed)), count(*) FROM events WHERE seq > 0"
        ).fetchone()
    finally:
        vault.close()
    shutil.rmtree(vault_dir)
    if row[1] != n:
        raise RuntimeError(f"ledger holds {row[1]} bench events, expected {n}")
    return {
        "events": n,
        "seconds": seconds,
        "sealed_bytes": round(row[0]),
        "foreign_cpu_s": foreign,
    }


def bench_sqlite(root: Path, batch: int, target: int, budget: float, size: int) -> dict[str, Any]:
    db = root / f"raw-b{batch}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, tag BLOB NOT NULL UNIQUE, "
        "sealed BLOB NOT NULL)"
    )
    rows = [(i, os.urandom(16), os.urandom(size)) for i in range(target)]
    n = 0
    wait_for_quiet()
    noise = Noise()
    started = time.perf_counter()
    while n < target:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO events (seq, tag, sealed) VALUES (?, ?, ?)", rows[n : n + batch]
        )
        conn.execute("COMMIT")
        n += batch
        if time.perf_counter() - started >= budget:
            break
    seconds = time.perf_counter() - started
    foreign = noise.foreign_cpu_s()
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    return {"events": n, "seconds": seconds, "foreign_cpu_s": foreign}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="time budget per setting and side"
    )
    args = parser.parse_args()
    root = WORK / "ledger"
    check_disk(WORK)
    root.mkdir(parents=True, exist_ok=True)
    # The SQLite rows get the size of Athar's sealed events; it is stable, so a short
    # probe gives it.
    size = bench_athar(root, 1, 20, args.seconds)["sealed_bytes"]
    settings = []
    for i, batch in enumerate(BATCHES):
        target = TARGET[batch]
        # Athar first on even settings, SQLite first on odd ones.
        if i % 2 == 0:
            a = bench_athar(root, batch, target, args.seconds)
            s = bench_sqlite(root, batch, target, args.seconds, size)
        else:
            s = bench_sqlite(root, batch, target, args.seconds, size)
            a = bench_athar(root, batch, target, args.seconds)
        a_rate = a["events"] / a["seconds"]
        s_rate = s["events"] / s["seconds"]
        log(
            f"batch {batch}: athar {a_rate:,.0f}/s ({a['events']} events), "
            f"sqlite {s_rate:,.0f}/s ({s['events']} events)"
        )
        settings.append(
            {
                "batch": batch,
                "athar_events": a["events"],
                "athar_seconds": round(a["seconds"], 3),
                "athar_appends_per_s": round(a_rate),
                "athar_transactions_per_s": round(a_rate / batch, 1),
                "sealed_event_bytes": a["sealed_bytes"],
                "sqlite_events": s["events"],
                "sqlite_seconds": round(s["seconds"], 3),
                "sqlite_appends_per_s": round(s_rate),
                "ratio": round(a_rate / s_rate, 4),
                "athar_foreign_cpu_s": round(a["foreign_cpu_s"], 2),
                "sqlite_foreign_cpu_s": round(s["foreign_cpu_s"], 2),
                "order": "athar first" if i % 2 == 0 else "sqlite first",
            }
        )
    batched = [s for s in settings if s["batch"] >= 100]
    best = max(s["athar_appends_per_s"] for s in batched)
    emit(
        {
            "benchmark": "ledger",
            "sqlite_version": sqlite3.sqlite_version,
            "settings": settings,
            "goal": f">= {GOAL_APPENDS_PER_S:,} durable appends/s (batched, batch >= 100)",
            "best_batched_appends_per_s": best,
            "goal_met": best >= GOAL_APPENDS_PER_S,
        }
    )


if __name__ == "__main__":
    sys.exit(main())
