"""One poll loop for every kind of pipeline worker.

A worker repeats one step (claim a batch, work it) until the step finds nothing, then
sleeps until woken (a new row was written in this process) or until the poll interval
passes (another node wrote one). Errors in a step are logged and retried after a pause,
so a database hiccup never stops a worker.

While idle the interval backs off (:class:`Backoff`): each empty poll doubles it, up to
``[pipeline] poll_interval_max``. An idle node then polls about once a second instead of
five times, which is CPU the voice decoder and the other node get back. A wakeup or a
step that finds work resets it at once, so work in this process is never delayed; a row
another node wrote is picked up within ``poll_interval_max`` plus one poll.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

Step = Callable[[], Awaitable[int]]


class Backoff:
    """The idle poll interval: ``interval`` after work, doubling on each empty poll up to ``ceiling``."""

    def __init__(self, interval: float, ceiling: float | None = None) -> None:
        self.interval = interval
        self.ceiling = max(interval, ceiling if ceiling is not None else interval)
        self.current = interval

    def idle(self) -> float:
        """The wait after an empty poll (the next one will be twice as long, up to the ceiling)."""
        wait = self.current
        self.current = min(self.ceiling, self.current * 2)
        return wait

    def reset(self) -> None:
        """Work was found or announced: poll at the short interval again."""
        self.current = self.interval


async def _wait(event: asyncio.Event, timeout: float) -> bool:
    """Whether ``event`` was set within ``timeout`` seconds."""
    try:
        await asyncio.wait_for(event.wait(), timeout=timeout)
    except TimeoutError:
        return False
    return True


async def poll(
    name: str,
    step: Step,
    *,
    wakeup: asyncio.Event,
    stop: asyncio.Event,
    interval: float,
    log: Any,
    max_interval: float | None = None,
    wait: Callable[[asyncio.Event, float], Awaitable[bool]] = _wait,
) -> None:
    """Run ``step`` until ``stop`` is set, backing off while it finds nothing (see the module docstring).

    The wakeup is cleared *before* each step: a row announced while the step runs (after
    its read) leaves the event set, so the wait after an empty step returns at once
    instead of sleeping a backed-off interval. ``wait`` is for tests (deterministic waits).
    """
    backoff = Backoff(interval, max_interval)
    while not stop.is_set():
        started = time.monotonic()
        wakeup.clear()
        try:
            done = await step()
        except Exception:  # noqa: BLE001 - a worker must survive a database hiccup
            log.exception("worker.error", worker=name)
            done = 0
            await asyncio.sleep(1.0)
        if done:
            backoff.reset()
            continue
        if stop.is_set():
            return
        if await wait(wakeup, max(0.0, backoff.idle() - (time.monotonic() - started))):
            backoff.reset()
