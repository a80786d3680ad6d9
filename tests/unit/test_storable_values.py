"""Values BSON cannot hold are stored as JSON text and read back exactly; the rest is untouched."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import bson
import pytest

from mongodb_session_manager import documents_values as dv
from mongodb_session_manager.errors import InvalidInputError


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"d": value}
    return value


@pytest.mark.parametrize(
    "value",
    [
        {"n": 2**64},
        {"n": -(2**63) - 1},
        {"k\x00": 1},
        {"$set": 1},
        {"a.b": 1},
        {"": 1},
        {"s": "\ud83d alone"},
        {"k\udc00": 1},
        deep(dv.MAX_VALUE_DEPTH + 5),
        deep(500),
        [deep(200), {"x": [2**70]}],
    ],
)
def test_unstorable_values_become_json_markers_that_read_back_exactly(value: Any) -> None:
    stored = dv.storable(value)
    bson.encode({"v": stored})  # the driver accepts it now
    assert dv.from_bson(stored) == value


def test_ordinary_values_are_stored_as_they_are() -> None:
    value = {
        "text": "héllo",
        "n": 2**62,
        "f": 1.5,
        "b": b"\x00\x01",
        "when": datetime(2026, 1, 1, tzinfo=UTC),
        "id": uuid.UUID(int=7),
        "list": [1, "two", None, True],
        "$ref": "#/x",
        "$id": "y",
    }
    assert dv.storable(value) == value


def test_strands_base64_bytes_become_binary() -> None:
    stored = dv.storable({"image": {"__bytes_encoded__": True, "data": "AAE="}})
    assert stored == {"image": b"\x00\x01"}


def test_bytes_inside_a_json_subtree_survive() -> None:
    value = {"k\x00": {"png": b"\x89PNG"}}
    assert dv.from_bson(dv.storable(value)) == value


def test_a_value_even_json_cannot_hold_is_a_typed_error() -> None:
    with pytest.raises(InvalidInputError):
        dv.storable({"$bad": object()})
    with pytest.raises(InvalidInputError):
        dv.storable(deep(100_000))
