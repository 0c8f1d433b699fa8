"""Choosing the chat model: OpenAI (or any compatible server) or the offline one.

``ChatOpenAI`` when ``OPENAI_API_KEY`` is set, with the model name from
``DURABLE_AGENT_MODEL`` and the server from ``OPENAI_BASE_URL``; the offline
scripted model otherwise, or whenever ``DURABLE_AGENT_MODEL=offline``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from langchain_core.language_models import BaseChatModel

from checkpointing import ConfigError
from graphs.offline import OfflineChatModel

OFFLINE = "offline"
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"


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


def make_model(env: Mapping[str, str] | None = None) -> BaseChatModel:
    """The model the environment asks for; see the module docstring."""
    env = os.environ if env is None else env
    name = env.get("DURABLE_AGENT_MODEL", "").strip()
    if name == OFFLINE or not env.get("OPENAI_API_KEY"):
        return OfflineChatModel(delay=offline_delay(env))
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=name or DEFAULT_OPENAI_MODEL,
        base_url=env.get("OPENAI_BASE_URL") or None,
        timeout=60,
        max_retries=2,
    )


def describe_model(model: BaseChatModel) -> str:
    """A short label for the command line, e.g. 'offline' or 'openai:gpt-4o-mini'."""
    if isinstance(model, OfflineChatModel):
        return "offline scripted model"
    return f"{model._llm_type}:{getattr(model, 'model_name', '?')}"
