"""Find the picture inside letterbox/pillarbox bars or a plain screenshot frame.

Re-posted footage often gains bars (a 4:3 picture in a 16:9 frame, a landscape video in a
portrait post) or a phone screenshot's border. PDQ describes the whole frame, so bars of
10 % move every bit; hashing the picture without them restores the match. Bars are taken
off only from the outside in, only while a line is nearly all one colour, so a real
picture with a dark sky is at worst trimmed on both copies alike.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

# Grey levels (0-255) a bar pixel may differ from the bar's colour: JPEG at quality 20
# smears flat areas by a few levels, and a blurred boundary by more.
BAR_TOLERANCE = 14.0
# Share of a line that must be the bar's colour to count as pure bar. A bar opens at the
# outer edge with such a line and ends after the last pure line that can be reached.
BAR_START_SHARE = 0.97
# Lines with at least this share can be crossed on the way in: the clock and icons of a
# status bar or a caption line inside a screenshot's frame do not stop the stripping.
BAR_CONTINUE_SHARE = 0.40
# Bars thinner than this share of the side are JPEG edge noise, not bars.
MIN_BAR_SHARE = 0.01
# Whatever is found, at least this share of each dimension remains: a picture that is
# mostly flat colour (a wall, a night sky) is not stripped down to a sliver.
MIN_CORE_SHARE = 0.30

# "Soft" bars: a portrait post that fills its sides with a blurred, stretched copy of the
# picture. They are not one colour, but they have almost no detail: along a line of such
# a bar neighbouring pixels differ by < 1.6 grey levels on average (measured on the
# benchmark's 19 photographs), where picture content differs by 1.5-23. A soft bar is
# accepted only in pairs, on opposite sides and of equal width within SOFT_SYMMETRY,
# since those posts centre the picture; a real photo with one soft side is left alone.
SOFT_BAR_DETAIL = 1.6  # mean |difference| along the line, grey levels
SOFT_JUMP = 2.5  # content must show this many times the bar's detail
SOFT_MIN_SHARE = 0.03
SOFT_SYMMETRY = 0.02


class Box(NamedTuple):
    """A rectangle in pixels: left and top inclusive, right and bottom exclusive."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top


def luma(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """ITU-R BT.601 luma, the grey PDQ itself hashes."""
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.asarray(rgb[..., :3].astype(np.float32) @ weights, dtype=np.float32)


def content_box(grey: npt.NDArray[np.float32]) -> Box:
    """The box left after stripping bars from all four sides (the whole image if none)."""
    height, width = grey.shape
    top = _bar_depth(grey, height)
    bottom = height - _bar_depth(grey[::-1], height)
    left = _bar_depth(grey.T, width)
    right = width - _bar_depth(grey.T[::-1], width)
    # soft bars only on an axis with no hard bars, looked for inside the hard ones
    if left == 0 and right == width and bottom - top > 2:
        left, right = _soft_pair(grey[top:bottom].T, width)
    if top == 0 and bottom == height and right - left > 2:
        top, bottom = _soft_pair(grey[:, left:right], height)
    if bottom - top < MIN_CORE_SHARE * height:
        top, bottom = 0, height
    if right - left < MIN_CORE_SHARE * width:
        left, right = 0, width
    return Box(left, top, right, bottom)


def _bar_depth(lines: npt.NDArray[np.float32], size: int) -> int:
    """How many lines from the start of *lines* (rows) belong to a bar."""
    limit = int(size * (1.0 - MIN_CORE_SHARE) / 2.0) + 1
    colour = float(np.median(lines[0]))
    near = np.abs(lines[:limit] - colour) <= BAR_TOLERANCE
    share = near.mean(axis=1)
    if share[0] < BAR_START_SHARE:
        return 0
    below = np.flatnonzero(share < BAR_CONTINUE_SHARE)
    reach = int(below[0]) if below.size else limit
    depth = int(np.flatnonzero(share[:reach] >= BAR_START_SHARE)[-1]) + 1
    if depth < max(2, MIN_BAR_SHARE * size):
        return 0
    return depth


def _soft_pair(lines: npt.NDArray[np.float32], size: int) -> tuple[int, int]:
    """(start, end) of the content between two equal soft bars, or (0, size)."""
    detail = np.abs(np.diff(lines, axis=1)).mean(axis=1)  # per line
    near = _soft_depth(detail, size)
    far = _soft_depth(detail[::-1], size)
    if near and far and abs(near - far) <= SOFT_SYMMETRY * size:
        return near, size - far
    return 0, size


def _soft_depth(detail: npt.NDArray[np.float32], size: int) -> int:
    limit = int(size * (1.0 - MIN_CORE_SHARE) / 2.0)
    start = max(2, int(SOFT_MIN_SHARE * size))
    if limit <= start:
        return 0
    running = np.cumsum(detail[:limit]) / np.arange(1, limit + 1)  # mean of lines [0, i]
    for i in range(start, limit):
        bar = running[i - 1]
        if bar > SOFT_BAR_DETAIL:
            return 0
        if detail[i : i + 3].mean() >= SOFT_JUMP * bar + 0.5:
            return i
    return 0


# A blurred fill whose colours run on into the picture's own edge (a fundus photo's
# black rim, a page's white margin) shows no bar of low detail, but the seam where the
# sharp picture was pasted still does: the step across that column is far larger than
# the steps just beside it. A seam counts only in pairs at mirrored positions (the
# picture is centred), scored by the weaker of the two; measured on the benchmark,
# blurred-fill pillarboxes score 1.1-20 at the true seam and no original photograph
# scored above 1.8 anywhere, so a seam box is only ever an extra probe, never stored.
SEAM_MIN_SCORE = 1.5
SEAM_MIN_SHARE = 0.03
SEAM_MAX_SHARE = 0.35


def seam_box(grey: npt.NDArray[np.float32]) -> Box | None:
    """The centred box between the strongest pair of paste seams, or None."""
    height, width = grey.shape
    found: list[tuple[float, Box]] = []
    cols = _seam_pair(grey, width)
    if cols is not None:
        found.append((cols[0], Box(cols[1], 0, width - cols[1], height)))
    rows = _seam_pair(grey.T, height)
    if rows is not None:
        found.append((rows[0], Box(0, rows[1], width, height - rows[1])))
    return max(found)[1] if found else None


def _seam_pair(grey: npt.NDArray[np.float32], size: int) -> tuple[float, int] | None:
    """(score, offset) of the best mirrored pair of column seams in *grey*, or None."""
    lo, hi = max(8, int(SEAM_MIN_SHARE * size)), int(SEAM_MAX_SHARE * size)
    if hi <= lo or size < 32:
        return None
    step = np.abs(np.diff(grey, axis=1)).mean(axis=0)  # step[i]: column i to i + 1
    windows = np.lib.stride_tricks.sliding_window_view(step, 12)  # step[i : i + 12]
    around = np.median(np.delete(windows, [5, 6], axis=1), axis=1) + 0.5
    # a seam before column x is step[x - 1]; its neighbourhood is windows[x - 7]
    ratio = np.zeros(step.size + 1, dtype=np.float32)
    x = np.arange(7, step.size - 4)
    ratio[x] = step[x - 1] / around[x - 7]
    offsets = np.arange(lo, hi)
    score = np.minimum(ratio[offsets], ratio[size - offsets])
    best = int(np.argmax(score))
    if score[best] < SEAM_MIN_SCORE:
        return None
    return float(score[best]), int(offsets[best])
