"""Where long lists sit in a checkpoint's values, found and replaced without copying.

A slot is a channel, or a key inside a channel's dict value (a graph's input), that
holds a list long enough to store as items, or any message list; or, reading, an
``ItemRefs``. Replacing slots copies the dicts it changes, never the caller's values in
place. Pure: no I/O. What is stored is ``items.py``; storing it, ``item_log.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import is_
from typing import Any

from langchain_core.messages import BaseMessage

from checkpointing.items import ItemRefs

# Shorter lists stay inline, but for messages: their quadratic cost is bounded and a row
# per item is not free. Messages are always items, so a message is stored once from the start.
MIN_ITEMS = 8
Slot = tuple[str, str | None]  # a channel, and a key inside its dict value


def common_prefix(a: Sequence[Any], b: Sequence[Any]) -> int:
    """How many leading items *a* and *b* share by identity."""
    if len(a) <= len(b) and all(map(is_, a, b)):
        return len(a)
    pairs = enumerate(zip(a, b, strict=False))
    return next((i for i, (x, y) in pairs if x is not y), min(len(a), len(b)))


def is_messages(value: Any, with_ids: bool = False) -> bool:
    return (
        type(value) is list
        and bool(value)
        and all(isinstance(m, BaseMessage) and (m.id or not with_ids) for m in value)
    )


def list_slots(values: Mapping[str, Any]) -> dict[Slot, list[Any]]:
    slots: dict[Slot, list[Any]] = {}
    for key, value in values.items():
        if type(value) is list and (len(value) >= MIN_ITEMS or is_messages(value)):
            slots[(key, None)] = value
        elif type(value) is dict:
            # Only messages with IDs: add_messages would give the others one after we stored them.
            slots.update({(key, k): v for k, v in value.items() if is_messages(v, with_ids=True)})
    return slots


def ref_slots(values: Mapping[str, Any]) -> dict[Slot, ItemRefs]:
    slots: dict[Slot, ItemRefs] = {}
    for key, value in values.items():
        if isinstance(value, ItemRefs):
            slots[(key, None)] = value
        elif type(value) is dict:
            slots.update({(key, k): v for k, v in value.items() if isinstance(v, ItemRefs)})
    return slots


def put_slots(values: Mapping[str, Any], replacements: Mapping[Slot, Any]) -> dict[str, Any]:
    """*values* with the replacements made; dicts inside are copied, never changed in place."""
    out = dict(values)
    for (key, inner), value in replacements.items():
        if inner is None:
            out[key] = value
        else:
            if out[key] is values[key]:
                out[key] = dict(values[key])
            out[key][inner] = value
    return out
