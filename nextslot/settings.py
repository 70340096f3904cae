"""Typed settings, read once from the environment (prefix NEXTSLOT_) and passed down."""
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEXTSLOT_", extra="ignore")

    # Unset: an embedded PostgreSQL is started with its data under data_dir.
    database_url: str | None = None
    data_dir: Path = Path(".nextslot")
    database_name: str = "nextslot"
    pool_size: int = 10
    hold_minutes: int = 5
    reminder_offsets_minutes: tuple[int, ...] = (24 * 60, 120)
