"""Pure builders for the viewer's queries: filterable fields, search filters, pipelines, paging.

Everything a client sends ends up in a MongoDB query, so this module is where hostile input is
made harmless: filter keys must be known, indexed field paths (never ``$``-anything, never an
internal field), values are literals (``$eq`` / an escaped regex, never an operator), dates are
parsed strictly, and page sizes are clamped. Field names and paths come from
:mod:`mongodb_session_manager.documents`, the single owner of the document shape. No I/O here,
so all of it is unit-tested without a database.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from mongodb_session_manager import documents as d

#: Fields every session has and the viewer always offers, indexed or not (the library indexes them).
ALWAYS_FILTERABLE = (d.SESSION_ID, d.CREATED_AT)
#: Text the user types is bounded: a regex over 200 characters is never a legitimate lookup.
MAX_TEXT_LENGTH = 200
MAX_FILTERS = 20
MAX_FILTERS_JSON = 10_000
#: ``skip`` beyond this is never a human paging; it would only make the server walk the index.
MAX_PAGE = 100_000
OPERATORS = ("eq", "contains")
SCALAR_TYPES = (str, int, float, bool)


class ViewerInputError(ValueError):
    """A client sent something the viewer refuses; the message is safe to show (HTTP 422)."""


@dataclass(frozen=True)
class Condition:
    """One user filter: ``field`` (a known path), ``op`` (``eq`` or ``contains``), a literal value."""

    field: str
    op: str
    value: str | int | float | bool


@dataclass(frozen=True)
class Page:
    number: int
    size: int

    @property
    def skip(self) -> int:
        return (self.number - 1) * self.size


# ---- fields ------------------------------------------------------------------------------------------


def is_internal_path(path: str) -> bool:
    """True when any segment of ``path`` is an internal field (``_id``, the viewer password)."""
    return any(segment in d.INTERNAL_FIELDS for segment in path.split("."))


def is_safe_path(path: str) -> bool:
    """A dotted path made of plain segments: no ``$``, no empty segment, no NUL, not internal."""
    if not path or len(path) > 512 or is_internal_path(path):
        return False
    return all(segment and not segment.startswith("$") and "\x00" not in segment for segment in path.split("."))


def filterable_fields(index_information: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Fields a client may filter and sort on: every plain field of every index, plus the basics.

    Limiting filters to indexed fields is the performance guarantee on large collections and also
    the allow-list that keeps clients away from everything else in the document. Text, hashed and
    wildcard index keys (``$**``) are skipped: they cannot serve an equality/range lookup by path.
    """
    found: set[str] = set()
    for spec in index_information.values():
        for key, direction in spec.get("key", []):
            if isinstance(direction, int | float) and is_safe_path(str(key)):
                found.add(str(key))
    ordered = [f for f in ALWAYS_FILTERABLE]
    ordered += sorted(f for f in found if f not in ALWAYS_FILTERABLE)
    return ordered


def field_label(path: str) -> str:
    """What the UI shows: ``metadata.status`` -> ``status``; other paths as they are."""
    prefix = f"{d.METADATA}."
    return path[len(prefix) :] if path.startswith(prefix) else path


def value_type(value: Any) -> str:
    """The UI control a sample value asks for: string, number, boolean, date or other."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, datetime):
        return "date"
    if isinstance(value, str):
        return "string"
    return "other"


def value_at(document: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path of a (projected) document, or None."""
    current: Any = document
    for segment in path.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(segment)
    return current


def sample_value_filter(path: str) -> dict[str, Any]:
    """Find one document that has a non-null value at ``path`` (to learn the field's type)."""
    return {path: {"$exists": True, "$ne": None}}


def enum_values_pipeline(path: str, max_values: int) -> list[dict[str, Any]]:
    """At most ``max_values + 1`` distinct values: one more than allowed tells "too many" apart."""
    return [
        {"$match": {path: {"$exists": True, "$ne": None}}},
        {"$group": {d.ID: f"${path}"}},
        {"$limit": max_values + 1},
    ]


