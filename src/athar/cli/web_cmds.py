"""`athar serve` (the team web application) and `athar user-add` (its accounts)."""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from athar.cli.context import Ctx, open_vault, run_guarded
from athar.cli.demo import DEMO_MARKER, DEMO_PASSPHRASE
from athar.errors import InputError
from athar.records.service import Records
from athar.vault.vault import Vault, is_vault
from athar.web.roles import roles

DEMO_DIR = Path("athar-demo-web")

KEEP_ALIVE_S = 65  # seconds an idle connection stays open


def _build_demo(ctx: Ctx, folder: Path) -> Path:
    """A fresh demo vault under *folder* (only ever a folder the demo made itself)."""
    import shutil

    from athar.web import demo
    from athar.web.accounts import Accounts

    if folder.exists():
        if not (folder / DEMO_MARKER).exists():
            raise ctx.fail(
                InputError("{path} exists and was not made by athar demo", path=str(folder))
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / DEMO_MARKER).write_text("Made by `athar serve --demo`; safe to delete.\n")
    samples = folder / "samples"
    samples.mkdir()
    for entry in (resources.files("athar") / "samples").iterdir():
        if entry.is_file():
            (samples / entry.name).write_bytes(entry.read_bytes())
    vault_dir = folder / "vault"
    ctx.err.print(ctx.t("Building the synthetic demo dataset in {path}", path=str(vault_dir)))
    with Vault.create(vault_dir, DEMO_PASSPHRASE) as vault, Records(vault) as records:
        accounts = Accounts(vault_dir, vault.keys.subkey("web/accounts"))
        try:
            run_guarded(ctx, demo.build, vault, records, accounts, samples)
        finally:
            accounts.close()
    return vault_dir


def serve(
    context: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    demo: Annotated[
        bool, typer.Option("--demo", help="Serve a fresh, clearly labelled synthetic dataset.")
    ] = False,
    tiles: Annotated[
        str | None,
        typer.Option(help="Map tile server URL template, e.g. http://tiles.lan/{z}/{x}/{y}.png"),
    ] = None,
    cert: Annotated[Path | None, typer.Option(help="TLS certificate (PEM).")] = None,
    key: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
) -> None:
    """Start the team web application on the vault (the passphrase stays in memory)."""
    import uvicorn

    from athar.web.app import create_app
    from athar.web.demo import DEMO_PASSWORD, DEMO_USER
    from athar.web.state import Settings

    ctx: Ctx = context.obj
    if demo:
        vault_dir = _build_demo(ctx, DEMO_DIR)
        passphrase = DEMO_PASSPHRASE
    else:
        vault_dir = ctx.vault
        if not is_vault(vault_dir):
            raise ctx.fail(
                InputError(
                    "no Athar vault at {path}; create one with athar init", path=str(vault_dir)
                )
            )
        passphrase = run_guarded(ctx, ctx.passphrase)
    extra: tuple[str, ...] = ()
    if tiles:
        from urllib.parse import urlsplit

        parts = urlsplit(tiles)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ctx.fail(InputError("a tile server URL starts with http:// or https://"))
        extra = (f"{parts.scheme}://{parts.netloc}",)
    loopback = host in ("127.0.0.1", "localhost", "::1")
    settings = Settings(
        # Browsers keep Secure cookies on plain http only for the loopback address; any
        # other address needs TLS (--cert/--key or a reverse proxy).
        secure_cookies=True,
        tile_url=tiles,
        demo_note="demo" if demo else None,
        store_url=ctx.store,
        extra_img_src=extra,
    )
    if not loopback and not (cert and key):
        ctx.err.print(
            ctx.t("warning: without --cert and --key, serve only behind a TLS reverse proxy")
        )
    app = run_guarded(ctx, create_app, vault_dir, passphrase, settings)
    accounts = app.state.athar.accounts
    scheme = "https" if cert and key else "http"
    ctx.out.print(ctx.t("Athar is running at {url}", url=f"{scheme}://{host}:{port}/"))
    if demo:
        ctx.out.print(
            ctx.t("Demo login: {user} / {password}", user=DEMO_USER, password=DEMO_PASSWORD),
            highlight=False,
        )
    elif accounts.count() == 0:
        ctx.out.print(ctx.t("No accounts yet: add one with athar user-add NAME --role admin"))
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,  # addresses and paths (record ids) stay out of logs
        ssl_certfile=str(cert) if cert else None,
        ssl_keyfile=str(key) if key else None,
        server_header=False,
        # uvicorn closes an idle connection after 5 s; a reader pauses longer than that
        # between clicks, and a new TLS handshake costs seconds on a satellite link. A
        # client may also reuse a connection just as the server closes it (seen in the
        # load test): the longer window makes that race rarer.
        timeout_keep_alive=KEEP_ALIVE_S,
    )


def user_add(
    context: typer.Context,
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Option(help="One of: " + ", ".join(roles()))] = "viewer",
    lang: Annotated[str, typer.Option("--ui-lang", help="Language of the pages: ar or en.")] = "ar",
) -> None:
    """Add a web account; the password is read from $ATHAR_NEW_PASSWORD or prompted."""
    from athar.web.accounts import Accounts, ledger_journal

    ctx: Ctx = context.obj
    password = os.environ.get("ATHAR_NEW_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            raise ctx.fail(InputError("no password: set ATHAR_NEW_PASSWORD or run in a terminal"))
        password = typer.prompt(ctx.t("Password"), hide_input=True, confirmation_prompt=True)
    with open_vault(ctx) as vault:
        # signed into the ledger like an account added in the web app (as an account id)
        journal = ledger_journal(vault)
        accounts = Accounts(ctx.vault, vault.keys.subkey("web/accounts"), journal=journal)
        try:
            user = run_guarded(ctx, accounts.add, name, password, role, lang)
        finally:
            accounts.close()
    ctx.out.print(ctx.t("Added user {name} ({role})", name=user.name, role=user.role))


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("user-add")(user_add)
