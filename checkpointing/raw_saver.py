"""The few saver methods that read and write a thread's rows as stored, typed.

Our savers (``CompactLists`` on SQLite and PostgreSQL) read checkpoints with their
``ItemRefs`` left as stored (``list_raw``), store them so (``put_raw``), and cache a
thread's items (``items``). Retention, transfer and upstream's ``prune`` need only
those; ``raw_saver`` finds them on a backend, and refuses a saver that has none
(LangGraph's own ``InMemorySaver`` behind ``memory://``). Not the savers themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)

from checkpointing.backend import Backend
from checkpointing.errors import ConfigError
from checkpointing.item_log import ItemLog


@runtime_checkable
class RawSaver(Protocol):
    items: ItemLog  # the thread's items, cached: forget a thread whose items changed

    def list_raw(
        self, config: RunnableConfig | None, *, limit: int | None = None
    ) -> list[CheckpointTuple]: ...

    # Stores a checkpoint as given, ``ItemRefs`` and all: (config, checkpoint, metadata,
    # new_versions), as ``put`` takes them.
    put_raw: Callable[
        [RunnableConfig, Checkpoint, CheckpointMetadata, ChannelVersions], RunnableConfig
    ]


def raw_saver(backend: Backend) -> RawSaver:
    """*backend*'s saver, which reads and writes rows as stored; ``ConfigError`` if not."""
    saver = backend.saver
    if not isinstance(saver, RawSaver):
        raise ConfigError(
            f"{backend.name} is kept by {type(saver).__name__}, which does not store rows "
            "as ours do: use a sqlite:/// or postgresql:// URL"
        )
    return saver
