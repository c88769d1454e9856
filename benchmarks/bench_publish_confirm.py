"""Bench for the publish confirmation and account events (webpub helper).

Measures, on a throwaway vault: copy_states() over ledgers of growing size (it reads the
whole ledger), confirm() latency, the /publish page and /api/docs page through the
in-process client. Run: /tmp/v/bin/python /tmp/helpers/webpub/bench.py [events...]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from athar.publish.confirm import CopyIndex, confirm, copy_states
from athar.publish.copy import CopyOptions, public_copy
from athar.vault.vault import Vault

PASS = "كلمة سر طويلة للقياس — bench passphrase"


def timed(fn, repeat=5):
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main(sizes: list[int]) -> None:
    from test_web_fixtures import build_world

    root = Path(tempfile.mkdtemp())
    world = build_world(root)
    with Vault.open(world.vault_dir, "كلمة سر طويلة للاختبار — web test passphrase") as vault:
        t = time.perf_counter()
        made = public_copy(vault, world.photo, None, CopyOptions())
        print(
            "public copy of the 160x120 sample (faces on, kept in vault): "
            f"{time.perf_counter() - t:.3f} s"
        )
        filled = len(vault.events())
        for size in sizes:
            with vault.ledger.transaction() as tx:
                while filled < size:
                    tx.append("bench.filler", {"n": filled, "text": "حشو " * 8})
                    filled += 1
            cold = timed(lambda: CopyIndex().refresh(vault), 3)
            copy_states(vault)
            warm = timed(lambda: copy_states(vault), 5)
            print(
                f"ledger {filled:>7} events: full read {cold * 1000:8.1f} ms, "
                f"incremental {warm * 1000:6.2f} ms"
            )
        t = time.perf_counter()
        confirm(vault, made["event"])
        print(f"confirm at {filled} events: {(time.perf_counter() - t) * 1000:.1f} ms")


if __name__ == "__main__":
    if "--pages" not in sys.argv:
        main([int(a) for a in sys.argv[1:]] or [1_000, 10_000, 50_000])


def pages() -> None:
    """/publish with 20 copies and /api/docs, median of 20 requests each (in process)."""
    from fastapi.testclient import TestClient

    from athar.web.app import create_app
    from test_web_fixtures import BASE, PASSPHRASE, build_world, login

    world = build_world(Path(tempfile.mkdtemp()))
    with Vault.open(world.vault_dir, PASSPHRASE) as vault:
        for i in range(20):
            public_copy(
                vault,
                world.photo,
                None,
                CopyOptions(faces=False, regions=()),
                suffix=(".jpg", ".png", ".webp")[i % 3] if i < 3 else ".jpg",
            )
    app = create_app(world.vault_dir, PASSPHRASE)
    with TestClient(app, base_url=BASE) as client:
        login(client, "publisher")
        for path in ("/publish?status=all", "/api/docs"):
            client.get(path)
            ms = timed(lambda p=path: client.get(p), 20) * 1000
            size = len(client.get(path).content)
            print(f"GET {path}: median {ms:.1f} ms, {size / 1024:.1f} KiB of HTML")


if __name__ == "__main__" and "--pages" in sys.argv:
    pages()
