"""The offline scripted model: deterministic, no key, no network, and says so.

It reads the last human message and, like a real model would, asks for the
calculator on arithmetic, the quadratic solver on ``ax^2 + bx + c = 0``, and
the clock on questions about the time; once the tool answers, it replies with
the result. It streams too, a word at a time (tool calls in the last chunk), so the
command line shows it as it would a real model's tokens. Every reply starts with
``(offline model)`` so that nobody mistakes it for a real one.
``DURABLE_AGENT_OFFLINE_DELAY`` makes each call slow, for demos and tests that
interrupt a run in the middle.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool

PREFIX = "(offline model)"
HELP = (
    f"{PREFIX} I am the offline scripted model, not a real language model. I can do "
    "arithmetic ('what is 12*7?'), solve quadratics ('solve x^2 - 5x + 6 = 0') and tell "
    "the time ('what time is it in Europe/Paris?'), and remember facts about you once you "
    "approve ('remember that my favourite colour is green', 'what do you remember?'). "
    "Set OPENAI_API_KEY to talk to a real model."
)

_WORDS = [
    (r"\bmultiplied by\b|\btimes\b|(?<=\d)\s*[x×]\s*(?=\d)", "*"),
    (r"\bdivided by\b|÷", "/"),
    (r"\bplus\b", "+"),
    (r"\bminus\b", "-"),
    (r"\bto the power of\b", "^"),
]
_ARITHMETIC = re.compile(r"(?:sqrt)?[\d(][\d\s.+\-*/^()sqrt]*")
_OPERATOR = re.compile(r"\d\s*[-+*/^]\s*[\d(]|sqrt\s*\(")
_SQUARE = re.compile(r"x\s*(?:\^\s*2|\*\*\s*2|²)")
_ZONE = re.compile(r"\b(UTC|[A-Z][A-Za-z_]+/[A-Za-z_/]+)\b")
_NUMBER = r"[-+]?\d+(?:\.\d+)?"


def _arithmetic(text: str) -> str | None:
    for pattern, symbol in _WORDS:
        text = re.sub(pattern, symbol, text, flags=re.IGNORECASE)
    candidates = [c.strip() for c in _ARITHMETIC.findall(text) if _OPERATOR.search(c)]
    return max(candidates, key=len) if candidates else None


def _coefficient(text: str) -> float:
    text = text.rstrip("*")
    return float(text + "1") if text in ("", "+", "-") else float(text)


def _quadratic(text: str) -> dict[str, float] | None:
    """Coefficients from 'a=1 b=-5 c=6' or from an equation like '2x^2 - 4x + 2 = 0'."""
    named = {k.lower(): float(v) for k, v in re.findall(rf"\b([abc])\s*=\s*({_NUMBER})", text)}
    if set(named) == {"a", "b", "c"}:
        return named
    if not _SQUARE.search(text):
        return None
    compact = _SQUARE.sub("X", text).replace(" ", "")
    found = re.search(rf"[-+\d.*Xx]*X[-+\d.*Xx]*(?:=(?:{_NUMBER}))?", compact)
    if not found or compact[found.end() : found.end() + 1] == "=":
        return None  # no equation, or a right-hand side we cannot read
    left, _, right = found.group(0).partition("=")
    coefficients = {"a": 0.0, "b": 0.0, "c": -float(right or 0)}
    for term in re.findall(r"[-+]?[^-+]+", left):
        if term.endswith("X"):
            coefficients["a"] += _coefficient(term[:-1])
        elif term.endswith("x"):
            coefficients["b"] += _coefficient(term[:-1])
        else:
            try:
                coefficients["c"] += float(term)
            except ValueError:
                return None
    return coefficients if coefficients["a"] else None


_REMEMBER = re.compile(r"\bremember\s+(?:that\s+)?(?P<fact>.+?)[.!]*$", re.IGNORECASE | re.DOTALL)
_RECALL = re.compile(
    r"\b(recall|what do you (remember|know) about me)\b|^what do you remember", re.IGNORECASE
)


def plan_tool_call(text: str) -> tuple[str, dict[str, Any]] | None:
    """Which tool the scripted model calls for *text*, with what arguments."""
    if _RECALL.search(text):
        return "recall", {}
    if (found := _REMEMBER.search(text)) is not None:
        return "remember", {"fact": found.group("fact").strip()}
    if (coefficients := _quadratic(text)) is not None:
        return "solve_quadratic", coefficients
    if re.search(r"\b(time|date|clock|today)\b", text, re.IGNORECASE):
        zone = _ZONE.search(text)
        return "current_time", {"timezone": zone.group(1) if zone else "UTC"}
    if (expression := _arithmetic(text)) is not None:
        return "calculator", {"expression": expression}
    return None


def _describe(name: str, args: dict[str, Any]) -> str:
    if name == "calculator":
        return str(args["expression"])
    if name in ("remember", "recall"):
        return ""
    if name == "solve_quadratic":
        terms = [(args["a"], "x^2"), (args["b"], "x"), (args["c"], "")]
        text = "".join(
            f" {'-' if v < 0 else '+'} {'' if abs(v) == 1 and unit else f'{abs(v):g}'}{unit}"
            for v, unit in terms
            if v
        )
        return (
            text.removeprefix(" + ").replace(" - ", "-", 1 if text.startswith(" - ") else 0).strip()
            + " = 0"
        )
    return f"the time in {args.get('timezone', 'UTC')}"


def respond(messages: Sequence[BaseMessage]) -> AIMessage:
    """The scripted model's next message for this conversation."""
    last = messages[-1] if messages else None
    if isinstance(last, ToolMessage):
        asked = next(
            (m for m in reversed(messages) if isinstance(m, AIMessage) and m.tool_calls), None
        )
        calls = {c["id"]: c for c in asked.tool_calls} if asked else {}
        lines = []
        for message in messages[len(messages) - len(calls) :]:
            if not isinstance(message, ToolMessage) or message.tool_call_id not in calls:
                continue
            call = calls[message.tool_call_id]
            subject = _describe(call["name"], call["args"])
            if message.status == "error":
                lines.append(
                    f"the {call['name']} tool could not answer {subject}: {message.content}"
                )
            elif not subject:  # memory tools: their result is the sentence
                lines.append(message.text)
            elif call["name"] == "calculator":
                lines.append(f"{subject} = {message.content}")
            else:
                lines.append(f"{subject}: {message.content}")
        return AIMessage(f"{PREFIX} " + "; ".join(lines) + ".")
    if isinstance(last, HumanMessage):
        planned = plan_tool_call(last.text)
        if planned is not None:
            name, args = planned
            number = sum(isinstance(m, AIMessage) for m in messages) + 1
            return AIMessage(
                "", tool_calls=[{"name": name, "args": args, "id": f"offline_{number}"}]
            )
    return AIMessage(HELP)


