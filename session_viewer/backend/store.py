"""The viewer's only MongoDB access: async, projected, built from :mod:`.queries`.

One ``AsyncMongoClient`` per app (created in the lifespan, closed on shutdown), with a
per-operation time limit (``QUERY_MAX_TIME_MS``, sent as ``maxTimeMS``). Every read projects:
search rows are computed on the server and never carry message arrays, the detail page reads the
header without messages and one timeline page at a time, and the export read excludes the viewer
password at the source. Archived messages (the buckets of ``<collection>_messages``) are read
only through the lists in the session documents. The driver's command log is silenced, so no level prints documents.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from bson.codec_options import CodecOptions
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

from mongodb_session_manager import blobs
from mongodb_session_manager import documents as d
from mongodb_session_manager import documents_features as df
from mongodb_session_manager.documents_archive import buckets_collection_name
from mongodb_session_manager.errors import ConcurrentModificationError
from mongodb_session_manager.export import join_archived_messages, listed_bucket_ids

from . import detail_queries as dq
from . import queries as q
from .config import Settings
from .lockout import LoginLockout

logger = logging.getLogger(__name__)


#: How often a read of a session (the export's, a timeline page) is tried when a purge, replacement or
#: rewrite races it.
WHOLE_READ_ATTEMPTS = 3
#: The driver's command log prints whole commands and replies (session passwords, transcripts) at DEBUG.
DRIVER_COMMAND_LOGGER = "pymongo.command"


class _DropEverything(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


_SILENCER = _DropEverything()


def silence_driver_command_log() -> None:
    """Never let the driver log commands or replies, whatever level the operator sets.

    A filter on the logger itself (not a level) is used because ``LOG_LEVEL=DEBUG`` or a logging
    config may lower levels later; a logger's filters still drop every record it creates.
    """
    command_logger = logging.getLogger(DRIVER_COMMAND_LOGGER)
    if _SILENCER not in command_logger.filters:
        command_logger.addFilter(_SILENCER)


def make_client(settings: Settings, **options: Any) -> AsyncMongoClient[dict[str, Any]]:
    """The app's client. ``timeoutMS`` bounds every operation and is sent to the server as
    ``maxTimeMS``, so no viewer query (search, detail, export, the lockout) can run on unbounded."""
    silence_driver_command_log()
    return AsyncMongoClient(
        settings.mongodb_connection_string,
        maxPoolSize=settings.max_pool_size,
        minPoolSize=min(settings.min_pool_size, settings.max_pool_size),
        maxIdleTimeMS=settings.max_idle_time_ms or None,
        serverSelectionTimeoutMS=settings.server_selection_timeout_ms,
        timeoutMS=settings.query_max_time_ms,
        appname="session-viewer",
        tz_aware=True,
        **options,
    )


class SessionStore:
    """Reads of the session collection the API needs; the one write is a reviewer's note."""

    def __init__(self, client: AsyncMongoClient[dict[str, Any]], settings: Settings) -> None:
        self.client = client
        self.settings = settings
        database = client.get_database(settings.database_name)
        self.collection: AsyncCollection[dict[str, Any]] = database.get_collection(
            settings.collection_name, codec_options=CodecOptions(tz_aware=True)
        )
        #: Archived messages of long sessions (``<collection>_messages``), read by ``_id`` from the lists
        #: in the session documents.
        self.buckets: AsyncCollection[dict[str, Any]] = database.get_collection(
            buckets_collection_name(settings.collection_name), codec_options=CodecOptions(tz_aware=True)
        )
        self.lockout = LoginLockout(
            database.get_collection(settings.lockout_collection_name, codec_options=CodecOptions(tz_aware=True)),
            settings.auth_max_failures,
            settings.auth_window_seconds,
        )

    async def ping(self, timeout: float) -> bool:
        """True when the server answers within ``timeout`` seconds (the health endpoint)."""
        try:
            await asyncio.wait_for(self.client.admin.command("ping"), timeout)
        except (TimeoutError, PyMongoError) as exc:
            logger.warning("database=<%s> | ping failed: %s", self.settings.database_name, type(exc).__name__)
            return False
        return True

    async def filterable_fields(self) -> list[str]:
        """Indexed fields (read each time, so a new index shows up without a restart)."""
        return q.filterable_fields(await self.collection.index_information())

    async def describe_fields(self) -> list[dict[str, Any]]:
        fields = await self.filterable_fields()
        return list(await asyncio.gather(*(self._describe(path) for path in fields)))

    async def _describe(self, path: str) -> dict[str, Any]:
        if path == d.CREATED_AT:
            kind = "date"
        else:
            sample = await self.collection.find_one(q.sample_value_filter(path), projection={path: 1, d.ID: 0})
            kind = q.value_type(q.value_at(sample, path)) if sample else "string"
        described: dict[str, Any] = {"field": path, "label": q.field_label(path), "type": kind, "values": None}
        if path in self.settings.enum_fields and kind in ("string", "number", "boolean"):
            limit = self.settings.enum_max_values
            cursor = await self.collection.aggregate(q.enum_values_pipeline(path, limit))
            values = q.enum_values(await cursor.to_list(), limit)
            if values is not None:
                described.update(type="enum", values=values)
        return described

    async def session(self, session_id: str) -> dict[str, Any] | None:
        """The whole document (password excluded) with every agent's whole history: only the export needs it.

        Two reads, as the library's own export does: the document, then the buckets it lists (by
        ``_id``; an orphan is never read). Listed buckets are only deleted with their session, so a
        missing one means the session was purged or replaced in between: it is read again (as when an
        out-of-line block went with a purge or rewrite meanwhile). A block the session still refers to
        but GridFS lacks is ``MissingBlobError``, raised at once: reading again would not find it.
        """
        for attempt in range(WHOLE_READ_ATTEMPTS):
            doc = await self.collection.find_one(dq.session_filter(session_id), projection=dq.export_projection())
            if doc is None:
                return None
            ids = listed_bucket_ids(doc)
            try:
                if ids:
                    cursor = self.buckets.find(dq.buckets_filter(session_id, ids), projection=dq.BUCKET_PROJECTION)
                    doc = join_archived_messages(doc, await cursor.to_list())
                blob_ids = blobs.session_marker_ids(doc)
                if not blob_ids:
                    return doc
                found = await blobs.aread_blocks(
                    self.collection.database, self.settings.collection_name, blob_ids, session_id=session_id
                )
                return blobs.resolve_session_document(doc, found)
            except ConcurrentModificationError:
                if attempt == WHOLE_READ_ATTEMPTS - 1:
                    raise
        return None  # pragma: no cover (the loop returns or raises)

    async def header(self, session_id: str) -> dict[str, Any] | None:
        """The session without its messages (agent message counts computed on the server)."""
        cursor = await self.collection.aggregate(dq.header_pipeline(session_id))
        found = await cursor.to_list(1)
        return found[0] if found else None

    async def timeline_page(self, session_id: str, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """One page of the merged timeline, in order, and the number of items in the whole timeline.

        Read again when an out-of-line block of the page was deleted by a purge or rewrite after the
        page was read (``ConcurrentModificationError``); the next read no longer refers to it.
        """
        pipeline = dq.timeline_page_pipeline(self.settings.collection_name, session_id, offset, limit)
        for attempt in range(WHOLE_READ_ATTEMPTS):
            cursor = await self.collection.aggregate(pipeline)
            facets = await cursor.to_list(1)
            facet = facets[0] if facets else {}
            counted = facet.get("total") or [{}]
            rows = list(facet.get("items") or [])
            try:
                return await self._resolve_blobs(session_id, rows), int(counted[0].get("n", 0))
            except ConcurrentModificationError:
                if attempt == WHOLE_READ_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover (the loop returns or raises)

    async def _resolve_blobs(self, session_id: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Messages of the page whose large blocks are stored out of line get them back (one query).

        A block the session still refers to but GridFS lacks is ``MissingBlobError``; one a purge or
        rewrite deleted after the page was read, ``ConcurrentModificationError``.
        """
        messages = [row["item"] for row in rows if isinstance(row.get("item"), dict) and d.MESSAGE in row["item"]]
        ids = blobs.marker_ids(messages)
        if not ids:
            return rows
        found = await blobs.aread_blocks(
            self.collection.database, self.settings.collection_name, ids, session_id=session_id
        )
        for row in rows:
            item = row.get("item")
            if isinstance(item, dict) and d.MESSAGE in item:
                row["item"] = blobs.resolve_messages([item], found)[0]
        return rows

    async def add_note(self, session_id: str, note: Mapping[str, Any]) -> bool:
        """Append a reviewer note; False when the session does not exist."""
        result = await self.collection.update_one(dq.session_filter(session_id), df.push_reviewer_note_update(note))
        return result.matched_count == 1

    async def viewer_password(self, session_id: str) -> str | None:
        doc = await self.collection.find_one({d.ID: session_id}, projection=df.VIEWER_PASSWORD_PROJECTION)
        value = (doc or {}).get(d.VIEWER_PASSWORD)
        return value if isinstance(value, str) else None
