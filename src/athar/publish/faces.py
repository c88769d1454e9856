"""Finding faces and hiding them (and any region the user names).

The detector is OpenCV's Viola–Jones cascades, whose trained models ship inside the
opencv-python-headless wheel (4.x; 5.x dropped them), so nothing is fetched at run time.
A frontal and a profile cascade run on the image and its mirror; boxes are grown by a
margin because a cascade box covers the eyes-to-mouth area, not hair, ears or chin.
Cascades miss faces that are small, turned more than ~45°, occluded or badly lit: every
public copy still needs a human look before it goes out (docs/publishing.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from athar.errors import InputError

Mode = Literal["blur", "pixelate"]
Image = npt.NDArray[np.uint8]
MARGIN = 0.25  # grow each detected box by this share of its size on every side
MIN_FACE = 20  # pixels: cascades are trained on 24×24 windows
MAX_SIDE = 1600  # detect on a copy no larger than this (speed); boxes are scaled back
MOSAIC_CELLS = 6  # across a hidden box: at 8 the cascade still found the astronaut's face


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int

    def to_json(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "w": self.w, "h": self.h}


def parse_region(text: str) -> Box:
    """A manual region `x,y,w,h` in pixels of the original image."""
    try:
        x, y, w, h = (int(p) for p in text.split(","))
    except ValueError:
        raise InputError(
            "a region is x,y,w,h in pixels, e.g. 10,20,200,150: {value}", value=text
        ) from None
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise InputError("a region is x,y,w,h in pixels, e.g. 10,20,200,150: {value}", value=text)
    return Box(x, y, w, h)


@cache
def _cascades() -> tuple[Any, Any]:
    import cv2  # loaded only when a copy is made

    root = Path(cv2.data.haarcascades)  # type: ignore[attr-defined]
    frontal = cv2.CascadeClassifier(str(root / "haarcascade_frontalface_default.xml"))
    profile = cv2.CascadeClassifier(str(root / "haarcascade_profileface.xml"))
    if frontal.empty() or profile.empty():
        raise InputError(
            "OpenCV's face models are missing; install opencv-python-headless 4.x (5.x no "
            "longer ships them)"
        )
    return frontal, profile


def detector_name() -> str:
    import cv2

    return f"opencv {cv2.__version__} haarcascade frontalface_default + profileface"


def detect_faces(rgb: Image) -> list[Box]:
    """Faces in an RGB image as boxes (with margin), in the image's own pixels."""
    import cv2

    height, width = rgb.shape[:2]
    scale = min(1.0, MAX_SIDE / max(height, width))
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        gray = cv2.resize(gray, (round(width * scale), round(height * scale)))
    gray = cv2.equalizeHist(gray)
    frontal, profile = _cascades()
    found: list[tuple[int, int, int, int]] = []
    small = (MIN_FACE, MIN_FACE)
    for cascade, neighbours in ((frontal, 5), (profile, 4)):
        found += [tuple(b) for b in cascade.detectMultiScale(gray, 1.1, neighbours, minSize=small)]
        mirrored = cascade.detectMultiScale(cv2.flip(gray, 1), 1.1, neighbours, minSize=small)
        gw = gray.shape[1]
        found += [(gw - x - w, y, w, h) for x, y, w, h in mirrored]
    boxes = [_grow(Box(*(round(v / scale) for v in b)), width, height) for b in found]
    return _merge(boxes)


def _grow(box: Box, width: int, height: int) -> Box:
    mx, my = round(box.w * MARGIN), round(box.h * MARGIN)
    x0, y0 = max(0, box.x - mx), max(0, box.y - my)
    x1, y1 = min(width, box.x + box.w + mx), min(height, box.y + box.h + my)
    return Box(x0, y0, x1 - x0, y1 - y0)


def _overlap(a: Box, b: Box) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


def _merge(boxes: list[Box]) -> list[Box]:
    """One box per face: overlapping detections (frontal, profile, mirror) are united."""
    merged: list[Box] = []
    for box in sorted(boxes, key=lambda b: (b.x, b.y)):
        for i, other in enumerate(merged):
            if _overlap(box, other):
                x0, y0 = min(box.x, other.x), min(box.y, other.y)
                x1 = max(box.x + box.w, other.x + other.w)
                y1 = max(box.y + box.h, other.y + other.h)
                merged[i] = Box(x0, y0, x1 - x0, y1 - y0)
                break
        else:
            merged.append(box)
    return merged


def hide(rgb: Image, boxes: list[Box], mode: Mode = "blur") -> Image:
    """A copy of *rgb* with every box made unrecognisable.

    Blurring uses a kernel a third the box's size, then the box is reduced to a coarse
    mosaic too: a mild blur alone can be partly undone, a mosaic of 6 cells cannot."""
    import cv2

    out = rgb.copy()
    height, width = out.shape[:2]
    for box in boxes:
        x0, y0 = min(box.x, width), min(box.y, height)
        x1, y1 = min(box.x + box.w, width), min(box.y + box.h, height)
        if x1 <= x0 or y1 <= y0:
            continue
        patch = out[y0:y1, x0:x1]
        h, w = patch.shape[:2]
        cells = max(1, min(MOSAIC_CELLS, w, h))
        coarse = cv2.resize(
            patch, (cells, max(1, round(cells * h / w))), interpolation=cv2.INTER_AREA
        )
        patch = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_NEAREST)  # type: ignore[assignment]
        if mode == "blur":
            k = max(3, (min(w, h) // 2) | 1)
            patch = cv2.GaussianBlur(patch, (k, k), 0)  # type: ignore[assignment]
        out[y0:y1, x0:x1] = patch
    return out
