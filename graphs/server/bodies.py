"""The request bodies the server accepts, as the clients send them (pydantic models).

Keys the clients may send and this server has no use for (``webhook``,
``feedback_keys``, ``langsmith_tracer``...) are accepted and ignored, as LangGraph's
server accepts them; a value of the wrong kind is a 422 naming the field. IDs on the
wire are UUIDs.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from langchain_core.messages import convert_to_messages
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from checkpointing import check_storable
from graphs.server.stream_events import DEFAULT_MODES, MODES

# Offsets reach SQL as integers: a larger one was an OverflowError (a 500), not a 422.
SQL_INT = 2**63 - 1
# PostgreSQL text holds no NUL: a store key with one was psycopg's DataError, a 500.
NO_NUL = "^[^\x00]*$"
StreamMode = Literal[
    "values", "updates", "messages-tuple", "messages", "custom", "debug", "tasks", "checkpoints"
]


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        # A lone surrogate ("\ud800" in the JSON) is no text a database or a JSON
        # response can hold: stored, it made every later read of the thread a 500.
        check_storable(data)
        return data


class CommandBody(Body):
    resume: Any = None
    update: Any = None
    goto: Any = None

    @field_validator("update")
    @classmethod
    def _update_messages(cls, value: Any) -> Any:
        return checked_messages(value)


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

    @field_validator("input")
    @classmethod
    def _input_messages(cls, value: Any) -> Any:
        return checked_messages(value)

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
    offset: int = Field(0, ge=0, le=SQL_INT)
    sort_by: SortBy = "updated_at"
    sort_order: Literal["asc", "desc"] = "desc"


class StateUpdate(Body):
    values: dict[str, Any] | list[Any] | None = None
    as_node: str | None = None
    checkpoint: CheckpointBody | None = None
    checkpoint_id: str | None = None

    @field_validator("values")
    @classmethod
    def _values_messages(cls, value: Any) -> Any:
        return checked_messages(value)


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
    offset: int = Field(0, ge=0, le=SQL_INT)


class StorePut(Body):
    namespace: list[str]
    key: str = Field(min_length=1, pattern=NO_NUL)
    value: dict[str, Any]
    index: Any = None
    ttl: float | None = None

    @field_validator("namespace")
    @classmethod
    def _labels(cls, namespace: list[str]) -> list[str]:
        return checked_namespace(namespace)

    @field_validator("value")
    @classmethod
    def _storable_value(cls, value: dict[str, Any]) -> dict[str, Any]:
        # What the stores cannot write: orjson (SQLite) takes no integer past 64 bits,
        # PostgreSQL's jsonb no NUL character.
        if _unstorable(value, depth=64):
            raise ValueError("the value holds a NUL character or an integer past 64 bits")
        return value


def _unstorable(value: Any, depth: int) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, int):
        return not -(2**63) <= value < 2**64
    if depth <= 0:
        return False
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    return isinstance(value, list) and any(_unstorable(v, depth - 1) for v in value)


class StoreKey(Body):
    namespace: list[str]
    key: str = Field(min_length=1, pattern=NO_NUL)

    @field_validator("namespace")
    @classmethod
    def _labels(cls, namespace: list[str]) -> list[str]:
        return checked_namespace(namespace)


class StoreSearch(Body):
    namespace_prefix: list[str] = Field(default_factory=list)
    filter: dict[str, Any] | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=SQL_INT)
    query: str | None = None

    @field_validator("namespace_prefix")
    @classmethod
    def _labels(cls, prefix: list[str]) -> list[str]:
        return checked_labels(prefix)


class NamespaceQuery(Body):
    prefix: list[str] | None = None
    suffix: list[str] | None = None
    max_depth: int | None = Field(None, ge=1, le=1000)
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=SQL_INT)

    @field_validator("prefix", "suffix")
    @classmethod
    def _labels(cls, labels: list[str] | None) -> list[str] | None:
        return labels and checked_labels(labels)


def checked_messages(value: Any) -> Any:
    """*value* (an input, an update) whose ``messages``, if any, LangChain can read.

    A message LangGraph's reducer cannot convert would be written into the thread as it
    is, and the thread could not be read back (every state read fails): refused here,
    before anything is stored."""
    if isinstance(value, dict) and "messages" in value:
        messages = value["messages"]
        try:
            convert_to_messages(messages if isinstance(messages, list) else [messages])
        except (ValueError, TypeError, NotImplementedError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(f"messages: {first}") from None
    return value


def checked_namespace(namespace: list[str]) -> list[str]:
    if not namespace:
        raise ValueError("a namespace is a non-empty list of labels without '.'")
    return checked_labels(namespace)


def checked_labels(labels: list[str]) -> list[str]:
    """Labels the store takes: a bad one would be its ``InvalidNamespaceError``, a 500."""
    if any(not label or "." in label or "\x00" in label for label in labels):
        raise ValueError("namespace labels are non-empty, without '.' or NUL")
    return labels
