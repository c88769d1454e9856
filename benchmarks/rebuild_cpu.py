"""One full rebuild of the cached 1M vault: wall, own CPU, reader CPU, other CPU."""

import json
import resource
import sys
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from pathlib import Path

from athar.records.service import Records
from athar.vault.vault import Vault
from benchcommon import PASSPHRASE, Noise

args = [a for a in sys.argv[1:] if not a.startswith("--")]
vault = args[0] if args else "/tmp/athar-bench-records/rebuild/vault"
v = Vault.open(Path(vault), PASSPHRASE)
rec = Records(v)
before = rec.counts()
r0 = resource.getrusage(resource.RUSAGE_SELF)
c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
noise = Noise()
t = time.perf_counter()
if "--prof" in sys.argv:
    import cProfile
    import pstats

    p = cProfile.Profile()
    p.enable()
    stats = rec.rebuild()
    p.disable()
    pstats.Stats(p).sort_stats("tottime").print_stats(30)
else:
    stats = rec.rebuild()
wall = time.perf_counter() - t
r1 = resource.getrusage(resource.RUSAGE_SELF)
c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
after = rec.counts()
print(
    json.dumps(
        {
            "wall": round(wall, 1),
            "parent_cpu": round(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime, 1),
            "reader_cpu": round(c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime, 1),
            "other_cpu": round(noise.foreign_cpu_s(), 1),
            "peak_rss_mib": r1.ru_maxrss // 1024,
            "reader_rss_mib": c1.ru_maxrss // 1024,
            "applied": stats.applied,
            "ignored": stats.ignored,
            "equal": before == after,
            "counts": after,
        }
    )
)
