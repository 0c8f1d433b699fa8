"""How many tokens a prompt may take: ``DURABLE_AGENT_CONTEXT_TOKENS``, else a family default.

The defaults stay under each family's context window with room to spare, and under
100k even where the window is larger, so a long conversation's every turn does not
cost a whole window:

=====================================================  ==============  =========
model                                                  context window  budget
=====================================================  ==============  =========
gpt-4.1, gpt-4.1-mini, gpt-4.1-nano                    ~1M             96,000
gpt-4o, gpt-4o-mini, gpt-4-turbo, gpt-5*, o1, o3, o4*  128k-400k       96,000
gpt-4 (the first, 8k)                                  8,192           6,000
gpt-3.5-turbo                                          16,385          12,000
any other name (a model on a compatible server)        unknown         6,000
the offline scripted model                             none            8,000
=====================================================  ==============  =========

Whichever it is, the window holds what is left once the reply's reserve, the summary's
cap and the system prompt and tool schemas are taken out (``window.Budget``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from checkpointing import ConfigError

VARIABLE = "DURABLE_AGENT_CONTEXT_TOKENS"
MIN_TOKENS, MAX_TOKENS = 256, 10_000_000
LARGE = 96_000
# (name prefixes, budget), first match wins: gpt-4o and gpt-4.1 before plain gpt-4.
FAMILIES: list[tuple[tuple[str, ...], int]] = [
    (("gpt-4.1", "gpt-4o", "chatgpt-4o", "gpt-4-turbo", "gpt-5", "o1", "o3", "o4"), LARGE),
    (("gpt-3.5-turbo",), 12_000),
    (("gpt-4",), 6_000),
]
UNKNOWN_MODEL = 6_000  # compatible servers often serve 8k-context models
OFFLINE = 8_000


def family_budget(model: Any) -> int:
    """The default budget for *model* (see the table above)."""
    from graphs.offline import OfflineChatModel

    if isinstance(model, OfflineChatModel):
        return OFFLINE
    name = str(getattr(model, "model_name", "") or "").lower()
    for prefixes, budget in FAMILIES:
        if name.startswith(prefixes):
            return budget
    return UNKNOWN_MODEL


def env_budget(env: Mapping[str, str] | None = None) -> int | None:
    """``DURABLE_AGENT_CONTEXT_TOKENS`` as a number, None if unset; ConfigError if bad."""
    env = os.environ if env is None else env
    raw = env.get(VARIABLE, "").strip().replace("_", "")
    if not raw:
        return None
    if not raw.isdigit() or not MIN_TOKENS <= int(raw) <= MAX_TOKENS:
        raise ConfigError(
            f"{VARIABLE}={env.get(VARIABLE)!r} is not a whole number of tokens from "
            f"{MIN_TOKENS} to {MAX_TOKENS}; fix or unset it"
        )
    return int(raw)


def context_budget(model: Any, explicit: int | None = None) -> int:
    """The budget: *explicit* if given, else the environment's, else *model*'s family's."""
    if explicit is not None:
        if not MIN_TOKENS <= explicit <= MAX_TOKENS:
            raise ConfigError(
                f"a context budget of {explicit} tokens is outside {MIN_TOKENS} to {MAX_TOKENS}"
            )
        return explicit
    return env_budget() or family_budget(model)
