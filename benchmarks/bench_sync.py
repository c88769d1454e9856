"""Sync over HTTP (issue 5): 10,000 events and 500 MB of files over a link that drops.

Set-up (not timed): a server vault and a field vault enrolled with each other; the field
vault holds ``--events`` person records (one `athar import` of a CSV, Arabic names) and
``--mb`` MB of random files (``--files`` of them). The server is `athar serve` (a child
process) on 127.0.0.1; between it and the client sits a TCP proxy (in this script) that
cuts every open connection each ``--drop-every`` seconds, carries at most ``--rate``
MB/s each way (so that the transfer spans several drops, as on a real link), and counts
the bytes it carries. The client is `athar sync URL --json` (a child process).

Measured: wall time of the sync; bytes on the wire (both directions, at the proxy) over
the bundle bytes sent and received; bytes the client sent again after drops; connections
cut; peak RSS of the client (wait4) and of the server (VmHWM). A second sync right after
must send nothing.

    python benchmarks/bench_sync.py [--events 10000] [--mb 500] [--files 50]
                                    [--drop-every 30] [--rate 20] [--chunk 2M] [--doc]

Progress goes to stderr, one JSON document to stdout (markdown with --doc).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from athar.records.events import RECORD_CREATED
from athar.records.service import Records
from athar.sync import service
from athar.vault.vault import Vault
from benchcommon import (
    PASSPHRASE,
    WORK,
    athar_bin,
    athar_env,
    athar_init,
    check_disk,
    emit,
    log,
    mib,
    run_measured,
    wait_for_quiet,
)

FIRST = ["محمد", "أحمد", "فاطمة", "خالد", "مريم", "يوسف", "زينب", "عمر", "نور", "حسن"]
LAST = ["الحلبي", "الحمصي", "الإدلبي", "الدمشقي", "السوري", "العلي", "الأحمد"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DroppingProxy:
    """TCP proxy to *target* that closes every open connection each *every* seconds,
    optionally at most *rate* bytes a second in each direction of each connection."""

    def __init__(self, target: int, every: float, rate: float) -> None:
        self.target, self.every, self.rate = target, every, rate
        self.port = _free_port()
        self.wire = 0
        self.cuts = 0
        self._open: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self._ready.set()
        async with server:
            while not self._stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.every)
                if self._open and not self._stop.is_set():
                    self.cuts += len(self._open) // 2
                    for w in list(self._open):
                        w.transport.abort()

    async def _handle(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        try:
            sr, sw = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            cw.close()
            return
        self._open |= {cw, sw}

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(1 << 16):
                    self.wire += len(data)
                    w.write(data)
                    await w.drain()
                    if self.rate:  # a link of this many bytes a second, each way
                        await asyncio.sleep(len(data) / self.rate)
            except (ConnectionError, OSError):
                pass
            finally:
                for x in (cw, sw):
                    self._open.discard(x)
                    x.close()

        await asyncio.gather(pipe(cr, sw), pipe(sr, cw))

    def __enter__(self) -> DroppingProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)


def build(root: Path, events: int, total_mb: int, files: int) -> tuple[Path, Path]:
    server, client = root / "server", root / "client"
    for v in (server, client):
        athar_init(v)
    with Vault.open(server, PASSPHRASE) as s, Vault.open(client, PASSPHRASE) as c:
        for a, b, name in ((s, c, "laptop"), (c, s, "office")):
            card = service.card(b)
            service.enrol(a, card["key"], card["age_recipient"], name, name == "office")
    rng = random.Random(1)
    log(f"creating {events} person records (one event each)")
    with Vault.open(client, PASSPHRASE) as c, Records(c) as r:
        for start in range(0, events, 500):
            batch = []
            for i in range(start, min(events, start + 500)):
                name = f"{rng.choice(FIRST)} {rng.choice(LAST)} {i}"
                batch.append(
                    (RECORD_CREATED, r.prepare_create("person", {"name_ar.full": name})[1])
                )
            r.commit(batch)
    media = root / "media"
    media.mkdir(exist_ok=True)
    each = total_mb * 10**6 // max(files, 1)
    for i in range(files):
        path = media / f"clip-{i:03}.bin"
        with open(path, "wb") as fh:
            left = each
            while left:
                n = min(left, 8 << 20)
                fh.write(os.urandom(n))
                left -= n
    log(f"adding {files} files, {total_mb} MB")
    run_measured([athar_bin(), "add", str(media)], env=athar_env(client))
    shutil.rmtree(media)
    return server, client


def vm_hwm_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    root = WORK / "sync"
    check_disk(WORK, need=4 * args.mb * 10**6 + 2 * 10**9)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    server, client = build(root, args.events, args.mb, args.files)
    port = _free_port()
    proc = subprocess.Popen(
        [athar_bin(), "serve", "--port", str(port)],
        env=athar_env(server),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.2)
        waited = wait_for_quiet()
        with DroppingProxy(port, args.drop_every, args.rate * 1e6) as proxy:
            url = f"http://127.0.0.1:{proxy.port}"
            out = root / "sync.json"
            cmd = [athar_bin(), "sync", url, "--json", "--chunk", args.chunk]
            log(f"sync: drop every {args.drop_every} s")
            with open(out, "wb") as fh:
                first = run_measured(cmd, env=athar_env(client), stdout=fh)
            summary = json.loads(out.read_text(encoding="utf-8"))
            wire = proxy.wire
            with open(out, "wb") as fh:
                again = run_measured(cmd, env=athar_env(client), stdout=fh)
            second = json.loads(out.read_text(encoding="utf-8"))
            cuts = proxy.cuts
        server_rss = vm_hwm_kib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    payload = summary["sent_bytes"] + summary["received_bytes"]
    return {
        "benchmark": "sync over HTTP through a dropping link",
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "events": args.events,
        "files": args.files,
        "file_mb": args.mb,
        "drop_every_s": args.drop_every,
        "rate_mb_s": args.rate,
        "chunk": args.chunk,
        "waited_for_quiet_s": round(waited, 1),
        "seconds": round(first.seconds, 1),
        "foreign_cpu_s": round(first.foreign_cpu_s, 1),
        "summary": summary,
        "payload_bytes": payload,
        "wire_bytes": wire,
        "wire_over_payload": round(wire / payload, 4) if payload else None,
        "resent_bytes": summary["resent_bytes"],
        "connections_cut": cuts,
        "client_peak_rss_mib": mib(first.peak_rss_kib),
        "server_peak_rss_mib": mib(server_rss),
        "second_sync_seconds": round(again.seconds, 2),
        "second_sync": second,
    }


def as_doc(r: dict[str, Any]) -> str:
    s = r["summary"]
    return "\n".join(
        [
            "| events | files | link | drop every | time | wire / payload | resent | cuts | "
            "client RSS | server RSS |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            f"| {r['events']:,} | {r['file_mb']} MB in {r['files']} | {r['rate_mb_s']} MB/s | "
            f"{r['drop_every_s']} s | "
            f"{r['seconds']} s | {r['wire_bytes']:,} / {r['payload_bytes']:,} "
            f"({r['wire_over_payload']}) | {r['resent_bytes']:,} B | {r['connections_cut']} | "
            f"{r['client_peak_rss_mib']} MiB | {r['server_peak_rss_mib']} MiB |",
            "",
            f"Sent {s['sent_events']:,} events and {s['sent_files']} files, received "
            f"{s['received_events']:,} events; {s['drops']} drops seen by the client. "
            f"Second sync: {r['second_sync_seconds']} s, sent "
            f"{r['second_sync']['sent_bytes']} bytes.",
        ]
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument("--mb", type=int, default=500)
    p.add_argument("--files", type=int, default=50)
    p.add_argument("--drop-every", type=float, default=30.0)
    p.add_argument("--chunk", default="2M")
    p.add_argument("--rate", type=float, default=20.0, help="MB/s each way; 0: unlimited")
    p.add_argument("--doc", action="store_true")
    args = p.parse_args()
    result = run(args)
    if args.doc:
        print(as_doc(result))
    else:
        emit(result)


if __name__ == "__main__":
    sys.exit(main())
