"""Which tables a database of ours holds, per backend, and telling someone else's apart.

The one description of where a thread's rows sit on each backend: LangGraph's
checkpoint tables differ between SQLite (``writes``, values in ``value``) and
PostgreSQL (``checkpoint_writes``, values in ``blob``, channel values apart in
``checkpoint_blobs``), ours do not; so does the SQL function that sizes a stored
value. ``BACKEND_TABLES`` says so once, and every statement our code runs on those
tables is built from it (``upstream_sql``, ``index_sql``, ``stats``).

Opening a database sets it up (LangGraph's tables, the Store's, ours) unless it is
current, so before any of that writes a byte, the tables that carry those names must
be ours or LangGraph's, in a layout one of their versions made. A SQLite file is ours
as a whole: any other table makes it foreign. A PostgreSQL database is often shared,
so there only the tables with our names are looked at. This module owns the layouts
and the verdict; each backend's opener reads its own catalog.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

CHECKPOINTS = "checkpoints"  # LangGraph's, the same on every backend
ITEMS = "durable_agent_items"
CONVERSATIONS = "conversations"
TEXT = "conversation_text"
STORE = "store"
RUNS = "durable_agent_runs"
RUN_EVENTS = "durable_agent_run_events"
TOKENS = "durable_agent_tokens"


@dataclass(frozen=True)
class BackendTables:
    """Where a thread's rows sit on one backend, and how that backend sizes a value."""

    writes: str  # LangGraph's pending writes
    value: str  # the writes' value column
    blobs: str | None  # LangGraph's channel values, kept apart from their checkpoints
    ledger: str | None  # where LangGraph records the migrations of its checkpoint tables
    size: str  # the SQL function giving a stored value's bytes
    json_type: str  # what the Store keeps its JSON values as
    time_type: str  # and its times

    @property
    def upstream(self) -> tuple[str, ...]:
        """LangGraph's checkpoint tables, in the order they are listed."""
        return (CHECKPOINTS, *([self.blobs] if self.blobs else []), self.writes)

    @property
    def children_first(self) -> tuple[str, ...]:
        """The same, in the order a thread's rows are deleted: what names a checkpoint first."""
        return self.upstream[::-1]

    @property
    def valued(self) -> tuple[str, ...]:
        """The tables holding a thread's stored values: LangGraph's and our items."""
        return (*self.upstream, ITEMS)

    @property
    def thread_tables(self) -> tuple[str, ...]:
        """Every table with rows of a thread (``thread_id``), ours included."""
        return (*self.valued, CONVERSATIONS, TEXT)

    def bytes_of(self, table: str) -> str:
        """SQL for the bytes one row of *table* (one of ``valued``) stores; NULL is none."""
        columns = {CHECKPOINTS: ("checkpoint", "metadata"), self.writes: (self.value,)}
        return " + ".join(f"coalesce({self.size}({c}), 0)" for c in columns.get(table, ("blob",)))


BACKEND_TABLES = {
    "sqlite": BackendTables(
        writes="writes",
        value="value",
        blobs=None,
        ledger=None,
        size="length",
        json_type="TEXT",
        time_type="TEXT",
    ),
    "postgresql": BackendTables(
        writes="checkpoint_writes",
        value="blob",
        blobs="checkpoint_blobs",
        ledger="checkpoint_migrations",
        size="pg_column_size",
        json_type="jsonb",
        time_type="timestamptz",
    ),
}

# Per table: (the columns it must have, those a later version adds). Columns added by a
# later version of LangGraph's tables (task_path, expires_at, ttl_minutes) or by one of
# our migrations (migrations.py) may be missing from a database not yet upgraded.
_OURS = {
    "durable_agent_migrations": ("name applied_at", ""),
    CONVERSATIONS: (
        "thread_id user_id title title_folded status created_at updated_at message_count "
        "tool_calls input_tokens output_tokens metadata",
        "attempts attempt_checkpoint pause_requested pending_answer last_error indexed_tail",
    ),
    TEXT: ("thread_id seq folded", ""),
    ITEMS: ("thread_id seq type blob", ""),
    RUNS: (
        "run_id thread_id user_id assistant_id graph_id status kwargs metadata "
        "multitask_strategy created_at updated_at run_after attempts cancel error",
        "started_from",
    ),
    RUN_EVENTS: ("run_id seq event data created_at", ""),
    TOKENS: ("token_hash token_id user_id name created_at last_used_at revoked_at", ""),
}
# Every column of each of our tables, in the order they were added.
OUR_COLUMNS = {table: tuple(f"{must} {may}".split()) for table, (must, may) in _OURS.items()}
_STORE = {
    STORE: ("prefix key value created_at updated_at", "expires_at ttl_minutes"),
    "store_migrations": ("v", ""),
    "store_vectors": ("prefix key field_name embedding created_at updated_at", ""),
    "vector_migrations": ("v", ""),
}


def _upstream_columns(tables: BackendTables) -> dict[str, tuple[str, str]]:
    columns = {tables.ledger: ("v", "")} if tables.ledger else {}
    columns[CHECKPOINTS] = (
        "thread_id checkpoint_ns checkpoint_id parent_checkpoint_id type checkpoint metadata",
        "",
    )
    if tables.blobs:
        columns[tables.blobs] = ("thread_id checkpoint_ns channel version type blob", "")
    columns[tables.writes] = (
        f"thread_id checkpoint_ns checkpoint_id task_id idx channel type {tables.value}",
        "task_path",
    )
    return columns


_COLUMNS = {
    backend: {**_upstream_columns(tables), **_STORE, **_OURS}
    for backend, tables in BACKEND_TABLES.items()
}
LAYOUTS = {
    backend: {
        table: (frozenset(must.split()), frozenset(may.split()))
        for table, (must, may) in tables.items()
    }
    for backend, tables in _COLUMNS.items()
}
# Tables that a ledger's migrations create, so the ledger must be there with them.
_OUR_LEDGERS = {
    "durable_agent_migrations": (CONVERSATIONS, TEXT, ITEMS, TOKENS),
    "store_migrations": (STORE,),
    "vector_migrations": ("store_vectors",),
}
LEDGERS = {
    backend: {**({tables.ledger: tables.upstream} if tables.ledger else {}), **_OUR_LEDGERS}
    for backend, tables in BACKEND_TABLES.items()
}
NAMES = sorted({table for tables in LAYOUTS.values() for table in tables})


def foreign_layout(
    backend: str,
    relations: Iterable[tuple[str, str]],
    columns: Mapping[str, set[str]],
    *,
    whole: bool,
) -> str:
    """What makes these tables someone else's, or "" if they are ours and LangGraph's.

    *relations* are ``(kind, name)`` with kind "table", "view" or "trigger"; *columns*
    each table's column names. *whole*: every table must be ours (a SQLite file), not
    only those with our names (a shared PostgreSQL database).
    """
    layout = LAYOUTS[backend]
    for kind, name in relations:
        if kind in ("view", "trigger") and (whole or name in layout):
            return f"has a {kind} {name!r}"
    for table, found in columns.items():
        if table not in layout:
            if whole:
                return f"has a table {table!r}"
            continue
        must, may = layout[table]
        if not must <= found <= must | may:
            odd = sorted((found - must - may) | (must - found))
            return f"has a table {table!r} whose columns ({', '.join(odd)}) differ"
    for ledger, tables in LEDGERS[backend].items():
        orphans = [table for table in tables if table in columns]
        if orphans and ledger not in columns:
            return f"has a table {orphans[0]!r} without the {ledger!r} that made it"
    return ""
