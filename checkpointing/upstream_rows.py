"""One thread in LangGraph's own rows: written from ours, and compared with ours.

``export_thread`` writes a thread of one of our databases through LangGraph's own
saver: whole channel values (each stored list in full, no ``ItemRefs``), one write
row per write index, versions padded as upstream pads them (``upstream_versions``),
IDs, parents, metadata and task paths kept. It goes oldest checkpoint first, its
writes before it; a checkpoint already in the target is skipped and writes are
idempotent upserts, so a killed run can simply be run again. ``compare`` says how
what LangGraph's saver reads differs from what ours reads. Which threads, opening
both sides and the Store are ``upstream_format.py``'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import WRITES_IDX_MAP, Checkpoint, CheckpointTuple
from langgraph.checkpoint.serde.types import _DeltaSnapshot

from checkpointing import upstream_sql
from checkpointing.backend import Backend

UPSTREAM_DIGITS = 32  # the width of a version's number in LangGraph's own savers


class Counts(Protocol):
    """What an export counts, as it goes."""

    checkpoints: int  # written by this run
    present: int  # already in the target, from an earlier run
    writes: int


def export_thread(src: Backend, dst: Backend, thread_id: str, counts: Counts) -> None:
    """Write the thread of *src* (read by our saver) into *dst* through LangGraph's saver."""
    present = {
        (r["checkpoint_ns"], r["checkpoint_id"])
        for r in dst.db.run([(upstream_sql.CHECKPOINT_IDS, (thread_id,))])[0]
    }
    paths = {
        (r["checkpoint_ns"], r["checkpoint_id"], r["task_id"]): r["task_path"]
        for r in src.db.run([(upstream_sql.TASK_PATHS[src.dialect], (thread_id,))])[0]
    }
    had = {
        (r["checkpoint_ns"], r["checkpoint_id"], r["task_id"], r["idx"])
        for r in dst.db.run([(upstream_sql.WRITE_KEYS[dst.dialect], (thread_id,))])[0]
    }
    written: set[tuple[str, str, Any]] = set()  # blob versions this run put (PostgreSQL)
    for tup in reversed(list(src.saver.list({"configurable": {"thread_id": thread_id}}))):
        conf = tup.config["configurable"]
        ns, checkpoint_id = conf["checkpoint_ns"], conf["checkpoint_id"]
        config: RunnableConfig = {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint_id,
            }
        }
        # Writes first: a checkpoint in the target means its writes are there too.
        for task_id, writes in _by_task(tup.pending_writes or []):
            path = paths.get((ns, checkpoint_id, task_id), "")
            special = [w for w in writes if w[0] in WRITES_IDX_MAP]
            ordinary = [w for w in writes if w[0] not in WRITES_IDX_MAP]
            for batch in [*([w] for w in special), *([ordinary] if ordinary else [])]:
                dst.saver.put_writes(config, batch, task_id, path)
            # Counted as LangGraph's savers key them; one already there was not written now.
            keys = [WRITES_IDX_MAP[w[0]] for w in special] + list(range(len(ordinary)))
            counts.writes += sum((ns, checkpoint_id, task_id, k) not in had for k in keys)
        if (ns, checkpoint_id) in present:
            counts.present += 1
            continue
        checkpoint = upstream_versions(tup.checkpoint)
        versions = checkpoint["channel_versions"]
        new_versions = {k: v for k, v in versions.items() if (ns, k, v) not in written}
        written.update((ns, k, v) for k, v in new_versions.items())
        parent = tup.parent_config["configurable"]["checkpoint_id"] if tup.parent_config else None
        put_config: RunnableConfig = {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                **({"checkpoint_id": parent} if parent else {}),
            }
        }
        dst.saver.put(put_config, checkpoint, tup.metadata, new_versions)
        counts.checkpoints += 1


def upstream_versions(checkpoint: Checkpoint) -> Checkpoint:
    """*checkpoint* with its channel versions padded as LangGraph's savers pad them.

    Ours carry 12 digits, which still sort after upstream's 32 (``compact.py``); the
    other way round they do not: LangGraph's saver would count its next version lower
    than ours, see no update, and skip the nodes it triggers.
    """
    seen = checkpoint.get("versions_seen") or {}
    return {
        **checkpoint,
        "channel_versions": {k: _pad(v) for k, v in checkpoint["channel_versions"].items()},
        "versions_seen": {n: {k: _pad(v) for k, v in vs.items()} for n, vs in seen.items()},
    }


def _pad(version: Any) -> Any:
    if not isinstance(version, str):
        return version
    number, dot, rest = version.partition(".")
    if not number.isdigit() or len(number) >= UPSTREAM_DIGITS:
        return version
    return f"{int(number):0{UPSTREAM_DIGITS}}{dot}{rest}"


def _by_task(writes: Iterable[Any]) -> list[tuple[str, list[tuple[str, Any]]]]:
    """Pending writes ``(task_id, channel, value)`` grouped by task, in order."""
    tasks: dict[str, list[tuple[str, Any]]] = {}
    for task_id, channel, value, *_ in writes:
        tasks.setdefault(task_id, []).append((channel, value))
    return list(tasks.items())


def compare(ours: list[CheckpointTuple], theirs: list[CheckpointTuple]) -> list[str]:
    """How *theirs* (a thread read by LangGraph's saver) differs from *ours*: each
    checkpoint's values, versions, metadata, parent and pending writes."""
    keyed = {_key(t): t for t in theirs}
    problems = []
    if len(ours) != len(theirs):
        problems.append(f"source has {len(ours)} checkpoints, target {len(theirs)}")
    for tup in ours:
        other = keyed.get(_key(tup))
        if other is None:
            problems.append(f"checkpoint {_key(tup)[1]} is missing from the target")
            continue
        for what, a, b in (
            ("values", tup.checkpoint["channel_values"], _values(tup, other)),
            ("versions", _versions(upstream_versions(tup.checkpoint)), _versions(other.checkpoint)),
            ("metadata", tup.metadata, other.metadata),
            ("parent", _parent(tup), _parent(other)),
            ("pending writes", _writes(tup), _writes(other)),
        ):
            if a != b:
                problems.append(f"checkpoint {_key(tup)[1]}: {what} differ")
    return problems


def _values(ours: CheckpointTuple, theirs: CheckpointTuple) -> dict[str, Any]:
    """*theirs*'s values, but for a ``DeltaChannel`` snapshot where ours has none: LangGraph's
    PostgreSQL saver reads a channel's blob by version, so a checkpoint that did not
    snapshot a version an earlier one did shows that snapshot (the same value)."""
    mine = ours.checkpoint["channel_values"]
    return {
        k: v
        for k, v in theirs.checkpoint["channel_values"].items()
        if k in mine or not isinstance(v, _DeltaSnapshot)
    }


def _versions(checkpoint: Checkpoint) -> tuple[Any, Any]:
    return checkpoint["channel_versions"], checkpoint.get("versions_seen")


def _key(tup: CheckpointTuple) -> tuple[str, str]:
    conf = tup.config["configurable"]
    return conf["checkpoint_ns"], conf["checkpoint_id"]


def _parent(tup: CheckpointTuple) -> str | None:
    return tup.parent_config["configurable"]["checkpoint_id"] if tup.parent_config else None


def _writes(tup: CheckpointTuple) -> list[tuple[Any, ...]]:
    return [tuple(w[:3]) for w in tup.pending_writes or []]
