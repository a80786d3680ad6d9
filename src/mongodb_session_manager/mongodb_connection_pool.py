"""``MongoDBConnectionPool``: one ``MongoClient`` per process, shared by every session manager.

A ``MongoClient`` is itself a thread-safe connection pool; creating one per request costs a TCP
and TLS handshake plus server discovery each time and exhausts the server's connections under
load. This singleton keeps one for the whole process and owns its whole lifetime: creation, the
count of its users (factories :meth:`~MongoDBConnectionPool.acquire` and
:meth:`~MongoDBConnectionPool.release` it) and closing. It is guarded by an ``RLock`` so code that
re-enters ``initialize`` (a monitoring callback, a factory built inside another) cannot deadlock.

This module is also where keyword arguments are split into ``MongoClient`` options and the rest
(:func:`split_client_options`), and where every client the library creates gets its
:data:`DRIVER_INFO`, so the server's logs and ``$currentOp`` name this library in the handshake.
"""

from __future__ import annotations

import importlib.metadata
import logging
import threading
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import pymongo
import pymongo.common
from pymongo import MongoClient
from pymongo.driver_info import DriverInfo
from pymongo.errors import PyMongoError

from .fork_safety import renew_in_child

logger = logging.getLogger(__name__)

LIBRARY_NAME = "mongodb-session-manager"


def _library_version() -> str:
    try:
        return importlib.metadata.version(LIBRARY_NAME)
    except importlib.metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


#: Appended to the driver's handshake metadata of every client this library creates.
DRIVER_INFO = DriverInfo(name=LIBRARY_NAME, version=_library_version())

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


def uri_option_names(connection_string: str) -> set[str]:
    """The option names in a connection string's query, lower-cased (as MongoDB reads them), without
    resolving anything (a ``mongodb+srv`` URI's TXT record is not read here)."""
    query = connection_string.partition("?")[2]
    return {name.lower() for name, _ in urllib.parse.parse_qsl(query, keep_blank_values=True)}


#: ``MongoClient`` keyword arguments that are not URI options (``pymongo.common.VALIDATORS``).
_EXTRA_CLIENT_KWARGS = frozenset(
    {"host", "port", "document_class", "tz_aware", "connect", "type_registry", "driver", "event_listeners"}
)

#: How long :meth:`MongoDBConnectionPool.get_pool_stats` waits for the server's answer.
STATS_PING_TIMEOUT_S = 2.0


def is_client_option(name: str) -> bool:
    """True for keyword arguments ``MongoClient`` understands (case-insensitive, like URI options)."""
    return name in _EXTRA_CLIENT_KWARGS or name.lower() in pymongo.common.VALIDATORS


