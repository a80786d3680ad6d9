"""Pure builders for the viewer's queries: filterable fields, search filters, sorts, keyset paging.

Everything a client sends ends up in a MongoDB query, so this module is where hostile input is
made harmless: filter keys must be known, indexed field paths (never ``$``-anything, never an
internal field), values are literals (``$eq`` / an escaped regex, never an operator), dates are
parsed strictly, and page sizes are clamped. It is also where every search is shaped to walk an
index in the order it is shown: the library's compound indexes follow equality-sort-range
(``{<field>: 1, created_at: -1, _id: 1}``), so an equality filter plus a date sort reads only the page it
returns, and "next"/"previous" continue from an opaque cursor (keyset paging) instead of skipping.
Field names and paths come from :mod:`mongodb_session_manager.documents`, the single owner of the
document shape. No I/O here, so all of it is unit-tested without a database.
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
from mongodb_session_manager import documents_features as df
from mongodb_session_manager import documents_indexes as dx
from mongodb_session_manager.defaults import COLLECTION_NAME
from mongodb_session_manager.documents_archive import buckets_collection_name

#: Fields every session has and the viewer always offers, indexed or not (the library indexes them).
ALWAYS_FILTERABLE = (d.SESSION_ID, d.CREATED_AT)
#: Indexed fields with their own search parameters (feedback, agent_id, model, application_name, sort=tokens),
#: so they are not offered again as generic filters.
DEDICATED_FIELDS = frozenset({*dx.LIST_FILTER_FIELDS, d.TOTAL_TOKENS_PATH})
#: Text the user types is bounded: a regex over 200 characters is never a legitimate lookup.
MAX_TEXT_LENGTH = 200
MAX_FILTERS = 20
MAX_FILTERS_JSON = 10_000
#: ``skip`` beyond this is never a human paging; it would only make the server walk the index.
MAX_PAGE = 100_000
#: ``eq`` and ``prefix`` use an index; ``contains`` cannot (an unanchored regex reads every key) and is slow.
OPERATORS = ("eq", "prefix", "contains")
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
        if "expireAfterSeconds" in spec:  # a TTL index deletes expired sessions; it is not a search field
            continue
        for key, direction in spec.get("key", []):
            if isinstance(direction, int | float) and is_safe_path(str(key)) and str(key) not in DEDICATED_FIELDS:
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
    if op in ("contains", "prefix") and (not isinstance(value, str) or not value):
        raise ViewerInputError(f"{op!r} on {field!r} needs non-empty text")
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

#: How the session id text is matched: a prefix of the id (index range, the default), the whole id,
#: or anywhere in it (case-insensitive, reads every key: explicit, and bounded by its own maxTimeMS).
SESSION_ID_MODES = ("prefix", "exact", "contains")
FEEDBACK_RATINGS = ("up", "down")


def prefix_regex(text: str) -> dict[str, Any]:
    """Case-sensitive anchored regex: the server turns ``^literal`` into tight index bounds."""
    return {"$regex": f"^{re.escape(text)}"}


@dataclass(frozen=True)
class DateRange:
    """``[start, end)`` on one date field; either side may be open."""

    field: str
    start: datetime | None = None
    end: datetime | None = None

    def clause(self) -> dict[str, Any] | None:
        if self.start is None and self.end is None:
            return None
        if self.start is not None and self.end is not None and self.start >= self.end:
            label = "created" if self.field == d.CREATED_AT else "updated"
            raise ViewerInputError(f"{label}_from must be before {label}_to")
        bounds: dict[str, Any] = {}
        if self.start is not None:
            bounds["$gte"] = self.start
        if self.end is not None:
            bounds["$lt"] = self.end
        return {self.field: bounds}


def feedback_clause(rating: str) -> dict[str, Any]:
    """Sessions with at least one end-user entry of ``rating`` (reviewer notes never count).

    ``$elemMatch`` keeps both conditions on the same entry; its ``rating`` equality becomes the
    bounds of the ``{feedbacks.rating: 1, <date>: -1, _id: 1}`` index.
    """
    if rating not in FEEDBACK_RATINGS:
        raise ViewerInputError(f"feedback must be one of {', '.join(FEEDBACK_RATINGS)}")
    return {d.FEEDBACKS: {"$elemMatch": {d.RATING: rating, df.FEEDBACK_SOURCE: {"$ne": df.REVIEWER_SOURCE}}}}


def search_filter(
    *,
    session_id: str | None = None,
    session_id_mode: str = "prefix",
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    updated_from: datetime | None = None,
    updated_to: datetime | None = None,
    conditions: Iterable[Condition] = (),
    feedback: str | None = None,
    agent_id: str | None = None,
    model: str | None = None,
    application_name: str | None = None,
) -> dict[str, Any]:
    """AND of everything the user asked for. Date ends are exclusive, starts inclusive.

    Every clause is a literal on an indexed path (equality, an anchored prefix, a range), except
    ``contains`` matches, which :func:`slow_reasons` reports.
    """
    clauses: list[dict[str, Any]] = []
    if session_id:
        text = clean_text(session_id, "session_id")
        if session_id_mode not in SESSION_ID_MODES:
            raise ViewerInputError(f"session_id_match must be one of {', '.join(SESSION_ID_MODES)}")
        if text:
            if session_id_mode == "exact":
                clauses.append({d.SESSION_ID: {"$eq": text}})
            elif session_id_mode == "prefix":
                clauses.append({d.SESSION_ID: prefix_regex(text)})
            else:
                clauses.append({d.SESSION_ID: literal_regex(text)})
    for date_range in (
        DateRange(d.CREATED_AT, created_from, created_to),
        DateRange(d.UPDATED_AT, updated_from, updated_to),
    ):
        clause = date_range.clause()
        if clause:
            clauses.append(clause)
    for condition in conditions:
        if condition.op == "contains":
            clauses.append({condition.field: literal_regex(str(condition.value))})
        elif condition.op == "prefix":
            clauses.append({condition.field: prefix_regex(str(condition.value))})
        else:
            clauses.append({condition.field: {"$eq": condition.value}})
    if feedback:
        clauses.append(feedback_clause(feedback))
    for path, value, what in (
        (d.AGENT_IDS, agent_id, "agent_id"),
        (d.MODELS, model, "model"),
        (d.APPLICATION_NAME, application_name, "application_name"),
    ):
        if value is not None and value.strip():
            clauses.append({path: {"$eq": clean_text(value, what)}})
    if not clauses:
        return {}
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


#: The sorts the UI offers, by short name, each served by ``{<field>: -1, _id: 1}``.
SORTS: dict[str, str] = {"created": d.CREATED_AT, "updated": d.UPDATED_AT, "tokens": d.TOTAL_TOKENS_PATH}


def sort_field(sort_by: str | None, allowed: Iterable[str]) -> str:
    """``created``/``updated``/``tokens`` or, for older clients, any filterable (indexed) field path."""
    name = sort_by or "created"
    if name in SORTS:
        return SORTS[name]
    if name in SORTS.values():
        return name
    if not is_safe_path(name) or name not in set(allowed):
        raise ViewerInputError(f"cannot sort on {name[:80]!r}: use created, updated or tokens")
    return name


def sort_spec(sort_by: str | None, order: str | None, allowed: Iterable[str]) -> dict[str, int]:
    """Sort on an allowed field (newest first by default); ``_id`` breaks ties so pages never overlap.

    The tie-break runs opposite to the field for ascending order, so both directions are one index
    (``{field: -1, _id: 1}``) walked forwards or backwards, never an in-memory sort.
    """
    field = sort_field(sort_by, allowed)
    direction = (order or "desc").lower()
    if direction not in ("asc", "desc"):
        raise ViewerInputError("sort_order must be 'asc' or 'desc'")
    return {field: 1, d.ID: -1} if direction == "asc" else {field: -1, d.ID: 1}


def slow_reasons(
    *,
    sort: Mapping[str, int],
    session_id_mode: str,
    conditions: Iterable[Condition],
    date_fields: Iterable[str],
    filtered: bool,
    keyset: bool,
) -> list[str]:
    """Why a search cannot be answered by walking one index (shown in the UI, listed in the API docs).

    Everything else the viewer offers reads about one page of index keys per click.
    """
    reasons: list[str] = []
    field = next(iter(sort))
    if session_id_mode == "contains":
        reasons.append("session id 'contains' reads every session id (time-limited)")
    for condition in conditions:
        if condition.op == "contains":
            reasons.append(f"'contains' on {field_label(condition.field)} reads every key of its index (time-limited)")
        elif condition.op == "prefix":
            reasons.append(f"'starts with' on {field_label(condition.field)} sorts its matches in memory")
    for date_field in date_fields:
        if date_field != field:
            reasons.append(
                f"a {field_label(date_field)} range while sorting by {field_label(field)} is filtered, not bounded"
            )
    if field == d.TOTAL_TOKENS_PATH and filtered:
        reasons.append("sorting by tokens with filters reads sessions until a page matches")
    if not keyset:
        reasons.append(f"sorting by {field_label(field)} pages by skipping")
    return reasons


def count_reads_documents(match: Mapping[str, Any]) -> bool:
    """True when counting ``match`` must read documents, not only index keys.

    One equality, prefix or range clause is a COUNT_SCAN over one index; two clauses (one is checked
    on the documents the other's index finds), an ``$elemMatch`` (the feedback filter also checks
    the entry's source) or a case-insensitive regex need the documents.
    """
    if not match:
        return False
    clauses = match.get("$and") if isinstance(match.get("$and"), list) else [match]
    if len(clauses) != 1:
        return True
    text = json.dumps(clauses[0], default=str)
    return '"$elemMatch"' in text or '"$options"' in text


def detail_projection() -> dict[str, int]:
    """The whole session except what must never leave the server."""
    return {d.VIEWER_PASSWORD: 0}


def total_pages(total: int, size: int) -> int:
    return max(1, -(-total // size))


def search_pipeline(
    match: Mapping[str, Any], sort: Mapping[str, int], page: Page, collection: str = COLLECTION_NAME
) -> list[dict[str, Any]]:
    """One page of card rows by page number (``$skip``): kept for callers of earlier versions.

    The API pages with :func:`page_pipeline` and a cursor; this reads ``skip`` index keys first.
    ``collection`` is the session collection the pipeline runs on (its archived messages' companion
    collection gives the previews of long sessions).
    """
    from .cards import SUMMARY_PROJECTION, preview_stages

    return [
        {"$match": dict(match)},
        {"$sort": dict(sort)},
        {"$skip": page.skip},
        {"$limit": page.size},
        {"$project": SUMMARY_PROJECTION},
        *preview_stages(buckets_collection_name(collection)),
    ]
