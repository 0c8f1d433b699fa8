"""When each item of a thread's list channel (its messages) was first checkpointed.

LangGraph records a time per checkpoint (its ``ts``), not per message. The time of a
message is taken here as the ``ts`` of the oldest checkpoint of the thread that holds
it: for a human message, when its run started; for a model's or a tool's, when the
step that produced it ended. The checkpoints are read as stored (``list_raw``), so a
stored list is its ``ItemRefs`` and an item is recognised by its seq without reviving
a single message; a list stored inline (rows older than ``items.py``, or a saver
without items, as behind ``memory://``) is recognised by its items' IDs. This module
answers only that question; exporting a conversation is the command line's.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig

from checkpointing.backend import Backend
from checkpointing.items import ItemRefs
from checkpointing.raw_saver import RawSaver


@dataclass(frozen=True)
class FirstSeen:
    """The thread's newest checkpoint (``config``, to read its list exactly), and for each
    item of its list, in order, the ``ts`` of the oldest checkpoint holding it."""

    config: RunnableConfig | None  # None: the thread has no checkpoint
    times: list[str]


def _keys(value: Any) -> Sequence[Hashable]:
    """What recognises each item of a stored list across checkpoints."""
    if isinstance(value, ItemRefs):
        return [("seq", seq) for seq in value.seqs()]
    if isinstance(value, list):
        # An item without an ID (not a message) is recognised by its place in the list.
        return [("id", getattr(item, "id", None) or ("at", i)) for i, item in enumerate(value)]
    return []


def first_seen(backend: Backend, config: RunnableConfig, channel: str = "messages") -> FirstSeen:
    """When each item of *channel* in the thread's newest checkpoint first appeared."""
    saver = backend.saver
    # The thread's own checkpoints, not those of subgraphs it ran (other namespaces).
    config = {**config, "configurable": {**config["configurable"], "checkpoint_ns": ""}}
    found = saver.list_raw(config) if isinstance(saver, RawSaver) else list(saver.list(config))
    if not found:
        return FirstSeen(None, [])
    first: dict[Hashable, str] = {}
    for tup in reversed(found):  # oldest first: the first time a key is met is its time
        ts = tup.checkpoint["ts"]
        for key in _keys(tup.checkpoint.get("channel_values", {}).get(channel)):
            first.setdefault(key, ts)
    newest = found[0]
    keys = _keys(newest.checkpoint.get("channel_values", {}).get(channel))
    return FirstSeen(newest.config, [first[key] for key in keys])
