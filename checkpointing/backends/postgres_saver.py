"""Our PostgreSQL saver: upstream's ``PostgresSaver`` in a smaller row format.

Owns how a checkpoint is laid out in upstream's tables (``put_raw`` / ``unmark``)
and the per-call connections: a pooled one, or for a thread this process holds the
lease of, the lease's own write session (fencing: see ``leases.py``). Opening the
pool and the schema is ``postgres.py``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.postgres import PostgresSaver
from psycopg import Cursor
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from checkpointing.compact_lists import CompactLists, saved_config
from checkpointing.item_log import ItemLog
from checkpointing.items import ItemRefs, Rows
from checkpointing.saver_async import AsyncSetup
from checkpointing.serde import ZIPPED_TYPE, DurableSerializer
from checkpointing.sqlexec import PostgresExecutor

ZIPPED_KEY = "da-zipped"
# A step's new items and its checkpoint in one statement: one commit, one WAL flush.
PUT_WITH_ITEMS_SQL = """
WITH new_items AS (
    INSERT INTO durable_agent_items (thread_id, seq, type, blob)
    SELECT %s, seq, type, blob
    FROM unnest(%s::bigint[], %s::text[], %s::bytea[]) AS new(seq, type, blob)
)
INSERT INTO checkpoints
    (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id)
DO UPDATE SET checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata"""
PACKABLE_DICT_ITEMS = 16
# A task's first ordinary writes, unless it has some at this checkpoint already (writes.py).
FIRST_WRITE_SQL = """
INSERT INTO checkpoint_writes
    (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob)
SELECT %s, %s, %s, %s, %s, %s::integer, %s, %s, %s::bytea
WHERE NOT EXISTS (SELECT 1 FROM checkpoint_writes WHERE thread_id = %s AND checkpoint_ns = %s
                  AND checkpoint_id = %s AND task_id = %s AND idx >= 0)
