"""Counting a prompt's tokens: the model's own tokenizer where it is at hand, else an estimate.

For an OpenAI model (``ChatOpenAI``) the count is tiktoken's, with the encoding
langchain-openai picks for the model, but only when that encoding's file is already in
tiktoken's local cache (``TIKTOKEN_CACHE_DIR``, else ``DATA_GYM_CACHE_DIR``, else
``<tmp>/data-gym-cache``) and its checksum matches: tiktoken would otherwise download it,
and a count must never wait on the network or fail a run. Everything else (the offline
model, models on other compatible servers, no cached encoding) is estimated:

- a message costs ``MESSAGE_OVERHEAD`` (3) tokens plus its text at ``CHARS_PER_TOKEN`` (4)
  characters a token, rounded up;
- each tool call adds ``TOOL_CALL_OVERHEAD`` (3) plus its name and JSON arguments, a tool
  result 3 more for its call ID;
- the reply is primed with ``REPLY_PRIMING`` (3) tokens.

These are the per-message figures of OpenAI's cookbook ("How to count tokens with
tiktoken"); English text runs close to four characters a token. Counts are cached per
message ID (and text length), so a long conversation is not counted again on every call.
It does not decide what fits: that is ``window.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 3
TOOL_CALL_OVERHEAD = 3
REPLY_PRIMING = 3
CACHE_SIZE = 100_000  # message counts kept per counter: far more than any prompt holds

# tiktoken's own download addresses and checksums (tiktoken_ext/openai_public.py).
_ENCODINGS = {
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
}


def estimate_text(text: str) -> int:
    """Tokens in *text* by the estimate: four characters a token, rounded up."""
    return -(-len(text) // CHARS_PER_TOKEN)


def _parts(message: BaseMessage) -> list[str]:
    """The strings of *message* a tokenizer sees: its text, then each call's name and args."""
    parts: list[str] = [str(message.text)]
    if isinstance(message, AIMessage):
        for call in message.tool_calls:
            parts += [call["name"], json.dumps(call["args"])]
    return parts


def _overhead(message: BaseMessage) -> int:
    calls = len(message.tool_calls) if isinstance(message, AIMessage) else 0
    return MESSAGE_OVERHEAD + TOOL_CALL_OVERHEAD * calls + 3 * isinstance(message, ToolMessage)


def _cached_file(name: str) -> bytes | None:
    """The encoding file *name* as tiktoken caches it, if it is there and intact."""
    url, expected = _ENCODINGS[name]
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        folder = os.environ["TIKTOKEN_CACHE_DIR"]
    else:
        default = os.path.join(tempfile.gettempdir(), "data-gym-cache")
        folder = os.environ.get("DATA_GYM_CACHE_DIR", default)
    if not folder:  # caching turned off: tiktoken would download every time
        return None
    path = os.path.join(folder, hashlib.sha1(url.encode()).hexdigest())  # noqa: S324 tiktoken's key
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == expected else None


def encoding_name(model_name: str) -> str:
    """The encoding langchain-openai uses for *model_name* (its ``_get_encoding_model``)."""
    import tiktoken

    try:
        return tiktoken.encoding_name_for_model(model_name)
    except KeyError:
        newer = model_name.lower().startswith(("gpt-4o", "gpt-4.1", "gpt-5", "gpt-6"))
        return "o200k_base" if newer else "cl100k_base"


@lru_cache(maxsize=8)
def _local_encoder(name: str) -> Callable[[str], int] | None:
    if name not in _ENCODINGS or _cached_file(name) is None:
        return None
    try:
        import tiktoken

        encoding = tiktoken.get_encoding(name)  # the checked cached file: no download
    except Exception:  # any failure to load means: estimate instead
        return None
    return lambda text: len(encoding.encode(text, disallowed_special=()))


def text_counter(model: Any) -> tuple[str, Callable[[str], int]]:
    """How to count *model*'s text: ``("tiktoken:<encoding>", f)`` or ``("estimate", f)``."""
    name = getattr(model, "model_name", None)
    if type(model).__module__.startswith(("langchain_openai", "graphs.openai_model")) and name:
        try:
            encoding = encoding_name(str(getattr(model, "tiktoken_model_name", None) or name))
        except ImportError:
            encoding = ""
        encoder = _local_encoder(encoding)
        if encoder is not None:
            return f"tiktoken:{encoding}", encoder
    return "estimate", estimate_text


class TokenCounter:
    """Counts messages for one model, remembering each message's count by its ID."""

    def __init__(self, model: Any = None) -> None:
        self.method, self._text = text_counter(model)
        self._cache: dict[tuple[str, int], int] = {}

    def text(self, text: str) -> int:
        return self._text(text)

    def message(self, message: BaseMessage) -> int:
        """Tokens *message* takes in a prompt, its per-message overhead included."""
        key = (message.id, len(message.text)) if message.id else None
        if key is not None and (known := self._cache.get(key)) is not None:
            return known
        count = _overhead(message) + sum(self._text(part) for part in _parts(message) if part)
        if key is not None:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = count
        return count

    def messages(self, messages: Iterable[BaseMessage]) -> list[int]:
        return [self.message(m) for m in messages]

    def prompt(self, messages: Sequence[BaseMessage]) -> int:
        """A whole prompt's tokens: its messages and the reply's priming."""
        return sum(self.messages(messages)) + REPLY_PRIMING

    def tools(self, schemas: Sequence[dict[str, Any]]) -> int:
        """What the tool schemas sent with every request take (their JSON, counted as text)."""
        return sum(self._text(json.dumps(schema)) for schema in schemas)
