"""Face detection for public copies (docs/benchmarks.md §10): the bundled OpenCV cascades on
photographs that ship with scikit-image and matplotlib. Run: python benchmarks/bench_faces.py"""

import os
import time

import matplotlib
import numpy as np
import skimage
from PIL import Image

from athar.publish.faces import detect_faces

d = os.path.join(os.path.dirname(skimage.__file__), "data")
imgs = {
    "astronaut": os.path.join(d, "astronaut.png"),
    "camera": os.path.join(d, "camera.png"),
    "grace_hopper": os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg"),
    "coffee (no face)": os.path.join(d, "coffee.png"),
    "chelsea (cat, no face)": os.path.join(d, "chelsea.png"),
    "rocket (no face)": os.path.join(d, "rocket.jpg"),
}
for name, p in imgs.items():
    rgb = np.asarray(Image.open(p).convert("RGB"))
    t = time.perf_counter()
    b = detect_faces(rgb)
    dt = time.perf_counter() - t
    print(
        f"{name}: {rgb.shape[1]}x{rgb.shape[0]} faces={len(b)}",
        [x.to_json() for x in b],
        f"{dt * 1000:.0f} ms",
    )
lfw = np.load(os.path.join(d, "lfw_subset.npy"))
hits = []
fp = []
t = time.perf_counter()
for i, im in enumerate(lfw):
    g = np.asarray(Image.fromarray((im * 255).astype("uint8")).resize((100, 100)))
    rgb = np.stack([g] * 3, -1)
    n = len(detect_faces(rgb))
    (hits if i < 100 else fp).append(n > 0)
print(
    "lfw faces detected",
    sum(hits),
    "/100; non-face patches flagged",
    sum(fp),
    "/100",
    f"{(time.perf_counter() - t) / 200 * 1000:.1f} ms each",
)
