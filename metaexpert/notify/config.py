"""Where alerts go: Apprise URLs and/or an Apprise config file, validated once."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator


class NotificationConfig(BaseModel):
    """``urls`` are Apprise URLs (``tgram://...``, ``mailto://...``, ``json://host/path``);
    ``config_file`` an Apprise YAML/text config (URLs with tags). ``min_level`` drops
    alerts below it; ``title_prefix`` marks which expert or host sent them."""

    model_config = ConfigDict(extra="forbid")

    urls: list[str] = Field(default_factory=list)
    config_file: Path | None = None
    min_level: str = "info"
    title_prefix: str = "MetaExpert"
    timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("min_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.lower()
        if value not in LEVELS:
            raise ValueError(f"unknown alert level {value!r}; expected one of {', '.join(LEVELS)}")
        return value

    @field_validator("config_file")
    @classmethod
    def _exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"Apprise config file {value} does not exist")
        return value


#: Alert levels in increasing severity, mapped onto Apprise's notification types.
LEVELS = ("info", "success", "warning", "failure")
