"""Our SQLite saver: upstream's ``SqliteSaver`` with compact lists, async in a thread.

Owns how a checkpoint and its writes are laid out in upstream's SQLite tables
(``put_raw``, the write statements ``writes.py`` runs) and the cursor they run on.
Its ``a*`` methods run the sync ones in a worker thread (``saver_async.py``): we chose
that over upstream's ``AsyncSqliteSaver``, which deadlocks when its sync methods are
called on the loop thread (langgraph #7857) and holds its lock while an ``alist`` is
paused (#8558). Opening the file is ``sqlite.py``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.sqlite import SqliteSaver as _UpstreamSqliteSaver

from checkpointing.compact_lists import CompactLists, saved_config
from checkpointing.item_log import ItemLog
from checkpointing.items import INSERT_ITEM_SQL, Rows
from checkpointing.saver_async import AsyncSetup
from checkpointing.serde import DurableSerializer
from checkpointing.sqlexec import SqliteExecutor

INSERT_CHECKPOINT_SQL = (
    "INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, "
    "parent_checkpoint_id, type, checkpoint, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)"
)

_WRITE_ROW = (
    "writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, "
    "value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class SqliteSaver(CompactLists, _UpstreamSqliteSaver):
    """Upstream ``SqliteSaver`` with compact lists and ``a*`` methods run in a thread.

    The sync methods already serialize on ``self.lock``; a worker thread keeps the
    event loop free while they wait.
    """

    def __init__(self, conn: sqlite3.Connection, *, serde: DurableSerializer) -> None:
        super().__init__(conn, serde=serde)
        self.durable_serde = serde
        self.items = ItemLog(SqliteExecutor(conn, self.lock), serde)

    INSERT_WRITE_SQL = "INSERT OR IGNORE INTO " + _WRITE_ROW
    REPLACE_WRITE_SQL = "INSERT OR REPLACE INTO " + _WRITE_ROW
    # A task's first ordinary writes, unless it has some at this checkpoint already (writes.py).
    FIRST_WRITE_SQL = """
        INSERT INTO writes
            (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, value)
        SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?
        WHERE NOT EXISTS (SELECT 1 FROM writes WHERE thread_id = ? AND checkpoint_ns = ?
                          AND checkpoint_id = ? AND task_id = ? AND idx >= 0)"""
    TASK_WRITES_SQL = """
        SELECT idx, channel, type, value FROM writes WHERE thread_id = ? AND checkpoint_ns = ?
        AND checkpoint_id = ? AND task_id = ? AND idx >= 0"""

    def writes_cursor(self, thread_id: str) -> AbstractContextManager[sqlite3.Cursor]:
        return self.cursor()  # upstream's: under the saver's lock, committed on exit

    @contextmanager
    def cursor(self, transaction: bool = True) -> Iterator[sqlite3.Cursor]:
        """Upstream's, but it sets up with the sync ``setup`` even where ``setup`` is async."""
        with self.lock:
            _UpstreamSqliteSaver.setup(self)
            cur = self.conn.cursor()
            try:
                yield cur
            finally:
                if transaction:
                    self.conn.commit()
                cur.close()

    def put_raw(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
        items: Rows = (),  # type: ignore[assignment]
    ) -> RunnableConfig:
        """Upstream's ``put``, its row compressed (versions repeat in every checkpoint),
        with the new items in the same transaction."""
        configurable = config["configurable"]
        type_, data = self.durable_serde.dumps_zipped(checkpoint)
        meta = json.dumps(get_checkpoint_metadata(config, metadata), ensure_ascii=False)
        row = (
            str(configurable["thread_id"]),
            configurable["checkpoint_ns"],
            checkpoint["id"],
            configurable.get("checkpoint_id"),
            type_,
            data,
            meta.encode("utf-8", "ignore"),
        )
        with self.cursor() as cur:
            if items:
                cur.executemany(INSERT_ITEM_SQL, items)
            cur.execute(INSERT_CHECKPOINT_SQL, row)
        return saved_config(config, checkpoint)


class AsyncSqliteSaver(AsyncSetup, SqliteSaver):  # type: ignore[misc]
    """``SqliteSaver`` shaped like upstream's ``AsyncSqliteSaver``: ``await setup()``."""
