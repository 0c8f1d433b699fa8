"""Choosing the chat model: OpenAI (or any compatible server) or the offline one.

``ChatOpenAI`` when ``OPENAI_API_KEY`` is set, with the model name from
``DURABLE_AGENT_MODEL`` and the server from ``OPENAI_BASE_URL``; the offline
scripted model otherwise, or whenever ``DURABLE_AGENT_MODEL=offline``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel

from checkpointing import ConfigError, add_secret, redact
from graphs.offline import OfflineChatModel

OFFLINE = "offline"
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
DEFAULT_OPENAI_URL = "https://api.openai.com/v1"
MODEL_TIMEOUT = 60  # seconds per request
MAX_DETAIL_CHARS = 160


def offline_delay(env: Mapping[str, str]) -> float:
    raw = env.get("DURABLE_AGENT_OFFLINE_DELAY", "").strip()
    try:
        delay = float(raw or 0)
    except ValueError:
        delay = -1.0
    if not 0 <= delay <= 3600:
        raise ConfigError(
            f"DURABLE_AGENT_OFFLINE_DELAY={raw!r} is not a number of seconds from 0 to 3600; "
            "fix or unset it"
        )
    return delay


def openai_model_name(env: Mapping[str, str]) -> str | None:
    """The name of the OpenAI-compatible model *env* asks for; None: the offline model."""
    name = env.get("DURABLE_AGENT_MODEL", "").strip()
    if name == OFFLINE or not env.get("OPENAI_API_KEY"):
        return None
    return name or DEFAULT_OPENAI_MODEL


def make_model(env: Mapping[str, str] | None = None) -> BaseChatModel:
    """The model the environment asks for; see the module docstring."""
    env = os.environ if env is None else env
    name = openai_model_name(env)
    if name is None:
        return OfflineChatModel(delay=offline_delay(env))
    from graphs.openai_model import ScrubbedChatOpenAI

    add_secret(env.get("OPENAI_API_KEY"))  # also when *env* is not the process's own
    return ScrubbedChatOpenAI(
        model=name,
        api_key=env["OPENAI_API_KEY"],
        base_url=env.get("OPENAI_BASE_URL") or None,
        timeout=MODEL_TIMEOUT,
        max_retries=2,
    )


def describe_model(model: BaseChatModel) -> str:
    """A short label for the command line, e.g. 'offline' or 'openai:gpt-4o-mini'."""
    if isinstance(model, OfflineChatModel):
        return "offline scripted model"
    return f"{model._llm_type}:{getattr(model, 'model_name', '?')}"


class ModelUnavailable(Exception):
    """The model could not answer; the message is the one line the user reads."""


@dataclass(frozen=True)
class ModelFailure:
    """Why the model server did not answer, and what to do about it."""

    problem: str  # what went wrong, naming the server
    fix: str  # what to change or do, naming the variable
    misconfigured: bool  # a setting is wrong: sending the same request again fails the same way


def server_url(env: Mapping[str, str] | None = None) -> str:
    """The model server's URL as it may be printed (no password)."""
    env = os.environ if env is None else env
    return redact(env.get("OPENAI_BASE_URL") or DEFAULT_OPENAI_URL)


def model_failure(exc: BaseException, env: Mapping[str, str] | None = None) -> ModelFailure | None:
    """What *exc* says about the model server, or None if it is not a model server's error."""
    openai = sys.modules.get("openai")  # imported only when a real model is used
    if openai is None or not isinstance(exc, openai.APIError):
        return None
    env = os.environ if env is None else env
    at = f"the model server at {server_url(env)}"
    if isinstance(exc, openai.APITimeoutError):
        return ModelFailure(
            f"{at} did not answer within {MODEL_TIMEOUT} seconds",
            "check that it is up and that OPENAI_BASE_URL is right, or try again later",
            False,
        )
    if isinstance(exc, openai.APIConnectionError):
        return ModelFailure(
            f"cannot reach {at} ({_root_cause(exc)})",
            "check that it is running and that OPENAI_BASE_URL is right",
            False,
        )
    if isinstance(exc, openai.APIStatusError):
        return _status_failure(at, exc.status_code, _detail(exc), env)
    return None


def describe_model_error(exc: BaseException) -> str | None:
    """One line for a model server's error (what went wrong, what to fix), else None."""
    failure = model_failure(exc)
    return None if failure is None else f"{failure.problem}: {failure.fix}"


def _status_failure(at: str, status: int, detail: str, env: Mapping[str, str]) -> ModelFailure:
    said = f"({status}: {detail})" if detail else f"({status})"
    model = (env.get("DURABLE_AGENT_MODEL") or "").strip() or DEFAULT_OPENAI_MODEL
    if status == 401:
        return ModelFailure(f"{at} rejected OPENAI_API_KEY {said}", "set a valid key", True)
    if status == 403:
        return ModelFailure(
            f"{at} does not let OPENAI_API_KEY use model {model!r} {said}",
            "use a key that may, or another DURABLE_AGENT_MODEL",
            True,
        )
    if status == 404:
        return ModelFailure(
            f"{at} has no model {model!r}, or OPENAI_BASE_URL is not its API root {said}",
            "set DURABLE_AGENT_MODEL to a model it serves, or fix OPENAI_BASE_URL",
            True,
        )
    if status == 429:
        return ModelFailure(
            f"{at} is limiting requests for OPENAI_API_KEY {said}",
            "wait a little, or raise the key's rate limit or quota",
            False,
        )
    if status >= 500:
        return ModelFailure(f"{at} failed {said}", "try again later", False)
    return ModelFailure(
        f"{at} refused the request {said}",
        "check that DURABLE_AGENT_MODEL names a chat model that can call tools",
        True,
    )


def _detail(exc: Any) -> str:
    """The server's own words, from an OpenAI-style error body if it sent one."""
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    text = body.get("message") if isinstance(body, dict) else body
    text = " ".join(str(text or "").split())
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 1] + "…"


def _root_cause(exc: BaseException) -> str:
    """The innermost error's words, e.g. '[Errno 111] Connection refused'."""
    for _ in range(20):  # a chain is short; the bound guards against a cycle
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return " ".join(str(exc).split())[:MAX_DETAIL_CHARS] or type(exc).__name__
