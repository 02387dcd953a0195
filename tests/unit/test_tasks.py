"""Stopping background loops at shutdown never waits forever."""

from __future__ import annotations

import asyncio
import time

from contact_center.tasks import stop_tasks


async def test_a_loop_that_swallows_one_cancellation_is_cancelled_again() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1  # what wait_for on Python 3.11 can do with a cancellation

    task = asyncio.get_running_loop().create_task(stubborn())
    await asyncio.sleep(0)
    await stop_tasks([task, None], timeout=3.0)
    assert task.done() and swallowed == 1


async def test_a_task_that_never_stops_is_left_behind_in_bounded_time() -> None:
    stubborn = True

    async def immortal() -> None:
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if not stubborn:
                    raise

    task = asyncio.get_running_loop().create_task(immortal())
    await asyncio.sleep(0)
    started = time.monotonic()
    await stop_tasks([task], timeout=0.3)
    assert time.monotonic() - started < 2.0 and not task.done()
    stubborn = False  # the test's own clean-up (a task that never ends would hang the event loop's close)
    task.cancel()
    await asyncio.wait([task], timeout=2)
    assert task.done()
