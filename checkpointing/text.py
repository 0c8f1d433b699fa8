"""What text a database can hold, checked before a run and cleaned for the index.

Every backend stores a message losslessly as serialized bytes, NUL bytes included;
a lone surrogate (what Python makes of bytes that were not UTF-8) cannot be
encoded at all, and the serializer would turn it into "?" without a word. So a
run's input is checked first (``check_storable``), and the derived text the
conversation index keeps (search text, titles, errors) is made storable on every
backend (``storable``): PostgreSQL text refuses NUL, and neither SQLite nor
PostgreSQL takes a lone surrogate. This module owns those two rules, nothing else.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Mapping
from typing import Any

from checkpointing.errors import InvalidText

_SURROGATE = re.compile("[\ud800-\udfff]")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"
MAX_DEPTH = 64


def storable(text: str) -> str:
    """*text* with NUL and lone surrogates replaced by U+FFFD (index text, not content)."""
    return _UNSTORABLE.sub(REPLACEMENT, text)


def check_storable(value: Any) -> None:
    """Raise ``InvalidText`` if *value* (a run's input, any nesting) holds a lone surrogate."""
    found = _first_surrogate(value, MAX_DEPTH)
    if found is not None:
        text, at = found
        shown = ascii(text[max(0, at - 20) : at + 20])
        raise InvalidText(
            f"the input holds an unpaired surrogate U+{ord(text[at]):04X} (bytes that were "
            f"not UTF-8, decoded with surrogateescape) at position {at} of {shown}, which no "
            "database can store as text; nothing was run: send the text as valid UTF-8"
        )


def _is_pydantic_model(value: Any) -> bool:
    # Only a loaded pydantic can have made *value*; not importing it keeps start-up fast.
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(value, pydantic.BaseModel)


def _first_surrogate(value: Any, depth: int) -> tuple[str, int] | None:
    if isinstance(value, str):
        match = _SURROGATE.search(value)
        return (value, match.start()) if match else None
    if depth <= 0 or isinstance(value, bytes | bytearray | int | float | type(None)):
        return None
    if isinstance(value, Mapping):
        children: Any = [*value.keys(), *value.values()]
    elif isinstance(value, list | tuple | set | frozenset):
        children = value
    elif _is_pydantic_model(value):  # messages: content, tool calls, kwargs
        children = list(value.__dict__.values())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):  # Command, Send
        children = [getattr(value, f.name, None) for f in dataclasses.fields(value)]
    else:
        return None
    for child in children:
        found = _first_surrogate(child, depth - 1)
        if found is not None:
            return found
    return None