def enum_values(rows: Iterable[Mapping[str, Any]], max_values: int) -> list[Any] | None:
    """Sorted scalar values for a dropdown, or None when there are more than ``max_values``."""
    values = [row.get(d.ID) for row in rows]
    if len(values) > max_values:
        return None
    scalars = [v for v in values if isinstance(v, SCALAR_TYPES)]
    return sorted(scalars, key=lambda v: (type(v).__name__, str(v).lower()))


# ---- user input --------------------------------------------------------------------------------------


def clean_text(value: str, what: str) -> str:
    """Trim and bound free text; NUL is refused because the server cannot take it in a regex."""
    text = value.strip()
    if len(text) > MAX_TEXT_LENGTH:
        raise ViewerInputError(f"{what} is longer than {MAX_TEXT_LENGTH} characters")
    if "\x00" in text:
        raise ViewerInputError(f"{what} contains a NUL character")
    return text


def parse_filters(raw: str | None, allowed: Iterable[str]) -> list[Condition]:
    """Parse the ``filters`` query parameter into literal conditions on allowed fields.

    Two JSON shapes are accepted: an object ``{"metadata.status": "open"}`` (equality, handy with
    curl) and a list ``[{"field": ..., "op": "eq"|"contains", "value": ...}]`` (what the UI sends).
    Values must be strings, numbers or booleans, so ``{"$ne": null}`` is refused, not obeyed.
    """
    if raw is None or not raw.strip():
        return []
    if len(raw) > MAX_FILTERS_JSON:
        raise ViewerInputError(f"filters is longer than {MAX_FILTERS_JSON} characters")
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        raise ViewerInputError("filters must be valid JSON") from exc
    if isinstance(parsed, Mapping):
        items: list[Any] = [{"field": k, "op": "eq", "value": v} for k, v in parsed.items()]
    elif isinstance(parsed, list):
        items = parsed
    else:
        raise ViewerInputError("filters must be a JSON object or a JSON list")
    if len(items) > MAX_FILTERS:
        raise ViewerInputError(f"at most {MAX_FILTERS} filters are allowed")
    known = set(allowed)
    return [_condition(item, known) for item in items]


def _condition(item: Any, known: set[str]) -> Condition:
    if not isinstance(item, Mapping):
        raise ViewerInputError("each filter must be an object with field, op and value")
    field = item.get("field")
    op = item.get("op", "eq")
    value = item.get("value")
    if not isinstance(field, str) or not field:
        raise ViewerInputError("each filter needs a field name")
    if not is_safe_path(field) or field not in known:
        raise ViewerInputError(f"cannot filter on {field[:80]!r}: not a filterable field")
    if op not in OPERATORS:
        raise ViewerInputError(f"unknown filter operator {str(op)[:20]!r}; use one of {', '.join(OPERATORS)}")
    if not isinstance(value, SCALAR_TYPES):
        raise ViewerInputError(f"the value for {field!r} must be a string, a number or a boolean")
    if isinstance(value, float) and not math.isfinite(value):
        raise ViewerInputError(f"the value for {field!r} must be a finite number")
    if isinstance(value, str):
        value = clean_text(value, f"the value for {field!r}")
    if op == "contains" and (not isinstance(value, str) or not value):
        raise ViewerInputError(f"'contains' on {field!r} needs non-empty text")
    return Condition(field=field, op=op, value=value)


