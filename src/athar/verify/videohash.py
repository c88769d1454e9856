"""Video as a "bag of frames": PDQ hashes sampled over time, and clip search with offset.

Recycled footage is usually a piece of an older video, re-encoded smaller, sometimes
mirrored or letterboxed. Hashing a frame every SAMPLE_EVERY seconds turns a video into
a set of picture hashes; a clip is found in an archived video when many of its frames
match frames of that video *at one consistent time offset*, which also says where in the
old video the clip comes from. Single-frame coincidences (a black frame, a station
logo card) do not make a match.

Decoding goes through PyAV (FFmpeg) from a file object, frame by frame, so a long video
is never held in memory; only demuxers for real video containers are allowed (no
playlists that make FFmpeg open other files or URLs), frames larger than
MAX_FRAME_PIXELS are refused, and sampling stops after MAX_SECONDS.
"""

from __future__ import annotations

import io
import struct
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
import numpy.typing as npt

from athar.errors import InputError
from athar.verify.bars import Box, content_box, luma
from athar.verify.hashindex import HashIndex
from athar.verify.phash import (
    PDQ_MATCH_THRESHOLD,
    PDQ_WEAK_QUALITY,
    WORK_SIDE,
    HashArray,
    ImageHashes,
    pdq_dihedral,
)

# One frame a second is stored: an hour of footage costs 3,600 hashes (115 kB) in the
# index, and a 10-second clip still has ~10 chances to match.
SAMPLE_EVERY = 1.0
# Searching samples 4 times as densely: a clip cut at an arbitrary instant is sampled at
# other instants than the archived copy, and half a second of camera motion moves PDQ
# past its threshold (tests: a pan of a quarter frame a second), a eighth does not.
PROBE_EVERY = 0.25
# Hashes of two sampled frames this close are a still scene; only the first is kept.
STILL_DISTANCE = 8
# 8K UHD is 33 Mpx; a larger declared frame is a broken or hostile file.
MAX_FRAME_PIXELS = 40_000_000
# Sampling stops here (flagged as truncated): 6 hours of footage is 21,600 frames.
MAX_SECONDS = 6 * 3600.0
# Offsets of matching frame pairs agree within this many seconds: frames are sampled at
# different instants in the two copies (up to SAMPLE_EVERY apart).
OFFSET_TOLERANCE = 1.0
# A clip matches when this many of its sampled frames agree on one offset (or all of
# them, for clips shorter than that), and at least MIN_SHARE of its informative frames
# (sampled 4 times a second, only those near an archived instant can match).
MIN_FRAMES = 3
MIN_SHARE = 0.15

# Demuxers of real video files. Anything else (HLS/DASH playlists, concat lists, image
# sequences) could make FFmpeg open further files or URLs named inside the file.
ALLOWED_DEMUXERS = (
    "mov,matroska,webm,avi,mpegts,flv,mpeg,mpegvideo,asf,ogg,h264,hevc,m4v,"
    "3gp,mp4,gif,ivf,rawvideo,yuv4mpegpipe,mxf,nut,dv"
)

# Kind bit in stored ids: the frame whole (0) or with bars stripped (1).
_CORE_BIT = 1
_VMAGIC = b"ATHARVX1"
_FRAME_BITS = 22  # up to 4 million sampled frames per video
MAX_VIDEO_ID = (1 << (63 - _FRAME_BITS - 1)) - 1


@dataclass(frozen=True)
class VideoHashes:
    """Sampled frames of one video: time, PDQ hash, quality; bars-stripped hashes too."""

    times: npt.NDArray[np.float64]  # (F,) seconds from the start of the stream
    stored: npt.NDArray[np.bool_]  # (F,) the frames kept in an archive (one per `every`)
    hashes: HashArray  # (F, 32) PDQ of the whole frame
    qualities: npt.NDArray[np.int64]  # (F,)
    core_hashes: HashArray  # (F, 32) PDQ without bars (equal to hashes where none)
    dihedral: HashArray  # (F, 8, 32), for searching with mirrored/rotated copies
    width: int
    height: int
    duration: float | None  # as the container declares it, if it does
    truncated: bool  # sampling stopped at max_seconds
    damaged: bool  # decoding failed part-way; the frames before the damage are kept

    def __len__(self) -> int:
        return int(self.times.size)

    @property
    def informative(self) -> npt.NDArray[np.bool_]:
        """Frames PDQ trusts (black frames, fades and flat titles are excluded)."""
        return self.qualities >= PDQ_WEAK_QUALITY


