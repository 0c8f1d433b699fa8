"""How much a database holds: conversations, checkpoints and bytes per table; tokens per user.

Reads only; every figure comes from the database itself. For SQLite the bytes are
the pages each table and index occupies (``dbstat``), for PostgreSQL the relation's
total size with its indexes and TOAST; for one user, the stored bytes of that
user's rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from checkpointing import index_sql
from checkpointing.backend import Backend
from checkpointing.errors import ConfigError
from checkpointing.ids import validate_id
from checkpointing.layouts import BACKEND_TABLES, STORE

TABLES = {dialect: (*t.thread_tables, STORE) for dialect, t in BACKEND_TABLES.items()}
# Table names and size expressions below are layouts' constants, never input.
COUNT_SQL = {n: f"SELECT count(*) AS n FROM {n}" for ns in TABLES.values() for n in ns}  # noqa: S608
PG_SIZE_SQL = "SELECT coalesce(pg_total_relation_size(to_regclass(CAST(? AS TEXT))), 0) AS size"
SQLITE_SIZE_SQL = (
    "SELECT coalesce(sum(s.pgsize), 0) AS size FROM dbstat s "
    "JOIN sqlite_master m ON m.name = s.name WHERE m.tbl_name = ? OR s.name = ?"
)
# (table, stored bytes of one row) per backend, for one user's rows.
USER_TABLES = {
    dialect: [(table, t.bytes_of(table)) for table in t.valued]
    for dialect, t in BACKEND_TABLES.items()
}
USER_SQL = {
    dialect: [("conversations", index_sql.USER_CONVERSATIONS)]
    + [
        (
            table,
            f"SELECT count(*) AS n, coalesce(sum({size}), 0) AS size FROM {table} "  # noqa: S608
            f"WHERE thread_id IN ({index_sql.USER_THREADS})",
        )
        for table, size in tables
    ]
    for dialect, tables in USER_TABLES.items()
}


# Token totals per user, from the conversation index (each run records its messages' usage).
TOKENS_SQL = """
SELECT user_id, count(*) AS conversations, coalesce(sum(input_tokens), 0) AS input_tokens,
       coalesce(sum(output_tokens), 0) AS output_tokens
FROM conversations GROUP BY user_id ORDER BY user_id"""
USER_TOKENS_SQL = """
SELECT user_id, count(*) AS conversations, coalesce(sum(input_tokens), 0) AS input_tokens,
       coalesce(sum(output_tokens), 0) AS output_tokens
FROM conversations WHERE user_id = ? GROUP BY user_id"""


@dataclass(frozen=True)
class UserTokens:
    user_id: str
    conversations: int
    input_tokens: int
    output_tokens: int


def token_totals(backend: Backend, user_id: str | None = None) -> list[UserTokens]:
    """Conversations and model tokens in and out per user (or for *user_id* only)."""
    if user_id is None:
        statement: tuple[str, tuple[str, ...]] = (TOKENS_SQL, ())
    else:
        statement = (USER_TOKENS_SQL, (validate_id(user_id, "user ID"),))
    rows = backend.db.run([statement])[0]
    return [
        UserTokens(str(r["user_id"]), int(r["conversations"]), int(r["input_tokens"]),
                   int(r["output_tokens"]))
        for r in rows
    ]  # fmt: skip


@dataclass(frozen=True)
class TableStats:
    table: str
    rows: int
    bytes: int


def stats(backend: Backend, user_id: str | None = None) -> list[TableStats]:
    """Rows and bytes per table; with *user_id*, only that user's rows."""
    dialect = backend.dialect
    if dialect not in TABLES:
        raise ConfigError(f"stats needs a sqlite:/// or postgresql:// URL, not {dialect}")
    if user_id is not None:
        validate_id(user_id, "user ID")
        queries = USER_SQL[dialect]
        results = backend.db.run([(sql, (user_id,)) for _, sql in queries])
        return [
            TableStats(t, int(r[0]["n"]), int(r[0]["size"]))
            for (t, _), r in zip(queries, results, strict=True)
        ]
    names = TABLES[dialect]
    sizes_of = [
        (SQLITE_SIZE_SQL, (n, n)) if dialect == "sqlite" else (PG_SIZE_SQL, (n,)) for n in names
    ]
    statements = [(COUNT_SQL[n], ()) for n in names] + sizes_of
    results = backend.db.run(statements)
    counts, sizes = results[: len(names)], results[len(names) :]
    return [
        TableStats(n, int(c[0]["n"]), int(s[0]["size"]))
        for n, c, s in zip(names, counts, sizes, strict=True)
    ]
