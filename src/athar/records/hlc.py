"""Hybrid logical clock: timestamps that order edits across devices that work offline.

A stamp is wall-clock milliseconds plus a counter, written as a fixed-width string
("0001700000000000.00000") so that stamps compare correctly as plain strings, in SQL as in
Python, and survive JSON without the precision loss of large numbers (RFC 8785 encodes
numbers as doubles). A device's clock never goes backwards even if the wall clock does,
and every stamp it sees from other devices pushes it forward (Kulkarni et al., 2014).
Conflicting edits of one field are decided by (stamp, device): the later stamp wins, the
device fingerprint breaks ties, so every device reaches the same result.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

_WIDTH_MS = 16
_WIDTH_COUNTER = 5
ZERO = "0" * _WIDTH_MS + "." + "0" * _WIDTH_COUNTER


def format_stamp(ms: int, counter: int) -> str:
    return f"{ms:0{_WIDTH_MS}d}.{counter:0{_WIDTH_COUNTER}d}"


_STAMP = re.compile(rf"[0-9]{{{_WIDTH_MS}}}\.[0-9]{{{_WIDTH_COUNTER}}}")


def is_stamp(stamp: str) -> bool:
    """Whether *stamp* is a well-formed clock stamp (one regex match: checked for every
    change a rebuild reads)."""
    return _STAMP.fullmatch(stamp) is not None


def parse_stamp(stamp: str) -> tuple[int, int]:
    """(ms, counter) of a stamp; ValueError if it is not one."""
    ms, sep, counter = stamp.partition(".")
    if (
        not sep
        or len(ms) != _WIDTH_MS
        or len(counter) != _WIDTH_COUNTER
        or not (ms.isascii() and ms.isdigit() and counter.isascii() and counter.isdigit())
    ):
        raise ValueError(f"not a clock stamp: {stamp!r}")
    return int(ms), int(counter)


def stamp_time_ms(stamp: str) -> int:
    return parse_stamp(stamp)[0]


class Clock:
    def __init__(self, last: str = ZERO, now_ms: Callable[[], int] | None = None) -> None:
        self._ms, self._counter = parse_stamp(last)
        self._now = now_ms or (lambda: time.time_ns() // 1_000_000)

    def tick(self) -> str:
        """A stamp later than every stamp this clock has issued or observed."""
        now = self._now()
        if now > self._ms:
            self._ms, self._counter = now, 0
        else:
            self._counter += 1
        return format_stamp(self._ms, self._counter)

    def observe(self, stamp: str) -> None:
        """Move past a stamp seen in another device's event."""
        ms, counter = parse_stamp(stamp)
        if (ms, counter) > (self._ms, self._counter):
            self._ms, self._counter = ms, counter
