"""``MongoDBSessionManagerFactory``: session managers per request over one shared client.

Stateless services (FastAPI, Lambda) build a session manager for every request. The factory
makes that free of connection work: every manager borrows the same pooled ``MongoClient``, and
indexes are ensured once per collection per process.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from pymongo import MongoClient

from . import documents as d
from .errors import FactoryNotInitializedError
from .mongodb_connection_pool import MongoDBConnectionPool
from .mongodb_session_manager import MongoDBSessionManager
from .mongodb_session_repository import ensure_indexes

logger = logging.getLogger(__name__)


#: Open factories per pooled client (by identity), so closing one factory never closes the client
#: another open factory still uses. Guarded by the pool's own RLock: one lock, no ordering to get wrong.
_pool_users_lock = MongoDBConnectionPool._lock
_pool_users: dict[int, tuple[MongoClient[Any], int]] = {}


class MongoDBSessionManagerFactory:
    """Creates ``MongoDBSessionManager`` objects that share one client.

    Args:
        connection_string: URI for the process-wide pool (unused when ``client`` is given).
        database_name / collection_name: Defaults for every manager (overridable per call).
        client: A client to borrow instead of the pool; the factory never closes it.
        **client_kwargs: Options for the pooled client (``maxPoolSize=...``), or manager defaults
            (``metadata_fields``, ``metadataHook``, ``feedbackHook``) applied to every manager.
    """

    _MANAGER_DEFAULT_KEYS = ("metadata_fields", "metadataHook", "feedbackHook", "metadata_hook", "feedback_hook")

    def __init__(
        self,
        connection_string: str | None = None,
        database_name: str = "database_name",
        collection_name: str = "collection_name",
        client: MongoClient[Any] | None = None,
        **client_kwargs: Any,
    ) -> None:
        self.database_name = database_name
        self.collection_name = collection_name
        self.manager_defaults = {k: client_kwargs.pop(k) for k in self._MANAGER_DEFAULT_KEYS if k in client_kwargs}
        if client is not None:
            self._client = client
            self._owns_pool = False
        else:
            if connection_string is None:
                raise ValueError("MongoDBSessionManagerFactory needs a connection_string or a client")
            with _pool_users_lock:
                self._client = MongoDBConnectionPool.initialize(connection_string, **client_kwargs)
                _, users = _pool_users.get(id(self._client), (self._client, 0))
                _pool_users[id(self._client)] = (self._client, users + 1)
            self._owns_pool = True
        self._closed = False

    @property
    def client(self) -> MongoClient[Any]:
        return self._client

    def create_session_manager(self, session_id: str, **overrides: Any) -> MongoDBSessionManager:
        """A manager for ``session_id`` on the shared client (no new connections).

        ``overrides`` may change ``database_name``, ``collection_name``, hooks, ``metadata_fields``
        or pass Strands options; a ``client`` or ``connection_string`` override is refused
        because it would silently bypass the pool.
        """
        if self._closed:
            raise RuntimeError("this MongoDBSessionManagerFactory is closed")
        if "client" in overrides or "connection_string" in overrides:
            raise ValueError("create_session_manager shares the factory's client; create another factory instead")
        options = {**self.manager_defaults, **overrides}
        options.setdefault("database_name", self.database_name)
        options.setdefault("collection_name", self.collection_name)
        return MongoDBSessionManager(session_id=session_id, client=self._client, **options)

    def ensure_indexes(self) -> None:
        """Create the collection's indexes now (e.g. at application start-up) instead of on first use."""
        fields = self.manager_defaults.get("metadata_fields") or []
        ensure_indexes(self._client[self.database_name][self.collection_name], d.metadata_index_fields(fields))

    def get_connection_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = (
            MongoDBConnectionPool.get_pool_stats() if self._owns_pool else {"status": "borrowed_client"}
        )
        stats.update({"database_name": self.database_name, "collection_name": self.collection_name})
        return stats

    def close(self) -> None:
        """Release the pooled client; the last open factory using it closes it. A borrowed client stays open."""
        if self._closed:
            return
        self._closed = True
        if not self._owns_pool:
            return
        with _pool_users_lock:
            key = id(self._client)
            _, users = _pool_users.get(key, (self._client, 1))
            if users > 1:
                # Another open factory shares the pooled client: leave it open for that one.
                _pool_users[key] = (self._client, users - 1)
                return
            _pool_users.pop(key, None)
            if MongoDBConnectionPool.is_initialized() and MongoDBConnectionPool.get_client() is self._client:
                MongoDBConnectionPool.close()
            else:
                # The pool was re-initialised since (and closed this client then); never close the
                # client that replaced it, which other code is using now.
                self._client.close()


_global_lock = threading.RLock()
_global_factory: MongoDBSessionManagerFactory | None = None


def initialize_global_factory(
    connection_string: str | None = None,
    database_name: str = "database_name",
    collection_name: str = "collection_name",
    client: MongoClient[Any] | None = None,
    **kwargs: Any,
) -> MongoDBSessionManagerFactory:
    """Create the process-wide factory (call once at start-up); a previous one is closed."""
    global _global_factory
    with _global_lock:
        if _global_factory is not None:
            logger.info("global factory | re-initialised; closing the previous factory")
            _global_factory.close()
        _global_factory = MongoDBSessionManagerFactory(
            connection_string=connection_string,
            database_name=database_name,
            collection_name=collection_name,
            client=client,
            **kwargs,
        )
        return _global_factory


def get_global_factory() -> MongoDBSessionManagerFactory:
    """The factory from ``initialize_global_factory``; raises if there is none."""
    with _global_lock:
        if _global_factory is None:
            raise FactoryNotInitializedError(
                "the global factory is not initialized: call initialize_global_factory(...) at start-up"
            )
        return _global_factory


def close_global_factory() -> None:
    """Close and forget the global factory (application shutdown)."""
    global _global_factory
    with _global_lock:
        if _global_factory is not None:
            _global_factory.close()
        _global_factory = None
