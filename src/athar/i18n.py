"""Messages in the user's language, from gettext catalogs (``locale/<lang>/LC_MESSAGES``).

Catalogs are read as .po with Babel, so no compile step is needed before a run. The
English text is the message id; a missing translation falls back to English.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

from athar.errors import AtharError

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "athar"
SUPPORTED = ("en", "ar")


def pick_language(explicit: str | None = None) -> str:
    """--lang, then $ATHAR_LANG, then $LC_ALL / $LC_MESSAGES / $LANG; default English."""
    for value in (
        explicit,
        os.environ.get("ATHAR_LANG"),
        os.environ.get("LC_ALL"),
        os.environ.get("LC_MESSAGES"),
        os.environ.get("LANG"),
    ):
        if value:
            code = value.split(".")[0].split("_")[0].lower()
            if code in SUPPORTED:
                return code
    return "en"


@cache
def catalog(lang: str) -> dict[str, str]:
    path = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.exists():
        return {}
    with path.open("rb") as fh:
        po = read_po(fh, locale=lang)
    return {str(m.id): str(m.string) for m in po if m.id and m.string and not m.fuzzy}


def gettext(message: str, lang: str) -> str:
    return catalog(lang).get(message, message) if lang != "en" else message


def translate(message: str, lang: str, **params: Any) -> str:
    return gettext(message, lang).format(**params)


def render_error(error: AtharError, lang: str) -> str:
    message = translate(error.template, lang, **error.params)
    if error.field is not None:  # "date: 2017-02-30 is not a real date"
        return f"{error.field}: {message}"
    return message
