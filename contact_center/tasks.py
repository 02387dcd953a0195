"""Stopping the hub's background loops at shutdown, bounded in time."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Iterable

log = logging.getLogger("contact_center.app")


async def stop_tasks(tasks: Iterable["asyncio.Task[Any] | None"], *, timeout: float = 5.0) -> None:
    """Cancel the tasks and wait for them, at most ``timeout`` seconds in all.

    A task that swallowed its cancellation (``asyncio.wait_for`` on Python 3.11 can lose one that arrives as
    the awaited thing completes) is cancelled again; one still running after that is logged and left behind,
    so a shutdown never waits forever.
    """
    pending = {t for t in tasks if t is not None and not t.done()}
    for _ in range(3):
        if not pending:
            return
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=timeout / 3)
    if pending:
        log.error("background tasks did not stop", extra={"tasks": sorted(t.get_name() for t in pending)})
