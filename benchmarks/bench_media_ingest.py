"""Media ingest throughput (docs/benchmarks.md §5.3): what `athar add` costs per picture
beyond encryption — metadata, perceptual hashes with search probes, the near-copy search
and one signed event per item — and `similar` on a file against the archive.

Run: python benchmarks/bench_media_ingest.py [--images 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from athar.vault.vault import Vault
from athar.verify.service import MediaService


def make_images(folder: Path, count: int, width: int, height: int) -> list[Path]:
    """Random textures (smooth noise: real JPEG work, nothing alike by chance)."""
    rng = np.random.default_rng(7)
    paths = []
    for n in range(count):
        small = (rng.random((height // 16, width // 16, 3)) * 255).astype(np.uint8)
        image = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
        path = folder / f"صورة-{n:03d}.jpg"
        image.save(path, quality=88)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=30)
    parser.add_argument("--width", type=int, default=2000)
    parser.add_argument("--height", type=int, default=1500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        paths = make_images(root / "in", args.images, args.width, args.height)
        with Vault.create(root / "vault", "bench passphrase — كلمة سر") as vault:
            started = time.perf_counter()
            items = [r.item for r in vault.add(paths).results if r.item is not None]
            add_s = time.perf_counter() - started
            started = time.perf_counter()
            done = MediaService(vault).ingest(items)
            ingest_s = time.perf_counter() - started
            started = time.perf_counter()
            _, found = MediaService(vault).similar_to_file(paths[0])
            similar_s = time.perf_counter() - started
    result = {
        "images": len(done),
        "size": f"{args.width}x{args.height}",
        "add_s": round(add_s, 2),
        "ingest_s": round(ingest_s, 2),
        "ingest_images_per_s": round(len(done) / ingest_s, 2),
        "similar_s": round(similar_s, 3),
        "similar_found": len(found),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
