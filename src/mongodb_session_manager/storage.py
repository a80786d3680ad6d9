"""``MongoDBStorage``: Strands' async ``Storage`` protocol on MongoDB, for ``SnapshotSessionManager``.

A session's latest snapshots are readable fields of the same session document the message-log path
uses (so metadata, feedback, metrics and the Session Viewer keep working); immutable history and
every other key go to two side collections. :mod:`.documents_snapshot` owns that layout.

Event loops. pymongo's ``AsyncMongoClient`` is bound to the loop it is first used on, while Strands'
synchronous entry points (``agent("hi")``, ``initialize``, ``sync_agent``) run the storage through
``run_async``, which makes a new loop per call. Measured on a local mongod (one update + one read):
a new ``AsyncMongoClient`` per loop costs ~11 ms (handshake, server selection), a pooled sync client
in a worker thread ~1.9 ms, native async on its own loop ~0.9 ms. So each operation runs natively on
the ``AsyncMongoClient`` when it is on that client's loop (an application's long-lived loop), and
otherwise (Strands' temporary bridge loops, a second ``asyncio.run``) as the same single driver call
on a pooled ``MongoClient`` in a worker thread. Both paths send the same commands.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import copy
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from bson.codec_options import CodecOptions
from pymongo import AsyncMongoClient, IndexModel, MongoClient
from pymongo.errors import DuplicateKeyError
from strands._async import is_run_async_bridge
from strands.storage.storage import _NAMESPACED, StorageSearchResult

from . import documents as d
from . import documents_snapshot as ds
from .driver_errors import translate_errors
from .errors import InvalidIdentifierError, SessionStoreError, StorageBackendError
from .fork_safety import renew_in_child

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: How often an owned async client is replaced after its event loop closed (then: the thread path).
_MAX_REBINDS = 3

_indexes_lock = threading.Lock()
_indexes_done: set[tuple[tuple[str, ...], str, str]] = set()


renew_in_child(sys.modules[__name__], "_indexes_lock", threading.Lock)


class MongoDBStorage:
    """Strands ``Storage`` over MongoDB: ``write`` / ``read`` / ``delete`` / ``list`` / ``search`` / ``namespace``.

    Args:
        connection_string: MongoDB URI (unused when ``client`` is given).
        database_name / collection_name: The session collection; history and other keys go to
            ``<collection>_snapshot_history`` and ``<collection>_storage``.
        client: A ``MongoClient`` or ``AsyncMongoClient`` to borrow (never closed here). The other
            kind is derived from its settings when needed, and owned (closed by :meth:`close`).
        ensure_indexes: Create the storage's indexes on first use (once per collection per process).
    """

    def __init__(
        self,
        connection_string: str | None = None,
        database_name: str = "database_name",
        collection_name: str = "collection_name",
        client: MongoClient[Any] | AsyncMongoClient[Any] | None = None,
        *,
        ensure_indexes: bool = True,
    ) -> None:
        if client is None and connection_string is None:
            raise ValueError("MongoDBStorage needs a connection_string or a client")
        self._shared = _Clients(connection_string, client)
        self.database_name = database_name
        self.collection_name = collection_name
        self._names = {
            "latest": collection_name,
            "history": f"{collection_name}{ds.HISTORY_SUFFIX}",
            "kv": f"{collection_name}{ds.KV_SUFFIX}",
        }
        self._prefix = ""
        self._ensure_indexes = ensure_indexes

    # ---- lifecycle ------------------------------------------------------------------------------

    @property
    def sync_client(self) -> MongoClient[Any]:
        """The synchronous client (borrowed or derived); the session features use it."""
        return self._shared.sync()

    def close(self) -> None:
        """Close the clients this storage created; borrowed clients stay open."""
        self._shared.close()

    async def prepare(self) -> None:
        """Create the indexes now (once per collection per process) without blocking the event loop."""
        await self._run(None, "latest", lambda c: None)

    async def aclose(self) -> None:
        await self._shared.aclose()

    def namespace(self, prefix: str) -> MongoDBStorage:
        """A view whose keys are under ``prefix/``; it shares this storage's clients and collections."""
        scoped = copy.copy(self)
        scoped._prefix = ds.namespace_prefix(self._prefix, prefix)
        scoped._namespaced = _NAMESPACED  # type: ignore[attr-defined]
        return scoped

    # ---- the Storage protocol ---------------------------------------------------------------------

    async def write(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (one atomic write), overwriting any value."""
        full = self._full_key(key)
        rt = ds.route(full)
        if not isinstance(data, bytes | bytearray | memoryview):
            # bytes(5) would silently store five zero bytes.
            raise TypeError(f"storage data must be bytes, got {type(data).__name__}")
        payload = bytes(data)
        at = d.now()
        if rt.kind == "latest":
            assert rt.session_id is not None
            pipeline = ds.write_latest_pipeline(rt, full, payload, at)
            flt = ds.session_filter(rt.session_id)
            try:
                await self._run(rt.session_id, "latest", lambda c: c.update_one(flt, pipeline, upsert=True))
            except StorageBackendError as exc:
                if not isinstance(exc.__cause__, SessionStoreError) or not isinstance(
                    exc.__cause__.__cause__, DuplicateKeyError
                ):
                    raise
                # Two first writes of one session raced to insert it; the loser updates it now.
                await self._run(rt.session_id, "latest", lambda c: c.update_one(flt, pipeline, upsert=True))
            return
        doc = ds.keyed_document(full, payload, rt, at)
        await self._run(rt.session_id, rt.kind, lambda c: c.replace_one(ds.key_filter(full), doc, upsert=True))

    async def read(self, key: str) -> bytes | None:
        """The bytes stored under ``key``, exactly as written, or None."""
        full = self._full_key(key)
        rt = ds.route(full)
        if rt.kind == "latest":
            assert rt.session_id is not None
            doc = await self._run(
                rt.session_id,
                "latest",
                lambda c: c.find_one(ds.session_filter(rt.session_id), ds.entry_projection(rt)),
            )
            entry = ds.entry_from_document(doc, rt)
        else:
            entry = await self._run(rt.session_id, rt.kind, lambda c: c.find_one(ds.key_filter(full)))
        return ds.decode_payload(entry) if entry else None

    async def delete(self, key: str) -> None:
        """Remove ``key``; a no-op when it does not exist."""
        full = self._full_key(key)
        rt = ds.route(full)
        if rt.kind == "latest":
            assert rt.session_id is not None
            pipeline = ds.delete_latest_pipeline(rt, d.now())
            flt = ds.holds_key_filter(rt.session_id, full)
            await self._run(rt.session_id, "latest", lambda c: c.update_one(flt, pipeline))
            return
        await self._run(rt.session_id, rt.kind, lambda c: c.delete_one(ds.key_filter(full)))

    async def list(self, query: str = "") -> builtins.list[str]:
        """Full keys (relative to this view) starting with ``query``, sorted; one indexed query per collection."""
        prefix = f"{self._prefix}{ds.normalize_prefix(query)}"
        kinds = ds.kinds_for_prefix(prefix)
        keys: set[str] = set()
        if "latest" in kinds:
            docs = await self._run(
                None, "latest", lambda c: c.find(ds.list_sessions_filter(prefix), ds.KEYS_PROJECTION).to_list()
            )
            keys.update(k for doc in docs for k in doc.get(ds.SNAPSHOT_KEYS) or [] if k.startswith(prefix))
        for kind in ("history", "kv"):
            if kind in kinds:
                rows = await self._run(
                    None,
                    kind,
                    lambda c: c.find(ds.list_keyed_filter(prefix), ds.ID_PROJECTION).to_list(),
                )
                keys.update(row[d.ID] for row in rows)
        return sorted(k[len(self._prefix) :] for k in keys)

    async def search(self, query: str) -> builtins.list[StorageSearchResult]:
        """Strands' keyword search (same scores, same order), with candidates found through indexes.

        Every entry keeps its content tokens at write time, so only entries sharing a token with the
        query are read; no key is scanned.
        """
        if not isinstance(query, str):
            raise TypeError(f"search query must be a string, got {type(query).__name__}")
        tokens = ds.query_tokens(query)
        if not tokens:
            return []
        prefix = self._prefix
        kinds = ds.kinds_for_prefix(prefix)
        found: list[tuple[str, bytes, list[str]]] = []
        if "latest" in kinds:
            docs = await self._run(
                None,
                "latest",
                lambda c: c.find(ds.search_sessions_filter(prefix, tokens), ds.SEARCH_SESSIONS_PROJECTION).to_list(),
            )
            for doc in docs:
                for entry in ds.entries_of(doc):
                    if entry[ds.KEY].startswith(prefix):
                        found.append((entry[ds.KEY], ds.decode_payload(entry), entry.get(ds.TOKENS) or []))
        for kind in ("history", "kv"):
            if kind in kinds:
                rows = await self._run(
                    None,
                    kind,
                    lambda c: c.find(ds.search_keyed_filter(prefix, tokens), ds.SEARCH_KEYED_PROJECTION).to_list(),
                )
                found.extend((row[d.ID], ds.decode_payload(row), row.get(ds.TOKENS) or []) for row in rows)
        results = []
        for key, data, entry_tokens in sorted(found):
            relative = key[len(prefix) :]
            score = ds.score(tokens, relative, entry_tokens)
            if score > 0:
                results.append(StorageSearchResult(key=relative, score=score, data=data))
        results.sort(key=lambda result: result.score, reverse=True)
        return results

    # ---- maintenance used by the snapshot session manager ----------------------------------------

    async def delete_session_keys(self, session_id: str) -> None:
        """Every snapshot key of ``session_id``: its latest entries, its history and its stash."""
        _require_session_id(session_id)
        await self._run(session_id, "history", lambda c: c.delete_many(ds.history_of_session_filter(session_id)))
        await self._run(session_id, "kv", lambda c: c.delete_many(ds.stash_filter(session_id)))

    async def update_session_document(self, session_id: str, update: Any) -> None:
        """Apply one prepared update (from :mod:`.documents_snapshot`) to the session document, upserting."""
        _require_session_id(session_id)
        flt = ds.session_filter(session_id)
        await self._run(session_id, "latest", lambda c: c.update_one(flt, update, upsert=True))

    async def delete_session_document(self, session_id: str) -> None:
        _require_session_id(session_id)
        await self._run(session_id, "latest", lambda c: c.delete_one(ds.session_filter(session_id)))

    # ---- execution ------------------------------------------------------------------------------

    def _full_key(self, key: str) -> str:
        return f"{self._prefix}{ds.normalize_key(key)}"

    async def _run(self, session_id: str | None, kind: str, op: Callable[[Any], Any]) -> Any:
        """Run one driver call natively on the loop's ``AsyncMongoClient``, else on the sync client in a thread."""
        try:
            client = self._shared.native_for_running_loop()
            if client is not None:
                await self._indexes(session_id)
                with translate_errors(session_id):
                    result = op(self._collection(client, kind))
                    return await result if asyncio.iscoroutine(result) else result
            return await asyncio.to_thread(self._run_sync, session_id, kind, op)
        except SessionStoreError as exc:
            raise StorageBackendError(
                f"storage operation failed on {self._names[kind]}: {exc}", session_id=session_id
            ) from exc

    def _run_sync(self, session_id: str | None, kind: str, op: Callable[[Any], Any]) -> Any:
        client = self._shared.sync()
        with translate_errors(session_id):
            self._ensure_indexes_sync(client)
            return op(self._collection(client, kind))

    def _collection(self, client: Any, kind: str) -> Any:
        return client[self.database_name].get_collection(self._names[kind], codec_options=CodecOptions(tz_aware=True))

    async def _indexes(self, session_id: str | None) -> None:
        if self._ensure_indexes and not self._indexes_known():
            await asyncio.to_thread(self._ensure_indexes_sync_translated, session_id)

    def _ensure_indexes_sync_translated(self, session_id: str | None) -> None:
        with translate_errors(session_id):
            self._ensure_indexes_sync(self._shared.sync())

    def _index_marker(self) -> tuple[tuple[str, ...], str, str]:
        return (self._shared.identity(), self.database_name, self.collection_name)

    def _indexes_known(self) -> bool:
        with _indexes_lock:
            return self._index_marker() in _indexes_done

    def _ensure_indexes_sync(self, client: MongoClient[Any]) -> None:
        if not self._ensure_indexes:
            return
        marker = self._index_marker()
        with _indexes_lock:
            if marker in _indexes_done:
                return
            database = client[self.database_name]
            for kind in ("latest", "history", "kv"):
                keys = [list(key) for k, key in ds.STORAGE_INDEXES if k == kind]
                database[self._names[kind]].create_indexes([IndexModel(key) for key in keys])
            _indexes_done.add(marker)
        logger.debug("collection=<%s> | ensured snapshot storage indexes", self.collection_name)


def forget_storage_indexes() -> None:
    """Test hook: make the next storage create its indexes again."""
    with _indexes_lock:
        _indexes_done.clear()


class _Owned:
    """An async client this storage created, the loop it lives on, and the guard that closes it there.

    The guard is an async generator suspended for as long as the loop runs: the loop's own shutdown
    (``asyncio.run`` and ``asyncio.Runner`` call ``shutdown_asyncgens`` before closing it) resumes it on
    that loop, still running, to close the client there. A client left to the garbage collector after
    its loop closed can close neither its connections nor its background tasks.
    """

    def __init__(
        self, client: AsyncMongoClient[Any], loop: asyncio.AbstractEventLoop, on_close: Callable[[_Owned], None]
    ) -> None:
        self.client = client
        self.loop = loop
        self.closed = False
        self._on_close = on_close
        self.guard = self._guard()
        # The first step registers the generator with the running loop (its firstiter hook) and stops
        # at the yield: nothing awaits before it, so it completes here.
        with contextlib.suppress(StopIteration):
            self.guard.__anext__().send(None)

    async def _guard(self) -> Any:
        try:
            yield
        finally:
            await self.shut()

    async def shut(self) -> None:
        if not self.closed:
            self.closed = True
            self._on_close(self)
            await self.client.close()

    async def shut_and_release(self) -> None:
        """Close the client, then end the guard (whose ``finally`` then has nothing left to do)."""
        await self.shut()
        await self.guard.aclose()

    def release_unclosed(self) -> None:
        """End the guard without closing the client: its loop closed without shutting down, and
        closing needs that loop. Run here, without a loop: with ``closed`` set nothing awaits."""
        self.closed = True
        step = self.guard.aclose()
        with contextlib.suppress(StopIteration):
            step.send(None)

    def close_soon(self) -> None:
        """Close it on its loop, from any thread: at once when the loop is idle, scheduled there when it
        runs (not awaited; should the loop end first, its shutdown still resumes the guard)."""
        loop = self.loop
        if loop.is_closed():
            self.release_unclosed()
        elif not loop.is_running():
            loop.run_until_complete(self.shut_and_release())
        elif _running_loop() is loop:
            loop.create_task(self.shut_and_release())
        else:
            asyncio.run_coroutine_threadsafe(self.shut_and_release(), loop)


def _require_session_id(session_id: object) -> None:
    """The maintenance calls put the id into a filter: anything but a string (``{"$ne": None}``)
    would match other sessions."""
    if not isinstance(session_id, str) or not session_id:
        raise InvalidIdentifierError(f"session id must be a non-empty string, got {session_id!r:.80}")
    try:
        session_id.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidIdentifierError(f"session id {session_id[:80]!r} is not valid UTF-8") from exc


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class _Clients:
    """The pair of clients a storage (and its namespaced views) share.

    The async client is used only on the loop it is bound to. One this object created (:class:`_Owned`)
    is closed on that loop when the loop shuts down, or by :meth:`close` / :meth:`aclose`, and replaced
    on the next long-lived loop (a bounded number of times), never used across loops.
    """

    def __init__(self, connection_string: str | None, client: MongoClient[Any] | AsyncMongoClient[Any] | None) -> None:
        self._lock = threading.Lock()
        self._uri = connection_string
        self._sync: MongoClient[Any] | None = client if isinstance(client, MongoClient) else None
        self._borrowed_async = client if isinstance(client, AsyncMongoClient) else None
        self._owns_sync = self._sync is None
        self._owned: _Owned | None = None
        self._created = 0
        self._bound_loop: asyncio.AbstractEventLoop | None = None  # the borrowed async client's
        self._template = dict(getattr(client, "_init_kwargs", {}) or {}) if client is not None else {}

    @property
    def _async(self) -> AsyncMongoClient[Any] | None:
        """The async client now in use (borrowed, or owned and not yet closed), if any."""
        if self._borrowed_async is not None:
            return self._borrowed_async
        owned = self._owned
        return owned.client if owned is not None else None

    def identity(self) -> tuple[str, ...]:
        if self._uri:
            return (self._uri,)
        return tuple(str(x) for x in (self._template.get("host"), self._template.get("port")))

    def _new_kwargs(self) -> dict[str, Any]:
        if self._uri is not None and not self._template:
            return {"host": self._uri}
        return dict(self._template)

    def sync(self) -> MongoClient[Any]:
        with self._lock:
            if self._sync is None:
                self._sync = MongoClient(**self._new_kwargs())
            return self._sync

    def native_for_running_loop(self) -> AsyncMongoClient[Any] | None:
        """The async client if this loop may use it; None means "use the sync client in a thread"."""
        if is_run_async_bridge():
            return None
        loop = asyncio.get_running_loop()
        with self._lock:
            borrowed = self._borrowed_async
            if borrowed is not None:
                # Bound to the loop pymongo first used it on (or the first that asked here); bound under
                # the lock, not when pymongo first uses it: two threads each running a loop must never
                # both get it.
                bound = self._bound_loop or getattr(borrowed, "_loop", None)
                if bound is None or bound is loop:
                    self._bound_loop = loop
                    return borrowed
                return None
            owned = self._owned
            if owned is not None:
                if owned.loop is loop and not owned.closed:
                    return owned.client
                if not owned.loop.is_closed():
                    return None  # another loop, still open (another thread's): the thread path here
                # Its loop closed without shutting down its async generators: dropped unclosed.
                owned.release_unclosed()
                self._owned = None
            # Bounded, so a program that runs asyncio.run per call settles on the thread path instead
            # of paying a new client (~11 ms) every time.
            if self._created > _MAX_REBINDS:
                return None
            self._created += 1
            owned = self._owned = _Owned(AsyncMongoClient(**self._new_kwargs()), loop, self._forget)
            return owned.client

    def _forget(self, owned: _Owned) -> None:
        """``owned`` is closing (by whichever path): the next call on a loop binds a new client."""
        with self._lock:
            if self._owned is owned:
                self._owned = None

    def _take_owned(self) -> _Owned | None:
        with self._lock:
            owned, self._owned = self._owned, None
            return owned

    def close(self) -> None:
        """Close the clients this object created. The async one is closed on its own loop (at once when
        that loop is idle, scheduled on it when it runs: this call does not wait)."""
        owned = self._take_owned()
        if owned is not None:
            owned.close_soon()
        with self._lock:
            if self._owns_sync and self._sync is not None:
                self._sync.close()
                self._sync = None

    async def aclose(self) -> None:
        owned = self._take_owned()
        if owned is not None:
            if owned.loop is asyncio.get_running_loop():
                await owned.shut_and_release()
            elif owned.loop.is_running():
                await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(owned.shut_and_release(), owned.loop))
            elif owned.loop.is_closed():
                owned.release_unclosed()
            # else: an idle loop of this thread, which cannot run while this one does: its guard stays
            # registered there and closes the client when that loop shuts down.
        self.close()
