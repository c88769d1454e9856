"""One thread owns the vault.

The ledger's SQLite connection may only be used by the thread that opened it, and the
records service is not written for concurrent writers; so every call into them runs on a
single worker thread, in arrival order. Requests wait for it without blocking the event
loop, and pages that only need the projection stay short.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class Worker:
    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="athar-vault")

    def call(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run *fn* on the vault thread and wait (from a plain thread)."""
        return self._pool.submit(fn, *args, **kwargs).result()

    async def run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run *fn* on the vault thread and await it (from the event loop)."""
        future = self._pool.submit(fn, *args, **kwargs)
        return await asyncio.wrap_future(future)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
