"""``MongoDBSessionManagerFactory``: session managers per request over one shared client.

Stateless services (FastAPI, Lambda) build a session manager for every request. The factory
makes that free of connection work: every manager borrows the same pooled ``MongoClient``, and
indexes are ensured once per collection per process.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import TYPE_CHECKING, Any

from pymongo import MongoClient

from . import documents as d
from . import documents_indexes as dx
from .blocking_io import run_blocking
from .driver_errors import translate_errors
from .errors import FactoryNotInitializedError
from .fork_safety import renew_in_child
from .mongodb_connection_pool import MongoDBConnectionPool, reachability, split_client_options
from .mongodb_session_manager import MongoDBSessionManager, pop_deprecated_hooks
from .mongodb_session_repository import ensure_indexes

if TYPE_CHECKING:
    from .snapshot_session_manager import MongoDBSnapshotSessionManager
    from .storage import MongoDBStorage

logger = logging.getLogger(__name__)


class MongoDBSessionManagerFactory:
    """Creates ``MongoDBSessionManager`` objects that share one client.

    Args:
        connection_string: URI for the process-wide pool (unused when ``client`` is given).
        database_name / collection_name: Defaults for every manager (overridable per call).
        client: A client to borrow instead of the pool; the factory never closes it.
        metadata_fields / application_name: Defaults of every manager (positional, as in the
            original library); ``create_session_manager`` may override them.
        **client_kwargs: Options for the pooled client (``maxPoolSize=...``), or manager defaults
            applied to every manager (:attr:`MANAGER_DEFAULT_KEYS`: ``metadata_fields``, the hooks,
            ``application_name``...); ``metadataHook`` / ``feedbackHook`` work with a
            ``DeprecationWarning``; any other name raises ``TypeError``.
    """

    #: Keyword arguments that become defaults of every manager (overridable per manager).
    MANAGER_DEFAULT_KEYS = (
        "metadata_fields",
        "metadata_hook",
        "feedback_hook",
        "application_name",
        "turn_lease_seconds",
        "busy_timeout",
        "retention_days",
        "redactor",
        "archive_policy",
    )
    _MANAGER_DEFAULT_KEYS = MANAGER_DEFAULT_KEYS

    def __init__(
        self,
        connection_string: str | None = None,
        database_name: str = "database_name",
        collection_name: str = "collection_name",
        client: MongoClient[Any] | None = None,
        metadata_fields: list[str] | None = None,
        application_name: str | None = None,
        **client_kwargs: Any,
    ) -> None:
        if metadata_fields is not None:
            metadata_fields = dx.metadata_field_list(metadata_fields)  # refused now, not at the first request
        self.database_name = database_name
        self.collection_name = collection_name
        kwargs = dict(client_kwargs)
        # Positional in the original library's signature; defaults of every manager like the others.
        kwargs.update(
            {k: v for k, v in (("metadata_fields", metadata_fields), ("application_name", application_name)) if v}
        )
        current = {k: kwargs.pop(k, None) for k in ("metadata_hook", "feedback_hook")}
        hooks = pop_deprecated_hooks(kwargs, **current)
        client_options, defaults = split_client_options(
            kwargs, accepted=self.MANAGER_DEFAULT_KEYS, where="MongoDBSessionManagerFactory()"
        )
        d.validate_application_name(defaults.get("application_name"))
        self.manager_defaults: dict[str, Any] = {**defaults, **{k: v for k, v in hooks.items() if v is not None}}
        if client is not None:
            if client_options:
                logger.warning(
                    "options=<%s> | MongoClient options are ignored when a client is passed", sorted(client_options)
                )
            self._client = client
            self._owns_pool = False
        else:
            if connection_string is None:
                raise ValueError("MongoDBSessionManagerFactory needs a connection_string or a client")
            # The pool counts its users: closing this factory closes the client only if no other uses it.
            self._client = MongoDBConnectionPool.acquire(connection_string, **client_options)
            self._owns_pool = True
        self._closed = False
        self._storages: dict[tuple[str, str], MongoDBStorage] = {}
        self._storages_lock = threading.Lock()

    @property
    def client(self) -> MongoClient[Any]:
        return self._client

    def create_session_manager(self, session_id: str, **overrides: Any) -> MongoDBSessionManager:
        """A manager for ``session_id`` on the shared client (no new connections).

        ``overrides`` may change ``database_name``, ``collection_name``, hooks, ``metadata_fields``,
        ``application_name`` (this session's, if it creates it) or any other manager argument; a
        ``client`` or ``connection_string`` override is refused because it would bypass the pool.
        """
        return self._create(session_id, overrides, False)

    def _create(self, session_id: str, overrides: dict[str, Any], prefetch: bool) -> MongoDBSessionManager:
        if self._closed:
            raise RuntimeError("this MongoDBSessionManagerFactory is closed")
        if "client" in overrides or "connection_string" in overrides:
            raise ValueError("create_session_manager shares the factory's client; create another factory instead")
        overrides = dict(overrides)
        current = {k: overrides.pop(k) for k in ("metadata_hook", "feedback_hook") if k in overrides}
        # Only the hooks given here (a None disables a default hook); camelCase names are renamed.
        hooks = pop_deprecated_hooks(overrides, **current)
        options = {**self.manager_defaults, **overrides, **hooks}
        options.setdefault("database_name", self.database_name)
        options.setdefault("collection_name", self.collection_name)
        return MongoDBSessionManager(session_id=session_id, client=self._client, _prefetch=prefetch, **options)

    async def acreate_session_manager(self, session_id: str, **overrides: Any) -> MongoDBSessionManager:
        """``create_session_manager`` for ``async def`` code: the session and its agents are read off the loop.

        ``Agent(session_manager=await factory.acreate_session_manager(sid))`` then restores without
        I/O, and every write of its turns runs in the library's thread pool, not on the event loop.
        """
        from .blocking_io import run_blocking

        return await run_blocking(self._create, session_id, overrides, True)

    def get_storage(self, database_name: str | None = None, collection_name: str | None = None) -> MongoDBStorage:
        """The ``MongoDBStorage`` of a collection, one per factory: its clients are shared by every manager."""
        from .storage import MongoDBStorage

        key = (database_name or self.database_name, collection_name or self.collection_name)
        with self._storages_lock:
            if key not in self._storages:
                self._storages[key] = MongoDBStorage(database_name=key[0], collection_name=key[1], client=self._client)
            return self._storages[key]

    def create_snapshot_session_manager(self, session_id: str, **overrides: Any) -> MongoDBSnapshotSessionManager:
        """A ``MongoDBSnapshotSessionManager`` on the factory's shared storage (no new connections).

        ``overrides`` work as in :meth:`create_session_manager` (plus Strands' snapshot options such
        as ``save_latest_on`` and ``snapshot_trigger``).
        """
        from .snapshot_session_manager import MongoDBSnapshotSessionManager

        if self._closed:
            raise RuntimeError("this MongoDBSessionManagerFactory is closed")
        if "client" in overrides or "connection_string" in overrides or "storage" in overrides:
            raise ValueError("create_snapshot_session_manager shares the factory's storage; create another factory")
        # Turn leases belong to the message-log path; a snapshot session has no turn to lease.
        message_log_only = ("turn_lease_seconds", "busy_timeout")
        defaults = {k: v for k, v in self.manager_defaults.items() if k not in message_log_only}
        options = {**defaults, **overrides}
        storage = self.get_storage(options.pop("database_name", None), options.pop("collection_name", None))
        return MongoDBSnapshotSessionManager(session_id, storage=storage, **options)

    async def acreate_snapshot_session_manager(
        self, session_id: str, **overrides: Any
    ) -> MongoDBSnapshotSessionManager:
        """The async twin: the first call per collection creates the storage's indexes without blocking the loop."""
        manager = self.create_snapshot_session_manager(session_id, **overrides)
        await manager.mongodb_storage.prepare()
        return manager

    def ensure_indexes(self) -> None:
        """Create the collection's indexes now (e.g. at application start-up) instead of on first use."""
        fields = dx.metadata_index_fields(self.manager_defaults.get("metadata_fields"))
        with translate_errors(None):
            ensure_indexes(self._client[self.database_name][self.collection_name], fields)

    def get_connection_stats(self) -> dict[str, Any]:
        """Pool configuration (or ``borrowed_client``) and whether the server answers a ping right now."""
        if self._owns_pool:
            stats: dict[str, Any] = MongoDBConnectionPool.get_pool_stats()
        else:
            stats = {"borrowed_client": True, **reachability(self._client)}
        stats.update({"database_name": self.database_name, "collection_name": self.collection_name})
        return stats

    async def aensure_indexes(self) -> None:
        """The async twin of :meth:`ensure_indexes` (an async application's start-up), off the event loop."""
        await run_blocking(self.ensure_indexes)

    async def aget_connection_stats(self) -> dict[str, Any]:
        """The async twin of :meth:`get_connection_stats` (a health endpoint): the ping runs off the loop."""
        return await run_blocking(self.get_connection_stats)

    async def aclose(self) -> None:
        """The async twin of :meth:`close` (an async application's shutdown): the storages' async clients
        are closed and awaited on this loop, the pool is released off it."""
        with self._storages_lock:
            storages = list(self._storages.values())
        for storage in storages:
            await storage.aclose()
        await run_blocking(self.close)

    def close(self) -> None:
        """Release the pooled client; the last open factory using it closes it. A borrowed client stays open."""
        if self._closed:
            return
        self._closed = True
        with self._storages_lock:
            for storage in self._storages.values():
                storage.close()
            self._storages.clear()
        if self._owns_pool:
            MongoDBConnectionPool.release(self._client)


_global_lock = threading.RLock()
_global_factory: MongoDBSessionManagerFactory | None = None


renew_in_child(sys.modules[__name__], "_global_lock", threading.RLock)  # the factory itself stays


def initialize_global_factory(
    connection_string: str | None = None,
    database_name: str = "database_name",
    collection_name: str = "collection_name",
    client: MongoClient[Any] | None = None,
    metadata_fields: list[str] | None = None,
    application_name: str | None = None,
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
            metadata_fields=metadata_fields,
            application_name=application_name,
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
