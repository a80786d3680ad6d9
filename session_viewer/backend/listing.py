"""The list side of the viewer: one search page, its total and the list filters' choices.

Each click costs a few pages' worth of index keys whatever the collection size:

- the page is a top-k walk of a compound index (``{<equality>: 1, <sort>: -1, _id: 1}``) continued
  from an opaque cursor, never a ``$skip`` over earlier pages;
- the total is counted exactly up to ``COUNT_CAP`` and then shown as "10,000+", is the collection's
  estimated size when nothing is filtered, and is only computed for the first page (the browser
  keeps it while paging);
- every command carries ``maxTimeMS``; "contains" searches, which cannot use an index, get a
  shorter one (``CONTAINS_MAX_TIME_MS``).

Query shapes come from :mod:`.queries` and :mod:`.cards`; this module only runs them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import ExecutionTimeout

from mongodb_session_manager import documents as d
from mongodb_session_manager.documents_archive import buckets_collection_name

from . import cards, paging
from . import queries as q
from .config import Settings
from .timeline import iso_or_none, to_jsonable

logger = logging.getLogger(__name__)

#: The cap of a count that must read documents (two filters, the feedback filter, "contains"): reading
#: COUNT_CAP documents would cost more than the page itself, so such totals stop at "1,000+".
DOCUMENT_COUNT_CAP = 1_000
#: At most this many distinct values become a dropdown; more, and the UI offers a text box.
MAX_OPTION_VALUES = 200
DEFAULT_MAX_TIME_MS = 5_000


@dataclass(frozen=True)
class SearchPlan:
    """Everything one search request resolved to, before it touches the database."""

    match: dict[str, Any]
    sort: dict[str, int]
    size: int
    page: int
    cursor: paging.Cursor | None = None
    skip: int = 0
    slow: list[str] = field(default_factory=list)
    uses_contains: bool = False


def max_time_ms(settings: Settings, *, contains: bool = False) -> int:
    """The server-side limit of a viewer query (a shared helper: the detail side can use it too)."""
    general = int(getattr(settings, "query_max_time_ms", DEFAULT_MAX_TIME_MS))
    if contains:
        return min(general, int(settings.contains_max_time_ms))
    return general


def summary_row(row: Mapping[str, Any], prices: Mapping[str, cards.Price]) -> dict[str, Any]:
    """One card as JSON: identity, dates, metadata (stored order), aggregates and the preview."""
    metadata = row.get(d.METADATA)
    preview = row.get("preview")
    application = row.get(d.APPLICATION_NAME)
    return {
        "session_id": str(row.get(d.SESSION_ID) or row.get(d.ID) or ""),
        "session_type": str(row[d.SESSION_TYPE]) if row.get(d.SESSION_TYPE) else None,
        "created_at": iso_or_none(row.get(d.CREATED_AT)),
        "updated_at": iso_or_none(row.get(d.UPDATED_AT)),
        "metadata": to_jsonable(metadata) if isinstance(metadata, Mapping) else {},
        "application_name": application if isinstance(application, str) else None,
        "preview": preview if isinstance(preview, str) else None,
        **cards.aggregates(row, prices),
    }


async def _count(
    collection: AsyncCollection[dict[str, Any]], plan: SearchPlan, settings: Settings
) -> tuple[int | None, str]:
    """(total, kind): ``estimate`` (nothing filtered), ``exact``, ``at_least`` (the cap) or ``unknown`` (timed out)."""
    if not plan.match:
        return await collection.estimated_document_count(maxTimeMS=max_time_ms(settings)), "estimate"
    cap = settings.count_cap
    if q.count_reads_documents(plan.match):
        cap = min(cap, DOCUMENT_COUNT_CAP)
    try:
        # The ``count`` command, not ``count_documents`` (an aggregation): with index bounds it is a
        # COUNT_SCAN of at most ``cap + 1`` keys and no documents, about twice as fast at the cap.
        reply = await collection.database.command(
            "count",
            collection.name,
            query=plan.match,
            limit=cap + 1,
            maxTimeMS=max_time_ms(settings, contains=plan.uses_contains),
        )
        counted = int(reply["n"])
    except ExecutionTimeout:
        logger.info("count timed out; the total is shown as unknown")
        return None, "unknown"
    return (cap, "at_least") if counted > cap else (counted, "exact")


async def search(
    collection: AsyncCollection[dict[str, Any]], plan: SearchPlan, settings: Settings, prices: Mapping[str, cards.Price]
) -> dict[str, Any]:
    """One page of cards, the cursors around it and (first page only) the total."""
    pipeline = paging.page_pipeline(
        plan.match,
        plan.sort,
        plan.size,
        cards.SUMMARY_PROJECTION,
        cursor=plan.cursor,
        skip=plan.skip,
        after=cards.preview_stages(buckets_collection_name(collection.name)),
    )

    async def rows() -> list[dict[str, Any]]:
        found = await collection.aggregate(pipeline, maxTimeMS=max_time_ms(settings, contains=plan.uses_contains))
        return await found.to_list()

    want_total = plan.cursor is None
    if want_total:
        found, (total, kind) = await asyncio.gather(rows(), _count(collection, plan, settings))
    else:
        found, (total, kind) = await rows(), (None, "not_counted")
    more = len(found) > plan.size
    found = found[: plan.size]
    backwards = plan.cursor is not None and plan.cursor.direction == "prev"
    if backwards:
        found.reverse()
    has_next = True if backwards else more
    has_prev = more if backwards else (plan.cursor is not None or plan.skip > 0)
    keyset = next(iter(plan.sort)) in q.SORTS.values()
    return {
        "sessions": [summary_row(row, prices) for row in found],
        "total": total,
        "total_kind": kind,
        "page": plan.page,
        "page_size": plan.size,
        "total_pages": q.total_pages(total, plan.size) if total is not None and kind != "at_least" else None,
        "next_cursor": paging.encode_cursor(plan.sort, "next", found[-1]) if keyset and has_next and found else None,
        "prev_cursor": paging.encode_cursor(plan.sort, "prev", found[0]) if keyset and has_prev and found else None,
        "sort": next(iter(plan.sort)),
        "sort_order": "desc" if next(iter(plan.sort.values())) < 0 else "asc",
        "slow": plan.slow,
    }


async def _distinct(collection: AsyncCollection[dict[str, Any]], path: str, settings: Settings) -> list[Any] | None:
    """Distinct values of an indexed path (a scan of distinct index keys), or None when too many."""
    try:
        values = await collection.distinct(path, maxTimeMS=max_time_ms(settings))
    except ExecutionTimeout:
        return None
    scalars = [v for v in values if isinstance(v, str) and v]
    if len(scalars) > MAX_OPTION_VALUES:
        return None
    return sorted(scalars, key=str.lower)


async def filter_options(collection: AsyncCollection[dict[str, Any]], settings: Settings) -> dict[str, Any]:
    """Choices for the list filters: agent ids, models and application names (None: type it in)."""
    agents, models, applications = await asyncio.gather(
        _distinct(collection, d.AGENT_IDS, settings),
        _distinct(collection, d.MODELS, settings),
        _distinct(collection, d.APPLICATION_NAME, settings),
    )
    return {
        "agent_ids": agents,
        "models": models,
        "application_names": applications,
        "feedback": list(q.FEEDBACK_RATINGS),
        "sorts": list(q.SORTS),
        "count_cap": settings.count_cap,
    }
