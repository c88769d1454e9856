"""What a page needs to speak the user's language: messages from the gettext catalogs,
numbers in Arabic-Indic digits when the user asks for them, and dates with both sets of
Arabic Gregorian month names (آذار and مارس: the Levant says the first, most Arabic
media the second; showing both leaves no reader unsure)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from functools import cache
from importlib import resources
from typing import Any

from athar.errors import AtharError
from athar.i18n import render_error, translate

ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@cache
def _months() -> dict[str, list[str]]:
    data = json.loads((resources.files("athar.web") / "data" / "months.json").read_text("utf-8"))
    return {k: v for k, v in data.items() if not k.startswith("_")}


class Speaker:
    """One user's language and number preferences, handed to every template."""

    def __init__(self, lang: str, arabic_digits: bool = False) -> None:
        self.lang = lang if lang in ("ar", "en") else "en"
        self.arabic_digits = arabic_digits and self.lang == "ar"
        self.dir = "rtl" if self.lang == "ar" else "ltr"

    def t(self, message: str, **params: Any) -> str:
        return translate(message, self.lang, **params)

    def error(self, error: AtharError) -> str:
        return render_error(error, self.lang)

    def num(self, value: object) -> str:
        text = str(value)
        return text.translate(ARABIC_INDIC) if self.arabic_digits else text

    def day(self, iso: str | None) -> str:
        """2017-03-14 → "14 آذار (مارس) 2017" or "14 March 2017"; partial dates too."""
        if not iso:
            return ""
        parts = iso[:10].split("-")
        try:
            year = int(parts[0])
            month = int(parts[1]) if len(parts) > 1 else None
            day = int(parts[2]) if len(parts) > 2 else None
        except ValueError:
            return self.num(iso)
        months = _months()
        if month is None or not 1 <= month <= 12:
            return self.num(year)
        if self.lang == "ar":
            name = f"{months['levant'][month - 1]} ({months['west'][month - 1]})"
        else:
            name = months["en"][month - 1]
        text = f"{day} {name} {year}" if day else f"{name} {year}"
        return self.num(text)

    def date_value(self, value: Any) -> str:
        """A record's date value (start, end, precision, approximate) for reading."""
        if not isinstance(value, dict) or "start" not in value:
            return ""
        precision = value.get("precision", "day")
        start, end = str(value["start"]), str(value.get("end", value["start"]))
        if precision == "year":
            text = self.num(start[:4])
        elif precision == "month":
            text = self.day(start[:7])
        elif precision == "range":
            text = f"{self.day(start)} – {self.day(end)}"
        else:
            text = self.day(start)
        return f"~{text}" if value.get("approximate") else text

    def moment(self, iso_or_ms: str | int | float) -> str:
        """A timestamp (ISO text or epoch milliseconds) as date and UTC time."""
        if isinstance(iso_or_ms, int | float):
            moment = datetime.fromtimestamp(iso_or_ms / 1000, UTC)
        else:
            try:
                moment = datetime.fromisoformat(str(iso_or_ms).replace("Z", "+00:00"))
            except ValueError:
                return self.num(str(iso_or_ms))
        return f"{self.day(moment.date().isoformat())} {self.num(moment.strftime('%H:%M'))} UTC"

    def today(self) -> str:
        return self.day(date.today().isoformat())
