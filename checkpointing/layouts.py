"""Which tables a database of ours holds, per backend, and telling someone else's apart.

Opening a database sets it up (LangGraph's tables, the Store's, ours) unless it is
current, so before any of that writes a byte, the tables that carry those names must
be ours or LangGraph's, in a layout one of their versions made. A SQLite file is ours
as a whole: any other table makes it foreign. A PostgreSQL database is often shared,
so there only the tables with our names are looked at. This module owns the layouts
and the verdict; each backend's opener reads its own catalog.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# Per table: (the columns it must have, those a later version adds). Columns added by a
# later version of LangGraph's tables (task_path, expires_at, ttl_minutes) or by one of
# our migrations (migrations.py) may be missing from a database not yet upgraded.
_OURS = {
    "durable_agent_migrations": ("name applied_at", ""),
    "conversations": (
        "thread_id user_id title title_folded status created_at updated_at message_count "
        "tool_calls input_tokens output_tokens metadata",
        "attempts attempt_checkpoint pause_requested pending_answer last_error indexed_tail",
    ),
    "conversation_text": ("thread_id seq folded", ""),
    "durable_agent_items": ("thread_id seq type blob", ""),
}
_STORE = {
    "store": ("prefix key value created_at updated_at", "expires_at ttl_minutes"),
    "store_migrations": ("v", ""),
    "store_vectors": ("prefix key field_name embedding created_at updated_at", ""),
    "vector_migrations": ("v", ""),
}
_COLUMNS = {
    "sqlite": {
        "checkpoints": (
            "thread_id checkpoint_ns checkpoint_id parent_checkpoint_id type checkpoint metadata",
            "",
        ),
        "writes": (
            "thread_id checkpoint_ns checkpoint_id task_id idx channel type value",
            "task_path",
        ),
        **_STORE,
        **_OURS,
    },
    "postgresql": {
        "checkpoint_migrations": ("v", ""),
        "checkpoints": (
            "thread_id checkpoint_ns checkpoint_id parent_checkpoint_id type checkpoint metadata",
            "",
        ),
        "checkpoint_blobs": ("thread_id checkpoint_ns channel version type blob", ""),
        "checkpoint_writes": (
            "thread_id checkpoint_ns checkpoint_id task_id idx channel type blob",
            "task_path",
        ),
        **_STORE,
        **_OURS,
    },
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
    "durable_agent_migrations": ("conversations", "conversation_text", "durable_agent_items"),
    "store_migrations": ("store",),
    "vector_migrations": ("store_vectors",),
}
LEDGERS = {
    "sqlite": _OUR_LEDGERS,
    "postgresql": {
        "checkpoint_migrations": ("checkpoints", "checkpoint_blobs", "checkpoint_writes"),
        **_OUR_LEDGERS,
    },
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
