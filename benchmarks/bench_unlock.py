"""Unlock timing of the real and the duress path (each duress open on a fresh copy)."""

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from athar.vault import recovery
from athar.vault.vault import Vault, set_decoy, wipe

N = int(sys.argv[1]) if len(sys.argv) > 1 else 8
base = Path(tempfile.mkdtemp())
root = base / "v"
with Vault.create(root, "real") as v:
    recovery.split(root / "key", v.keys, 3, 5)
    set_decoy(v, "duress")
plain = base / "plain"
Vault.create(plain, "real").close()
real, forced, single = [], [], []
for i in range(N):
    fresh = base / f"r{i}"
    shutil.copytree(root, fresh)
    os.sync()
    t = time.perf_counter()
    Vault.open(fresh, "real").close()
    real.append(time.perf_counter() - t)
    copy = base / f"c{i}"
    shutil.copytree(root, copy)
    os.sync()
    t = time.perf_counter()
    Vault.open(copy, "duress").close()
    forced.append(time.perf_counter() - t)
    t = time.perf_counter()
    Vault.open(plain, "real").close()
    single.append(time.perf_counter() - t)
t = time.perf_counter()
wipe(root)
w = time.perf_counter() - t


def f(xs: list[float]) -> str:
    ms = [x * 1000 for x in xs]
    return f"median {statistics.median(ms):.0f} ms (min {min(ms):.0f}, max {max(ms):.0f})"


print(f"N={N}")
print(f"real passphrase, vault with decoy: {f(real)}")
print(f"duress passphrase (destroys keys): {f(forced)}")
print(f"vault without decoy (one Argon2id): {f(single)}")
print(f"wipe: {w * 1000:.1f} ms")
shutil.rmtree(base)
