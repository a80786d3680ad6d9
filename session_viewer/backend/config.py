"""Settings of the Session Viewer backend, read from the environment and an optional ``.env`` file.

Names match the environment variables operators already use (``MONGODB_CONNECTION_STRING``,
``BACKEND_PASSWORD``, ...). Nothing here has a weak default secret: an empty ``BACKEND_PASSWORD``
makes the app generate one at start-up (see :func:`session_viewer.backend.main.create_app`).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mongodb_session_manager import defaults
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
    #: No protected namespaces: ``model_prices_str`` is an env name, not a pydantic attribute (older
    #: pydantic warns about any field starting ``model_``).
    model_config = SettingsConfigDict(
        env_file=(BACKEND_DIR / ".env", ".env"), env_file_encoding="utf-8", extra="ignore", protected_namespaces=()
    )

    mongodb_connection_string: str = Field(default="mongodb://127.0.0.1:27017", description="the MongoDB server")
    database_name: str = Field(default=defaults.DATABASE_NAME, description="database of the sessions")
    collection_name: str = Field(default=defaults.COLLECTION_NAME, description="collection of the sessions")
    backend_password: SecretStr = Field(default=SecretStr(""), description="the viewer password (12+ characters)")

    backend_host: str = Field(default="127.0.0.1", description="address to listen on")
    backend_port: int = Field(default=8882, ge=1, le=65535, description="port to listen on")
    allowed_origins_str: str = Field(
        default=DEFAULT_ORIGINS, description="origins allowed to call the API (CORS), comma-separated; never *"
    )

    max_pool_size: int = Field(default=100, ge=1, description="MongoDB connections at most")
    min_pool_size: int = Field(default=0, ge=0, description="MongoDB connections kept open")
    max_idle_time_ms: int = Field(default=30_000, ge=0, description="close idle connections after this many ms")
    server_selection_timeout_ms: int = Field(default=5_000, ge=100, description="give up finding the server after ms")

    default_page_size: int = Field(default=20, ge=1, description="sessions per search page")
    max_page_size: int = Field(default=100, ge=1, description="largest search page a client may ask for")
    enum_fields_str: str = Field(default="", description="metadata fields shown as dropdowns, comma-separated")
    enum_max_values: int = Field(default=50, ge=1, description="most values of one dropdown")
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

    #: Failed password attempts allowed per client within ``auth_window_seconds`` before 429. Counted in
    #: MongoDB (``lockout_collection_name``), so every worker process and instance shares one count.
    auth_max_failures: int = Field(default=10, ge=1, description="failed logins per client before a lockout")
    auth_window_seconds: int = Field(default=300, ge=1, description="sliding window of the lockout, seconds")
    lockout_collection_name: str = Field(
        default="session_viewer_login_failures", description="collection of failed logins (TTL)"
    )
    #: Proxies (addresses or CIDR networks) whose ``X-Forwarded-For`` is believed. Empty: none, the
    #: peer address is the client. Never trust a header from a peer not listed here.
    trusted_proxies_str: str = Field(default="", description="proxies whose X-Forwarded-For is believed (IPs/CIDRs)")

    #: Server-side time limit of every viewer query (sent as ``maxTimeMS``); over it the API answers 504.
    query_max_time_ms: int = Field(default=5_000, ge=1, description="time limit of every query (maxTimeMS)")
    #: Timeline items per detail page (the frontend loads the next page as the reviewer scrolls).
    timeline_page_size: int = Field(default=50, ge=1, description="timeline items per detail page")
    max_timeline_page_size: int = Field(default=500, ge=1, description="largest timeline page a client may ask for")
    #: Longest reviewer note accepted, in characters.
    max_note_length: int = Field(default=5_000, ge=1, description="longest reviewer note, characters")

    #: Accept a configured ``BACKEND_PASSWORD`` shorter than 12 characters or a common one. For local
    #: demos only; a viewer reachable by others must keep this off.
    allow_weak_password: bool = Field(default=False, description="accept a short or common password (local demos)")

    #: Serve ``frontend_dir`` from the same origin as the API (one port for the whole viewer).
    serve_frontend: bool = False
    frontend_dir: Path = Field(default=FRONTEND_DIR, description="folder of the frontend")

    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        return value.strip().upper() or "INFO"

    @field_validator("allowed_origins_str")
    @classmethod
    def _no_wildcard_origin(cls, value: str) -> str:
        """Every API call carries a password header, so ``*`` would let any web page use it."""
        if any(origin == "*" or "*" in origin for origin in split_csv(value)):
            raise ValueError(
                "ALLOWED_ORIGINS_STR must list exact origins: '*' is refused because the API is called "
                "with password headers (X-Backend-Password / X-Session-Password)"
            )
        return value

    @field_validator("trusted_proxies_str")
    @classmethod
    def _valid_proxies(cls, value: str) -> str:
        for entry in split_csv(value):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as exc:
                raise ValueError(f"TRUSTED_PROXIES_STR: {entry!r} is not an IP address or CIDR network") from exc
        return value

    @property
    def allowed_origins(self) -> list[str]:
        return split_csv(self.allowed_origins_str)

    @property
    def trusted_proxies(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(entry, strict=False) for entry in split_csv(self.trusted_proxies_str)]

    @property
    def timeline_page(self) -> int:
        """The default timeline page size, never above the maximum."""
        return min(self.timeline_page_size, self.max_timeline_page_size)

    @property
    def enum_fields(self) -> list[str]:
        """Configured enum fields as full paths: a bare ``status`` means ``metadata.status``."""
        top_level = (d.SESSION_ID, d.SESSION_TYPE)
        return [f if "." in f or f in top_level else d.metadata_path(f) for f in split_csv(self.enum_fields_str)]

    @property
    def page_size(self) -> int:
        """The default page size, never above the maximum (a misconfiguration must not lift the cap)."""
        return min(self.default_page_size, self.max_page_size)