@dataclass(frozen=True)
class VideoMatch:
    """An archived video that contains the query clip."""

    item_id: int
    offset: float  # seconds: archive time = clip time + offset
    matched_frames: int  # clip frames that agree on the offset
    query_frames: int  # informative clip frames
    mean_distance: float


def hash_video(
    source: bytes | Path | BinaryIO,
    *,
    every: float = SAMPLE_EVERY,
    probe_every: float | None = PROBE_EVERY,
    max_seconds: float = MAX_SECONDS,
    max_frame_pixels: int = MAX_FRAME_PIXELS,
) -> VideoHashes:
    """Sample and hash a video's frames; broken files raise ``InputError``.

    Frames are taken every *probe_every* seconds (for searching with this video) and
    every *every*-th second is marked ``stored`` (for the archive); ``probe_every=None``
    samples only the stored ones, for a video that will not be searched with.
    """
    step = every if probe_every is None else min(probe_every, every)
    times: list[float] = []
    stored: list[bool] = []
    dihedral: list[HashArray] = []
    cores: list[HashArray] = []
    qualities: list[int] = []
    damaged = truncated = False
    with _open(source) as container:
        streams = container.streams.video
        if not streams:
            raise InputError("the file has no video stream")
        stream = streams[0]
        width, height = int(stream.codec_context.width), int(stream.codec_context.height)
        if width * height > max_frame_pixels:
            raise InputError(
                "the video declares frames of {width}×{height} pixels, more than the limit "
                "of {limit}",
                width=width,
                height=height,
                limit=max_frame_pixels,
            )
        duration = (
            float(stream.duration * stream.time_base)
            if stream.duration is not None and stream.time_base is not None
            else None
        )
        next_time = next_store = 0.0
        last: HashArray | None = None
        try:
            for when, rgb in _frames(container, stream, width, height):
                if when > max_seconds:
                    truncated = True
                    break
                if when + 1e-6 < next_time:
                    continue
                # the first frame at or after each multiple of the step
                next_time = float(np.floor(when / step + 1e-6) + 1) * step
                store = when + 1e-6 >= next_store
                if store:
                    next_store = float(np.floor(when / every + 1e-6) + 1) * every
                variants, quality = pdq_dihedral(rgb)
                if last is not None and _distance(last, variants[0]) <= STILL_DISTANCE:
                    if store and stored and not stored[-1]:
                        stored[-1] = True  # a still scene: its latest frame stands in
                    continue
                last = variants[0]
                stored.append(store)
                times.append(when)
                dihedral.append(variants)
                qualities.append(quality)
                cores.append(_core_hash(rgb, variants[0]))
        except (av.error.FFmpegError, ValueError, OSError):
            if not times:
                raise _broken() from None
            damaged = True
    if not times:
        raise _broken()
    stacked = np.stack(dihedral)
    return VideoHashes(
        times=np.array(times, dtype=np.float64),
        stored=np.array(stored, dtype=bool),
        hashes=np.ascontiguousarray(stacked[:, 0]),
        qualities=np.array(qualities, dtype=np.int64),
        core_hashes=np.stack(cores),
        dihedral=stacked,
        width=width,
        height=height,
        duration=duration,
        truncated=truncated,
        damaged=damaged,
    )


