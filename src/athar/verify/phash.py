"""Perceptual hashes of a picture: PDQ, its 8 rotations/flips, and crop-tolerant regions.

PDQ (Meta's 256-bit perceptual hash, through the ``pdqhash`` package) survives
re-encoding, resizing, blur and overlays, but not cropping or added bars: in our
measurements a 2 % crop already moves 16-56 of 256 bits and a 5 % crop 40-100, far past
the match threshold of 31. So besides the plain hash of the whole picture Athar keeps:

* the hash of the picture with letterbox/pillarbox bars, blurred side fills or a
  screenshot's frame stripped (``bars.content_box``), so bars added by a re-poster do
  not matter;
* the hash of the whole picture after a Lanczos reduction (Kind.SMALL), which survives
  strong downscaling and blur of fine textures where PDQ's own reduction aliases;
* hashes of *regions* of the picture (and of its content inside bars): centre crops and
  crops trimmed on one side. A copy cropped by a few per cent then equals one region of
  the original, or one of its own regions equals one of the original's. Archived
  pictures store a few coarse regions (ARCHIVE_REGIONS); a picture being searched for
  probes with a finer ladder (PROBE_REGIONS) so that together every crop of up to 20 %
  (centred, or from one side) lands within 1 % of some stored region, close enough for
  PDQ;
* a *lattice* of regions with every edge trimmed independently (LATTICE_STORED and
  LATTICE_PROBES), for crops split unevenly between sides (3 % left, 7 % right): four
  unknown edges, covered up to about 10 % per edge. Rotations of a few degrees are not
  covered (see docs/benchmarks.md).

A search also probes with the picture between paste seams (``bars.seam_box``), for
blurred-fill pillarboxes that bar stripping cannot take apart.

The matching rule over these kinds lives in ``neardup``; this module only computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
import pdqhash
from PIL import Image

from athar.verify.bars import Box, content_box, luma, seam_box
from athar.verify.imagedecode import open_image

HASH_BYTES = 32  # PDQ: 256 bits

# PDQ's published operating point: distance <= 31 of 256 bits is "the same picture".
PDQ_MATCH_THRESHOLD = 31
# Below this quality PDQ itself says the hash is unreliable (flat or tiny pictures).
PDQ_WEAK_QUALITY = 50

# Reference PDQ implementations downsample to 512 before the 64 x 64 Jarosz filter; it
# costs nothing in accuracy for the whole picture.
WORK_SIDE = 512
# Regions are cut from a copy at most this large: pdqhash takes ~1.8 ms on 384 px but
# ~8 ms on 512 px (its float buffers stop fitting the cache), and at 256 px a text
# page's regions no longer matched after a 10 % crop.
REGION_SIDE = 384
# The whole picture is also hashed after a Lanczos reduction to this many pixels on the
# longer side. PDQ's own box-filter reduction to 64 x 64 aliases fine texture (brick,
# gravel, text) differently at 512 px and at 128 px, so a copy scaled down to 25 % or
# blurred with radius 3 moved up to 36 bits from the original; with both pictures first
# reduced by a proper low-pass filter, at most 10 in the benchmark.
SMALL_SIDE = 64
# A region smaller than this many pixels on a side carries too little to compare.
MIN_REGION_SIDE = 32
# Regions below this PDQ quality are dropped. Lower than PDQ_WEAK_QUALITY because a
# region is matched only against regions of the same family or whole pictures and
# pictures like a dim clock face (quality 35) still need their crops found; the
# benchmark's false-positive count is the check on this choice.
REGION_MIN_QUALITY = 30


class Kind(IntEnum):
    """What part of the picture a hash describes. Values are stable: they are stored."""

    FULL = 0  # the whole picture as decoded (plain PDQ)
    CORE = 1  # the picture with bars/frame stripped (only when some were found)
    # centre crops of the core, by the share of each dimension kept
    C98 = 2
    C96 = 3
    C94 = 4
    C92 = 5
    C90 = 6
    C88 = 7
    C86 = 8
    C84 = 9
    C82 = 10
    C80 = 11
    # one side trimmed by the given share of that dimension
    L02 = 12
    L04 = 13
    L06 = 14
    L08 = 15
    L10 = 16
    L20 = 17
    R02 = 18
    R04 = 19
    R06 = 20
    R08 = 21
    R10 = 22
    R20 = 23
    T02 = 24
    T04 = 25
    T06 = 26
    T08 = 27
    T10 = 28
    T20 = 29
    B02 = 30
    B04 = 31
    B06 = 32
    B08 = 33
    B10 = 34
    B20 = 35
    # the whole picture reduced to SMALL_SIDE before PDQ (see SMALL_SIDE)
    SMALL = 36
    # the centre 60 % of each dimension: clear of caption bands and corner logos
    C60 = 37
    # Lattice regions (see LATTICE_SIDE): trims of left, top, right, bottom in per cent.
    # Stored, every edge trimmed by 4 or 10 %:
    G_04_04_04_04 = 38
    G_04_04_04_10 = 39
    G_04_04_10_04 = 40
    G_04_04_10_10 = 41
    G_04_10_04_04 = 42
    G_04_10_04_10 = 43
    G_04_10_10_04 = 44
    G_04_10_10_10 = 45
    G_10_04_04_04 = 46
    G_10_04_04_10 = 47
    G_10_04_10_04 = 48
    G_10_04_10_10 = 49
    G_10_10_04_04 = 50
    G_10_10_04_10 = 51
    G_10_10_10_04 = 52
    G_10_10_10_10 = 53
    # Probes only (never stored), every edge trimmed by 0, 2 or 4 %:
    P_00_00_00_00 = 64
    P_00_00_00_02 = 65
    P_00_00_00_04 = 66
    P_00_00_02_00 = 67
    P_00_00_02_02 = 68
    P_00_00_02_04 = 69
    P_00_00_04_00 = 70
    P_00_00_04_02 = 71
    P_00_00_04_04 = 72
    P_00_02_00_00 = 73
    P_00_02_00_02 = 74
    P_00_02_00_04 = 75
    P_00_02_02_00 = 76
    P_00_02_02_02 = 77
    P_00_02_02_04 = 78
    P_00_02_04_00 = 79
    P_00_02_04_02 = 80
    P_00_02_04_04 = 81
    P_00_04_00_00 = 82
    P_00_04_00_02 = 83
    P_00_04_00_04 = 84
    P_00_04_02_00 = 85
    P_00_04_02_02 = 86
    P_00_04_02_04 = 87
    P_00_04_04_00 = 88
    P_00_04_04_02 = 89
    P_00_04_04_04 = 90
    P_02_00_00_00 = 91
    P_02_00_00_02 = 92
    P_02_00_00_04 = 93
    P_02_00_02_00 = 94
    P_02_00_02_02 = 95
    P_02_00_02_04 = 96
    P_02_00_04_00 = 97
    P_02_00_04_02 = 98
    P_02_00_04_04 = 99
    P_02_02_00_00 = 100
    P_02_02_00_02 = 101
    P_02_02_00_04 = 102
    P_02_02_02_00 = 103
    P_02_02_02_02 = 104
    P_02_02_02_04 = 105
    P_02_02_04_00 = 106
    P_02_02_04_02 = 107
    P_02_02_04_04 = 108
    P_02_04_00_00 = 109
    P_02_04_00_02 = 110
    P_02_04_00_04 = 111
    P_02_04_02_00 = 112
    P_02_04_02_02 = 113
    P_02_04_02_04 = 114
    P_02_04_04_00 = 115
    P_02_04_04_02 = 116
    P_02_04_04_04 = 117
    P_04_00_00_00 = 118
    P_04_00_00_02 = 119
    P_04_00_00_04 = 120
    P_04_00_02_00 = 121
    P_04_00_02_02 = 122
    P_04_00_02_04 = 123
    P_04_00_04_00 = 124
    P_04_00_04_02 = 125
    P_04_00_04_04 = 126
    P_04_02_00_00 = 127
    P_04_02_00_02 = 128
    P_04_02_00_04 = 129
    P_04_02_02_00 = 130
    P_04_02_02_02 = 131
    P_04_02_02_04 = 132
    P_04_02_04_00 = 133
    P_04_02_04_02 = 134
    P_04_02_04_04 = 135
    P_04_04_00_00 = 136
    P_04_04_00_02 = 137
    P_04_04_00_04 = 138
    P_04_04_02_00 = 139
    P_04_04_02_02 = 140
    P_04_04_02_04 = 141
    P_04_04_04_00 = 142
    P_04_04_04_02 = 143
    P_04_04_04_04 = 144

    @property
    def is_region(self) -> bool:
        return self not in _WHOLE_KINDS


_WHOLE_KINDS = frozenset((Kind.FULL, Kind.CORE, Kind.SMALL))


def _trims(kind: Kind) -> tuple[float, float, float, float]:
    """Shares of (left, top, right, bottom) a region trims from the core."""
    name = kind.name
    if kind == Kind.SMALL:
        return (0.0, 0.0, 0.0, 0.0)
    if name[0] in "GP":
        left, top, right, bottom = (int(v) / 100.0 for v in name[2:].split("_"))
        return (left, top, right, bottom)
    share = int(name[1:]) / 100.0
    if name[0] == "C":
        side = (1.0 - share) / 2.0
        return (side, side, side, side)
    return {
        "L": (share, 0.0, 0.0, 0.0),
        "T": (0.0, share, 0.0, 0.0),
        "R": (0.0, 0.0, share, 0.0),
        "B": (0.0, 0.0, 0.0, share),
    }[name[0]]


# Stored for every archived picture: 11 regions. A crop of c <= 20 % centred, or from one
# side, is then found by a probe trimmed by (stored - c) / (1 - c), which PROBE_REGIONS
# offers in steps of 2 %.
# C60 leaves out a caption band or ticker of up to a fifth of the height and a corner
# logo, which in the benchmark moved the whole picture's hash by up to 42 bits.
ARCHIVE_REGIONS: tuple[Kind, ...] = (
    Kind.C90, Kind.C80, Kind.C60,
    Kind.L10, Kind.L20, Kind.R10, Kind.R20, Kind.T10, Kind.T20, Kind.B10, Kind.B20,
)  # fmt: skip
# Computed only for a picture being looked up (never stored): 35 regions. The 20 % trims
# and C80 equal stored regions exactly: they find a copy whose caption band, ticker or
# border overlay covers up to a fifth of one side.
PROBE_REGIONS: tuple[Kind, ...] = (
    Kind.C98, Kind.C96, Kind.C94, Kind.C92, Kind.C90, Kind.C88, Kind.C86, Kind.C84, Kind.C82,
    Kind.C80, Kind.C60,
    Kind.L02, Kind.L04, Kind.L06, Kind.L08, Kind.L10, Kind.L20,
    Kind.R02, Kind.R04, Kind.R06, Kind.R08, Kind.R10, Kind.R20,
    Kind.T02, Kind.T04, Kind.T06, Kind.T08, Kind.T10, Kind.T20,
    Kind.B02, Kind.B04, Kind.B06, Kind.B08, Kind.B10, Kind.B20,
)  # fmt: skip

# Lattice regions, for crops whose share is split unevenly between opposite sides (3 %
# off the left and 7 % off the right, 1 % off the top and 4 % off the bottom): four
# unknown edges, which the one-sided and centred ladders above cannot cover. PDQ keeps
# 79 % of crops within 31 bits when every edge is off by up to 1 % (96 % at 0.5 %), so
# stored trims of 4 or 10 % per edge and probe trims of 0, 2 or 4 % bring some stored
# and probe region of a crop of up to 10 % per edge within 1 % on all four edges. The
# lattice is cut from a copy of at most LATTICE_SIDE pixels: pdqhash costs a quarter of
# the time at 192 px than at 384 px, and recall on the benchmark's split crops was no
# lower (0.90 against 0.88-0.93; 128 px lost 5-10 points). Cost: 16 more stored hashes
# per picture and 80 more probes (docs/benchmarks.md).
LATTICE_SIDE = 192
LATTICE_STORED: tuple[Kind, ...] = tuple(k for k in Kind if k.name[0] == "G")
# P_00_00_00_00 is the whole picture, already probed as FULL (compatible with every kind)
LATTICE_PROBES: tuple[Kind, ...] = tuple(
    k for k in Kind if k.name[0] == "P" and k != Kind.P_00_00_00_00
)

# Order of pdqhash.compute_dihedral's results, and of ImageHashes.dihedral.
DIHEDRAL_NAMES = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flip_vertical",
    "flip_horizontal",
    "transpose",
    "transverse",
)

HashArray = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class ImageHashes:
    """Every hash Athar keeps or probes with for one picture.

    Hashes are rows of 32 bytes, bits in the order ``pdqhash`` returns them (first bit
    most significant). ``stored_hashes`` go into the archive index (the whole picture is
    stored even when weak, so that it can be found, but its matches should be shown with
    the weak flag); ``probes()`` is what a search sends.
    """

    pdq: bytes  # plain PDQ of the whole picture
    quality: int  # PDQ quality 0-100 of the whole picture
    dihedral: HashArray  # (8, 32): the whole picture turned/flipped, DIHEDRAL_NAMES order
    core_box: Box | None  # the picture inside bars, in pixels of the working image
    core_dihedral: HashArray | None  # (8, 32) for the core, when bars were found
    core_quality: int | None
    stored_hashes: HashArray  # (S, 32)
    stored_kinds: npt.NDArray[np.uint8]  # (S,)
    probe_hashes: HashArray  # (P, 32), without the dihedral variants
    probe_kinds: npt.NDArray[np.uint8]  # (P,)
    # PDQ of the picture (and core) actually mirrored. The dihedral variants are derived
    # from the DCT and drift from a real mirror's hash by 10-40 bits on fine textures
    # (grass, gravel, brick in the benchmark), and mirroring is a common evasion.
    mirror_hashes: HashArray  # (M, 32), M = 0 when probes were not computed
    mirror_kinds: npt.NDArray[np.uint8]

    @property
    def weak(self) -> bool:
        """PDQ's own warning that this picture's hash says little (flat, tiny, blank)."""
        return self.quality < PDQ_WEAK_QUALITY

    @property
    def pdq_hex(self) -> str:
        return self.pdq.hex()

    def probes(self) -> tuple[HashArray, npt.NDArray[np.uint8]]:
        """All hashes to search with (rows) and their kinds: the 8 variants of the whole
        picture and of the core, the real mirror images, then the probe regions."""
        blocks = [self.dihedral]
        kinds = [np.full(8, Kind.FULL, dtype=np.uint8)]
        if self.core_dihedral is not None:
            blocks.append(self.core_dihedral)
            kinds.append(np.full(8, Kind.CORE, dtype=np.uint8))
        blocks += [self.mirror_hashes, self.probe_hashes]
        kinds += [self.mirror_kinds, self.probe_kinds]
        return np.concatenate(blocks), np.concatenate(kinds)


def pdq(rgb: npt.NDArray[np.uint8]) -> tuple[bytes, int]:
    """Plain PDQ of an RGB array (H, W, 3): the hash and its quality (0-100)."""
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb, dtype=np.uint8))
    return _pack(bits).tobytes(), int(quality)


def pdq_dihedral(rgb: npt.NDArray[np.uint8]) -> tuple[HashArray, int]:
    """The 8 hashes of the picture rotated and flipped, in one pass (PDQ derives them
    from the same DCT), as an (8, 32) array in DIHEDRAL_NAMES order, and the quality."""
    vectors, quality = pdqhash.compute_dihedral(np.ascontiguousarray(rgb, dtype=np.uint8))
    return np.stack([_pack(v) for v in vectors]), int(quality)


def _pack(bits: npt.NDArray[np.integer]) -> HashArray:
    return np.packbits(np.asarray(bits, dtype=np.uint8))


def work_array(img: Image.Image, side: int = WORK_SIDE) -> npt.NDArray[np.uint8]:
    """The RGB pixels hashing works on: at most *side* on the longer side."""
    if max(img.size) > side:
        img = img.copy()
        img.thumbnail((side, side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def hash_image(
    source: bytes | Path | BinaryIO | Image.Image, *, probes: bool = True
) -> ImageHashes:
    """Hash a picture from a file, its bytes, or an already opened Pillow image.

    Files are decoded with ``imagedecode.open_image`` (bombs, truncation and non-images
    become ``InputError``). ``probes=False`` skips the 34 probe regions, for a caller
    that only stores and never searches with this picture.
    """
    img = source if isinstance(source, Image.Image) else open_image(source)
    return hash_array(work_array(img), probes=probes)


def hash_array(rgb: npt.NDArray[np.uint8], *, probes: bool = True) -> ImageHashes:
    """``hash_image`` for an RGB array (H, W, 3) uint8, e.g. a decoded video frame.

    Give it at most WORK_SIDE on the longer side (``work_array`` does that): larger
    arrays are hashed as they are, only slower.
    """
    dihedral, quality = pdq_dihedral(rgb)
    height, width = rgb.shape[:2]
    grey = luma(rgb)
    box = content_box(grey)
    small = _shrink(rgb, REGION_SIDE)
    scale = small.shape[1] / width
    regions = [small]
    core_box: Box | None = None
    core_dihedral: HashArray | None = None
    core_quality: int | None = None
    stored = [dihedral[0]]
    stored_kinds = [Kind.FULL]
    reduced, small_quality = small_hash(rgb)
    if small_quality >= REGION_MIN_QUALITY:  # a flat picture's FULL hash says it all
        stored.append(reduced)
        stored_kinds.append(Kind.SMALL)
    if box != Box(0, 0, width, height):
        core_box = box
        core_dihedral, core_quality = pdq_dihedral(rgb[box.top : box.bottom, box.left : box.right])
        stored.append(core_dihedral[0])
        stored_kinds.append(Kind.CORE)
        # Regions of the core too: a natural dark border (night sky, deep space) may be
        # taken for bars in one copy and not in a cropped other, so both frames are cut.
        s = [round(v * scale) for v in box]
        regions.append(small[s[1] : s[3], s[0] : s[2]])
    coarse = [_shrink(frame, LATTICE_SIDE) for frame in regions]
    region_hashes, region_kinds = _concat(
        _regions(regions, ARCHIVE_REGIONS), _regions(coarse, LATTICE_STORED)
    )
    probe_hashes, probe_kinds = _concat(
        _regions(regions, PROBE_REGIONS if probes else ()),
        _regions(coarse, LATTICE_PROBES if probes else ()),
    )
    if probes:
        extra, extra_kinds = _extra_probes(rgb, grey, box, reduced, small_quality)
        probe_hashes = np.concatenate([extra, probe_hashes])
        probe_kinds = np.concatenate([extra_kinds, probe_kinds])
    wholes = [rgb] if core_box is None else [rgb, rgb[box.top : box.bottom, box.left : box.right]]
    mirrors = [pdq(frame[:, ::-1])[0] for frame in (wholes if probes else [])]
    mirror_hashes = np.frombuffer(b"".join(mirrors), dtype=np.uint8).reshape(-1, HASH_BYTES).copy()
    mirror_kinds = np.array([Kind.FULL, Kind.CORE][: len(mirrors)], dtype=np.uint8)
    return ImageHashes(
        pdq=dihedral[0].tobytes(),
        quality=quality,
        dihedral=dihedral,
        core_box=core_box,
        core_dihedral=core_dihedral,
        core_quality=core_quality,
        stored_hashes=np.concatenate([np.stack(stored), region_hashes]),
        stored_kinds=np.concatenate([np.array(stored_kinds, dtype=np.uint8), region_kinds]),
        probe_hashes=probe_hashes,
        probe_kinds=probe_kinds,
        mirror_hashes=mirror_hashes,
        mirror_kinds=mirror_kinds,
    )


def small_hash(rgb: npt.NDArray[np.uint8]) -> tuple[HashArray, int]:
    """PDQ of the picture reduced to SMALL_SIDE with a Lanczos filter (Kind.SMALL), and
    its quality."""
    img = Image.fromarray(np.ascontiguousarray(rgb))
    img.thumbnail((SMALL_SIDE, SMALL_SIDE), Image.Resampling.LANCZOS, reducing_gap=None)
    bits, quality = pdqhash.compute(np.asarray(img, dtype=np.uint8))
    return _pack(bits), int(quality)


def _extra_probes(
    rgb: npt.NDArray[np.uint8],
    grey: npt.NDArray[np.float32],
    box: Box,
    reduced: HashArray,
    small_quality: int,
) -> tuple[HashArray, npt.NDArray[np.uint8]]:
    """Probes beyond the regions: the reduced whole, the picture between paste seams (a
    blurred-fill pillarbox that ``content_box`` could not strip) as a core, and the
    reduced hash of each core."""
    hashes: list[HashArray] = []
    kinds: list[int] = []
    if small_quality >= REGION_MIN_QUALITY:
        hashes.append(reduced)
        kinds.append(Kind.SMALL)
    cores = [box] if box != Box(0, 0, rgb.shape[1], rgb.shape[0]) else []
    seam = seam_box(grey)
    if seam is not None and seam != box and min(seam.width, seam.height) >= MIN_REGION_SIDE:
        bits, quality = pdqhash.compute(
            np.ascontiguousarray(rgb[seam.top : seam.bottom, seam.left : seam.right])
        )
        if quality >= REGION_MIN_QUALITY:
            hashes.append(_pack(bits))
            kinds.append(Kind.CORE)
            cores.append(seam)
    # the reduced hash of each core too: bars plus fine texture need both corrections
    for core in cores:
        small, quality = small_hash(rgb[core.top : core.bottom, core.left : core.right])
        if quality >= REGION_MIN_QUALITY:
            hashes.append(small)
            kinds.append(Kind.SMALL)
    if not hashes:
        return np.zeros((0, HASH_BYTES), dtype=np.uint8), np.zeros(0, dtype=np.uint8)
    return np.stack(hashes), np.array(kinds, dtype=np.uint8)


def _concat(
    *parts: tuple[HashArray, npt.NDArray[np.uint8]],
) -> tuple[HashArray, npt.NDArray[np.uint8]]:
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _shrink(rgb: npt.NDArray[np.uint8], side: int) -> npt.NDArray[np.uint8]:
    if max(rgb.shape[:2]) <= side:
        return rgb
    return work_array(Image.fromarray(rgb), side)


def _regions(
    frames: list[npt.NDArray[np.uint8]], kinds: tuple[Kind, ...]
) -> tuple[HashArray, npt.NDArray[np.uint8]]:
    """Hashes of the regions of each frame that are big and textured enough to trust.

    Regions below REGION_MIN_QUALITY are dropped rather than flagged: a flat patch of
    sky hashes like any other flat patch, and a region is only ever extra evidence.
    """
    hashes: list[HashArray] = []
    kept: list[int] = []
    for frame in frames:
        height, width = frame.shape[:2]
        for kind in kinds:
            left, top, right, bottom = _trims(kind)
            x0, x1 = round(left * width), width - round(right * width)
            y0, y1 = round(top * height), height - round(bottom * height)
            if min(x1 - x0, y1 - y0) < MIN_REGION_SIDE:
                continue
            bits, quality = pdqhash.compute(np.ascontiguousarray(frame[y0:y1, x0:x1]))
            if quality < REGION_MIN_QUALITY:
                continue
            hashes.append(_pack(bits))
            kept.append(int(kind))
    if not hashes:
        return np.zeros((0, HASH_BYTES), dtype=np.uint8), np.zeros(0, dtype=np.uint8)
    return np.stack(hashes), np.array(kept, dtype=np.uint8)


def hamming(a: bytes | HashArray, b: bytes | HashArray) -> int:
    """Bits that differ between two 256-bit hashes."""
    x = np.frombuffer(bytes(a), dtype=np.uint64) if isinstance(a, bytes) else a.view(np.uint64)
    y = np.frombuffer(bytes(b), dtype=np.uint64) if isinstance(b, bytes) else b.view(np.uint64)
    return int(np.bitwise_count(x ^ y).sum())
