"""A graph's stream turned into the events the clients parse, by stream mode.

The API's modes map onto LangGraph's (``messages-tuple`` is LangGraph's ``messages``);
events of a subgraph are named ``mode|ns1|ns2``, as the clients expect with
``stream_subgraphs``. ``messages-tuple`` events carry ``[chunk, metadata]`` with the
message as a chunk type, which the clients merge by ID; the older ``messages`` mode
sends ``messages/metadata`` once per message, then ``messages/partial`` as it grows and
``messages/complete`` when it is whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from langchain_core.messages import BaseMessageChunk, message_chunk_to_message

from graphs.server.shapes import as_chunk, dumps

MODES = {
    "values": "values",
    "updates": "updates",
    "messages-tuple": "messages",
    "messages": "messages",
    "custom": "custom",
    "debug": "debug",
    "tasks": "tasks",
    "checkpoints": "checkpoints",
}
DEFAULT_MODES = ["values"]

Event = tuple[str, str]  # (event name, JSON text)


def graph_modes(modes: Iterable[str]) -> list[str]:
    return sorted({MODES[mode] for mode in modes})


class Translator:
    """One run's stream chunks as events, in the modes the client asked for."""

    def __init__(self, modes: Iterable[str]) -> None:
        self.modes = set(modes)
        self.partial: dict[str, Any] = {}  # message ID → what arrived of it so far

    def events(self, chunk: Any) -> list[Event]:
        """The events of one chunk of ``astream(stream_mode=[...], subgraphs=...)``."""
        if len(chunk) == 3:
            namespace, mode, data = chunk
        else:
            (mode, data), namespace = chunk, ()
        suffix = "".join(f"|{part}" for part in namespace)
        if mode != "messages":
            return [(mode + suffix, dumps(data))]
        message, metadata = data
        found: list[Event] = []
        if "messages-tuple" in self.modes:
            found.append(("messages" + suffix, dumps([as_chunk(message), metadata])))
        if "messages" in self.modes:
            found.extend(self._legacy(message, metadata, suffix))
        return found

    def _legacy(self, message: Any, metadata: Any, suffix: str) -> list[Event]:
        key = str(getattr(message, "id", None) or id(message))
        found: list[Event] = []
        if key not in self.partial:
            found.append(("messages/metadata" + suffix, dumps({key: {"metadata": metadata}})))
            self.partial[key] = message
        elif isinstance(message, BaseMessageChunk):
            self.partial[key] = self.partial[key] + message
        if isinstance(message, BaseMessageChunk):
            found.append(("messages/partial" + suffix, dumps([self.partial[key]])))
            if getattr(message, "chunk_position", None) != "last":
                return found
            # A streamed message's last chunk: it is whole now, not only at the run's end.
            message = message_chunk_to_message(self.partial[key])
        self.partial.pop(key, None)
        found.append(("messages/complete" + suffix, dumps([message])))
        return found

    def leftovers(self) -> list[Event]:
        """``messages/complete`` for messages that were still growing when the run ended."""
        done = [("messages/complete", dumps([m])) for m in self.partial.values()]
        self.partial.clear()
        return done


def metadata_event(run_id: str, attempt: int) -> Event:
    return ("metadata", dumps({"run_id": run_id, "attempt": attempt}))


def error_event(exc: BaseException, message: str) -> Event:
    return ("error", dumps({"error": type(exc).__name__, "message": message}))