class _Opened:
    def __init__(self, source: bytes | Path | BinaryIO) -> None:
        if isinstance(source, bytes | bytearray | memoryview):
            self._file: BinaryIO = io.BytesIO(bytes(source))
            self._own = True
        elif isinstance(source, Path):
            self._file = source.open("rb")
            self._own = True
        else:
            self._file, self._own = source, False
        self.container: av.container.InputContainer | None = None

    def __enter__(self) -> av.container.InputContainer:
        try:
            # A file object, never a path string: FFmpeg reads strings as URLs
            # ("concat:", "http:", ...).
            self.container = av.open(
                self._file,
                mode="r",
                container_options={"format_whitelist": ALLOWED_DEMUXERS},
            )
        except (av.error.FFmpegError, ValueError, OSError, UnicodeDecodeError):
            self.__exit__()
            raise _broken() from None
        return self.container

    def __exit__(self, *exc: object) -> None:
        if self.container is not None:
            self.container.close()
        if self._own:
            self._file.close()


def _open(source: bytes | Path | BinaryIO) -> _Opened:
    return _Opened(source)


def _frames(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    width: int,
    height: int,
) -> Iterator[tuple[float, npt.NDArray[np.uint8]]]:
    """(seconds, RGB at most WORK_SIDE) for each decoded frame, in order."""
    scale = min(1.0, WORK_SIDE / max(width, height, 1))
    out_w, out_h = max(2, round(width * scale)), max(2, round(height * scale))
    first: float | None = None
    for frame in container.decode(stream):
        if frame.time is None:
            continue
        t = float(frame.time)
        if first is None:
            first = t
        rgb = frame.to_ndarray(format="rgb24", width=out_w, height=out_h)
        yield t - first, np.asarray(rgb, dtype=np.uint8)


def _core_hash(rgb: npt.NDArray[np.uint8], whole: HashArray) -> HashArray:
    height, width = rgb.shape[:2]
    box = content_box(luma(rgb))
    if box == Box(0, 0, width, height):
        return whole
    variants, _ = pdq_dihedral(rgb[box.top : box.bottom, box.left : box.right])
    core: HashArray = variants[0]
    return core


def _distance(a: HashArray, b: HashArray) -> int:
    return int(np.bitwise_count(a.view(np.uint64) ^ b.view(np.uint64)).sum())


def _broken() -> InputError:
    return InputError(
        "this file is not a video Athar can read (unknown format or broken container)"
    )


