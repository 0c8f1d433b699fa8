"""The request bodies the server accepts, as the clients send them (pydantic models).

Keys the clients may send and this server has no use for (``webhook``,
``feedback_keys``, ``langsmith_tracer``...) are accepted and ignored, as LangGraph's
server accepts them; a value of the wrong kind is a 422 naming the field. IDs on the
wire are UUIDs.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from graphs.server.stream_events import DEFAULT_MODES, MODES

StreamMode = Literal[
    "values", "updates", "messages-tuple", "messages", "custom", "debug", "tasks", "checkpoints"
]


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CommandBody(Body):
    resume: Any = None
    update: Any = None
    goto: Any = None


class CheckpointBody(Body):
    thread_id: str | None = None
    checkpoint_ns: str = ""
    checkpoint_id: str | None = None
    checkpoint_map: dict[str, Any] | None = None


class RunBody(Body):
    assistant_id: str
    input: dict[str, Any] | list[Any] | None = None
    command: CommandBody | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    stream_mode: StreamMode | list[StreamMode] = "values"
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    checkpoint: CheckpointBody | None = None
    checkpoint_id: str | None = None
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    multitask_strategy: Literal["reject", "interrupt", "rollback", "enqueue"] = "enqueue"
    if_not_exists: Literal["create", "reject"] = "reject"
    on_disconnect: Literal["cancel", "continue"] = "continue"
    on_completion: Literal["delete", "keep"] | None = None
    after_seconds: float = Field(0.0, ge=0, le=365 * 86400)
    # Accepted for the clients' sake; every run is durable step by step.
    durability: Literal["sync", "async", "exit"] | None = None

    def modes(self) -> list[str]:
        modes = [self.stream_mode] if isinstance(self.stream_mode, str) else self.stream_mode
        return [m for m in dict.fromkeys(modes) if m in MODES] or list(DEFAULT_MODES)

    def kwargs(self) -> dict[str, Any]:
        """What the worker runs the graph with, as stored in the run's row."""
        checkpoint_id = self.checkpoint_id or (self.checkpoint and self.checkpoint.checkpoint_id)
        return {
            "input": self.input,
            "command": self.command.model_dump(exclude_none=True) if self.command else None,
            "config": self.config or {},
            "context": self.context,
            "stream_mode": self.modes(),
            "stream_subgraphs": self.stream_subgraphs,
            "stream_resumable": self.stream_resumable,
            "checkpoint_id": checkpoint_id,
            "interrupt_before": self.interrupt_before,
            "interrupt_after": self.interrupt_after,
            "on_completion": self.on_completion or "keep",
        }


class ThreadCreate(Body):
    thread_id: UUID | None = None
    metadata: dict[str, Any] | None = None
    if_exists: Literal["raise", "do_nothing"] = "raise"


class ThreadPatch(Body):
    metadata: dict[str, Any] = Field(default_factory=dict)


SortBy = Literal["thread_id", "status", "created_at", "updated_at"]


class ThreadSearch(Body):
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    ids: list[str] | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
    sort_by: SortBy = "updated_at"
    sort_order: Literal["asc", "desc"] = "desc"


class StateUpdate(Body):
    values: dict[str, Any] | list[Any] | None = None
    as_node: str | None = None
    checkpoint: CheckpointBody | None = None
    checkpoint_id: str | None = None


class StateAt(Body):
    checkpoint: CheckpointBody
    subgraphs: bool = False


class HistoryQuery(Body):
    limit: int = Field(10, ge=1, le=1000)
    before: str | CheckpointBody | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: CheckpointBody | None = None


class AssistantSearch(Body):
    graph_id: str | None = None
    metadata: dict[str, Any] | None = None
    name: str | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class StorePut(Body):
    namespace: list[str]
    key: str = Field(min_length=1)
    value: dict[str, Any]
    index: Any = None
    ttl: float | None = None

    @field_validator("namespace")
    @classmethod
    def _labels(cls, namespace: list[str]) -> list[str]:
        return checked_namespace(namespace)


class StoreKey(Body):
    namespace: list[str]
    key: str = Field(min_length=1)


class StoreSearch(Body):
    namespace_prefix: list[str] = Field(default_factory=list)
    filter: dict[str, Any] | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
    query: str | None = None


class NamespaceQuery(Body):
    prefix: list[str] | None = None
    suffix: list[str] | None = None
    max_depth: int | None = Field(None, ge=1)
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0)


def checked_namespace(namespace: list[str]) -> list[str]:
    if not namespace or any(not label or "." in label for label in namespace):
        raise ValueError("a namespace is a non-empty list of labels without '.'")
    return namespace
