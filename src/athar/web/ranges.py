"""HTTP byte ranges (RFC 9110 §14) over a stream that can only be read from the start.

A browser seeks in a video, and a download over a link that drops resumes, by asking for
a range. Vault blobs are decrypted in order (each chunk authenticated, none seekable), so
a range is served by decrypting from the start and discarding what comes before it: the
cost of a late range is the decryption of the bytes before it, never memory. Only one
range per request is honoured; a multi-range request gets the whole file (allowed by the
RFC), which avoids multipart bodies nobody here needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

_SINGLE = re.compile(r"bytes=(\d*)-(\d*)")


class Unsatisfiable(Exception):
    """The range lies outside the file (answered 416)."""


def parse(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte positions, inclusive, of a single-range header; None when the
    header is absent, malformed or multi-range, i.e. the whole file is sent."""
    if not header:
        return None
    match = _SINGLE.fullmatch(header.strip())
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text:
        if not last_text:
            return None
        suffix = int(last_text)  # the last N bytes
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return max(0, size - suffix), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None  # syntactically invalid: ignored, per the RFC
    if first >= size:
        raise Unsatisfiable
    return first, min(int(last_text) if last_text else size - 1, size - 1)


def window(chunks: Iterable[bytes], first: int, last: int, drain: bool = False) -> Iterator[bytes]:
    """The bytes first..last (inclusive) of a chunk stream. With *drain* the stream is read
    to its end even after the window, so checks it makes at the end (the vault's whole-file
    hash) still run and can still fail the response."""
    position = 0
    for chunk in chunks:
        end = position + len(chunk)
        if end > first:
            lo = max(0, first - position)
            hi = min(len(chunk), last + 1 - position)
            if hi > lo:
                yield chunk[lo:hi]
        position = end
        if position > last and not drain:
            return