def parse_date_bound(value: str | None, *, end: bool, what: str) -> datetime | None:
    """ISO date or datetime -> aware UTC datetime. A bare end date includes that whole day.

    ``created_to=2024-05-01`` therefore means "before 2024-05-02 00:00 UTC" (the bound is
    exclusive in :func:`search_filter`), which is what a person picking a date expects.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    if len(text) > 64:
        raise ViewerInputError(f"{what} is not a date")
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime.combine(day, time.min, tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise ViewerInputError(
            f"{what} must be an ISO 8601 date or date-time, e.g. 2024-05-01 or 2024-05-01T13:45:00Z"
        ) from exc
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def page_of(page: int, requested_size: int | None, default_size: int, max_size: int) -> Page:
    """Clamp the page size into ``1..max_size`` (never an error: a big number just gets the cap)."""
    size = default_size if requested_size is None else requested_size
    size = max(1, min(size, max_size))
    if page < 1 or page > MAX_PAGE:
        raise ViewerInputError(f"page must be between 1 and {MAX_PAGE}")
    return Page(number=page, size=size)


def literal_regex(text: str) -> dict[str, Any]:
    """Case-insensitive "contains" with every metacharacter escaped: ``.*`` matches a dot-star."""
    return {"$regex": re.escape(text), "$options": "i"}


# ---- queries ----------------------------------------------------------------------------------------


def search_filter(
    *,
    session_id: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    conditions: Iterable[Condition] = (),
) -> dict[str, Any]:
    """AND of everything the user asked for. ``created_to`` is exclusive, ``created_from`` inclusive."""
    clauses: list[dict[str, Any]] = []
    if session_id:
        clauses.append({d.SESSION_ID: literal_regex(clean_text(session_id, "session_id"))})
    if created_from is not None or created_to is not None:
        if created_from is not None and created_to is not None and created_from >= created_to:
            raise ViewerInputError("created_from must be before created_to")
        bounds: dict[str, Any] = {}
        if created_from is not None:
            bounds["$gte"] = created_from
        if created_to is not None:
            bounds["$lt"] = created_to
        clauses.append({d.CREATED_AT: bounds})
    for condition in conditions:
        if condition.op == "contains":
            clauses.append({condition.field: literal_regex(str(condition.value))})
        else:
            clauses.append({condition.field: {"$eq": condition.value}})
    if not clauses:
        return {}
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def sort_spec(sort_by: str | None, order: str | None, allowed: Iterable[str]) -> dict[str, int]:
    """Sort on an allowed field (newest first by default); ``_id`` breaks ties so pages never overlap."""
    field = sort_by or d.CREATED_AT
    if not is_safe_path(field) or field not in set(allowed):
        raise ViewerInputError(f"cannot sort on {field[:80]!r}: not a filterable field")
    direction = (order or "desc").lower()
    if direction not in ("asc", "desc"):
        raise ViewerInputError("sort_order must be 'asc' or 'desc'")
    return {field: 1 if direction == "asc" else -1, d.ID: 1}


def _object_or_empty(expr: str) -> dict[str, Any]:
    return {"$cond": [{"$eq": [{"$type": expr}, "object"]}, expr, {}]}


def _array_or_empty(expr: str) -> dict[str, Any]:
    return {"$cond": [{"$isArray": expr}, expr, []]}


#: A search row: identity, dates, metadata and counts computed on the server (never the messages).
SUMMARY_PROJECTION: dict[str, Any] = {
    d.ID: 0,
    d.SESSION_ID: 1,
    d.SESSION_TYPE: 1,
    d.CREATED_AT: 1,
    d.UPDATED_AT: 1,
    d.METADATA: 1,
    "agent_ids": {
        "$map": {"input": {"$objectToArray": _object_or_empty(f"${d.AGENTS}")}, "in": "$$this.k"},
    },
    "message_count": {
        "$sum": {
            "$map": {
                "input": {"$objectToArray": _object_or_empty(f"${d.AGENTS}")},
                "in": {"$size": _array_or_empty(f"$$this.v.{d.MESSAGES}")},
            }
        }
    },
    "feedback_count": {"$size": _array_or_empty(f"${d.FEEDBACKS}")},
}


def search_pipeline(match: Mapping[str, Any], sort: Mapping[str, int], page: Page) -> list[dict[str, Any]]:
    """One page of summaries. ``$sort`` + ``$skip`` + ``$limit`` become a top-k sort on the index."""
    return [
        {"$match": dict(match)},
        {"$sort": dict(sort)},
        {"$skip": page.skip},
        {"$limit": page.size},
        {"$project": SUMMARY_PROJECTION},
    ]


def detail_projection() -> dict[str, int]:
    """The whole session except what must never leave the server."""
    return {d.VIEWER_PASSWORD: 0}


def total_pages(total: int, size: int) -> int:
    return max(1, -(-total // size))