def reply_chunks(message: AIMessage) -> Iterator[AIMessageChunk]:
    """*message* as a model streams it: its text a word at a time (each with the spaces
    after it), then its tool calls in one last chunk. Joined, the chunks are *message*."""
    for word in re.split(r"(?<=\s)(?=\S)", message.text):
        if word:
            yield AIMessageChunk(content=word)
    if message.tool_calls:
        yield AIMessageChunk(
            content="",
            tool_call_chunks=[
                tool_call_chunk(name=c["name"], args=json.dumps(c["args"]), id=c["id"], index=i)
                for i, c in enumerate(message.tool_calls)
            ],
        )


class OfflineChatModel(BaseChatModel):
    """A deterministic stand-in for a chat model that needs no key or network."""

    delay: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "durable-agent-offline"

    def bind_tools(
        self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        # Its tools are known by name; binding changes nothing.
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.delay:
            time.sleep(self.delay)
        return ChatResult(generations=[ChatGeneration(message=respond(messages))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.delay:
            await asyncio.sleep(self.delay)
        return ChatResult(generations=[ChatGeneration(message=respond(messages))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        if self.delay:
            time.sleep(self.delay)
        # The tokens reach callbacks through BaseChatModel, as a real model's do.
        for chunk in reply_chunks(respond(messages)):
            yield ChatGenerationChunk(message=chunk)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        if self.delay:
            await asyncio.sleep(self.delay)
        for chunk in reply_chunks(respond(messages)):
            yield ChatGenerationChunk(message=chunk)
