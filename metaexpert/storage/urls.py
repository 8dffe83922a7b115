"""Database URLs: the default, the backend they select, and their safe (redacted) form."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from metaexpert.core.errors import ConfigurationError

DEFAULT_DATABASE_URL = "sqlite:///var/metaexpert.sqlite"
SUPPORTED_DRIVERS = ("sqlite", "postgresql+psycopg")

_CREDENTIALS_IN_URL = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@\s]*)@"
)


def parse_database_url(url: str | URL) -> URL:
    """Parse and validate a database URL; only SQLite and PostgreSQL through psycopg 3 are supported."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        raise ConfigurationError(
            f"invalid database URL {redact_text(str(url))!r}: expected e.g. "
            "'sqlite:///var/metaexpert.sqlite' or 'postgresql+psycopg://user:password@host:5432/db'"
        ) from None
    driver = parsed.drivername
    if (
        driver == "postgresql"
        or driver.startswith("postgresql+")
        and driver != "postgresql+psycopg"
    ):
        raise ConfigurationError(
            f"database URL {redact_url(parsed)!r} uses driver {driver!r}; "
            "MetaExpert talks to PostgreSQL through psycopg 3: use 'postgresql+psycopg://...'"
        )
    if driver not in SUPPORTED_DRIVERS and driver != "sqlite+pysqlite":
        raise ConfigurationError(
            f"unsupported database URL {redact_url(parsed)!r}: use 'sqlite:///path/file.sqlite' "
            "or 'postgresql+psycopg://user:password@host:5432/db'"
        )
    return parsed


def redact_url(url: str | URL) -> str:
    """The URL as text with the password replaced by ``***``: safe for logs and errors."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return redact_text(str(url))
    return parsed.render_as_string(hide_password=True)


def redact_text(text: str) -> str:
    """Mask ``user:password@`` credentials in any URL-looking substring of ``text``."""
    return _CREDENTIALS_IN_URL.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL, or None for an in-memory database."""
    if not is_sqlite(url) or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)
