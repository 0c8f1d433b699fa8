"""Durability for any compiled LangGraph graph: a checkpointer chosen by one URL.

``open_saver(url)`` / ``open_async_saver(url)`` yield a ready, migrated saver for
``sqlite:///PATH``, ``postgresql://...`` or ``memory://``; ``open_conversations``
adds the per-user conversation index beside it; ``prune``, ``transfer`` and
``stats`` look after what is stored; ``tokens`` says which user an API token
speaks for. Nothing in this package knows about a particular graph.

Names are imported on first use (PEP 562), so importing one light part (``errors``,
``urls``, ``index_sql``) does not load LangGraph: the command line starts fast.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from checkpointing.backend import Backend, backend_of
    from checkpointing.conversation import Conversation
    from checkpointing.conversations import Conversations, every_thread_id
    from checkpointing.errors import (
        AmbiguousThread,
        CheckpointingError,
        ConfigError,
        DatabaseNotFound,
        DatabaseUnavailable,
        InvalidDatabase,
        InvalidIdentifier,
        InvalidText,
        LangGraphDatabase,
        LeaseLost,
        NothingToResume,
        ThreadBusy,
        ThreadNotFound,
        UnsupportedURL,
        UnwritableLocation,
    )
    from checkpointing.ids import (
        new_thread_id,
        thread_config,
        validate_id,
    )
    from checkpointing.leases import free_of, hold, is_free
    from checkpointing.notices import Listener
    from checkpointing.opening import (
        open_async_conversations,
        open_async_saver,
        open_conversations,
        open_saver,
        resolve_url,
    )
    from checkpointing.retention import PruneReport, prune, reclaim
    from checkpointing.rollback import head_checkpoint, roll_back
    from checkpointing.run_events import Event, RunEvents
    from checkpointing.runner import RunHooks, Runner
    from checkpointing.runs import ACTIVE as ACTIVE_RUN_STATUSES
    from checkpointing.runs import Run, RunNotFound, Runs
    from checkpointing.secrets import add_secret, scrub
    from checkpointing.serde import strict_serializer
    from checkpointing.settings import Settings, load_settings
    from checkpointing.states import DIED, STATES
    from checkpointing.stats import TableStats, UserTokens, stats, token_totals
    from checkpointing.text import check_storable
    from checkpointing.thread_state import NO_ANSWER, UNREADABLE, ThreadState, waiting_for_answer
    from checkpointing.tokens import TokenRecord, list_tokens
    from checkpointing.tokens import create as create_token
    from checkpointing.tokens import revoke as revoke_token
    from checkpointing.tokens import user_of as user_of_token
    from checkpointing.transfer import TransferReport, transfer
    from checkpointing.upstream_format import export_upstream, threads_to_export, verify_upstream
    from checkpointing.urls import parse_url, redact
    from checkpointing.verify import VerifyReport, verify

# public name -> (module, name in it); each imported when first asked for.
_LAZY = {
    "Backend": ("checkpointing.backend", "Backend"),
    "backend_of": ("checkpointing.backend", "backend_of"),
    "Conversation": ("checkpointing.conversation", "Conversation"),
    "Conversations": ("checkpointing.conversations", "Conversations"),
    "every_thread_id": ("checkpointing.conversations", "every_thread_id"),
    "CheckpointingError": ("checkpointing.errors", "CheckpointingError"),
    "ConfigError": ("checkpointing.errors", "ConfigError"),
    "DatabaseNotFound": ("checkpointing.errors", "DatabaseNotFound"),
    "DatabaseUnavailable": ("checkpointing.errors", "DatabaseUnavailable"),
    "InvalidDatabase": ("checkpointing.errors", "InvalidDatabase"),
    "InvalidIdentifier": ("checkpointing.errors", "InvalidIdentifier"),
    "InvalidText": ("checkpointing.errors", "InvalidText"),
    "LangGraphDatabase": ("checkpointing.errors", "LangGraphDatabase"),
    "LeaseLost": ("checkpointing.errors", "LeaseLost"),
    "NothingToResume": ("checkpointing.errors", "NothingToResume"),
    "ThreadBusy": ("checkpointing.errors", "ThreadBusy"),
    "ThreadNotFound": ("checkpointing.errors", "ThreadNotFound"),
    "AmbiguousThread": ("checkpointing.errors", "AmbiguousThread"),
    "UnsupportedURL": ("checkpointing.errors", "UnsupportedURL"),
    "UnwritableLocation": ("checkpointing.errors", "UnwritableLocation"),
    "new_thread_id": ("checkpointing.ids", "new_thread_id"),
    "thread_config": ("checkpointing.ids", "thread_config"),
    "validate_id": ("checkpointing.ids", "validate_id"),
    "free_of": ("checkpointing.leases", "free_of"),
    "hold": ("checkpointing.leases", "hold"),
    "is_free": ("checkpointing.leases", "is_free"),
    "Listener": ("checkpointing.notices", "Listener"),
    "open_async_conversations": ("checkpointing.opening", "open_async_conversations"),
    "open_async_saver": ("checkpointing.opening", "open_async_saver"),
    "open_conversations": ("checkpointing.opening", "open_conversations"),
    "open_saver": ("checkpointing.opening", "open_saver"),
    "resolve_url": ("checkpointing.opening", "resolve_url"),
    "PruneReport": ("checkpointing.retention", "PruneReport"),
    "prune": ("checkpointing.retention", "prune"),
    "reclaim": ("checkpointing.retention", "reclaim"),
    "head_checkpoint": ("checkpointing.rollback", "head_checkpoint"),
    "roll_back": ("checkpointing.rollback", "roll_back"),
    "Event": ("checkpointing.run_events", "Event"),
    "RunEvents": ("checkpointing.run_events", "RunEvents"),
    "RunHooks": ("checkpointing.runner", "RunHooks"),
    "Runner": ("checkpointing.runner", "Runner"),
    "ACTIVE_RUN_STATUSES": ("checkpointing.runs", "ACTIVE"),
    "Run": ("checkpointing.runs", "Run"),
    "RunNotFound": ("checkpointing.runs", "RunNotFound"),
    "Runs": ("checkpointing.runs", "Runs"),
    "add_secret": ("checkpointing.secrets", "add_secret"),
    "scrub": ("checkpointing.secrets", "scrub"),
    "strict_serializer": ("checkpointing.serde", "strict_serializer"),
    "Settings": ("checkpointing.settings", "Settings"),
    "load_settings": ("checkpointing.settings", "load_settings"),
    "DIED": ("checkpointing.states", "DIED"),
    "STATES": ("checkpointing.states", "STATES"),
    "TableStats": ("checkpointing.stats", "TableStats"),
    "stats": ("checkpointing.stats", "stats"),
    "UserTokens": ("checkpointing.stats", "UserTokens"),
    "token_totals": ("checkpointing.stats", "token_totals"),
    "check_storable": ("checkpointing.text", "check_storable"),
    "NO_ANSWER": ("checkpointing.thread_state", "NO_ANSWER"),
    "UNREADABLE": ("checkpointing.thread_state", "UNREADABLE"),
    "ThreadState": ("checkpointing.thread_state", "ThreadState"),
    "waiting_for_answer": ("checkpointing.thread_state", "waiting_for_answer"),
    "TokenRecord": ("checkpointing.tokens", "TokenRecord"),
    "list_tokens": ("checkpointing.tokens", "list_tokens"),
    "create_token": ("checkpointing.tokens", "create"),
    "revoke_token": ("checkpointing.tokens", "revoke"),
    "user_of_token": ("checkpointing.tokens", "user_of"),
    "TransferReport": ("checkpointing.transfer", "TransferReport"),
    "transfer": ("checkpointing.transfer", "transfer"),
    "export_upstream": ("checkpointing.upstream_format", "export_upstream"),
    "threads_to_export": ("checkpointing.upstream_format", "threads_to_export"),
    "verify_upstream": ("checkpointing.upstream_format", "verify_upstream"),
    "parse_url": ("checkpointing.urls", "parse_url"),
    "redact": ("checkpointing.urls", "redact"),
    "VerifyReport": ("checkpointing.verify", "VerifyReport"),
    "verify": ("checkpointing.verify", "verify"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'checkpointing' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


class _Package(types.ModuleType):
    """This package, where ``stats``, ``transfer`` and ``verify`` stay the functions.

    Importing a submodule sets it as the package's attribute of the same name; eager
    imports used to overwrite those three with the functions right after. Lazily, the
    submodule may be imported later, so it is kept from replacing the public name."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return  # ``from checkpointing.stats import ...`` still works, by sys.modules
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = [
    "ACTIVE_RUN_STATUSES",
    "DIED",
    "NO_ANSWER",
    "STATES",
    "UNREADABLE",
    "AmbiguousThread",
    "Backend",
    "CheckpointingError",
    "ConfigError",
    "Conversation",
    "Conversations",
    "DatabaseNotFound",
    "DatabaseUnavailable",
    "Event",
    "InvalidDatabase",
    "InvalidIdentifier",
    "InvalidText",
    "LangGraphDatabase",
    "LeaseLost",
    "Listener",
    "NothingToResume",
    "PruneReport",
    "Run",
    "RunEvents",
    "RunHooks",
    "RunNotFound",
    "Runner",
    "Runs",
    "Settings",
    "TableStats",
    "ThreadBusy",
    "ThreadNotFound",
    "ThreadState",
    "TokenRecord",
    "TransferReport",
    "UnsupportedURL",
    "UnwritableLocation",
    "UserTokens",
    "VerifyReport",
    "add_secret",
    "backend_of",
    "check_storable",
    "create_token",
    "every_thread_id",
    "export_upstream",
    "free_of",
    "head_checkpoint",
    "hold",
    "is_free",
    "list_tokens",
    "load_settings",
    "new_thread_id",
    "open_async_conversations",
    "open_async_saver",
    "open_conversations",
    "open_saver",
    "parse_url",
    "prune",
    "reclaim",
    "redact",
    "resolve_url",
    "revoke_token",
    "roll_back",
    "scrub",
    "stats",
    "strict_serializer",
    "thread_config",
    "threads_to_export",
    "token_totals",
    "transfer",
    "user_of_token",
    "validate_id",
    "verify",
    "verify_upstream",
    "waiting_for_answer",
]
