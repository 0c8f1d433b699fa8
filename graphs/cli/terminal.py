"""Text that is safe to print on a terminal.

Messages, titles, questions, tool arguments and errors come from a model, a user
or a server, and may hold bytes a terminal obeys rather than shows: ESC sequences
that move the cursor, recolour or retitle the window, rewrite what was printed
before, or a carriage return that hides the start of a line. Every text printer
of the command line passes what it prints through ``safe``, which shows such
characters escaped (``\\x1b``) and masks known secrets. ``--json`` output is not
passed through it: JSON escapes control characters itself.
"""

from __future__ import annotations

import dataclasses
import json
import unicodedata
from datetime import datetime
from typing import Any

from checkpointing import scrub

# Besides the C0/C1 controls (category Cc): characters that reorder or hide text.
_INVISIBLE = {"Cf", "Zl", "Zp"}


def _escaped(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _harmful(char: str, keep: str = "") -> bool:
    if char in keep or char == "\u200d":  # the joiner inside emoji sequences
        return False
    category = unicodedata.category(char)
    # Format characters past the BMP are emoji tags and the like: harmless, and meant.
    return category == "Cc" or (category in _INVISIBLE and ord(char) < 0x10000)


def safe(text: object, *, multiline: bool = False) -> str:
    """*text* with control characters escaped and secrets masked.

    *multiline* keeps newlines and tabs (a message's own lines); otherwise the result is
    one line, as a row of a table or an error must be.
    """
    keep = "\n\t" if multiline else ""
    shown = scrub(str(text))
    return "".join(_escaped(c) if _harmful(c, keep) else c for c in shown)


def json_document(data: object) -> str:
    """*data* as one exact, indented JSON document that is also safe on a terminal.

    Every ``--json`` output is one: an array for a list (``[]`` when empty), an object for
    one thing. ``json.dumps`` escapes C0 controls but passes DEL, C1 controls (``\\x9b``
    starts an escape sequence on many terminals) and bidi overrides through raw; outside
    strings its output has none of these, so escaping them as ``\\uXXXX`` keeps the same
    JSON. Known secrets are masked.
    """
    text = scrub(json.dumps(data, ensure_ascii=False, indent=2, default=_plain))
    return "".join(f"\\u{ord(c):04x}" if _harmful(c, "\n") else c for c in text)


def _plain(value: Any) -> Any:
    """Structured JSON for what ``json`` cannot write itself (an interrupt's value, a
    tool call's arguments): a model or dataclass by its fields, never its repr."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)  # the last resort for other objects is their text
