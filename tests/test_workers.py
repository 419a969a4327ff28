"""The worker poll loop: idle backoff, reset on wakeup or work, and no lost wakeup (no real sleeps)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from bot.pipeline.workers import Backoff, poll


class _Log:
    def exception(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("the step must not fail in these tests")


def test_backoff_doubles_to_its_ceiling_and_resets() -> None:
    backoff = Backoff(0.2, 1.0)
    assert [backoff.idle() for _ in range(5)] == [0.2, 0.4, 0.8, 1.0, 1.0]
    backoff.reset()
    assert backoff.idle() == 0.2


def test_backoff_ceiling_is_never_below_the_interval() -> None:
    backoff = Backoff(2.0, 1.0)  # poll_interval larger than poll_interval_max: no backoff, no shorter waits
    assert [backoff.idle() for _ in range(3)] == [2.0, 2.0, 2.0]


def _script(results: list[int], stop: asyncio.Event, during: Callable[[int], None] = lambda _n: None) -> Callable[[], Awaitable[int]]:
    """A step returning ``results`` in turn (then stopping the loop); ``during(n)`` runs inside the n-th step."""
    calls = [0]

    async def step() -> int:
        n = calls[0]
        calls[0] += 1
        during(n)
        if n >= len(results) - 1:
            stop.set()
        return results[n] if n < len(results) else 0

    return step


async def _run(results: list[int], woken: set[int] = frozenset(), during: Callable[[int], None] | None = None) -> list[float]:
    """The wait timeouts the loop asked for; waits listed in ``woken`` (by index) report a wakeup."""
    stop, wakeup = asyncio.Event(), asyncio.Event()
    timeouts: list[float] = []

    async def wait(event: asyncio.Event, timeout: float) -> bool:
        timeouts.append(round(timeout, 1))
        return event.is_set() or (len(timeouts) - 1) in woken

    step = _script(results, stop, during or (lambda _n: None))
    await poll("t", step, wakeup=wakeup, stop=stop, interval=0.2, max_interval=1.0, log=_Log(), wait=wait)
    return timeouts


async def test_empty_polls_back_off_up_to_the_maximum() -> None:
    assert await _run([0, 0, 0, 0, 0, 0]) == [0.2, 0.4, 0.8, 1.0, 1.0]  # the last step stops the loop: no wait after it


async def test_work_found_resets_the_interval() -> None:
    # two empty polls back off; then work is found (no wait), and the next empty poll waits the short interval again
    assert await _run([0, 0, 3, 0, 0, 0]) == [0.2, 0.4, 0.2, 0.4]  # the last step stops the loop: no wait after it


async def test_a_wakeup_resets_the_interval() -> None:
    assert await _run([0, 0, 0, 0, 0], woken={2}) == [0.2, 0.4, 0.8, 0.2]


async def test_a_row_announced_during_an_empty_step_is_not_slept_through() -> None:
    """The wakeup is cleared before the step, so one set while the step runs ends the wait at once."""
    stop, wakeup = asyncio.Event(), asyncio.Event()
    seen: list[bool] = []

    async def wait(event: asyncio.Event, timeout: float) -> bool:
        seen.append(event.is_set())
        return event.is_set()

    step = _script([0, 0, 0], stop, during=lambda n: wakeup.set() if n == 1 else None)
    await poll("t", step, wakeup=wakeup, stop=stop, interval=0.2, max_interval=1.0, log=_Log(), wait=wait)
    assert seen == [False, True]
