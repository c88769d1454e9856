"""`athar sync URL`: a thin face over athar.sync.http_client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from athar.cli.bundle_cmds import _size
from athar.cli.context import Ctx, command_ctx, open_vault, run_guarded
from athar.errors import InputError
from athar.sync import http_client

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _token(ctx: Ctx, path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        raise ctx.fail(InputError("cannot read {path}", path=str(path))) from None


def sync_cmd(
    context: typer.Context,
    url: Annotated[str, typer.Argument(help="The team server, e.g. https://office.example")],
    token_file: Annotated[
        Path | None, typer.Option("--token-file", help="A file holding an API token (athar_…).")
    ] = None,
    proxy: Annotated[
        str | None, typer.Option("--proxy", help="A SOCKS5 proxy, e.g. socks5://127.0.0.1:9050.")
    ] = None,
    cacert: Annotated[
        Path | None, typer.Option("--cacert", help="Trust only this certificate (pinned).")
    ] = None,
    insecure_http: Annotated[
        bool, typer.Option("--insecure-http", help="Allow plain http to another machine.")
    ] = False,
    relay_to: Annotated[
        list[str] | None,
        typer.Option("--relay-to", help="Also leave a bundle for this device on the server."),
    ] = None,
    chunk: Annotated[str, typer.Option("--chunk", help="Upload chunk size (2M).")] = "2M",
    json_out: JsonOpt = False,
) -> None:
    """Exchange with a team server everything either side lacks (resumes after drops)."""
    ctx = command_ctx(context, json_out)
    opts = http_client.Options(
        token=_token(ctx, token_file),
        proxy=proxy,
        cacert=cacert,
        insecure_http=insecure_http,
        chunk=run_guarded(ctx, _size, chunk),
        relay_to=list(relay_to or []),
    )

    @contextmanager
    def progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
        with ctx.progress(label, total) as bar:
            yield bar

    with open_vault(ctx) as vault:
        summary = run_guarded(ctx, http_client.sync, vault, url, opts, progress)
    if ctx.json:
        ctx.emit_json(summary.to_json())
        return
    say = ctx.out.print
    say(
        ctx.t(
            "Sent {events} event(s) and {files} file(s), {bytes} bytes",
            events=summary.sent_events,
            files=summary.sent_files,
            bytes=summary.sent_bytes,
        ),
        highlight=False,
    )
    say(
        ctx.t(
            "Received {events} event(s) and {files} file(s), {bytes} bytes",
            events=summary.received_events,
            files=summary.received_files,
            bytes=summary.received_bytes,
        ),
        highlight=False,
    )
    if summary.drops:
        say(
            ctx.t(
                "{drops} dropped connection(s); {bytes} bytes sent again",
                drops=summary.drops,
                bytes=summary.resent_bytes,
            ),
            highlight=False,
        )
    if summary.relayed or summary.mailbox:
        say(
            ctx.t(
                "Left {relayed} bundle(s) for other devices; took {taken} left for this one",
                relayed=summary.relayed,
                taken=summary.mailbox,
            ),
            highlight=False,
        )
    for problem in summary.problems:
        ctx.err.print(ctx.t("error") + ": " + _render(ctx, problem), highlight=False)


def _render(ctx: Ctx, error: Exception) -> str:
    from athar.errors import AtharError
    from athar.i18n import render_error

    return render_error(error, ctx.lang) if isinstance(error, AtharError) else str(error)


def register(app: typer.Typer) -> None:
    app.command("sync")(sync_cmd)
