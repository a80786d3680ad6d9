"""Keyset ("search after") paging for the viewer's list: opaque cursors and the clause they become.

A page continues from the last row of the previous one: the sort field's value and the ``_id``
tie-break travel in an opaque, URL-safe cursor, and the next query starts the index walk there
(``{field: {$lte: v}}`` as index bounds, a residual ``$or`` for the ties). Page N therefore costs
what page 1 costs, where ``$skip`` would read N pages of keys first. Pure and unit-tested.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mongodb_session_manager import documents as d

from .queries import SCALAR_TYPES, ViewerInputError, value_at


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: just after (``next``) or just before (``prev``) the row ``(value, id)``.

    The sort is part of the cursor, so a cursor from another sort is refused rather than misread.
    """

    field: str
    order: int
    direction: str
    value: datetime | int | float | str | bool | None
    row_id: str


def _encode_value(value: Any) -> list[Any]:
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return ["d", int(aware.timestamp() * 1000)]
    if value is None or isinstance(value, bool | int | float | str):
        return ["v", value]
    return ["s", str(value)]


def _decode_value(encoded: Any) -> Any:
    if not isinstance(encoded, list) or len(encoded) != 2:
        raise ViewerInputError("cursor is not valid")
    kind, value = encoded
    if kind == "d" and isinstance(value, int) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ViewerInputError("cursor is not valid") from exc
    if kind in ("v", "s") and (value is None or isinstance(value, SCALAR_TYPES)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ViewerInputError("cursor is not valid")
        return value
    raise ViewerInputError("cursor is not valid")


def encode_cursor(sort: Mapping[str, int], direction: str, row: Mapping[str, Any]) -> str:
    """An opaque token for the page after (or before) ``row``; URL-safe, no padding."""
    field, order = next(iter(sort.items()))
    payload = [field, order, direction, _encode_value(value_at(row, field)), str(row.get(d.ID))]
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, sort: Mapping[str, int]) -> Cursor:
    if len(token) > 2048:
        raise ViewerInputError("cursor is not valid")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise ViewerInputError("cursor is not valid") from exc
    if not isinstance(payload, list) or len(payload) != 5:
        raise ViewerInputError("cursor is not valid")
    field, order, direction, value, row_id = payload
    if direction not in ("next", "prev") or not isinstance(row_id, str) or not isinstance(field, str):
        raise ViewerInputError("cursor is not valid")
    if [field, order] != list(next(iter(sort.items()))):
        raise ViewerInputError("cursor belongs to another sort order; start again from the first page")
    return Cursor(field=field, order=int(order), direction=direction, value=_decode_value(value), row_id=row_id)


def keyset_clause(cursor: Cursor) -> dict[str, Any]:
    """Rows strictly after ``cursor`` in the sort ``{field: order, _id: -order}`` (``prev``: strictly before).

    Written as a bound on the sort field (``$lte``/``$gte``, which the server turns into index bounds)
    plus a residual ``$or`` that only decides ties, so the scan starts at the cursor instead of skipping.
    """
    forward = cursor.direction == "next"
    descending = cursor.order < 0
    past_value = "$lt" if descending == forward else "$gt"
    bound = "$lte" if past_value == "$lt" else "$gte"
    id_after = "$gt" if descending == forward else "$lt"
    return {
        cursor.field: {bound: cursor.value},
        "$or": [{cursor.field: {past_value: cursor.value}}, {d.ID: {id_after: cursor.row_id}}],
    }


def reverse(sort: Mapping[str, int]) -> dict[str, int]:
    return {field: -order for field, order in sort.items()}


def with_clause(match: Mapping[str, Any], clause: Mapping[str, Any]) -> dict[str, Any]:
    if not match:
        return dict(clause)
    return {"$and": [dict(match), dict(clause)]}


def page_pipeline(
    match: Mapping[str, Any],
    sort: Mapping[str, int],
    size: int,
    projection: Mapping[str, Any],
    *,
    cursor: Cursor | None = None,
    skip: int = 0,
    after: Sequence[Mapping[str, Any]] = (),
) -> list[dict[str, Any]]:
    """One page plus one row (to tell whether another page follows), in display order or, for
    ``prev``, in reverse (the caller flips it back). ``$sort`` + ``$limit`` is a top-k walk of the index.

    ``after`` are stages run on the projected rows of the page only (the cards' preview lookup)."""
    effective_sort = dict(sort)
    filters = dict(match)
    if cursor is not None:
        filters = with_clause(match, keyset_clause(cursor))
        if cursor.direction == "prev":
            effective_sort = reverse(sort)
    stages: list[dict[str, Any]] = [{"$match": filters}, {"$sort": effective_sort}]
    if skip:
        stages.append({"$skip": skip})
    stages += [{"$limit": size + 1}, {"$project": dict(projection)}]
    stages += [dict(stage) for stage in after]
    return stages
