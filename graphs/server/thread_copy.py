"""Copying a thread: every checkpoint and pending write of one thread into another.

Written through the saver's own ``list`` / ``put`` / ``put_writes``, oldest first with
each checkpoint's parent kept, so the copy has the same history (time travel and forks
work on it) on any saver, and our savers store its long lists once, as for any run.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from checkpointing import Conversation


def copy_checkpoints(
    saver: BaseCheckpointSaver[Any], source: Conversation, target: Conversation
) -> None:
    tuples = list(saver.list({"configurable": {"thread_id": source.thread_id}}))
    for found in reversed(tuples):  # oldest first: each parent exists before its child
        configurable = found.config["configurable"]
        ns = configurable.get("checkpoint_ns", "")
        parent = (found.parent_config or {}).get("configurable", {}).get("checkpoint_id")
        config = {"configurable": {"thread_id": target.thread_id, "checkpoint_ns": ns}}
        if parent:
            config["configurable"]["checkpoint_id"] = parent
        versions = found.checkpoint["channel_versions"]
        written = saver.put(config, found.checkpoint, found.metadata, versions)  # type: ignore[arg-type]
        by_task: defaultdict[str, list[tuple[str, Any]]] = defaultdict(list)
        for task_id, channel, value in found.pending_writes or []:
            by_task[task_id].append((channel, value))
        for task_id, writes in by_task.items():
            saver.put_writes(written, writes, task_id)
