"""Which URL opens which backend: the one place a backend is chosen.

A URL's scheme picks its opener (``sqlite``, ``postgresql``, ``memory``); each opener
builds one ``Backend`` (``backend.py``) from its kind's parts, in this package: the
file or the pool, the saver, the leases, the Store. Each kind's module is imported only
when its scheme is used, so a SQLite user never loads psycopg. Opened backends are
registered for ``backend_of`` while they are open.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when a backend is opened, not by the light modules beside
    from checkpointing.backend import Backend, Request

# What each kind's module provides: its backend, open for the ``with`` block.
Opener = Callable[["Request"], AbstractContextManager["Backend"]]


# scheme -> (module, opener); the module is imported when its scheme is first used.
OPENERS = {
    "sqlite": ("checkpointing.backends.sqlite", "open_sqlite"),
    "postgresql": ("checkpointing.backends.postgres", "open_postgres"),
    "memory": ("checkpointing.backends.memory", "open_memory"),
}


def opener_for(scheme: str) -> Opener:
    module, name = OPENERS[scheme]
    opener: Opener = getattr(importlib.import_module(module), name)
    return opener


@contextmanager
def open_backend(request: Request) -> Iterator[Backend]:
    """The backend the request's URL scheme names, ready and migrated; closed on exit."""
    from checkpointing.backend import registered

    with opener_for(request.url.scheme)(request) as backend, registered(backend):
        yield backend
