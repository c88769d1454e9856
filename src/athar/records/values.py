"""Field value kinds: parse what a person typed (or a CSV cell held) into one canonical
JSON value, or refuse with a reason they can act on.

Every parser accepts text (command line, CSV) and the canonical value itself (JSON import,
the web app), so one function guards every way in. Arabic-Indic digits are accepted
wherever digits are.
"""

from __future__ import annotations

import calendar
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from athar.errors import InputError

_DIGITS = str.maketrans(
    {**{chr(0x0660 + d): str(d) for d in range(10)}, **{chr(0x06F0 + d): str(d) for d in range(10)}}
)
MAX_TEXT = 20_000
MAX_COUNT = 1_000_000
EARLIEST_YEAR = 1900

Json = Any


@dataclass(frozen=True)
class Problem(Exception):
    """A value that cannot be used; the message is a translatable template."""

    template: str
    params: dict[str, Any]

    def as_error(self, field: str) -> InputError:
        error = InputError(self.template, **self.params)
        error.at(field)
        return error


def bad_value(template: str, **params: Any) -> Problem:
    return Problem(template, params)


def ascii_digits(text: str) -> str:
    return text.translate(_DIGITS)


# -- text ----------------------------------------------------------------------------
def parse_text(raw: Json) -> str:
    if not isinstance(raw, str):
        raise bad_value("expected text")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: bytes that were not UTF-8 on the way in
        raise bad_value("text is not valid UTF-8") from None
    text = unicodedata.normalize("NFC", raw).strip()
    if "\x00" in text:
        raise bad_value("text must not contain NUL characters")
    if len(text) > MAX_TEXT:
        raise bad_value("text is longer than {limit} characters", limit=MAX_TEXT)
    return text


def parse_bool(raw: Json) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        word = raw.strip().casefold()
        if word in {"yes", "true", "1", "y", "نعم", "صح"}:
            return True
        if word in {"no", "false", "0", "n", "لا", "خطأ"}:
            return False
    raise bad_value("expected yes or no")


def _int(raw: Json) -> int:
    if isinstance(raw, bool):
        raise bad_value("expected a whole number")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str):
        text = ascii_digits(raw.strip())
        if re.fullmatch(r"-?\d{1,9}", text):
            return int(text)
    raise bad_value("expected a whole number, not {value}", value=str(raw)[:40])


def int_parser(low: int, high: int) -> Callable[[Json], int]:
    def parse(raw: Json) -> int:
        value = _int(raw)
        if not low <= value <= high:
            raise bad_value("{value} is outside {low}–{high}", value=value, low=low, high=high)
        return value

    return parse


def parse_year(raw: Json) -> int:
    return int_parser(EARLIEST_YEAR - 120, datetime.now(UTC).year)(raw)


# -- counts as ranges (Airwars: casualties are a minimum and a maximum) -----------------
_RANGE = re.compile(r"^\s*(\d{1,9})\s*(?:(?:-|–|—|\.\.|to|إلى|الى)\s*(\d{1,9}))?\s*$")


def parse_range(raw: Json) -> dict[str, int]:
    if isinstance(raw, dict):
        low, high = _int(raw.get("min")), _int(raw.get("max"))
    elif isinstance(raw, int) and not isinstance(raw, bool):
        low = high = raw
    elif isinstance(raw, str):
        match = _RANGE.match(ascii_digits(raw))
        if not match:
            raise bad_value("expected a count or a range like 3-5, not {value}", value=raw[:40])
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) else low
    else:
        raise bad_value("expected a count or a range like 3-5")
    if low < 0:
        raise bad_value("a count cannot be negative")
    if high < low:
        raise bad_value("the maximum {max} is less than the minimum {min}", max=high, min=low)
    if high > MAX_COUNT:
        raise bad_value("{value} is more than {limit}", value=high, limit=MAX_COUNT)
    return {"min": low, "max": high}


