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
    # where clients reach this server (MCP's auth metadata names it)
    public_url: str = "http://127.0.0.1:8000"
    # DNS-rebinding protection for /mcp: Host and Origin values to accept, e.g. ["book.example.com"];
    # empty turns the check off (behind a proxy that sets Host, or bearer-only API clients)
    mcp_allowed_hosts: list[str] = []
    mcp_allowed_origins: list[str] = []
