"""Notices: things a reader of an estimate must be told that do not stop it.

A refusal is an ``InputError``; a notice is weaker (a list left out of one stratum, an
interval with no upper end). Both carry an English template (the gettext msgid) and
parameters, so the CLI and the web can say them in the reader's language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from athar.i18n import translate


@dataclass(frozen=True)
class Notice:
    template: str
    params: dict[str, Any] = field(default_factory=dict)

    def text(self, lang: str = "en") -> str:
        return translate(self.template, lang, **self.params)


def notice(template: str, **params: Any) -> Notice:
    return Notice(template, params)
