"""One poll loop for every kind of pipeline worker.

A worker repeats one step (claim a batch, work it) until the step finds nothing, then
sleeps until woken (a new row was written in this process) or until the poll interval
passes (another node wrote one). Errors in a step are logged and retried after a pause,
so a database hiccup never stops a worker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

Step = Callable[[], Awaitable[int]]


async def poll(name: str, step: Step, *, wakeup: asyncio.Event, stop: asyncio.Event, interval: float, log: Any) -> None:
    while not stop.is_set():
        started = time.monotonic()
        try:
            done = await step()
        except Exception:  # noqa: BLE001 - a worker must survive a database hiccup
            log.exception("worker.error", worker=name)
            done = 0
            await asyncio.sleep(1.0)
        if done:
            continue
        wakeup.clear()
        try:
            await asyncio.wait_for(wakeup.wait(), timeout=max(0.0, interval - (time.monotonic() - started)))
        except TimeoutError:
            pass
