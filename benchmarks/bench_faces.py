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


# Public copy of a generated 60-second 640x360 30 fps video (the astronaut's face panning
# across the frame), seconds of one core per video minute. Shorter: BENCH_VIDEO_SECONDS=10.
import io  # noqa: E402

import av  # noqa: E402

from athar.publish.media import video_copy  # noqa: E402

seconds = int(os.environ.get("BENCH_VIDEO_SECONDS", "60"))
W, H, FPS = 640, 360, 30
face = np.asarray(Image.open(imgs["astronaut"]).convert("RGB").resize((300, 300)))
buf = io.BytesIO()
with av.open(buf, "w", format="mp4") as container:
    stream = container.add_stream("libx264", rate=FPS)
    stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
    for n in range(seconds * FPS):
        canvas = np.full((H, W, 3), 90, dtype=np.uint8)
        x = int((W - 300) * (0.5 + 0.5 * np.sin(n / FPS)))
        canvas[30:330, x : x + 300] = face
        for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
data = buf.getvalue()
t = time.perf_counter()
result = video_copy(data, ".mp4", True, "blur", [])
dt = time.perf_counter() - t
print(
    f"video {W}x{H} {FPS} fps, {seconds} s ({len(data) // 1024} KiB): public copy {dt:.1f} s,",
    f"{dt * 60 / seconds:.0f} s per video minute; frames={result.frames} faces={result.faces}",
)
