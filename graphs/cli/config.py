"""The config file: ``config.toml`` in the user's config directory, below the environment.

Owns finding the file (``DURABLE_AGENT_CONFIG``, else ``config.toml`` under the
platform's config dir, ``~/.config/durable-agent`` on Linux), checking its keys and
their types, and handing them on. It does so the simplest faithful way: at start-up,
each key not already set in the environment becomes its ``DURABLE_AGENT_<KEY>``
variable, so everything downstream (and any child process) sees one precedence:
flags, then environment variables, then this file, then defaults. Whether a value is
in range is for whoever reads the variable (``checkpointing.settings``, the models).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from checkpointing.errors import ConfigError

APP_NAME = "durable-agent"
CONFIG_VARIABLE = "DURABLE_AGENT_CONFIG"

# key -> the TOML types it takes. The first five are the everyday ones; the rest are the
# storage settings of checkpointing.settings, by their lower-case names.
TEXT, WHOLE, NUMBER, SWITCH = "a string", "a whole number", "a number", "true or false"
KEYS = {
    "db": TEXT,
    "user": TEXT,
    "model": TEXT,
    "system": TEXT,
    "context_tokens": WHOLE,
    "home": TEXT,
    "connect_timeout": NUMBER,
    "pool_min_size": WHOLE,
    "pool_max_size": WHOLE,
    "pool_timeout": NUMBER,
    "query_timeout": NUMBER,
    "pg_prepare": SWITCH,
    "sqlite_busy_timeout": NUMBER,
    "run_events_keep": NUMBER,
}


def config_path() -> Path:
    """The file to read: the one ``DURABLE_AGENT_CONFIG`` names, else the default one."""
    named = os.environ.get(CONFIG_VARIABLE)
    if named is not None:
        if not named.strip():
            raise ConfigError(
                f"{CONFIG_VARIABLE} is set but empty: name a TOML file, or unset it to use "
                f"{default_config_path()}"
            )
        return Path(named).expanduser()
    return default_config_path()


def default_config_path() -> Path:
    import platformdirs  # only here: ~7 ms, and most runs never ask

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


def read_config(path: Path) -> dict[str, str]:
    """The file's settings as environment values by variable name; ``{}`` if the default
    file does not exist. Any problem is one ``ConfigError`` naming the file and the fix."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if os.environ.get(CONFIG_VARIABLE) is None:
            return {}
        raise ConfigError(
            f"{CONFIG_VARIABLE} names {path}, which does not exist: create it, or unset "
            f"{CONFIG_VARIABLE}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"cannot read config file {path}: {reason}; fix or remove it") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not valid TOML ({exc}); fix it or remove it"
        ) from None
    return {
        f"DURABLE_AGENT_{key.upper()}": _value(path, key, value) for key, value in table.items()
    }


def _value(path: Path, key: str, value: object) -> str:
    """*value* as its environment variable would hold it, once its type is right."""
    kind = KEYS.get(key)
    if kind is None:
        raise ConfigError(
            f"config file {path}: unknown key {key!r}; the keys are {', '.join(KEYS)}"
        )
    fits = {
        TEXT: isinstance(value, str) and bool(value.strip()),
        WHOLE: isinstance(value, int) and not isinstance(value, bool),
        NUMBER: isinstance(value, int | float) and not isinstance(value, bool),
        SWITCH: isinstance(value, bool),
    }[kind]
    if not fits:
        example = {TEXT: '"text"', WHOLE: "8000", NUMBER: "5.0", SWITCH: "true"}[kind]
        raise ConfigError(
            f"config file {path}: {key} = {value!r} is not {kind}"
            f"{' (it is empty)' if value == '' else ''}; write it as {key} = {example}, or "
            "remove the line"
        )
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def apply_config_file() -> None:
    """Set each of the file's keys the environment does not set already (see above)."""
    for variable, value in read_config(config_path()).items():
        os.environ.setdefault(variable, value)
