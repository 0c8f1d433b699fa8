"""Keeping the event loop free: a sync context manager entered and left in a thread.

Everything that waits on a database here is sync: the savers and executors serialize on
their own locks or pools. The async API runs that sync code in a worker thread
(``asyncio.to_thread`` for a call, ``in_thread`` for a ``with`` block) rather than
writing it twice; only what drives a graph (``astream``, ``aget_state``) is truly async.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager
from typing import TypeVar

T = TypeVar("T")


@asynccontextmanager
async def in_thread(context: AbstractContextManager[T]) -> AsyncIterator[T]:
    """Enter and exit the sync *context* in a worker thread, keeping the loop free."""
    value = await asyncio.to_thread(context.__enter__)
    try:
        yield value
    except BaseException:
        if not await asyncio.to_thread(context.__exit__, *sys.exc_info()):
            raise
    else:
        await asyncio.to_thread(context.__exit__, None, None, None)
