"""`athar recovery`, `athar duress`, `athar autowipe`: the commands for people who may be
coerced or may not live to unlock their vault. Thin: read secrets, call the vault, render.

New secrets (a new passphrase, a duress passphrase) come from an environment variable for
scripts or a hidden, confirmed prompt; never from the command line, where shell history
and the process list would keep them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from athar.cli.context import Ctx, command_ctx, open_vault, run_guarded
from athar.errors import InputError
from athar.vault import duress, recovery
from athar.vault.vault import KEY_FILE, MARKER, clear_decoy, set_decoy

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

recovery_app = typer.Typer(help="Split the vault's key among trusted people; rejoin it.")
duress_app = typer.Typer(help="A duress passphrase that opens a decoy and destroys the keys.")
autowipe_app = typer.Typer(help="Destroy the keys after N failed unlocks in a row.")


def _new_secret(ctx: Ctx, env: str, label: str) -> str:
    value = os.environ.get(env)
    if value is not None:
        return value
    if not sys.stdin.isatty():
        raise ctx.fail(
            InputError("no {what}: set {env} or run in a terminal", what=ctx.t(label), env=env)
        )
    text: str = typer.prompt(ctx.t(label), hide_input=True, confirmation_prompt=True, err=True)
    return text


@recovery_app.command("split")
def split_cmd(
    context: typer.Context,
    k: Annotated[int, typer.Option("-k", help="Shares needed to rejoin the key.")],
    n: Annotated[int, typer.Option("-n", help="Shares to make (one per trusted person).")],
    out: Annotated[Path, typer.Option("--out", help="New folder for the printable shares.")],
    json_out: JsonOpt = False,
) -> None:
    """Make n recovery shares (text + QR code), any k of which reopen the vault.
    A new split retires the shares of the previous one."""
    ctx = command_ctx(context, json_out)
    if out.exists() and any(out.iterdir()):
        raise ctx.fail(InputError("{path} exists and is not empty", path=str(out)))
    files: list[Path] = []

    def write(made: list[recovery.RecoveryShare]) -> None:
        files.extend(recovery.write_paper(made, out))  # the paper first, then the key file

    with open_vault(ctx) as vault:
        key_path = vault.root / KEY_FILE
        retired = recovery.has_recovery(key_path)
        run_guarded(ctx, recovery.split, key_path, vault.keys, k, n, write)
    if ctx.json:
        ctx.emit_json(
            {"ok": True, "k": k, "n": n, "files": [str(f) for f in files], "retired": retired}
        )
        return
    ctx.out.print(
        ctx.t(
            "Wrote {n} recovery shares to {path}; any {k} reopen the vault", n=n, k=k, path=str(out)
        )
    )
    if retired:
        ctx.out.print(ctx.t("The shares of the previous split no longer open this vault"))
    ctx.out.print(ctx.t("Print them, give one to each trusted person, then delete the folder"))


@recovery_app.command("join")
def join_cmd(
    context: typer.Context,
    shares: Annotated[list[Path], typer.Argument(metavar="SHARES...", help="Share files.")],
    new_passphrase: Annotated[
        bool,
        typer.Option(
            "--new-passphrase",
            help="Set a new passphrase (from $ATHAR_NEW_PASSPHRASE or a prompt).",
        ),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Rejoin k shares and seal the vault's key under a new passphrase (no old one needed)."""
    ctx = command_ctx(context, json_out)
    if not new_passphrase:
        raise ctx.fail(InputError("recovery sets a new passphrase: add --new-passphrase"))
    if not (ctx.vault / MARKER).exists():
        raise ctx.fail(InputError("no Athar vault at {path}", path=str(ctx.vault)))

    def read(path: Path) -> tuple[str, str]:
        try:
            return str(path), path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise InputError(
                "cannot read {path}: {reason}", path=str(path), reason=exc.strerror or str(exc)
            ) from None

    texts = [run_guarded(ctx, read, p) for p in shares]
    given = run_guarded(ctx, recovery.parse, texts)
    # Check the shares before asking for a passphrase: a wrong set fails fast.
    run_guarded(ctx, recovery.unlock, ctx.vault / KEY_FILE, given)
    secret = _new_secret(ctx, "ATHAR_NEW_PASSPHRASE", "New passphrase")
    run_guarded(ctx, recovery.recover, ctx.vault / KEY_FILE, given, secret)
    if ctx.json:
        ctx.emit_json({"ok": True, "shares": len(given)})
    else:
        ctx.out.print(ctx.t("The vault's key was recovered and sealed under the new passphrase"))


@duress_app.command("set")
def duress_set(
    context: typer.Context,
    decoy_files: Annotated[
        list[Path] | None,
        typer.Option("--decoy-files", help="Harmless files to put in the decoy."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Make a decoy vault that the duress passphrase opens. Opening the vault with that
    passphrase destroys the real keys, silently and for good."""
    ctx = command_ctx(context, json_out)
    with open_vault(ctx) as vault:
        secret = _new_secret(ctx, "ATHAR_DURESS_PASSPHRASE", "Duress passphrase")
        report = run_guarded(ctx, set_decoy, vault, secret, decoy_files or [])
        decoy = duress.decoy_root(vault.root)
    added = report.count("added")
    if ctx.json:
        ctx.emit_json({"ok": True, "decoy": str(decoy), "added": added})
        return
    ctx.out.print(ctx.t("Decoy vault made with {n} items", n=added))
    ctx.out.print(
        ctx.t(
            "Fill it with harmless files using its own folder: athar --vault {path} add FILES",
            path=str(decoy),
        ),
        highlight=False,
    )
    ctx.out.print(
        ctx.t(
            "Warning: opening {path} with the duress passphrase destroys its keys",
            path=str(ctx.vault),
        ),
        highlight=False,
    )


@duress_app.command("clear")
def duress_clear(context: typer.Context, json_out: JsonOpt = False) -> None:
    """Remove the decoy: the duress passphrase then opens nothing."""
    ctx = command_ctx(context, json_out)
    with open_vault(ctx) as vault:
        removed = run_guarded(ctx, clear_decoy, vault)
    if ctx.json:
        ctx.emit_json({"ok": True, "removed": removed})
    else:
        ctx.out.print(ctx.t("Decoy removed") if removed else ctx.t("There was no decoy"))


@autowipe_app.command("set")
def autowipe_set(
    context: typer.Context,
    failures: Annotated[int, typer.Argument(metavar="N", help="Failed unlocks; 0 turns it off.")],
    json_out: JsonOpt = False,
) -> None:
    """Destroy the vault's keys after N failed unlocks in a row."""
    ctx = command_ctx(context, json_out)
    with open_vault(ctx) as vault:
        run_guarded(ctx, duress.set_autowipe, vault.root, failures)
    if ctx.json:
        ctx.emit_json({"ok": True, "limit": failures})
    elif failures:
        ctx.out.print(
            ctx.t("The keys will be destroyed after {n} failed unlocks in a row", n=failures)
        )
    else:
        ctx.out.print(ctx.t("Auto-wipe is off"))


def register(app: typer.Typer) -> None:
    app.add_typer(recovery_app, name="recovery")
    app.add_typer(duress_app, name="duress")
    app.add_typer(autowipe_app, name="autowipe")
