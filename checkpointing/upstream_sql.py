"""Our own SQL on LangGraph's tables (checkpoints, writes, blobs, the Store), per backend.

LangGraph's savers run their SQL; this is what our code runs beside them: sizing and
deleting a thread's checkpoints (``keep_latest``, ``upstream_prune``), reading and
copying them as stored (``transfer``, ``upstream_format``) and the Store's rows with
them. Each statement is built once per backend from ``layouts.BACKEND_TABLES``, so
the tables' names are written nowhere else; identifiers come only from there, and
every value is bound. Not our own tables' SQL (``index_sql``, ``items``), nor the
savers' own (``backends/``).
"""

from __future__ import annotations

from collections.abc import Callable

from checkpointing.layouts import BACKEND_TABLES, CHECKPOINTS, STORE, BackendTables

PerBackend = dict[str, str]  # dialect -> statement


def _each(build: Callable[[BackendTables], str]) -> PerBackend:
    return {dialect: build(tables) for dialect, tables in BACKEND_TABLES.items()}


def _with_blobs(build: Callable[[str, BackendTables], str]) -> PerBackend:
    """Only for the backends that keep channel values apart (PostgreSQL)."""
    return {d: build(t.blobs, t) for d, t in BACKEND_TABLES.items() if t.blobs is not None}


# Whether a table of that name (bound) is there.
HAS_TABLE = {
    "sqlite": "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
    "postgresql": "SELECT 1 WHERE to_regclass(CAST(? AS TEXT)) IS NOT NULL",
}
STORED_THREADS = f"SELECT DISTINCT thread_id FROM {CHECKPOINTS} ORDER BY thread_id"  # noqa: S608
CHECKPOINT_IDS = "SELECT checkpoint_ns, checkpoint_id FROM checkpoints WHERE thread_id = ?"
_KEY = "thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"
DELETE_CHECKPOINT = f"DELETE FROM checkpoints WHERE {_KEY}"  # noqa: S608
CLEAR_PARENT = f"UPDATE checkpoints SET parent_checkpoint_id = NULL WHERE {_KEY}"  # noqa: S608

# -- a thread's rows, whole or by namespace ---------------------------------------------
DELETE_THREAD = {
    dialect: [f"DELETE FROM {table} WHERE thread_id = ?" for table in t.children_first]  # noqa: S608
    for dialect, t in BACKEND_TABLES.items()
}
DELETE_NAMESPACE = {
    dialect: [
        f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_ns = ?"  # noqa: S608
        for table in t.children_first
    ]
    for dialect, t in BACKEND_TABLES.items()
}

# -- sizes, in stored bytes, and keep-latest's deletes ----------------------------------
CHECKPOINT_SIZES = _each(
    lambda t: (
        f"SELECT checkpoint_id, {t.bytes_of(CHECKPOINTS)} AS size "  # noqa: S608
        "FROM checkpoints WHERE thread_id = ?"
    )
)
WRITE_SIZES = _each(
    lambda t: (
        "SELECT checkpoint_id, count(*) AS n, "  # noqa: S608
        f"coalesce(sum({t.bytes_of(t.writes)}), 0) AS size FROM {t.writes} "
        "WHERE thread_id = ? GROUP BY checkpoint_id"
    )
)
DELETE_WRITES = _each(lambda t: f"DELETE FROM {t.writes} WHERE {_KEY}")  # noqa: S608
BLOB_SIZE = _with_blobs(
    lambda blobs, t: (
        f"SELECT coalesce(sum({t.bytes_of(blobs)}), 0) AS size "  # noqa: S608
        f"FROM {blobs} WHERE thread_id = ?"
    )
)
# Blobs that no checkpoint of the thread names any more but those in ALL(?), which are
# going (upstream's keep_latest does the same).
GARBAGE_BLOBS = _with_blobs(
    lambda blobs, t: (
        f"SELECT channel, version, {t.bytes_of(blobs)} AS size "  # noqa: S608
        f"FROM {blobs} b WHERE b.thread_id = ? AND b.checkpoint_ns = ? AND NOT EXISTS ("
        "SELECT 1 FROM checkpoints c "
        "WHERE c.thread_id = b.thread_id AND c.checkpoint_ns = b.checkpoint_ns "
        "AND c.checkpoint_id <> ALL(?) "
        "AND c.checkpoint -> 'channel_versions' ->> b.channel = b.version)"
    )
)
DELETE_BLOB = _with_blobs(
    lambda blobs, _: (
        f"DELETE FROM {blobs} WHERE thread_id = ? AND checkpoint_ns = ? "  # noqa: S608
        "AND channel = ? AND version = ?"
    )
)

# -- writes as stored, copied and compared ----------------------------------------------
_WRITE = "thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type"
THREAD_WRITES = _each(
    lambda t: (
        "SELECT checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, "  # noqa: S608
        f"{t.value} AS blob FROM {t.writes} WHERE thread_id = ?"
    )
)
COPY_WRITE = _each(
    lambda t: (
        f"INSERT INTO {t.writes} ({_WRITE}, {t.value}) "  # noqa: S608
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE SET "
        "task_path = excluded.task_path, channel = excluded.channel, type = excluded.type, "
        f"{t.value} = excluded.{t.value}"
    )
)
TASK_PATHS = _each(
    lambda t: (
        "SELECT DISTINCT checkpoint_ns, checkpoint_id, task_id, task_path "  # noqa: S608
        f"FROM {t.writes} WHERE thread_id = ?"
    )
)
WRITE_KEYS = _each(
    lambda t: (
        "SELECT checkpoint_ns, checkpoint_id, task_id, idx "  # noqa: S608
        f"FROM {t.writes} WHERE thread_id = ?"
    )
)

# -- the Store: its JSON read as text, and written back as each backend types it --------
STORE_ROWS = _each(
    lambda t: (
        "SELECT prefix, key, CAST(value AS TEXT) AS value, created_at, "  # noqa: S608
        f"updated_at, expires_at, ttl_minutes FROM {STORE} ORDER BY prefix, key"
    )
)
COPY_STORE_ROW = _each(
    lambda t: (
        f"INSERT INTO {STORE} (prefix, key, value, created_at, updated_at, "  # noqa: S608
        f"expires_at, ttl_minutes) VALUES (?, ?, CAST(? AS {t.json_type}), "
        f"CAST(? AS {t.time_type}), CAST(? AS {t.time_type}), CAST(? AS {t.time_type}), ?) "
        "ON CONFLICT (prefix, key) DO UPDATE SET value = excluded.value, "
        "created_at = excluded.created_at, updated_at = excluded.updated_at, "
        "expires_at = excluded.expires_at, ttl_minutes = excluded.ttl_minutes"
    )
)
