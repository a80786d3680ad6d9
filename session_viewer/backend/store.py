"""The viewer's only MongoDB access: async, projected, built from :mod:`.queries`.

One ``AsyncMongoClient`` per app (created in the lifespan, closed on shutdown). Every read
projects: search rows are computed on the server and never carry message arrays, and the
detail read excludes the viewer password at the source.
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

from mongodb_session_manager import documents as d

from . import queries as q
from .config import Settings

logger = logging.getLogger(__name__)


def make_client(settings: Settings) -> AsyncMongoClient[dict[str, Any]]:
    return AsyncMongoClient(
        settings.mongodb_connection_string,
        maxPoolSize=settings.max_pool_size,
        minPoolSize=min(settings.min_pool_size, settings.max_pool_size),
        maxIdleTimeMS=settings.max_idle_time_ms or None,
        serverSelectionTimeoutMS=settings.server_selection_timeout_ms,
        appname="session-viewer",
        tz_aware=True,
    )


class SessionStore:
    """Reads of the session collection the API needs, and nothing else (the viewer never writes)."""

    def __init__(self, client: AsyncMongoClient[dict[str, Any]], settings: Settings) -> None:
        self.client = client
        self.settings = settings
        database = client.get_database(settings.database_name)
        self.collection: AsyncCollection[dict[str, Any]] = database.get_collection(
            settings.collection_name, codec_options=CodecOptions(tz_aware=True)
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

    async def search(
        self, match: Mapping[str, Any], sort: Mapping[str, int], page: q.Page
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of summaries and the total, in parallel. No filter -> the cheap estimated count."""

        async def rows() -> list[dict[str, Any]]:
            cursor = await self.collection.aggregate(q.search_pipeline(match, sort, page))
            return await cursor.to_list()

        async def total() -> int:
            if not match:
                return await self.collection.estimated_document_count()
            return await self.collection.count_documents(dict(match))

        found, count = await asyncio.gather(rows(), total())
        return found, count

    async def session(self, session_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({d.ID: session_id}, projection=q.detail_projection())

    async def viewer_password(self, session_id: str) -> str | None:
        doc = await self.collection.find_one({d.ID: session_id}, projection=d.VIEWER_PASSWORD_PROJECTION)
        value = (doc or {}).get(d.VIEWER_PASSWORD)
        return value if isinstance(value, str) else None
