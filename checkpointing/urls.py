"""Parsing database URLs, and keeping passwords out of anything printed.

Owns the URL grammar (``sqlite:///PATH``, ``postgresql://...``, ``memory://``),
the default URL (a SQLite file in the user's data directory) and ``redact``. It
does not open anything: that is ``checkpointing.opening``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, unquote, urlsplit

from checkpointing.errors import UnsupportedURL

APP_NAME = "durable-agent"
DEFAULT_DB_FILE = "durable-agent.sqlite"
URL_HELP = "use sqlite:///PATH, postgresql://USER@HOST:PORT/DBNAME or memory://"

POSTGRES_SCHEMES = ("postgresql", "postgres")
# A URL's password runs from the ":" after the user to the *last* "@" before the host:
# passwords hold unencoded "@", ":" and "/" too, and stopping at the first "@" printed
# the rest. Where the host ends is unknowable then, so the whole run up to that "@" goes.
_PASSWORD_IN_URL = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)\S*(?=@)", re.I)
# ?password=... (and sslpassword, the client key's) in a URL's query: up to the next "&".
_PASSWORD_IN_QUERY = re.compile(r"(?P<head>[?&](?:ssl)?password=)[^&#\s]*", re.I)
# password=... in a libpq DSN, quoted (with backslash escapes) or up to a space.
_PASSWORD_IN_DSN = re.compile(
    r"(?P<head>(?<![?&])(?<![?&]ssl)password\s*=\s*)('(?:[^'\\]|\\.)*'?|\S+)", re.I
)


def redact(text: str) -> str:
    """Replace every password in *text* (URL, URL query or ``password=`` form) with ``***``."""
    text = _PASSWORD_IN_URL.sub(r"\g<head>***", text)
    text = _PASSWORD_IN_QUERY.sub(r"\g<head>***", text)
    return _PASSWORD_IN_DSN.sub(r"\g<head>***", text)


@dataclass(frozen=True)
class DatabaseURL:
    """A validated database URL. ``str()`` gives the redacted form."""

    raw: str
    scheme: str  # "sqlite", "postgresql" or "memory"
    path: Path | None = None  # SQLite only

    def __str__(self) -> str:
        return redact(self.raw)

    @property
    def password(self) -> str | None:
        return urlsplit(self.raw).password


def data_dir(home: Path | None) -> Path:
    """Where the default database lives: *home* (``DURABLE_AGENT_HOME``) if set, else the
    platform's user data directory (``~/.local/share/durable-agent`` on Linux)."""
    if home is not None:
        return home.expanduser()
    import platformdirs  # only when no database is named

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_db_url(home: Path | None) -> str:
    return f"sqlite:///{data_dir(home) / DEFAULT_DB_FILE}"


def parse_url(url: str) -> DatabaseURL:
    """Validate *url* and say what backend it names; raise ``UnsupportedURL`` if none."""
    if not isinstance(url, str) or not url.strip():
        raise UnsupportedURL(f"no database URL given: {URL_HELP}")
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:  # its message never quotes the URL
        raise UnsupportedURL(
            f"malformed database URL {redact(url)!r} ({exc}): {URL_HELP}"
        ) from None
    scheme = parts.scheme.lower()
    if scheme in POSTGRES_SCHEMES:
        _check_postgres(url, parts)
        return DatabaseURL(url.strip(), "postgresql")
    if scheme == "sqlite":
        return DatabaseURL(url.strip(), "sqlite", _sqlite_path(url.strip()))
    if scheme == "memory":
        return DatabaseURL(url.strip(), "memory")
    raise UnsupportedURL(f"cannot open {redact(url)!r}: {URL_HELP}")


def _check_postgres(url: str, parts: SplitResult) -> None:
    """Refuse a PostgreSQL URL libpq would misread; the messages never quote a password
    (Python's own port error quotes what follows the ":", which may be one)."""
    if parts.netloc.count("@") > 1 or "@" in parts.path:
        raise UnsupportedURL(
            f"malformed database URL {redact(url)!r}: its password holds an unencoded "
            "'@' or '/'; percent-encode it (%40, %2F), or leave it out of the URL and "
            "use PGPASSWORD or ~/.pgpass"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise UnsupportedURL(
            f"malformed database URL {redact(url)!r} (its port is not a number from 0 "
            f"to 65535): {URL_HELP}"
        ) from None
    if not parts.hostname and "host=" not in parts.query:
        raise UnsupportedURL(f"malformed database URL {redact(url)!r} (no host): {URL_HELP}")


def _sqlite_path(url: str) -> Path:
    # sqlite:///relative/x.sqlite and sqlite:////absolute/x.sqlite, as SQLAlchemy reads them:
    # everything after the third slash is the path exactly as a shell would take it.
    parts = urlsplit(url)
    if parts.netloc or not url.lower().startswith("sqlite:///") or parts.query or parts.fragment:
        raise UnsupportedURL(
            f"malformed SQLite URL {redact(url)!r}: use sqlite:///relative/path.sqlite "
            "or sqlite:////absolute/path.sqlite"
        )
    raw = unquote(url[len("sqlite:///") :])
    if not raw or raw.endswith("/") or raw == ":memory:":
        raise UnsupportedURL(
            f"SQLite URL {redact(url)!r} names no file: use sqlite:///path/to/file.sqlite "
            "(or memory:// for a throwaway database)"
        )
    return Path(raw).expanduser()