class VideoIndex:
    """Archived videos' sampled frames, searchable by clip or by still picture."""

    def __init__(self, index: HashIndex | None = None) -> None:
        self.index = index if index is not None else HashIndex()
        self._times: dict[int, npt.NDArray[np.float64]] = {}

    def add(self, item_id: int, video: VideoHashes) -> None:
        """Store a video's informative ``stored`` frames (0 <= item_id <= MAX_VIDEO_ID)."""
        if not 0 <= item_id <= MAX_VIDEO_ID:
            raise ValueError(f"item id must be in 0..{MAX_VIDEO_ID}")
        keep = np.flatnonzero(video.informative & video.stored)
        frames = keep.astype(np.int64)
        base = (np.int64(item_id) << (_FRAME_BITS + 1)) | (frames << 1)
        self.index.add(video.hashes[keep], base)
        differs = np.flatnonzero(np.any(video.core_hashes[keep] != video.hashes[keep], axis=1))
        if differs.size:
            self.index.add(video.core_hashes[keep][differs], base[differs] | _CORE_BIT)
        self._times[item_id] = video.times

    def times(self, item_id: int) -> npt.NDArray[np.float64]:
        return self._times[item_id]

    def to_bytes(self) -> bytes:
        """Hashes, ids and frame times as bytes (the caller encrypts them)."""
        index = self.index.to_bytes()
        parts = [_VMAGIC, struct.pack("<QQ", len(index), len(self._times)), index]
        for item, times in sorted(self._times.items()):
            parts.append(struct.pack("<qQ", item, times.size))
            parts.append(times.astype("<f8").tobytes())
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> VideoIndex:
        """Load what ``to_bytes`` wrote; damaged data raises ``InputError``."""
        view = memoryview(data)
        try:
            if bytes(view[:8]) != _VMAGIC:
                raise ValueError
            size, count = struct.unpack_from("<QQ", view, 8)
            at = 24 + size
            out = cls(HashIndex.from_bytes(view[24:at]))
            for _ in range(count):
                item, n = struct.unpack_from("<qQ", view, at)
                at += 16
                if at + 8 * n > view.nbytes:
                    raise ValueError
                out._times[item] = np.frombuffer(view, "<f8", n, at).astype(np.float64)
                at += 8 * n
            if at != view.nbytes:
                raise ValueError
        except (ValueError, struct.error):
            raise InputError("the hash index data is damaged or of an unknown format") from None
        return out

    def search(
        self, clip: VideoHashes, max_distance: int = PDQ_MATCH_THRESHOLD
    ) -> list[VideoMatch]:
        """Archived videos containing the clip (turned or flipped too), best first."""
        keep = np.flatnonzero(clip.informative)
        if keep.size == 0:
            return []
        votes: dict[int, list[tuple[int, float, int]]] = defaultdict(list)
        for row in keep.tolist():
            probes = np.concatenate([clip.dihedral[row], clip.core_hashes[row : row + 1]])
            hits = self.index.search_any(probes, max_distance)
            for stored, dist in zip(hits.ids.tolist(), hits.distances.tolist(), strict=True):
                item = stored >> (_FRAME_BITS + 1)
                frame = (stored >> 1) & ((1 << _FRAME_BITS) - 1)
                offset = float(self._times[item][frame] - clip.times[row])
                votes[item].append((row, offset, dist))
        needed = max(min(MIN_FRAMES, keep.size), int(np.ceil(MIN_SHARE * keep.size)))
        found = []
        for item, pairs in votes.items():
            offset, rows, mean = _best_offset(pairs)
            if rows >= needed:
                found.append(VideoMatch(item, offset, rows, int(keep.size), mean))
        found.sort(key=lambda m: (-m.matched_frames, m.mean_distance, m.item_id))
        return found

    def search_image(
        self, picture: ImageHashes, max_distance: int = PDQ_MATCH_THRESHOLD
    ) -> list[tuple[int, float, int]]:
        """Archived videos with a frame like this still picture (a frame grab posted as
        a photo): (item id, time in seconds, distance), nearest first."""
        probes = [picture.dihedral]
        if picture.core_dihedral is not None:
            probes.append(picture.core_dihedral)
        hits = self.index.search_any(np.concatenate(probes), max_distance)
        best: dict[int, tuple[int, float, int]] = {}
        for stored, dist in zip(hits.ids.tolist(), hits.distances.tolist(), strict=True):
            item = stored >> (_FRAME_BITS + 1)
            frame = (stored >> 1) & ((1 << _FRAME_BITS) - 1)
            if item not in best or dist < best[item][2]:
                best[item] = (item, float(self._times[item][frame]), dist)
        return sorted(best.values(), key=lambda m: (m[2], m[0]))


def _best_offset(pairs: list[tuple[int, float, int]]) -> tuple[float, int, float]:
    """The offset most clip frames agree on (within OFFSET_TOLERANCE), how many distinct
    clip frames agree, and their mean distance.

    Candidate offsets are the pairs' own offsets rounded to a tenth of the tolerance, so
    the work grows with the number of distinct offsets, not with pairs squared.
    """
    rows = np.array([p[0] for p in pairs], dtype=np.int64)
    offsets = np.array([p[1] for p in pairs], dtype=np.float64)
    dists = np.array([p[2] for p in pairs], dtype=np.int64)
    best: tuple[float, int, float] = (0.0, 0, 0.0)
    grid = OFFSET_TOLERANCE / 10
    for centre in np.unique(np.round(offsets / grid)) * grid:
        near = np.abs(offsets - centre) <= OFFSET_TOLERANCE
        agreeing_rows = np.unique(rows[near])
        if agreeing_rows.size > best[1]:
            # each clip frame counts once, with its closest hash pair
            order = np.lexsort((dists[near], rows[near]))
            first = np.ones(order.size, dtype=bool)
            first[1:] = rows[near][order][1:] != rows[near][order][:-1]
            mean = float(dists[near][order][first].mean())
            best = (float(np.median(offsets[near])), int(agreeing_rows.size), mean)
    return best