def split_client_options(
    kwargs: Mapping[str, Any], *, accepted: Iterable[str] = (), where: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(MongoClient options, the rest)``: the one place keyword arguments are split.

    With ``where`` (the caller's name), a keyword that is neither a client option nor in
    ``accepted`` raises ``TypeError`` naming it, so a typo or an option of another library is
    reported instead of silently ignored (or handed to ``MongoClient``, which says "Unknown option").
    """
    client = {k: v for k, v in kwargs.items() if is_client_option(k)}
    rest = {k: v for k, v in kwargs.items() if k not in client}
    if where is not None:
        allowed = set(accepted)
        unknown = sorted(k for k in rest if k not in allowed)
        if unknown:
            raise TypeError(f"{where} got an unexpected keyword argument {unknown[0]!r}")
    return client, rest


def new_client(connection_string: str, **options: Any) -> MongoClient[Any]:
    """A ``MongoClient`` whose handshake names this library (unless the caller passes its own ``driver``)."""
    options.setdefault("driver", DRIVER_INFO)
    return MongoClient(connection_string, **options)


class MongoDBConnectionPool:
    """Process-wide holder of the shared ``MongoClient``.

    Use the class methods; ``MongoDBConnectionPool()`` returns the one instance (as in the original
    library), on which the same methods work.
    """

    _lock: ClassVar[threading.RLock] = threading.RLock()
    _instance: ClassVar[MongoDBConnectionPool | None] = None
    _client: ClassVar[MongoClient[Any] | None] = None
    _connection_string: ClassVar[str | None] = None
    _options: ClassVar[dict[str, Any]] = {}
    #: Open users of each client the pool created, by identity: (client, count).
    _users: ClassVar[dict[int, tuple[MongoClient[Any], int]]] = {}

    def __new__(cls) -> MongoDBConnectionPool:
        with cls._lock:
            if cls._instance is None:
                cls._instance = super().__new__(cls)
            return cls._instance

    @classmethod
    def initialize(cls, connection_string: str, **client_kwargs: Any) -> MongoClient[Any]:
        """Create the shared client, or return it if it already exists for the same URI and options.

        Calling again with a different URI or options replaces the client (the old one is closed):
        the last configuration wins, and nobody keeps talking to a server they stopped configuring.
        Unknown options raise ``TypeError`` naming them.
        """
        if not connection_string:
            raise ValueError("MongoDBConnectionPool.initialize needs a connection_string")
        split_client_options(client_kwargs, where="MongoDBConnectionPool.initialize()")
        # The pool's defaults fill in what neither the keywords nor the URI's query set: a URI's
        # ?serverSelectionTimeoutMS=300 is the caller's choice too.
        in_uri = uri_option_names(connection_string)
        options = {k: v for k, v in DEFAULT_CLIENT_OPTIONS.items() if k.lower() not in in_uri}
        options.update(client_kwargs)
        if "minPoolSize" not in client_kwargs and "minpoolsize" not in in_uri:
            if "maxpoolsize" in in_uri and "maxPoolSize" not in client_kwargs:
                options.pop("minPoolSize", None)  # the URI's maximum may be below the default minimum
            elif isinstance(options.get("maxPoolSize"), int):
                # A small maxPoolSize must not collide with the default minimum.
                options["minPoolSize"] = min(DEFAULT_CLIENT_OPTIONS["minPoolSize"], options["maxPoolSize"])
        with cls._lock:
            if cls._client is not None and cls._connection_string == connection_string and cls._options == options:
                return cls._client
            # Build the new client first: if the options are invalid, the current client stays usable.
            new: MongoClient[Any] = new_client(connection_string, **options)
            if cls._client is not None:
                logger.info("connection pool | re-initialised with a new configuration; closing the old client")
                cls._client.close()
            cls._client = new
            cls._connection_string = connection_string
            cls._options = options
            logger.debug("connection pool | created client maxPoolSize=<%s>", options.get("maxPoolSize"))
            return cls._client

    @classmethod
    def acquire(cls, connection_string: str, **client_kwargs: Any) -> MongoClient[Any]:
        """:meth:`initialize`, counting the caller as a user until it calls :meth:`release`."""
        with cls._lock:
            client = cls.initialize(connection_string, **client_kwargs)
            _, users = cls._users.get(id(client), (client, 0))
            cls._users[id(client)] = (client, users + 1)
            return client

    @classmethod
    def release(cls, client: MongoClient[Any]) -> None:
        """One user of ``client`` is done; the last one closes it.

        If the pool was re-initialised since (it closed this client then), the new client is never
        closed here: other code is using it now.
        """
        with cls._lock:
            entry = cls._users.get(id(client))
            if entry is None or entry[0] is not client:
                return
            if entry[1] > 1:
                cls._users[id(client)] = (client, entry[1] - 1)
                return
            del cls._users[id(client)]
            if cls._client is client:
                cls.close()
            else:
                client.close()

    @classmethod
    def user_count(cls, client: MongoClient[Any] | None = None) -> int:
        """Open users of ``client`` (default: the current shared client)."""
        with cls._lock:
            target = client if client is not None else cls._client
            entry = cls._users.get(id(target)) if target is not None else None
            return entry[1] if entry is not None and entry[0] is target else 0

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
        """Close the shared client whoever still uses it; the next ``initialize`` creates a new one."""
        with cls._lock:
            if cls._client is not None:
                cls._users.pop(id(cls._client), None)
                cls._client.close()
                logger.debug("connection pool | closed")
            cls._client = None
            cls._connection_string = None
            cls._options = {}

    @classmethod
    def get_pool_stats(cls, ping_timeout: float = STATS_PING_TIMEOUT_S) -> dict[str, Any]:
        """Configuration and state of the pool. Never contains credentials.

        ``status`` is ``"connected"`` only when the server answered a ``ping`` within
        ``ping_timeout`` seconds; otherwise ``"unreachable"`` with the error's type. The ping runs
        outside the pool's lock, so a slow server never blocks other threads' managers.
        """
        with cls._lock:
            client = cls._client
            if client is None:
                return {"status": "not_initialized", "initialized": False}
            options = dict(cls._options)
            hosts = _hosts_of(cls._connection_string or "")
            users = cls.user_count(client)
        stats: dict[str, Any] = {
            "initialized": True,
            "hosts": hosts,
            # What the client runs with, whether a keyword, the URI or the pool's default set it.
            "max_pool_size": client.options.pool_options.max_pool_size,
            "min_pool_size": client.options.pool_options.min_pool_size,
            "options": {k: v for k, v in options.items() if not _is_sensitive(k)},
            "users": users,
        }
        stats.update(reachability(client, ping_timeout))
        return stats


# The shared client stays (pymongo resets its pools in the child); only the lock is new.
renew_in_child(MongoDBConnectionPool, "_lock", threading.RLock)


def reachability(client: MongoClient[Any], timeout: float = STATS_PING_TIMEOUT_S) -> dict[str, Any]:
    """``{"status": "connected", "reachable": True}`` if the server answers a ``ping`` within ``timeout``
    seconds, else ``{"status": "unreachable", "reachable": False, "error": <error type>}``."""
    try:
        with pymongo.timeout(timeout):
            client.admin.command("ping")
    except PyMongoError as exc:
        return {"status": "unreachable", "reachable": False, "error": type(exc).__name__}
    return {"status": "connected", "reachable": True}


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
