"""Thread ID prefixes: which of a user's conversations a prefix names, and the shortest
prefix that names each one.

A person types the start of a thread ID, in any case; ``resolve`` finds the one
conversation of that user whose ID starts so (an exact ID always wins), or says which
ones it could be. ``shortest_prefixes`` is what ``threads`` prints: per ID, the fewest
leading characters (never fewer than ``MIN_PREFIX``) that no other of the user's IDs
shares. Only ever within one user: another user's threads neither match nor make a
prefix longer, so a prefix reveals nothing about them. Reads only; works on any
``Executor`` (``sqlexec``), so callers without a saver can use it too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from checkpointing.errors import AmbiguousThread
from checkpointing.ids import thread_not_found, validate_id
from checkpointing.sqlexec import Executor

MIN_PREFIX = 8  # as git's short hashes: short to type, long enough to stay unique a while
SHOWN_CANDIDATES = 5  # an ambiguous prefix names this many, then says there are more

# The user's index range (conversations_user_updated) holds every row looked at.
MATCHES_SQL = """
SELECT thread_id, title FROM conversations
WHERE user_id = ? AND lower(thread_id) LIKE ? ESCAPE '!'
ORDER BY length(thread_id), thread_id
LIMIT ?"""
USER_THREADS_SQL = "SELECT thread_id FROM conversations WHERE user_id = ?"


def _starting_with(prefix: str) -> str:
    escaped = prefix.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"{escaped}%"


def resolve(db: Executor, prefix: str, user_id: str) -> str:
    """The full ID of *user_id*'s one conversation whose ID starts with *prefix* (any
    case). ``ThreadNotFound`` if none does; ``AmbiguousThread`` (a ``ThreadNotFound``)
    naming the candidates if several do and none is *prefix* itself."""
    prefix, user_id = validate_id(prefix), validate_id(user_id, "user ID")
    params = (user_id, _starting_with(prefix), SHOWN_CANDIDATES + 1)
    rows = db.run([(MATCHES_SQL, params)])[0]
    if not rows:
        raise thread_not_found(prefix, user_id)
    exact = [row for row in rows if len(row["thread_id"]) == len(prefix)]
    same_case = [row for row in exact if row["thread_id"] == prefix]
    chosen = same_case or (exact if len(exact) == 1 else rows if len(rows) == 1 else [])
    if chosen:
        return str(chosen[0]["thread_id"])
    raise _ambiguous(prefix, user_id, rows)


def _ambiguous(prefix: str, user_id: str, rows: list[dict[str, object]]) -> AmbiguousThread:
    shown = ", ".join(
        f"{row['thread_id']} ({row['title'] or 'untitled'})" for row in rows[:SHOWN_CANDIDATES]
    )
    more = ", and more" if len(rows) > SHOWN_CANDIDATES else ""
    return AmbiguousThread(
        f"{prefix!r} is the start of several of {user_id}'s conversations: {shown}{more}; "
        "give more of the ID"
    )


def shortest_prefixes(db: Executor, user_id: str, thread_ids: Iterable[str]) -> dict[str, str]:
    """For each of *thread_ids*: its shortest prefix (at least ``MIN_PREFIX`` long, or the
    whole ID) that no other of *user_id*'s conversations starts with, in any case."""
    rows = db.read(USER_THREADS_SQL, (validate_id(user_id, "user ID"),))
    return unique_prefixes([row[0] for row in rows], thread_ids)


def unique_prefixes(every_id: Iterable[str], wanted: Iterable[str]) -> dict[str, str]:
    """``shortest_prefixes`` over IDs already read: in sorted (case-folded) order, only an
    ID's two neighbours can share the longest start with it."""
    folded = Counter(thread_id.lower() for thread_id in every_id)
    ordered = sorted(folded)
    position = {thread_id: i for i, thread_id in enumerate(ordered)}
    found = {}
    for thread_id in wanted:
        i = position.get(thread_id.lower())
        shared = 0
        if folded[thread_id.lower()] > 1:  # IDs differing only in case: only the whole one
            shared = len(thread_id)
        elif i is not None:
            neighbours = ordered[max(i - 1, 0) : i] + ordered[i + 1 : i + 2]
            shared = max((_common(ordered[i], other) for other in neighbours), default=0)
        found[thread_id] = thread_id[: max(shared + 1, MIN_PREFIX)]
    return found


def _common(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n
