"""The indexes of a session collection, as data: what every collection gets, the keys the viewer
sorts and filters by, and the one-off backfill of the list fields those indexes read.

:mod:`.indexes` creates them (once per collection per process); the viewer reads which fields are
indexed from here to decide what it may sort and filter by.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import documents as d

# ---- indexes ----------------------------------------------------------------------------------------------
#: Leading key of each index every session collection gets (the viewer lists fields that have an index).
#: The indexes themselves are the compound keys of :data:`BASE_INDEX_KEYS`.
BASE_INDEXES: tuple[tuple[str, int], ...] = ((d.CREATED_AT, -1), (d.UPDATED_AT, -1), (d.SESSION_ID, 1))

IndexKey = tuple[tuple[str, int], ...]
#: The dates (and the token total) the viewer sorts sessions by, newest / largest first.
SORT_FIELDS: tuple[str, ...] = (d.CREATED_AT, d.UPDATED_AT, d.TOTAL_TOKENS_PATH)
#: Session-level fields the viewer filters by equality besides metadata (multikey: one key per element).
LIST_FILTER_FIELDS: tuple[str, ...] = (d.AGENT_IDS, d.MODELS, d.FEEDBACK_RATING_PATH, d.APPLICATION_NAME)


def sort_index_key(field: str) -> IndexKey:
    """``{field: -1, _id: 1}``: the viewer's sort order exactly, ``_id`` breaking ties for stable pages."""
    return ((field, -1), (d.ID, 1))


def filter_index_keys(path: str) -> list[IndexKey]:
    """Equality first, then the sort (equality-sort-range): one index per date the viewer sorts by.

    ``{path: 1, created_at: -1, _id: 1}`` serves "filter on path, newest first" and a created-date
    range, reading only the page it returns; the ``updated_at`` twin does the same for "recently updated".
    """
    return [((path, 1), (d.CREATED_AT, -1), (d.ID, 1)), ((path, 1), (d.UPDATED_AT, -1), (d.ID, 1))]


#: Every session collection: the three sorts, the session-id lookup, and the built-in list filters.
BASE_INDEX_KEYS: tuple[IndexKey, ...] = (
    *(sort_index_key(f) for f in SORT_FIELDS),
    ((d.SESSION_ID, 1),),
    *(key for f in LIST_FILTER_FIELDS for key in filter_index_keys(f)),
)


def backfill_list_fields_filter() -> dict[str, Any]:
    """Sessions written before ``agent_ids`` / ``models`` / session-level ``totals`` existed."""
    return {d.AGENT_IDS: {"$exists": False}}


def backfill_list_fields_update() -> list[dict[str, Any]]:
    """Pipeline update that derives the session-level list fields from the per-agent data, in place.

    ``collection.update_many(backfill_list_fields_filter(), backfill_list_fields_update())`` makes
    older sessions visible to the viewer's agent and model filters and to its sort by tokens.
    """
    agents = {"$objectToArray": {"$ifNull": [f"${d.AGENTS}", {}]}}

    def agent_sum(path: str) -> dict[str, Any]:
        return {
            "$sum": {"$map": {"input": agents, "in": {"$ifNull": [f"$$this.v.{d.AGENT_DATA}.{d.TOTALS}.{path}", 0]}}}
        }

    return [
        {
            "$set": {
                d.AGENT_IDS: {"$map": {"input": agents, "in": "$$this.k"}},
                d.MODELS: {
                    "$setDifference": [{"$map": {"input": agents, "in": f"$$this.v.{d.AGENT_DATA}.{d.MODEL}"}}, [None]]
                },
                d.TOTAL_TOKENS_PATH: agent_sum(f"{d.USAGE}.totalTokens"),
                f"{d.TOTALS}.turns": agent_sum("turns"),
            }
        }
    ]


def index_keys(metadata_paths: list[str] | None = None) -> list[IndexKey]:
    """The base indexes plus the compound pair of each ``metadata.<field>`` path, without duplicates."""
    keys = list(BASE_INDEX_KEYS)
    for path in metadata_paths or []:
        keys += [k for k in filter_index_keys(path) if k not in keys]
    return keys


def metadata_field_list(metadata_fields: object) -> list[str]:
    """``metadata_fields`` as a list; a lone string is refused (``list("status")`` would index each letter)."""
    if metadata_fields is None:
        return []
    if isinstance(metadata_fields, str | bytes) or not isinstance(metadata_fields, Iterable):
        raise TypeError(
            f"metadata_fields must be a list of metadata keys, got {type(metadata_fields).__name__} "
            f"{metadata_fields!r:.80} (write [{metadata_fields!r:.60}] for one key)"
        )
    return list(metadata_fields)


def metadata_index_fields(metadata_fields: list[str] | None) -> list[str]:
    return [d.metadata_path(d.validate_metadata_key(f)) for f in metadata_field_list(metadata_fields)]
