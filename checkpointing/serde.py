"""The checkpoint serializer: revives allow-listed types only, never pickles.

LangGraph's default ``JsonPlusSerializer`` imports and calls whatever module and
class a stored checkpoint names (CVE-2026-28277 is mitigated only when you opt
in). Here the allowlist is always explicit: LangGraph's built-in safe types
(LangChain messages, datetimes, ``Send``, ``Interrupt``...), LangChain's other data
types (documents, agent actions, generations) and the types the
caller names. Anything else in a stored checkpoint comes back as plain data and
is never imported. This module owns that choice and nothing else.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from typing import Any

import ormsgpack
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.checkpoint.serde.jsonplus import EXT_PYDANTIC_V2, JsonPlusSerializer

from checkpointing.errors import InvalidDatabase, damaged
from checkpointing.items import ItemRefs

TypeKey = tuple[str, str]
ITEM_REFS: TypeKey = ("checkpointing.items", "ItemRefs")


def type_key(cls: type) -> TypeKey:
    return (cls.__module__, cls.__qualname__)


# LangChain's own data types besides its messages (which upstream already trusts): as
# trusted as the messages, so they come back as themselves, not as dicts. Named, not
# imported: the allow-list is names, and importing them would cost every start-up.
LANGCHAIN_DATA_TYPES: list[TypeKey] = [
    ("langchain_core.agents", "AgentAction"),
    ("langchain_core.agents", "AgentActionMessageLog"),
    ("langchain_core.agents", "AgentFinish"),
    ("langchain_core.agents", "AgentStep"),
    ("langchain_core.documents.base", "Blob"),
    ("langchain_core.outputs.chat_generation", "ChatGeneration"),
    ("langchain_core.outputs.chat_generation", "ChatGenerationChunk"),
    ("langchain_core.outputs.chat_result", "ChatResult"),
    ("langchain_core.outputs.generation", "Generation"),
    ("langchain_core.outputs.generation", "GenerationChunk"),
    ("langchain_core.outputs.llm_result", "LLMResult"),
    ("langchain_core.outputs.run_info", "RunInfo"),
    ("langchain_core.prompt_values", "ChatPromptValue"),
    ("langchain_core.prompt_values", "ChatPromptValueConcrete"),
    ("langchain_core.prompt_values", "ImagePromptValue"),
    ("langchain_core.prompt_values", "StringPromptValue"),
]

UNPACK_OPTIONS = ormsgpack.OPT_NON_STR_KEYS  # as upstream unpacks
# LangChain's own message classes, which we rebuild without re-validating (see _ext_hook).
MESSAGE_CLASSES: dict[str, type[Any]] = {
    "ai": AIMessage,
    "human": HumanMessage,
    "system": SystemMessage,
    "tool": ToolMessage,
}
MESSAGE_KINDS = {cls: kind for kind, cls in MESSAGE_CLASSES.items()}
MESSAGE_TYPES = {(cls.__module__, cls.__name__): cls for cls in MESSAGE_CLASSES.values()}
MESSAGE_FIELDS = {cls: frozenset(cls.model_fields) for cls in MESSAGE_CLASSES.values()}
MESSAGE_TYPE = "da-message1"  # [kind, fields]: a message on its own, as items store them
REFS_TYPE = "da-refs"
ZIPPED_TYPE = "da-zmsgpack1"
# A stored checkpoint unpacks to at most this much; zlib expands up to ~1000x, so an
# unbounded read of a damaged or crafted row could take all the memory there is.
MAX_UNZIPPED_BYTES = 256 << 20
# A fixed preset dictionary for zlib: what every checkpoint's bookkeeping repeats. Changing
# it would make stored rows unreadable; a new one needs a new type name.
ZDICT = (
    b"versions_seen\x80updated_channels\x91channel_versions\x84channel_values\x82"
    b"__start__\xb5000000000000.00000000__input__\x80__interrupt__branch:to:"
    b"\xa8messages\xd9 checkpointing.items\xa8ItemRefs\x81\xa4runs\x91\x92\xcf"
    b"\xa2ts\xa2id\xa1v\x04\xb92026-01-01T00:00:00.000000+00:00"
    b"\xd9$1f000000-0000-6000-8000-000000000000000000000000.00000000"
)


class DurableSerializer(JsonPlusSerializer):
    """LangGraph's serializer plus our compact forms, each read back by its type name.

    ``ItemRefs`` on its own (a PostgreSQL channel blob) packs to 16 bytes per run; a
    whole checkpoint (a SQLite row) can be zlib-compressed with a preset dictionary; a
    LangChain message on its own (an item) is its kind and fields. Message content is
    never compressed here.
    """

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        if type(obj) is ItemRefs:
            flat = [n for run in obj.runs for n in run]
            return REFS_TYPE, struct.pack(f"<{len(flat)}q", *flat)
        kind = MESSAGE_KINDS.get(type(obj))
        if kind is not None:  # a stored item, nearly always: one level, no class path
            type_, packed = super().dumps_typed([kind, obj.model_dump()])
            if type_ == "msgpack":
                return MESSAGE_TYPE, packed
        return super().dumps_typed(obj)

    def dumps_zipped(self, obj: Any) -> tuple[str, bytes]:
        type_, data = super().dumps_typed(obj)
        if type_ != "msgpack":
            return type_, data
        packer = zlib.compressobj(6, zdict=ZDICT)
        return ZIPPED_TYPE, packer.compress(data) + packer.flush()

    def loads_many(self, rows: Iterable[tuple[str, bytes]]) -> list[Any]:
        """``loads_typed`` over many rows; stored messages take a short path (items)."""
        unpack, hook, kinds, out = ormsgpack.unpackb, self._ext_hook, MESSAGE_CLASSES, []
        for type_, payload in rows:
            if type_ == MESSAGE_TYPE:
                kind, fields = unpack(payload, ext_hook=hook, option=UNPACK_OPTIONS)
                out.append(_message(kinds[kind], fields))
            else:
                out.append(self.loads_typed((type_, payload)))
        return out

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        type_, payload = data
        if type_ == "msgpack":
            return ormsgpack.unpackb(payload, ext_hook=self._ext_hook, option=UNPACK_OPTIONS)
        if type_ == MESSAGE_TYPE:
            kind, fields = ormsgpack.unpackb(
                payload, ext_hook=self._ext_hook, option=UNPACK_OPTIONS
            )
            return _message(MESSAGE_CLASSES[kind], fields)
        if type_ == REFS_TYPE:
            if len(payload) % 16:
                raise _damaged(f"a list reference of {len(payload)} bytes, not 16 per run")
            flat = struct.unpack(f"<{len(payload) // 8}q", payload)
            refs = ItemRefs([list(flat[i : i + 2]) for i in range(0, len(flat), 2)])
            refs.check()
            return refs
        if type_ == ZIPPED_TYPE:
            unpacker = zlib.decompressobj(zdict=ZDICT)
            try:
                raw = unpacker.decompress(bytes(payload), MAX_UNZIPPED_BYTES + 1)
            except zlib.error as exc:
                raise _damaged(f"a checkpoint that does not unpack ({exc})") from None
            if len(raw) > MAX_UNZIPPED_BYTES:
                raise _damaged(f"a checkpoint that unpacks to over {MAX_UNZIPPED_BYTES >> 20} MiB")
            if not unpacker.eof:
                raise _damaged("a checkpoint that is cut short")
            return self.loads_typed(("msgpack", raw))
        return super().loads_typed(data)

    def _ext_hook(self, code: int, data: bytes) -> Any:
        """Upstream's revival, but LangChain's own messages skip re-validation.

        Reading a long thread is mostly rebuilding its messages, and validating each
        one again costs ~4x building it. A message is built directly only when it is
        one of the known classes and every field is present, that is, when it was
        written whole by this serializer from a message validated then; anything
        else takes upstream's path, allowlist and all.
        """
        if code == EXT_PYDANTIC_V2:
            module, name, fields, *_ = ormsgpack.unpackb(
                data, ext_hook=self._ext_hook, option=UNPACK_OPTIONS
            )
            cls = MESSAGE_TYPES.get((module, name))
            if cls is not None and type(fields) is dict:
                return _message(cls, fields)
        return self._unpack_ext_hook(code, data)


def _damaged(what: str) -> InvalidDatabase:
    return damaged(f"the database holds {what}")


def _message(cls: type[Any], fields: dict[str, Any]) -> Any:
    """A message of a known class from its stored fields, validated only if some are missing."""
    if not MESSAGE_FIELDS[cls] <= fields.keys():
        return cls(**fields)  # written by an older LangChain: let it fill the defaults
    message = _new(cls)
    _set(message, "__dict__", fields)
    _set(message, "__pydantic_fields_set__", set(fields))
    _set(message, "__pydantic_extra__", {})
    _set(message, "__pydantic_private__", None)
    return message


_new, _set = object.__new__, object.__setattr__


def strict_serializer(allowed_types: Iterable[type | TypeKey] = ()) -> DurableSerializer:
    """A serializer that revives only LangGraph's safe types, LangChain's own data types
    and *allowed_types*.

    ``allowed_msgpack_modules=None`` means "safe types only" regardless of the
    ``LANGGRAPH_STRICT_MSGPACK`` environment variable; ``pickle_fallback`` and
    legacy JSON constructors stay off.
    """
    keys = [t if isinstance(t, tuple) else type_key(t) for t in allowed_types]
    keys += [ITEM_REFS, *LANGCHAIN_DATA_TYPES]  # ITEM_REFS: our stored-list marker (items.py)
    serde = DurableSerializer(
        pickle_fallback=False, allowed_json_modules=None, allowed_msgpack_modules=None
    )
    return serde.with_msgpack_allowlist(keys)  # type: ignore[return-value]
