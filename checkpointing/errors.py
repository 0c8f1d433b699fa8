"""The errors this package raises, and nothing else.

Each error also subclasses the standard exception it resembles, so callers who
do not know this package can still catch it. Messages name the problem and the
fix and never contain a password: they are built from redacted URLs only.
Turning these into exit codes is the command line's job, not the library's.
"""

from __future__ import annotations


class CheckpointingError(Exception):
    """Base class for every error raised by ``checkpointing``."""


class ConfigError(CheckpointingError, ValueError):
    """A setting (environment variable or argument) has an unusable value."""


class UnsupportedURL(ConfigError):
    """The database URL is malformed or names a backend we do not support."""


class DatabaseUnavailable(CheckpointingError, ConnectionError):
    """The database server could not be reached or refused us."""


class DatabaseNotFound(CheckpointingError, LookupError):
    """The server is up but the named database does not exist."""


class InvalidDatabase(CheckpointingError):
    """The target exists but is not a usable checkpoint database."""


# What reading a damaged or crafted row can raise: InvalidDatabase from our own checks,
# and the ValueError, TypeError or LookupError of a decoder given bytes it cannot read.
# Commands that go over every thread skip and name a thread that raises one of these.
DAMAGED_ROW = (InvalidDatabase, ValueError, TypeError, LookupError, AttributeError)


def damaged(what: str) -> InvalidDatabase:
    """The one error for stored rows that cannot be what we wrote: *what* says which."""
    return InvalidDatabase(
        f"{what}; the database was changed outside durable-agent: restore it from a backup "
        "or delete the thread"
    )


class InvalidIdentifier(CheckpointingError, ValueError):
    """A thread or user ID is not of the accepted form."""


class InvalidText(CheckpointingError, ValueError):
    """A run's input holds text that no database can store (a lone surrogate)."""


class ThreadNotFound(CheckpointingError, LookupError):
    """No such thread for this user (foreign threads look exactly the same)."""


class UnwritableLocation(CheckpointingError, PermissionError):
    """The database file or its directory cannot be created or written."""


class ThreadBusy(CheckpointingError):
    """Another run holds this thread right now."""


class NothingToResume(CheckpointingError):
    """The thread is finished, idle, or has given up: resume has nothing to continue."""


class LeaseLost(CheckpointingError, ConnectionError):
    """A run lost its hold on its thread: it was stopped, and nothing more of it saved."""


class LangGraphDatabase(DatabaseNotFound):
    """The database holds only LangGraph's own savers' rows: none of ours to read."""


def langgraph_only(where: str) -> LangGraphDatabase:
    """*where* holds LangGraph's own savers' rows and none of ours: refused where ours are
    needed and the database must not change (setting up our tables there would alter a
    database its owner may still open with LangGraph's savers)."""
    return LangGraphDatabase(
        f"{where} was written by LangGraph's own savers and holds no durable-agent "
        "conversations; it was left untouched. To continue its threads here, open it with "
        "'durable-agent chat --db URL' (which adds durable-agent's tables beside LangGraph's)"
        " or from Python with open_saver"
    )


class AmbiguousThread(ThreadNotFound):
    """A thread ID prefix that more than one of the user's conversations starts with."""