ON CONFLICT DO NOTHING"""
TASK_WRITES_SQL = """
SELECT idx, channel, type, blob FROM checkpoint_writes WHERE thread_id = %s AND checkpoint_ns = %s
AND checkpoint_id = %s AND task_id = %s AND idx >= 0"""


def _packable(value: Any) -> bool:
    """Whether *value* goes in the compressed row: small, and changed with every step."""
    if value is None or isinstance(value, str | int | float | bool | ItemRefs):
        return not isinstance(value, str) or len(value) <= 256
    return (
        type(value) is dict
        and len(value) <= PACKABLE_DICT_ITEMS
        and all(type(k) is str and _packable(v) and type(v) is not dict for k, v in value.items())
    )


class CompactPostgresSaver(CompactLists, PostgresSaver):
    """Upstream ``PostgresSaver`` on a pool, with compact lists; ``a*`` run in a thread.

    A checkpoint row keeps its ID, time and format version as JSON and the rest as
    one compressed string (``ZIPPED_KEY``): it repeats ten-odd versions at every
    step, and upstream's JSON of it outweighs the step's new messages. Scalars, item
    references and small dicts of them (a graph's input) go in that string too;
    other values keep upstream's versioned blob rows, stored once per version, and
    the JSON names only their versions, which is all upstream's blob join reads.
    Rows written by upstream read as before.
    """

    # Set when opening found the store's tables up to date, so the store need not look again.
    store_current = False

    def __init__(self, pool: ConnectionPool, *, serde: DurableSerializer) -> None:
        super().__init__(pool, serde=serde)  # type: ignore[arg-type]
        self.pool = pool
        self.durable_serde = serde
        # Leases this process holds, by thread ID (``PostgresLeases`` keeps it): the
        # writes of such a thread go through its lease's session, and fail with it.
        self.held_leases: dict[str, Any] = {}
        self.items = ItemLog(PostgresExecutor(pool, self.held_leases), serde)

    def put_raw(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
        items: Rows = (),  # type: ignore[assignment]
    ) -> RunnableConfig:
        """Upstream's ``put`` (checkpoint-postgres 3.2.0) in our row format, the new
        items in the same statement: one round trip, one commit."""
        conf = config["configurable"]
        thread_id, ns = conf["thread_id"], conf["checkpoint_ns"]
        values = checkpoint["channel_values"]
        blobs = {k: v for k, v in values.items() if not _packable(v)}
        packed = {
            **checkpoint,
            "channel_values": {k: v for k, v in values.items() if k not in blobs},
        }
        _, zipped = self.durable_serde.dumps_zipped(packed)
        versions = checkpoint["channel_versions"]
        row = {
            "v": checkpoint["v"],
            "id": checkpoint["id"],
            "ts": checkpoint["ts"],
            "channel_versions": {k: versions[k] for k in blobs if k in versions},
            ZIPPED_KEY: base64.b85encode(zipped).decode(),
        }
        new_blobs = {k: v for k, v in new_versions.items() if k in blobs}
        meta = get_serializable_checkpoint_metadata(config, metadata)
        key = (thread_id, ns, checkpoint["id"], conf.get("checkpoint_id"))
        # A pipeline only when there are blob rows too: it costs a wait of its own, and
        # each wait is a turn for the GIL, which a busy graph thread holds for 5 ms.
        with self._cursor(pipeline=bool(new_blobs), thread_id=str(thread_id)) as cur:
            if new_blobs:
                blob_rows = self._dump_blobs(thread_id, ns, blobs, new_blobs)
                cur.executemany(self.UPSERT_CHECKPOINT_BLOBS_SQL, blob_rows)
            columns = [[item[i] for item in items] for i in (1, 2, 3)]  # seq, type, blob
            cur.execute(PUT_WITH_ITEMS_SQL, (thread_id, *columns, *key, Jsonb(row), Jsonb(meta)))
        return saved_config(config, checkpoint)

    INSERT_WRITE_SQL = PostgresSaver.INSERT_CHECKPOINT_WRITES_SQL
    REPLACE_WRITE_SQL = PostgresSaver.UPSERT_CHECKPOINT_WRITES_SQL
    FIRST_WRITE_SQL = FIRST_WRITE_SQL
    TASK_WRITES_SQL = TASK_WRITES_SQL

    def writes_cursor(self, thread_id: str) -> AbstractContextManager[Cursor[DictRow]]:
        # No transaction: the usual call is one statement, and upstream's are autocommitted too.
        return self._cursor(thread_id=thread_id)

    def unmark(self, tup: CheckpointTuple) -> CheckpointTuple:
        stored: dict[str, Any] = dict(tup.checkpoint)
        zipped = stored.pop(ZIPPED_KEY, None)
        if zipped is None:
            return tup  # an upstream row
        packed = self.durable_serde.loads_typed((ZIPPED_TYPE, base64.b85decode(zipped)))
        blob_values = stored.get("channel_values") or {}
        checkpoint = {**packed, "channel_values": {**packed["channel_values"], **blob_values}}
        return tup._replace(checkpoint=checkpoint)  # type: ignore[arg-type]

    @contextmanager
    def _cursor(
        self, *, pipeline: bool = False, thread_id: str | None = None
    ) -> Iterator[Cursor[DictRow]]:
        # Upstream serializes every call on one lock, which a single shared connection
        # needs; each call here has a pooled connection of its own, so a step's
        # checkpoint and its tasks' writes go to the server side by side. A write to
        # *thread_id* while this process holds its lease goes through the lease's session,
        # one call at a time: once that session is gone, so is the right to write.
        lease = self.held_leases.get(thread_id) if thread_id is not None else None
        with lease.session() if lease is not None else self.pool.connection() as conn:
            if pipeline:
                with conn.pipeline(), conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur
            else:
                with conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur


class AsyncCompactPostgresSaver(AsyncSetup, CompactPostgresSaver):  # type: ignore[misc]
    """``CompactPostgresSaver`` shaped like upstream's ``AsyncPostgresSaver``: ``await setup()``."""
