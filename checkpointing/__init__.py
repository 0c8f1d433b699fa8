"""Durability for any compiled LangGraph graph: a checkpointer chosen by one URL.

``open_saver(url)`` / ``open_async_saver(url)`` yield a ready, migrated saver for
``sqlite:///PATH``, ``postgresql://...`` or ``memory://``; ``open_conversations``
adds the per-user conversation index beside it. Nothing in this package knows
about a particular graph.
"""

from checkpointing.conversations import (
    Conversation,
    Conversations,
    open_async_conversations,
    open_conversations,
)
from checkpointing.errors import (
    CheckpointingError,
    ConfigError,
    DatabaseNotFound,
    DatabaseUnavailable,
    InvalidDatabase,
    InvalidIdentifier,
    NothingToResume,
    ThreadBusy,
    ThreadNotFound,
    UnsupportedURL,
    UnwritableLocation,
)
from checkpointing.resume import Runner
from checkpointing.saver import open_async_saver, open_saver, resolve_url
from checkpointing.serde import strict_serializer
from checkpointing.settings import Settings, load_settings
from checkpointing.thread_state import ThreadState
from checkpointing.threads import (
    new_thread_id,
    thread_config,
    validate_id,
)
from checkpointing.urls import parse_url, redact

__all__ = [
    "CheckpointingError",
    "ConfigError",
    "Conversation",
    "Conversations",
    "DatabaseNotFound",
    "DatabaseUnavailable",
    "InvalidDatabase",
    "InvalidIdentifier",
    "NothingToResume",
    "Runner",
    "Settings",
    "ThreadBusy",
    "ThreadNotFound",
    "ThreadState",
    "UnsupportedURL",
    "UnwritableLocation",
    "load_settings",
    "new_thread_id",
    "open_async_conversations",
    "open_async_saver",
    "open_conversations",
    "open_saver",
    "parse_url",
    "redact",
    "resolve_url",
    "strict_serializer",
    "thread_config",
    "validate_id",
]
