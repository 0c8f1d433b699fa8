"""What our SQLite and PostgreSQL savers add to LangGraph's: compact lists, one async path.

``CompactLists`` sits in front of an upstream saver class in the MRO. Writing, it
swaps long lists for ``ItemRefs`` (see ``items.py``); reading, it swaps them back;
deleting a thread deletes its items. Everything else (tables, queries, versions,
pending writes, filters) is the upstream saver's. The ``a*`` methods run the sync
ones in a worker thread, so one saver serves ``invoke`` and ``ainvoke`` alike and
shares one pool and one item cache.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)

from checkpointing.items import ItemLog, Rows

DELETE_ITEMS_SQL = "DELETE FROM durable_agent_items WHERE thread_id = ?"
# A task's ordinary writes share one row: a row costs more than most of their values.
BATCH_CHANNEL = "__durable_agent_writes__"


def batch_writes(writes: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """*writes* with the ordinary ones (not errors, interrupts, resumes) in one write.

    Upstream keys those special writes by channel, and replaces them in place, so
    they keep rows of their own.
    """
    ordinary = [[channel, value] for channel, value in writes if channel not in WRITES_IDX_MAP]
    if len(ordinary) < 2:
        return list(writes)
    special = [(channel, value) for channel, value in writes if channel in WRITES_IDX_MAP]
    return [(BATCH_CHANNEL, ordinary), *special]


def expand_batches(writes: Sequence[Any]) -> list[Any]:
    """Pending writes ``(task_id, channel, value)`` with each batch back as its writes."""
    out: list[Any] = []
    for task_id, channel, value, *rest in writes:
        if channel == BATCH_CHANNEL:
            out += [(task_id, c, v, *rest) for c, v in value]
        else:
            out.append((task_id, channel, value, *rest))
    return out


def saved_config(config: RunnableConfig, checkpoint: Checkpoint) -> RunnableConfig:
    """What ``put`` returns: the config naming the checkpoint just stored."""
    configurable = config["configurable"]
    return {
        "configurable": {
            "thread_id": configurable["thread_id"],
            "checkpoint_ns": configurable["checkpoint_ns"],
            "checkpoint_id": checkpoint["id"],
        }
    }


class CompactLists:
    """Mixin for an upstream ``BaseCheckpointSaver`` subclass; set ``self.items``."""

    items: ItemLog

    def get_next_version(self, current: str | int | None, channel: None) -> str:
        """Upstream's versions with less padding: a checkpoint names about ten of them.

        Fixed width keeps string order equal to number order, and a shorter string that
        counts higher still sorts after upstream's 32-digit ones, so threads written
        before keep working. The random part keeps forks' versions apart (PostgreSQL
        stores a channel's value once per version).
        """
        number = current if isinstance(current, int) else int(str(current or 0).split(".")[0])
        # Not a secret, as in upstream's; secrets' system call per version cost more.
        return f"{number + 1:012}.{random.getrandbits(32):08x}"

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        thread_id = str(config["configurable"]["thread_id"])
        values, rows = self.items.encode(thread_id, checkpoint["channel_values"])
        compact: Checkpoint = {**checkpoint, "channel_values": values}
        try:
            return self.put_raw(config, compact, metadata, new_versions, rows)
        except BaseException:
            self.items.forget(thread_id)  # its seqs may be taken by now: start afresh
            raise

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        thread_id = str(config["configurable"]["thread_id"])
        compact = self.items.reference_writes(thread_id, writes)
        self.put_writes_raw(config, batch_writes(compact), task_id, task_path)

    def put_writes_raw(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> None:
        """Store *writes* as given: upstream's ``put_writes``, unless a backend does better."""
        super().put_writes(config, writes, task_id, task_path)  # type: ignore[misc]

    def put_raw(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
        items: Rows = (),  # type: ignore[assignment]
    ) -> RunnableConfig:
        """Store *checkpoint* as given, ``ItemRefs`` and all (migration copies rows so),
        after the new *items* it names. Each backend overrides this to do both at once."""
        raise NotImplementedError

    def unmark(self, tup: CheckpointTuple) -> CheckpointTuple:
        """*tup* with the backend's stored form of ``ItemRefs`` made ``ItemRefs`` again."""
        return tup

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        tup = super().get_tuple(config)  # type: ignore[misc]
        return self._read(tup) if tup is not None else None

    def _read(self, tup: CheckpointTuple) -> CheckpointTuple:
        """A stored tuple as LangGraph expects it: its format undone, batches expanded,
        items read."""
        tup = self.unmark(tup)
        if tup.pending_writes and any(w[1] == BATCH_CHANNEL for w in tup.pending_writes):
            tup = tup._replace(pending_writes=expand_batches(tup.pending_writes))
        return self.items.decode_tuple(tup)

    def list_raw(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> list[CheckpointTuple]:
        """Upstream's ``list``, materialized, with ``ItemRefs`` left as stored."""
        # Materialized: upstream SQLite holds the saver's lock while its generator is open.
        found = super().list(config, filter=filter, before=before, limit=limit)  # type: ignore[misc]
        return [self.unmark(tup) for tup in found]

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        for tup in self.list_raw(config, filter=filter, before=before, limit=limit):
            yield self._read(tup)

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        # Upstream's SQL reads seeds and writes where our rows keep neither as it
        # expects; the generic walk reads whole tuples through get_tuple instead.
        return BaseCheckpointSaver.get_delta_channel_history(
            self,  # type: ignore[arg-type]
            config=config,
            channels=channels,
        )

    def delete_thread(self, thread_id: str) -> None:
        super().delete_thread(thread_id)  # type: ignore[misc]
        self.items.db.run([(DELETE_ITEMS_SQL, (str(thread_id),))])
        self.items.forget(str(thread_id))

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

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Upstream's ``prune`` on our rows: ``"keep_latest"`` through retention, with
        upstream's ``DeltaChannel`` guard; ``"delete"`` takes the threads' items too."""
        from checkpointing.upstream_prune import prune_threads  # it imports this module

        prune_threads(self, thread_ids, strategy)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await asyncio.to_thread(lambda: self.prune(thread_ids, strategy=strategy))
