"""Rotation and preview cost (issue 10). Run: python benchmarks/bench_rotation.py [events]"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

from athar.records.service import Records
from athar.sync import exchange, membership, service
from athar.vault import rotation
from athar.vault.vault import Vault, wipe

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
root = Path(tempfile.mkdtemp())
# 1. rotate: median of 15
v = Vault.create(root / "r", "pw")
times = []
for _ in range(15):
    t = time.perf_counter()
    rotation.rotate(v)
    times.append(time.perf_counter() - t)
print(f"rotate: median {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms")
v.close()
# 2. preview over a bundle of N events
a = Vault.create(root / "a", "pw")
with Records(a) as r:
    for i in range(N):
        r.create("person", {"name_ar.full": f"محمد {i}"})
out = exchange.collect(a, 0)
entries = out.entries
print("events in bundle", len(entries))
m = membership.Membership(b"\0" * 32)
ts = []
for _ in range(5):
    t = time.perf_counter()
    m.preview(entries)
    ts.append(time.perf_counter() - t)
print(
    f"preview of {len(entries)} entries: best of 5 {min(ts):.3f} s "
    f"({min(ts) / len(entries) * 1e6:.1f} us/event), "
    f"median {statistics.median(ts) / len(entries) * 1e6:.1f} us/event"
)
b = Vault.create(root / "b", "pw")
c = service.card(a)
service.enrol(b, c["key"], c["age_recipient"], "a", False)
files = service.export_bundle(a, [service.card(b)["age_recipient"]], root / "out").files
t = time.perf_counter()
service.import_bundles(b, files)
imp = time.perf_counter() - t
print(f"whole import of the same bundle: {imp:.2f} s")
# 3. wipe
ws = []
for i in range(10):
    w = Vault.create(root / f"w{i}", "pw")
    w.close()
    ws.append(wipe(root / f"w{i}"))
print(f"wipe: median {statistics.median(ws) * 1000:.2f} ms")
