"""One error type for everything a user can get wrong or a disk can break.

Every error carries an English message template (also the gettext msgid) and its
parameters, so each face (CLI, web) can render it in the user's language without the
lower layers knowing about languages.
"""

from __future__ import annotations

from typing import Any


class AtharError(Exception):
    """An error the user should see, explained; never carries secrets in its parameters."""

    exit_code = 1
    field: str | None = None  # the input field at fault, shown before the message

    def __init__(self, template: str, **params: Any) -> None:
        self.template = template
        self.params = params
        super().__init__(template.format(**params))

    def at(self, field: str) -> AtharError:
        """The same error, said of one input field (a CSV column, a form field)."""
        self.field = field
        self.args = (f"{field}: {self.args[0]}",)
        return self


class WrongPassphrase(AtharError):
    exit_code = 3


class VaultNotFound(AtharError):
    exit_code = 4


class VaultLocked(AtharError):
    """The vault's key material is gone (wiped) or unreadable."""

    exit_code = 5


class IntegrityError(AtharError):
    """Stored data failed authentication: altered, truncated, moved or from elsewhere."""

    exit_code = 6


class InputError(AtharError):
    exit_code = 2


class DiskFull(AtharError):
    exit_code = 7
