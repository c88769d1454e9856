"""Which module adds which command, so that `athar X` imports only what X needs.

Importing every command module costs about a CPU second (SQLAlchemy, NumPy, PyAV,
Splink's helpers) before any work starts: on a field laptop that is felt on every
command, and twice per bundle sent (export, then import at the other end). The console
script therefore looks at the command line, imports only the module that registers the
named command, and falls back to all of them for `--help`, no command or an unknown
name (so help and "no such command" still list everything). tests/test_cli.py checks
this table against what each module really registers.
"""

from __future__ import annotations

import contextlib
import importlib
import resource
import sys
from collections.abc import Sequence

import typer

# module (in athar.cli) → the top-level commands and groups its register() adds
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "records_cmds": (
        "new",
        "edit",
        "delete",
        "relate",
        "list",
        "search",
        "history",
        "import",
        "export",
        "rebuild",
        "fields",
        "vocab",
    ),
    "estimate_cmds": ("estimate",),
    "bundle_cmds": ("bundle", "device"),
    "link_cmds": ("link", "trace"),
    "verify_cmds": ("inspect", "similar", "verdict", "queue", "import-proofmode"),
    "publish_cmds": ("publish",),
    "security_cmds": ("recovery", "duress", "autowipe"),
    "web_cmds": ("serve", "user-add"),
    "sync_cmds": ("sync",),
    "demo": ("demo",),
}
# the global options that take a value (see athar.cli.core.main)
_VALUED_OPTIONS = {"--vault", "-V", "--lang", "--store"}


def command_name(argv: Sequence[str]) -> str | None:
    """The command a command line names (after the global options), or None."""
    args = iter(argv)
    for arg in args:
        if arg in _VALUED_OPTIONS:
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None


def modules_for(argv: Sequence[str] | None) -> list[str]:
    """The command modules to import for *argv* (None: all of them)."""
    name = command_name(argv) if argv is not None else None
    owners = [m for m, names in COMMAND_MODULES.items() if name in names]
    return owners or list(COMMAND_MODULES)


def register(app: typer.Typer, argv: Sequence[str] | None = None) -> None:
    """Add to *app* the command modules *argv* needs (None: every module)."""
    from athar.cli import core

    name = command_name(argv) if argv is not None else None
    if name is not None and name in names_of(core.app):
        return  # one of the vault's own commands: nothing else to import
    done: set[str] = app.__dict__.setdefault("_athar_command_modules", set())
    for module in modules_for(argv):
        if module not in done:
            importlib.import_module(f"athar.cli.{module}").register(app)
            done.add(module)


def names_of(app: typer.Typer) -> set[str]:
    """The top-level command and group names *app* has."""
    names = {
        c.name or typer.main.get_command_name(c.callback.__name__)
        for c in app.registered_commands
        if c.callback is not None
    }
    for group in app.registered_groups:
        name = group.name or (group.typer_instance and group.typer_instance.info.name)
        if isinstance(name, str):
            names.add(name)
    return names


def _no_core_dumps() -> None:
    """A crash dump of this process would hold the master key in plain; forbid them."""
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run() -> None:
    """The `athar` console script."""
    from athar.cli.core import app

    _no_core_dumps()
    register(app, sys.argv[1:])
    app()
