"""Thread and user IDs: generating, validating, and checking who owns a thread.

Thread IDs are ours: UUIDs of version 7 (time-sortable, 74 random bits), the form the
LangGraph Agent Server API's clients require, so a conversation started anywhere is
reachable over HTTP too. Threads made before were ULIDs and keep working. IDs
from outside are checked against one pattern before they reach a database, the
same way for every backend. A run's config always carries ``user_id`` so that
LangGraph records the owner in each checkpoint's metadata too. Who owns which
thread is decided by the conversation index (``conversations``), not here.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from checkpointing.errors import InvalidIdentifier, ThreadNotFound

if TYPE_CHECKING:  # only a type: importing LangChain at run time costs start-up
    from langchain_core.runnables import RunnableConfig

# Letters, digits and . _ - @ : after an alphanumeric; short enough for any btree index.
_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:-]{0,63}")


def new_thread_id() -> str:
    """A fresh UUIDv7 (RFC 9562): 48 bits of milliseconds, the version, 74 random bits."""
    random = int.from_bytes(os.urandom(10), "big")
    value = (time.time_ns() // 1_000_000) << 80 | 0x7 << 76 | (random >> 68) << 64
    value |= 0b10 << 62 | random & (1 << 62) - 1  # the variant, then 62 random bits
    return str(uuid.UUID(int=value))


def validate_id(value: object, kind: str = "thread ID") -> str:
    """Return *value* if it is an acceptable ID string; raise ``InvalidIdentifier`` if not."""
    if not isinstance(value, str):
        raise InvalidIdentifier(f"{kind} must be a string, not {type(value).__name__}")
    if not _ID_PATTERN.fullmatch(value):
        shown = value if len(value) <= 70 else value[:67] + "..."
        raise InvalidIdentifier(
            f"invalid {kind} {shown!r}: use 1-64 letters, digits and . _ - @ :, "
            "starting with a letter or digit"
        )
    return value


def thread_config(thread_id: str, user_id: str, **configurable: Any) -> RunnableConfig:
    """The config to run any graph on *thread_id* for *user_id*."""
    return {
        "configurable": {
            **configurable,
            "thread_id": validate_id(thread_id),
            "user_id": validate_id(user_id, "user ID"),
        }
    }


def thread_not_found(thread_id: str, user_id: str) -> ThreadNotFound:
    """The one error for a thread that is missing *or* someone else's: IDs cannot be probed."""
    return ThreadNotFound(
        f"no conversation {thread_id!r} for user {user_id!r}; see yours with "
        f"'durable-agent threads --user {user_id}'"
    )
