"""C2PA reading cost per file at ingest: unsigned and signed JPEGs (1 and 12 MP), a
100 MB non-media blob. Run: python benchmarks/bench_c2pa.py (uses the tests' own CA)."""

import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from athar.verify.c2pa_manifest import read
from test_c2pa import make_signer, sign_jpeg


def jpeg(w, h):
    rng = np.random.default_rng(1)
    arr = (rng.random((h // 8, w // 8, 3)) * 255).astype(np.uint8)
    img = Image.fromarray(arr).resize((w, h))
    b = io.BytesIO()
    img.save(b, "JPEG", quality=90)
    return b.getvalue()


def bench(label, data, fmt, anchors, n):
    read(data, fmt, anchors)
    t = time.perf_counter()
    for _ in range(n):
        v = read(data, fmt, anchors).verdict
    dt = (time.perf_counter() - t) / n
    print(f"{label:38s} {len(data) / 1e6:7.2f} MB  {dt * 1000:8.2f} ms/file  verdict={v}")


s = make_signer("Bench Root", "Bench camera")
anchors = s.root.decode()
for w, h, n in ((1024, 768, 50), (4000, 3000, 10)):
    plain = jpeg(w, h)
    signed = sign_jpeg(s, plain)
    bench(f"unsigned JPEG {w}x{h}", plain, "JPEG", anchors, n)
    bench(f"signed JPEG {w}x{h}", signed, "JPEG", anchors, n)
