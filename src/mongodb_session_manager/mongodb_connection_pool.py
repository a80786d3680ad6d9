"""``MongoDBConnectionPool``: one ``MongoClient`` per process, shared by every session manager.

A ``MongoClient`` is itself a thread-safe connection pool; creating one per request costs a TCP
and TLS handshake plus server discovery each time and exhausts the server's connections under
load. This singleton keeps one for the whole process. It is guarded by an ``RLock`` so code that
re-enters ``initialize`` (a monitoring callback, a factory built inside another) cannot deadlock.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, ClassVar

from pymongo import MongoClient

logger = logging.getLogger(__name__)

#: Defaults tuned for stateless services; every one can be overridden per call.
DEFAULT_CLIENT_OPTIONS: dict[str, Any] = {
    "maxPoolSize": 100,
    "minPoolSize": 10,
    "maxIdleTimeMS": 30_000,
    "waitQueueTimeoutMS": 10_000,
    "serverSelectionTimeoutMS": 10_000,
    "connectTimeoutMS": 10_000,
    "retryWrites": True,
    "retryReads": True,
}


class MongoDBConnectionPool:
    """Process-wide holder of the shared ``MongoClient``; use the class methods."""

    _lock: ClassVar[threading.RLock] = threading.RLock()
    _client: ClassVar[MongoClient[Any] | None] = None
    _connection_string: ClassVar[str | None] = None
    _options: ClassVar[dict[str, Any]] = {}

    def __new__(cls) -> MongoDBConnectionPool:  # pragma: no cover - the class is used, not instances
        raise TypeError("MongoDBConnectionPool is a singleton: call its class methods")

    @classmethod
    def initialize(cls, connection_string: str, **client_kwargs: Any) -> MongoClient[Any]:
        """Create the shared client, or return it if it already exists for the same URI.

        Calling again with a different URI or options replaces the client (the old one is closed):
        the last configuration wins, and nobody keeps talking to a server they stopped configuring.
        """
        if not connection_string:
            raise ValueError("MongoDBConnectionPool.initialize needs a connection_string")
        options = {**DEFAULT_CLIENT_OPTIONS, **client_kwargs}
        if "minPoolSize" not in client_kwargs and isinstance(options.get("maxPoolSize"), int):
            # A small maxPoolSize must not collide with the default minimum.
            options["minPoolSize"] = min(DEFAULT_CLIENT_OPTIONS["minPoolSize"], options["maxPoolSize"])
        with cls._lock:
            if cls._client is not None and cls._connection_string == connection_string and cls._options == options:
                return cls._client
            # Build the new client first: if the options are invalid, the current client stays usable.
            new_client: MongoClient[Any] = MongoClient(connection_string, **options)
            if cls._client is not None:
                logger.info("connection pool | re-initialised with a new configuration; closing the old client")
                cls._client.close()
            cls._client = new_client
            cls._connection_string = connection_string
            cls._options = options
            logger.debug("connection pool | created client maxPoolSize=<%s>", options.get("maxPoolSize"))
            return cls._client

    @classmethod
    def get_client(cls) -> MongoClient[Any]:
        """The shared client; raises ``RuntimeError`` if ``initialize`` was not called."""
        with cls._lock:
            if cls._client is None:
                raise RuntimeError("MongoDBConnectionPool is not initialized: call initialize(connection_string)")
            return cls._client

    @classmethod
    def is_initialized(cls) -> bool:
        with cls._lock:
            return cls._client is not None

    @classmethod
    def close(cls) -> None:
        """Close the shared client; the next ``initialize`` creates a new one."""
        with cls._lock:
            if cls._client is not None:
                cls._client.close()
                logger.debug("connection pool | closed")
            cls._client = None
            cls._connection_string = None
            cls._options = {}

    @classmethod
    def get_pool_stats(cls) -> dict[str, Any]:
        """Configuration and state of the pool. Never contains credentials."""
        with cls._lock:
            if cls._client is None:
                return {"status": "not_initialized", "initialized": False}
            hosts = _hosts_of(cls._connection_string or "")
            safe = {k: v for k, v in cls._options.items() if not _is_sensitive(k)}
            return {
                "status": "connected",
                "initialized": True,
                "hosts": hosts,
                "max_pool_size": cls._options.get("maxPoolSize"),
                "min_pool_size": cls._options.get("minPoolSize"),
                "options": safe,
            }


#: Option names (lower-cased fragments) whose values may carry credentials.
_SENSITIVE_OPTION_FRAGMENTS = ("password", "secret", "token", "username", "authmechanismproperties", "credential")


def _is_sensitive(option: str) -> bool:
    name = option.lower()
    return any(fragment in name for fragment in _SENSITIVE_OPTION_FRAGMENTS)


def _hosts_of(uri: str) -> list[str]:
    """The host list of a MongoDB URI, without credentials and without any DNS lookup.

    ``parse_uri`` resolves ``mongodb+srv`` records over DNS; stats must be cheap and never fail,
    so the seed list is read from the URI text itself (the SRV name is reported as given).
    """
    rest = uri.split("://", 1)[-1]
    authority = rest.split("/", 1)[0].split("?", 1)[0]
    hosts = authority.rpartition("@")[2]
    return [host for host in hosts.split(",") if host]
