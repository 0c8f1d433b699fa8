"""Where settings come from: environment variables with one prefix, and defaults.

Precedence is always: an explicit argument (or command-line flag), then the
``DURABLE_AGENT_*`` environment variable, then the default here. The default
database is a SQLite file in the user's data directory, so every working
directory finds the same conversations; ``DURABLE_AGENT_HOME`` moves it.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from checkpointing.errors import ConfigError
from checkpointing.urls import APP_NAME, DEFAULT_DB_FILE, URL_HELP, data_dir, default_db_url

__all__ = ["APP_NAME", "DEFAULT_DB_FILE", "ConfigError", "Settings", "load_settings"]


class Settings(BaseSettings):
    """Every knob of the storage layer; each maps to ``DURABLE_AGENT_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="DURABLE_AGENT_", extra="ignore")

    db: str | None = None
    home: Path | None = None
    connect_timeout: float = Field(5.0, gt=0, le=300)
    pool_min_size: int = Field(1, ge=0, le=100)
    pool_max_size: int = Field(10, ge=1, le=1000)
    pool_timeout: float = Field(30.0, gt=0)
    # The longest any one wait for the server may take (a statement, a pool's checkout
    # check, a lease's release): a server that stops answering fails, never hangs.
    query_timeout: float = Field(60.0, gt=0)
    # Server-side prepared statements, as upstream's savers use; off behind a pooler that
    # cannot carry them (PgBouncer before 1.21 in transaction mode, Supavisor).
    pg_prepare: bool = True
    sqlite_busy_timeout: float = Field(5.0, ge=0)
    # How long the stream events of a finished run are kept, for a client that reconnects
    # with Last-Event-ID (seconds); ``serve`` and ``prune`` drop older ones.
    run_events_keep: float = Field(86400.0, ge=0)

    @model_validator(mode="after")
    def _pool_can_work(self) -> Settings:
        if self.pool_min_size > self.pool_max_size:
            raise ValueError(
                f"DURABLE_AGENT_POOL_MIN_SIZE ({self.pool_min_size}) is above "
                f"DURABLE_AGENT_POOL_MAX_SIZE ({self.pool_max_size}): no pool can be both"
            )
        return self

    def data_dir(self) -> Path:
        return data_dir(self.home)

    def default_db_url(self) -> str:
        return default_db_url(self.home)

    def db_url(self, explicit: str | None = None) -> str:
        """The database URL by precedence: *explicit*, ``DURABLE_AGENT_DB``, default.

        An empty URL given or set is an error, never a silent fall back to the default
        file: ``--db "$TYPO"`` would otherwise read and write a database nobody named.
        """
        if explicit is not None:
            if not explicit.strip():
                raise ConfigError(f"the database URL given is empty: {URL_HELP}")
            return explicit
        if self.db is not None:
            if not self.db.strip():
                raise ConfigError(
                    f"DURABLE_AGENT_DB is set but empty: {URL_HELP}, or unset it to use "
                    "the default file"
                )
            return self.db
        return self.default_db_url()


def load_settings() -> Settings:
    """Read the environment now; a bad value becomes one ``ConfigError``."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"DURABLE_AGENT_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            if err["loc"]
            else err["msg"].removeprefix("Value error, ")  # a check across settings
            for err in exc.errors()
        )
        raise ConfigError(f"bad setting: {problems}; fix or unset the variable") from None
