"""Storage configuration, validated once at the edge.

Everything has a default so that ``Database()`` with no arguments gives the embedded
SQLite file; setting ``METAEXPERT_DATABASE_URL`` (or passing ``url``) switches to
PostgreSQL without touching any other code.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from metaexpert.storage.urls import DEFAULT_DATABASE_URL, parse_database_url


class StorageSettings(BaseSettings):
    """How to reach the database and how hard to try.

    ``retry_attempts`` and the waits apply to every short transaction: a locked SQLite
    file or a restarting PostgreSQL server is retried with exponential backoff and
    jitter before ``StorageUnavailableError`` is raised.
    """

    # hide_input_in_errors: a rejected URL may carry a password; errors must not echo it.
    model_config = SettingsConfigDict(
        env_prefix="METAEXPERT_", extra="forbid", frozen=True, hide_input_in_errors=True
    )

    database_url: str = Field(default=DEFAULT_DATABASE_URL)
    retry_attempts: int = Field(default=5, ge=1, le=100)
    retry_initial_wait_seconds: float = Field(default=0.05, ge=0.0, le=60.0)
    retry_max_wait_seconds: float = Field(default=2.0, ge=0.0, le=600.0)
    connect_timeout_seconds: int = Field(default=5, ge=1, le=300)
    sqlite_busy_timeout_ms: int = Field(default=5_000, ge=0, le=600_000)
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "FULL"
    pool_size: int = Field(default=5, ge=1, le=100)
    echo_sql: bool = False

    @field_validator("database_url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        parse_database_url(value)
        return value