# -- dates with precision -------------------------------------------------------------
_YMD = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?$")
_DMY = re.compile(r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$")  # Syrian lists: day first
_PRECISIONS = ("day", "month", "year", "range")


def _bounds(text: str) -> tuple[date, date, str]:
    """First and last day a written date can mean, and its precision."""
    text = text.strip()
    match = _DMY.match(text)
    if match:
        d, m, y = (int(g) for g in match.groups())
        parts: tuple[int, int | None, int | None] = (y, m, d)
    else:
        match = _YMD.match(text)
        if not match:
            raise bad_value(
                "cannot read the date {value}; write 2017-03-12, 2017-03, 2017 or 12/03/2017",
                value=text[:40],
            )
        parts = (
            int(match.group(1)),
            int(match.group(2)) if match.group(2) else None,
            int(match.group(3)) if match.group(3) else None,
        )
    year, month, day = parts
    try:
        if month is None:
            return date(year, 1, 1), date(year, 12, 31), "year"
        if day is None:
            last = calendar.monthrange(year, month)[1]
            return date(year, month, 1), date(year, month, last), "month"
        exact = date(year, month, day)
    except ValueError:
        raise bad_value("{value} is not a real date", value=text[:40]) from None
    return exact, exact, "day"


def parse_date(raw: Json) -> dict[str, Any]:
    """A date or date range, with how precisely it is known.

    Forms: 2017-03-12, 2017-03, 2017, 12/03/2017 (day first), a range A/B or A..B, and a
    leading or trailing ~ for "approximately". Canonical value:
    {"start": "2017-03-01", "end": "2017-03-31", "precision": "month", "approximate": false}
    """
    if isinstance(raw, dict):
        return _check_date_value(raw)
    if not isinstance(raw, str) or not raw.strip():
        raise bad_value("expected a date")
    text = ascii_digits(raw.strip())
    approximate = text.startswith("~") or text.endswith("~")
    text = text.strip("~ ")
    if ".." in text:
        split = text.split("..", 1)
    elif "/" in text and not _DMY.match(text):
        split = text.split("/", 1)  # an ISO 8601 interval
    else:
        split = [text]
    if len(split) == 2:
        start, _, _ = _bounds(split[0])
        _, end, _ = _bounds(split[1])
        precision = "range"
        if end < start:
            raise bad_value(
                "the range ends ({end}) before it starts ({start})",
                start=split[0].strip(),
                end=split[1].strip(),
            )
    else:
        start, end, precision = _bounds(text)
    return _finish_date(start, end, precision, approximate)


def _finish_date(start: date, end: date, precision: str, approximate: bool) -> dict[str, Any]:
    if start.year < EARLIEST_YEAR:
        raise bad_value("{value} is before {year}", value=start.isoformat(), year=EARLIEST_YEAR)
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    if start > tomorrow:
        raise bad_value("{value} is in the future", value=start.isoformat())
    return {
        "start": start.isoformat(),
        "end": min(end, max(start, tomorrow)).isoformat(),
        "precision": precision,
        "approximate": approximate,
    }


def _check_date_value(raw: dict[str, Any]) -> dict[str, Any]:
    try:
        start = date.fromisoformat(str(raw["start"]))
        end = date.fromisoformat(str(raw.get("end", raw["start"])))
    except (KeyError, ValueError):
        raise bad_value("expected a date") from None
    precision = raw.get("precision", "day")
    if precision not in _PRECISIONS:
        raise bad_value("unknown date precision {value}", value=str(precision)[:20])
    if end < start:
        raise bad_value("the range ends ({end}) before it starts ({start})", start=start, end=end)
    return _finish_date(start, end, precision, bool(raw.get("approximate", False)))


# -- coordinates ----------------------------------------------------------------------
def parse_coordinates(raw: Json) -> dict[str, Any]:
    """ "lat,lon" or "lat,lon,precision_m" (WGS 84 degrees, precision in metres)."""
    if isinstance(raw, dict):
        parts: list[Any] = [raw.get("lat"), raw.get("lon"), raw.get("precision_m")]
    elif isinstance(raw, str):
        parts = [p.strip() for p in ascii_digits(raw).replace("،", ",").split(",")]
        if len(parts) not in (2, 3):
            raise bad_value("expected coordinates as latitude,longitude[,precision in metres]")
    else:
        raise bad_value("expected coordinates as latitude,longitude[,precision in metres]")
    try:
        lat, lon = float(parts[0]), float(parts[1])
    except (TypeError, ValueError):
        raise bad_value("cannot read the coordinates {value}", value=str(raw)[:60]) from None
    if not (math.isfinite(lat) and -90 <= lat <= 90):
        raise bad_value("latitude {value} is outside −90…90", value=parts[0])
    if not (math.isfinite(lon) and -180 <= lon <= 180):
        raise bad_value("longitude {value} is outside −180…180", value=parts[1])
    value: dict[str, Any] = {"lat": round(lat, 6), "lon": round(lon, 6)}
    if len(parts) > 2 and parts[2] not in (None, ""):
        value["precision_m"] = int_parser(0, 1_000_000)(parts[2])
    return value
