"""Public copies of images and videos: new pixels, no metadata.

A public copy is never the original with tags removed: the picture is decoded, faces and
named regions are hidden, and the pixels are encoded into a fresh file that carries
nothing but the picture (no EXIF, XMP, IPTC, ICC profile, maker notes, GPS, thumbnails,
container tags or creation times; video loses its audio, which can carry voices). The
result is read back and refused if any metadata survived.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from athar.errors import InputError, IntegrityError
from athar.publish.faces import Box, Image, Mode, detect_faces, hide

IMAGE_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}
VIDEO_FORMATS = {".mp4": ("mp4", "libx264"), ".webm": ("webm", "libvpx-vp9")}
VIDEO_DETECT_EVERY = 3  # frames between face detections; boxes are held across the gap
VIDEO_DETECT_SIDE = 640
# What Pillow reports about a fresh file that is not metadata: JPEG's JFIF header and
# WebP's animation defaults (Pillow reads "loop" and "background" from every WebP).
KEEP_INFO = {"dpi", "jfif", "jfif_version", "jfif_unit", "jfif_density", "progressive", "loop",
             "background"}  # fmt: skip


@dataclass
class CopyResult:
    data: bytes
    kind: str  # "image" | "video"
    width: int
    height: int
    faces: int  # face boxes hidden (summed over frames for a video)
    regions: int
    frames: int = 1
    faces_per_frame: list[int] = field(default_factory=list)


def kind_of(suffix: str) -> str:
    if suffix in IMAGE_FORMATS:
        return "image"
    if suffix in VIDEO_FORMATS:
        return "video"
    raise InputError(
        "a public copy is written as {formats}; got {suffix}",
        formats=", ".join([*IMAGE_FORMATS, *VIDEO_FORMATS]),
        suffix=suffix or "(no extension)",
    )


def image_copy(data: bytes, suffix: str, faces: bool, mode: Mode, regions: list[Box]) -> CopyResult:
    from PIL import Image as PILImage
    from PIL import ImageOps, UnidentifiedImageError

    try:
        with PILImage.open(io.BytesIO(data)) as src:
            src.load()
            upright = ImageOps.exif_transpose(src)  # the picture as it is seen
            rgb = np.asarray(upright.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise InputError("this item is not an image that can be read") from None
    boxes = detect_faces(rgb) if faces else []
    pixels = hide(rgb, boxes + regions, mode)
    out = io.BytesIO()
    fmt = IMAGE_FORMATS[suffix]
    options: dict[str, Any] = {"quality": 90} if fmt in ("JPEG", "WEBP") else {}
    PILImage.fromarray(pixels, "RGB").save(out, fmt, **options)
    result = out.getvalue()
    check_image_clean(result)
    return CopyResult(result, "image", rgb.shape[1], rgb.shape[0], len(boxes), len(regions))


def check_image_clean(data: bytes) -> None:
    """Refuse a copy that still carries any metadata block Pillow can see."""
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(data)) as img:
        extra = set(img.info) - KEEP_INFO
        if extra or len(img.getexif()) or getattr(img, "applist", [])[1:]:
            raise IntegrityError("the public copy still carries metadata; nothing was written")


def video_copy(
    data: bytes,
    suffix: str,
    faces: bool,
    mode: Mode,
    regions: list[Box],
    progress: Callable[[int], None] | None = None,
) -> CopyResult:
    import av

    fmt, codec = VIDEO_FORMATS[suffix]
    out = io.BytesIO()
    try:
        src = av.open(io.BytesIO(data), "r")
    except (av.FFmpegError, ValueError):
        raise InputError("this item is not a video that can be read") from None
    with src:
        if not src.streams.video:
            raise InputError("this item is not a video that can be read")
        stream = src.streams.video[0]
        rate = stream.average_rate or Fraction(25)
        dst = av.open(out, "w", format=fmt, options={"fflags": "+bitexact"})
        with dst:
            dst.metadata.clear()
            enc: av.VideoStream = dst.add_stream(codec, rate=rate)  # type: ignore[assignment]
            enc.width = stream.codec_context.width // 2 * 2
            enc.height = stream.codec_context.height // 2 * 2
            enc.pix_fmt = "yuv420p"
            enc.codec_context.flags |= av.codec.context.Flags.bitexact
            enc.metadata.clear()
            counts: list[int] = []
            pending: list[Image] = []
            last_boxes: list[Box] = []

            def flush(next_boxes: list[Box]) -> None:
                # frames between two detections are covered by both, so a face that
                # moves between them stays hidden
                boxes = last_boxes + next_boxes + regions
                for rgb in pending:
                    frame = av.VideoFrame.from_ndarray(
                        np.ascontiguousarray(hide(rgb, boxes, mode)[: enc.height, : enc.width]),
                        format="rgb24",
                    )
                    for packet in enc.encode(frame):
                        dst.mux(packet)
                pending.clear()

            try:
                for index, frame in enumerate(src.decode(stream)):
                    rgb: Image = frame.to_ndarray(format="rgb24")  # type: ignore[assignment]
                    if faces and index % VIDEO_DETECT_EVERY == 0:
                        boxes = _detect_small(rgb)
                        counts.append(len(boxes))
                        flush(boxes)
                        last_boxes = boxes
                    pending.append(rgb)
                    if not faces:
                        flush([])
                    if progress:
                        progress(1)
                flush([])
                for packet in enc.encode(None):
                    dst.mux(packet)
            except av.FFmpegError:
                raise InputError("this item is not a video that can be read") from None
            frames = index + 1 if "index" in locals() else 0
    result = out.getvalue()
    check_video_clean(result)
    return CopyResult(
        result, "video", enc.width, enc.height, sum(counts), len(regions), frames, counts
    )


def _detect_small(rgb: Image) -> list[Box]:
    """Detect on a reduced frame (speed); boxes come back in the frame's pixels."""
    import cv2

    height, width = rgb.shape[:2]
    scale = min(1.0, VIDEO_DETECT_SIDE / max(height, width))
    if scale >= 1.0:
        return detect_faces(rgb)
    small: Image = cv2.resize(rgb, (round(width * scale), round(height * scale)))  # type: ignore[assignment]
    return [
        Box(round(b.x / scale), round(b.y / scale), round(b.w / scale), round(b.h / scale))
        for b in detect_faces(small)
    ]


def check_video_clean(data: bytes) -> None:
    import av

    with av.open(io.BytesIO(data), "r") as got:
        tags = dict(got.metadata)
        for stream in got.streams:
            tags.update({f"{stream.index}:{k}": v for k, v in stream.metadata.items()})
        allowed = {"major_brand", "minor_version", "compatible_brands"}
        leftovers = {
            k: v
            for k, v in tags.items()
            if k.split(":")[-1] not in allowed | {"handler_name", "vendor_id", "language"}
            or (k.endswith("handler_name") and v not in ("VideoHandler", ""))
        }
        if leftovers or len(got.streams.audio) or len(got.streams.subtitles):
            raise IntegrityError("the public copy still carries metadata; nothing was written")
