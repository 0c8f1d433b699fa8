"""Durability for any compiled LangGraph graph: a checkpointer chosen by one URL.

``open_saver(url)`` / ``open_async_saver(url)`` yield a ready, migrated saver for
``sqlite:///PATH``, ``postgresql://...`` or ``memory://``; ``open_conversations``
adds the per-user conversation index beside it; ``prune``, ``transfer`` and
``stats`` look after what is stored; ``tokens`` says which user an API token
speaks for. Nothing in this package knows about a particular graph.
"""

from checkpointing.backend import Backend, backend_of
from checkpointing.conversation import Conversation
from checkpointing.conversations import Conversations, every_thread_id
from checkpointing.errors import (
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

__all__ = [
    "ACTIVE_RUN_STATUSES",
    "DIED",
    "NO_ANSWER",
    "STATES",
    "UNREADABLE",
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
