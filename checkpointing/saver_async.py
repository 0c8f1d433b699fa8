"""The async half of our savers: every ``a*`` method runs its sync twin in a thread.

So one saver serves ``invoke`` and ``ainvoke`` alike, sharing one connection or pool
and one item cache, and its sync methods work on any thread, the event loop's
included (upstream's ``AsyncSqliteSaver`` deadlocks there, langgraph #7857).
``SyncInThread`` goes before the upstream saver class in the MRO; ``AsyncSetup`` before
that gives the saver the shape of upstream's async savers: ``await saver.setup()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)


class SyncInThread(BaseCheckpointSaver[Any]):
    """The ``a*`` methods of a saver whose sync methods do the work."""

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        items = await asyncio.to_thread(
            lambda: list(self.list(config, filter=filter, before=before, limit=limit))
        )
        for item in items:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return await asyncio.to_thread(
            lambda: self.get_delta_channel_history(config=config, channels=channels)
        )

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await asyncio.to_thread(lambda: self.prune(thread_ids, strategy=strategy))


class AsyncSetup:
    """The shape of upstream's async savers (``AsyncSqliteSaver``, ``AsyncPostgresSaver``):
    ``await saver.setup()``. Put it before one of our savers; every other method is the
    saver's own, its ``a*`` twins included, and its sync methods work on any thread."""

    async def setup(self) -> None:
        await asyncio.to_thread(super().setup)  # type: ignore[misc]
