"""What every command needs: the vault path, the passphrase, the language, the output."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from athar.errors import AtharError, InputError
from athar.i18n import render_error, translate
from athar.vault.vault import Vault, is_vault

DEFAULT_VAULT = "athar-vault"
P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class Ctx:
    vault: Path
    lang: str
    json: bool = False
    store: str | None = None  # a PostgreSQL URL for the records store; None: the vault's file

    @cached_property
    def out(self) -> Console:
        return Console(soft_wrap=True)

    @cached_property
    def err(self) -> Console:
        return Console(stderr=True, soft_wrap=True)

    def t(self, message: str, **params: Any) -> str:
        return translate(message, self.lang, **params)

    def emit_json(self, data: Any) -> None:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")

    def fail(self, error: AtharError) -> typer.Exit:
        if self.json:
            self.emit_json(
                {"ok": False, "error": render_error(error, self.lang), "kind": type(error).__name__}
            )
        else:
            self.err.print(
                f"[bold red]{self.t('error')}:[/] {render_error(error, self.lang)}",
                highlight=False,
                markup=True,
            )
        return typer.Exit(error.exit_code)

    def passphrase(self, confirm: bool = False) -> str:
        value = os.environ.get("ATHAR_PASSPHRASE")
        if value is not None:
            return value
        if not sys.stdin.isatty():
            raise InputError("no passphrase: set ATHAR_PASSPHRASE or run in a terminal")
        text: str = typer.prompt(
            self.t("Passphrase"), hide_input=True, confirmation_prompt=confirm, err=True
        )
        return text

    @contextmanager
    def progress(self, label: str, total: int | None = None, count: bool = False) -> Iterator[Bar]:
        """A progress bar on stderr, of bytes or (*count*) of things; silent when stderr is
        not a terminal or with --json."""
        show = not self.json and self.err.is_terminal
        columns: tuple[ProgressColumn, ...] = (
            TextColumn("{task.description}"),
            BarColumn(),
            *((MofNCompleteColumn(),) if count else (DownloadColumn(), TransferSpeedColumn())),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=self.err, disable=not show, transient=True) as bar:
            yield Bar(bar, bar.add_task(self.t(label), total=total), self.out if not show else None)


class Bar:
    """A rich progress task seen as the small interface the services report to."""

    def __init__(self, progress: Progress, task: TaskID, plain: Console | None) -> None:
        self._progress = progress
        self._task = task
        self._plain = plain

    def print(self, text: str) -> None:
        """Print a line above a live bar (or plainly to stdout when there is no bar)."""
        (self._plain or self._progress.console).print(text, highlight=False)

    def start(self, total: int) -> None:
        self._progress.update(self._task, total=total)

    def advance(self, amount: int) -> None:
        self._progress.advance(self._task, amount)

    def __call__(self, amount: int) -> None:
        self.advance(amount)


def command_ctx(context: typer.Context, json_out: bool = False) -> Ctx:
    """The shared context of a command, told whether this command answers in JSON."""
    ctx: Ctx = context.obj
    ctx.json = json_out
    return ctx


def resolve_vault(vault: Path | None) -> Path:
    if vault is not None:
        return vault
    return Path(os.environ.get("ATHAR_VAULT", DEFAULT_VAULT))


def open_vault(ctx: Ctx) -> Vault:
    if not is_vault(ctx.vault):
        raise ctx.fail(
            AtharError("no Athar vault at {path}; create one with athar init", path=str(ctx.vault))
        )
    return run_guarded(ctx, lambda: Vault.open(ctx.vault, ctx.passphrase()))


def run_guarded(ctx: Ctx, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Call a service; turn its AtharError into a translated message and exit code."""
    try:
        return fn(*args, **kwargs)
    except AtharError as exc:
        raise ctx.fail(exc) from None
