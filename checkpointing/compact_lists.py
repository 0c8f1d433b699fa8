"""What our SQLite and PostgreSQL savers add to LangGraph's: compact lists, one async path.

``CompactLists`` sits in front of an upstream saver class in the MRO. Writing, it
swaps long lists for ``ItemRefs`` (see ``items.py``) and stores a task's writes in
fewer rows with upstream's index semantics (``writes.py``); reading, it swaps them
back, and names the thread of a row that cannot be read; deleting a thread deletes
its items; ``prune`` and the delta-channel walk work on these rows. Everything else
(tables, queries, versions, filters) is the upstream saver's. Its ``a*`` methods run
the sync ones in a worker thread (``saver_async.py``).
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)

from checkpointing.errors import CheckpointingError, InvalidDatabase, damaged
from checkpointing.item_log import ItemLog
from checkpointing.items import Rows
from checkpointing.saver_async import SyncInThread
from checkpointing.writes import BATCH_CHANNEL, Write, expand_batches, missing_writes, plan_writes


@contextmanager
def readable(config: RunnableConfig | None) -> Iterator[None]:
    """Turn what a decoder raises on a damaged or crafted row into one ``InvalidDatabase``
    naming the thread, so a reader says which thread to restore or delete."""
    thread_id = str(((config or {}).get("configurable") or {}).get("thread_id", "?"))
    try:
        yield
    except CheckpointingError as exc:
        if not isinstance(exc, InvalidDatabase) or repr(thread_id) in str(exc):
            raise
        raise InvalidDatabase(f"thread {thread_id!r}: {exc}") from exc
    except (ValueError, TypeError, LookupError, AttributeError, zlib.error) as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise damaged(
            f"thread {thread_id!r} has a stored row that cannot be read "
            f"({type(exc).__name__}: {first})"
        ) from exc


def _values(row: Any) -> Any:
    return row.values() if isinstance(row, dict) else row


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


def _seq_taken(exc: BaseException) -> bool:
    """Whether *exc* is a unique violation on the item table (sqlite3's or psycopg's
    IntegrityError, told apart by the table's name in its message)."""
    integrity = any(c.__name__ == "IntegrityError" for c in type(exc).__mro__)
    return integrity and "durable_agent_items" in str(exc)


class CompactLists(SyncInThread):
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

    def with_allowlist(self, extra_allowlist: Any) -> Any:
        """Upstream's clone with a wider allow-list (``compile()`` in strict mode), whose
        items and compressed rows are revived with it too."""
        clone: Any = super().with_allowlist(extra_allowlist)
        if clone is not self:
            clone.durable_serde = clone.serde
            clone.items = self.items.with_serde(clone.serde)
        return clone

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        thread_id = str(config["configurable"]["thread_id"])
        for attempt in (1, 2):
            values, rows = self.items.encode(thread_id, checkpoint["channel_values"])
            compact: Checkpoint = {**checkpoint, "channel_values": values}
            try:
                return self.put_raw(config, compact, metadata, new_versions, rows)
            except BaseException as exc:
                self.items.forget(thread_id)  # its seqs may be taken by now: start afresh
                # Another process stored items on this thread since this one last read it
                # (a fork written from an older checkpoint): choose the seqs again, once.
                if attempt == 2 or not _seq_taken(exc):
                    raise
        raise AssertionError("unreachable")

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        thread_id = str(config["configurable"]["thread_id"])
        compact = self.items.reference_writes(thread_id, writes)
        self.put_writes_raw(config, compact, task_id, task_path)

    # Each backend names its writes table's statements, and a cursor that commits what it
    # writes to a thread (through the thread's lease, where the backend fences writes).
    INSERT_WRITE_SQL: str
    REPLACE_WRITE_SQL: str
    FIRST_WRITE_SQL: str  # INSERT_WRITE_SQL's row, then the task's key: only if it has none
    TASK_WRITES_SQL: str  # (idx, channel, type, blob) of a task's ordinary writes

    def writes_cursor(self, thread_id: str) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def put_writes_raw(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> None:
        """Store *writes* (values as given) by upstream's index rules, in ``plan_writes``'s
        rows: usually one statement."""
        conf = config["configurable"]
        key = (str(conf["thread_id"]), str(conf["checkpoint_ns"]), str(conf["checkpoint_id"]))
        task = (*key, task_id, task_path)
        serde: Any = self.serde

        def rows(planned: Sequence[Write]) -> list[tuple[Any, ...]]:
            return [(*task, i, c, *serde.dumps_typed(v)) for i, c, v in planned]

        plan = plan_writes(writes)
        with self.writes_cursor(key[0]) as cur:
            if plan.special:
                query = self.REPLACE_WRITE_SQL if plan.replace else self.INSERT_WRITE_SQL
                cur.executemany(query, rows(plan.special))
            if not plan.ordinary:
                return
            first, *rest = rows(plan.ordinary)
            cur.execute(self.FIRST_WRITE_SQL, (*first, *key, task_id))
            if cur.rowcount != 1:  # written before at this checkpoint: add what is new
                found = cur.execute(self.TASK_WRITES_SQL, (*key, task_id)).fetchall()
                stored = [tuple(_values(row)) for row in found]
                rest = rows(missing_writes(stored, writes, serde))
            if rest:
                cur.executemany(self.INSERT_WRITE_SQL, rest)

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
        with readable(config):
            tup = super().get_tuple(config)
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
        with readable(config):
            found = super().list(config, filter=filter, before=before, limit=limit)
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
            with readable(tup.config):
                found = self._read(tup)
            yield found

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """Upstream's generic walk over ``get_tuple`` (its SQL reads seeds and writes where
        our rows keep neither as it expects), ended where the parent chain comes back to a
        checkpoint it walked, as upstream's SQLite walk ends."""
        writes: dict[str, list[Any]] = {channel: [] for channel in channels}
        seeds: dict[str, Any] = {}
        target = self.get_tuple(config) if channels else None
        walked = {target.config["configurable"]["checkpoint_id"]} if target else set()
        cursor = target.parent_config if target else None
        while cursor is not None and len(seeds) < len(writes):
            if (tup := self.get_tuple(cursor)) is None:
                break
            if (checkpoint_id := tup.config["configurable"]["checkpoint_id"]) in walked:
                break
            walked.add(checkpoint_id)
            for write in reversed(tup.pending_writes or []):
                if write[1] in writes and write[1] not in seeds:
                    writes[write[1]].append(write)
            values = tup.checkpoint["channel_values"]
            seeds.update({ch: values[ch] for ch in writes if ch not in seeds and ch in values})
            cursor = tup.parent_config
        return {
            ch: {"writes": found[::-1], **({"seed": seeds[ch]} if ch in seeds else {})}  # type: ignore[typeddict-item]
            for ch, found in writes.items()
        }

    def delete_thread(self, thread_id: str) -> None:
        """Every row of the thread, its items and index row included, in one transaction."""
        self.prune([thread_id], strategy="delete")

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Upstream's ``prune`` on our rows: ``"keep_latest"`` through retention, with
        upstream's ``DeltaChannel`` guard; ``"delete"`` takes the threads' items too."""
        from checkpointing.upstream_prune import prune_threads  # it imports this module

        prune_threads(self, thread_ids, strategy)
