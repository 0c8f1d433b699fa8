"""Keeping secrets out of everything stored or printed.

Errors come from anywhere (a model server, a database driver) and may quote a
credential back: a server that echoes the API key it refused, a driver that
prints its connection string. ``scrub`` removes every secret this process knows
of from a text before it is stored (``conversations.last_error``) or printed:
passwords in URLs and DSNs (``redact``), the values of environment variables
whose names say they hold secrets, and values an application registers with
``add_secret``. Graph-agnostic: it knows no model or provider.
"""

from __future__ import annotations

import os
import re

from checkpointing.urls import redact

MASK = "***"
# Names that hold credentials by convention: OPENAI_API_KEY, PGPASSWORD, GITHUB_TOKEN, ...
_SECRET_NAME = re.compile(r"(API_?KEY|PASSWORD|PASSWD|SECRET|TOKEN)$", re.I)
# Shorter values are placeholders ("x", "unused", "ollama"), not secrets; masking them would
# garble every text that happens to hold the word.
MIN_SECRET_CHARS = 8

_registered: set[str] = set()


def add_secret(value: str | None) -> None:
    """Mask *value* wherever ``scrub`` sees it, for the rest of this process."""
    if value and len(value.strip()) >= MIN_SECRET_CHARS:
        _registered.add(value.strip())


def known_secrets() -> list[str]:
    """Every secret value known now, longest first (so a longer one is masked whole)."""
    found = set(_registered)
    for name, value in os.environ.items():
        if _SECRET_NAME.search(name) and len(value.strip()) >= MIN_SECRET_CHARS:
            found.add(value.strip())
    return sorted(found, key=len, reverse=True)


def scrub(text: str) -> str:
    """*text* with every known secret and every password in a URL replaced by ``***``."""
    for secret in known_secrets():
        text = text.replace(secret, MASK)
    return redact(text)
