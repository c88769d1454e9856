"""The whole `athar` command line with every command registered: for tests, docs and
programs that drive it in process. The console script (athar.cli.commands.run) registers
only the module a command line needs."""

from __future__ import annotations

from athar.cli.commands import register, run
from athar.cli.core import app

register(app)

__all__ = ["app", "run"]
