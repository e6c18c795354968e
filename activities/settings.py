"""Process configuration, read once from the environment (prefix ESCALATOR_)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ESCALATOR_", env_file=".env", extra="ignore")

    data_dir: Path = Path(".escalator")
    # Plain DATABASE_URL is honoured too, as most platforms set it.
    database_url: str = Field(
        default="sqlite+aiosqlite:///.escalator/escalator.db",
        validation_alias=AliasChoices("ESCALATOR_DATABASE_URL", "DATABASE_URL"),
    )
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_api_key: str | None = None
    temporal_tls: bool = False
    task_queue: str = "tickets"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    temporal_ui_port: int = 8233
    log_level: str = "INFO"


@lru_cache
def get_settings() -> Settings:
    return Settings()
