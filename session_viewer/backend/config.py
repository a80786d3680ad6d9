"""Settings of the Session Viewer backend, read from the environment and an optional ``.env`` file.

Names match the environment variables operators already use (``MONGODB_CONNECTION_STRING``,
``BACKEND_PASSWORD``, ...). Nothing here has a weak default secret: an empty ``BACKEND_PASSWORD``
makes the app generate one at start-up (see :func:`session_viewer.backend.main.create_app`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mongodb_session_manager import documents as d

BACKEND_DIR = Path(__file__).resolve().parent
FRONTEND_DIR = BACKEND_DIR.parent / "frontend"
DEFAULT_ORIGINS = "http://localhost:8883,http://127.0.0.1:8883"


def split_csv(value: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``: comma-separated env values, blanks dropped."""
    return [part.strip() for part in value.split(",") if part.strip()]


class Settings(BaseSettings):
    """Everything the backend can be configured with. Field names are the env names, lower-cased."""

    #: ``session_viewer/backend/.env`` first, then ``.env`` in the working directory (which wins).
    model_config = SettingsConfigDict(
        env_file=(BACKEND_DIR / ".env", ".env"), env_file_encoding="utf-8", extra="ignore"
    )

    mongodb_connection_string: str = "mongodb://127.0.0.1:27017"
    database_name: str = "examples"
    collection_name: str = "sessions"
    backend_password: SecretStr = SecretStr("")

    backend_host: str = "127.0.0.1"
    backend_port: int = Field(default=8882, ge=1, le=65535)
    allowed_origins_str: str = DEFAULT_ORIGINS

    max_pool_size: int = Field(default=100, ge=1)
    min_pool_size: int = Field(default=0, ge=0)
    max_idle_time_ms: int = Field(default=30_000, ge=0)
    server_selection_timeout_ms: int = Field(default=5_000, ge=100)

    default_page_size: int = Field(default=20, ge=1)
    max_page_size: int = Field(default=100, ge=1)
    enum_fields_str: str = ""
    enum_max_values: int = Field(default=50, ge=1)
    #: A search counts its matches exactly up to this many, then shows "10,000+": never a full scan per click.
    count_cap: int = Field(default=10_000, ge=1)
    #: Time limit of a "contains" search (it reads every key of an index), below the general query limit.
    contains_max_time_ms: int = Field(default=2_000, ge=1)
    #: Prices for the cost estimate on list cards, USD per million tokens, keyed by the stored model id:
    #: ``{"<model id>": {"input": 3.0, "output": 15.0}}``. Empty: cards show no cost.
    model_prices_str: str = ""

    @field_validator("model_prices_str")
    @classmethod
    def _valid_prices(cls, value: str) -> str:
        from .cards import parse_prices

        parse_prices(value)
        return value

    @property
    def model_prices(self) -> dict[str, Any]:
        """The parsed price table (model id -> :class:`session_viewer.backend.cards.Price`)."""
        from .cards import parse_prices

        return dict(parse_prices(self.model_prices_str))

    #: Failed password attempts allowed per client IP within ``auth_window_seconds`` before 429.
    auth_max_failures: int = Field(default=10, ge=1)
    auth_window_seconds: int = Field(default=300, ge=1)

    #: Serve ``frontend_dir`` from the same origin as the API (one port for the whole viewer).
    serve_frontend: bool = False
    frontend_dir: Path = FRONTEND_DIR

    log_level: str = "INFO"

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        return value.strip().upper() or "INFO"

    @property
    def allowed_origins(self) -> list[str]:
        return split_csv(self.allowed_origins_str)

    @property
    def enum_fields(self) -> list[str]:
        """Configured enum fields as full paths: a bare ``status`` means ``metadata.status``."""
        top_level = (d.SESSION_ID, d.SESSION_TYPE)
        return [f if "." in f or f in top_level else d.metadata_path(f) for f in split_csv(self.enum_fields_str)]

    @property
    def page_size(self) -> int:
        """The default page size, never above the maximum (a misconfiguration must not lift the cap)."""
        return min(self.default_page_size, self.max_page_size)
