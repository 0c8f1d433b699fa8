"""The checkpoint serializer: revives allow-listed types only, never pickles.

LangGraph's default ``JsonPlusSerializer`` imports and calls whatever module and
class a stored checkpoint names (CVE-2026-28277 is mitigated only when you opt
in). Here the allowlist is always explicit: LangGraph's built-in safe types
(LangChain messages, datetimes, ``Send``, ``Interrupt``...) plus the types the
caller names. Anything else in a stored checkpoint comes back as plain data and
is never imported. This module owns that choice and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

TypeKey = tuple[str, str]


def type_key(cls: type) -> TypeKey:
    return (cls.__module__, cls.__qualname__)


def strict_serializer(allowed_types: Iterable[type | TypeKey] = ()) -> JsonPlusSerializer:
    """A serializer that revives only LangGraph's safe types plus *allowed_types*.

    ``allowed_msgpack_modules=None`` means "safe types only" regardless of the
    ``LANGGRAPH_STRICT_MSGPACK`` environment variable; ``pickle_fallback`` and
    legacy JSON constructors stay off.
    """
    keys = [t if isinstance(t, tuple) else type_key(t) for t in allowed_types]
    serde = JsonPlusSerializer(
        pickle_fallback=False, allowed_json_modules=None, allowed_msgpack_modules=None
    )
    return serde.with_msgpack_allowlist(keys) if keys else serde
