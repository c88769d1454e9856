"""How long-running vault work reports progress to a face (CLI bar, web page)."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Told the total once it is known, then advanced as work completes."""

    def start(self, total: int) -> None: ...

    def advance(self, amount: int) -> None: ...
