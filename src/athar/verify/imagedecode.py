"""Decode untrusted image files for hashing, refusing what could hurt the machine.

Images reach Athar from anyone, including the parties who want the archive to fail, so a
file may be a decompression bomb (a tiny file declaring billions of pixels), truncated in
transit, or not an image at all. Each of those becomes an ``InputError`` with a message a
documenter can act on, never a crash or an exhausted laptop. Error parameters carry only
numbers: file names can identify sources and are left to the caller.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from athar.errors import InputError

# Pillow refuses outright above twice its warning limit (2 x 89,478,485 pixels); using the
# same figure keeps one rule for every format. It admits a 16,000 x 11,000 scan or the
# 50 MP photos phones save by default; it refuses the rare 200 MP full-sensor mode. A
# non-JPEG of this size still needs ~540 MB while decoding, the most a field laptop
# should be asked for; JPEGs decode at 1/8 scale and need far less (see DECODE_SIDE).
MAX_PIXELS = 178_956_970

# JPEG can decode straight to 1/2, 1/4 or 1/8 scale ("draft" mode), so a 48 MP photo
# costs the time and memory of a 0.75 MP one. PDQ reduces every image to 64 x 64 luma,
# and reference implementations downsample to 512 first, so 1024 keeps a margin of 2
# for the region hashes cut from the middle of the picture.
DECODE_SIDE = 1024

# Smaller than this there is no picture to compare: PDQ's 64 x 64 grid would be mostly
# interpolation, and such files are icons or tracking pixels rather than evidence.
MIN_SIDE = 16


def open_image(
    source: bytes | Path | BinaryIO,
    *,
    max_pixels: int = MAX_PIXELS,
    decode_side: int = DECODE_SIDE,
) -> Image.Image:
    """The picture as an upright RGB image no larger than about ``decode_side`` (at least
    ``decode_side`` on the shorter side of what the JPEG draft allows, then reduced).

    Only the first frame of animated or multi-page files is used. EXIF orientation is
    applied so that hashes describe the picture as people see it.
    """
    stream: BinaryIO
    if isinstance(source, bytes | bytearray | memoryview):
        stream = io.BytesIO(bytes(source))
    elif isinstance(source, Path):
        stream = source.open("rb")
    else:
        stream = source
    try:
        return _decode(stream, max_pixels, decode_side)
    finally:
        if isinstance(source, Path):
            stream.close()


def _decode(stream: BinaryIO, max_pixels: int, decode_side: int) -> Image.Image:
    with warnings.catch_warnings():
        # Between Pillow's warning and error limits it only warns; our own limit decides.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(stream)
        except Image.DecompressionBombError:
            raise _bomb(0, 0, max_pixels) from None
        except UnidentifiedImageError:
            raise InputError("this file is not an image in a format Athar can read") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise _damaged() from exc
        width, height = img.size
        if width <= 0 or height <= 0 or width * height > max_pixels:
            raise _bomb(width, height, max_pixels)
        if min(width, height) < MIN_SIDE:
            raise InputError(
                "the image is too small to compare ({width}×{height} pixels; "
                "at least {minimum} on each side is needed)",
                width=width,
                height=height,
                minimum=MIN_SIDE,
            )
        if ImageFile.LOAD_TRUNCATED_IMAGES:
            # Another part of the process asked Pillow to pad truncated files with grey;
            # a padded picture would hash as a different one, so refuse rather than guess.
            raise InputError("image decoding is misconfigured: truncated images are accepted")
        try:
            if img.format == "JPEG":
                img.draft("RGB", (decode_side, decode_side))
            img.load()
            upright = ImageOps.exif_transpose(img) or img
            rgb = upright.convert("RGB")
        except Image.DecompressionBombError:
            raise _bomb(width, height, max_pixels) from None
        except MemoryError:
            raise _bomb(width, height, max_pixels) from None
        except Exception as exc:  # Pillow's decoders raise many types on hostile input
            raise _damaged() from exc
    if max(rgb.size) > decode_side:
        rgb.thumbnail((decode_side, decode_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return rgb


def _damaged() -> InputError:
    return InputError("the image is damaged or incomplete (truncated) and cannot be decoded")


def _bomb(width: int, height: int, limit: int) -> InputError:
    if width and height:
        return InputError(
            "the image declares {width}×{height} pixels, more than the limit of {limit}; "
            "refused as a possible decompression bomb",
            width=width,
            height=height,
            limit=limit,
        )
    return InputError(
        "the image declares more than {limit} pixels; refused as a possible decompression bomb",
        limit=limit,
    )
