"""Which blocks go out of line, and how markers are put back, without touching the caller's objects."""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from mongodb_session_manager import blobs


def uploads() -> tuple[list[bytes], Any]:
    stored: list[bytes] = []

    def upload(data: bytes) -> ObjectId:
        stored.append(data)
        return ObjectId()

    return stored, upload


def test_only_blocks_over_the_threshold_leave_and_the_input_is_never_changed() -> None:
    message = {
        "role": "user",
        "content": [
            {"text": "small"},
            {"text": "L" * 5000},
            {"toolResult": {"toolUseId": "t1", "status": "success", "content": [{"text": "R" * 5000}, {"text": "ok"}]}},
        ],
    }
    original = repr(message)
    stored, upload = uploads()
    new, ids = blobs.externalize_message(message, 1000, upload)
    assert repr(message) == original, "the agent's in-memory message is untouched"
    assert new is not None and len(ids) == 2 == len(stored)
    assert new["content"][0] == {"text": "small"}
    assert blobs.is_marker(new["content"][1])
    result = new["content"][2]["toolResult"]
    assert (
        result["toolUseId"] == "t1" and blobs.is_marker(result["content"][0]) and result["content"][1] == {"text": "ok"}
    )

    documents = [{"message_id": 0, "message": new}]
    assert blobs.marker_ids(documents) == ids
    import bson

    blocks = {i: bson.decode(data)["b"] for i, data in zip(ids, stored, strict=True)}
    [back] = blobs.resolve_messages(documents, blocks)
    assert back["message"] == message


def test_a_message_without_large_blocks_is_left_alone() -> None:
    stored, upload = uploads()
    assert blobs.externalize_message({"role": "user", "content": [{"text": "hi"}]}, 1000, upload) == (None, [])
    assert blobs.externalize_message({"role": "user", "content": "not a list"}, 1, upload) == (None, [])
    assert stored == []


def test_the_raw_marker_check_finds_markers_and_nothing_else() -> None:
    import bson

    with_marker = bson.encode({"m": {blobs.BLOB_MARKER: {"id": ObjectId(), "bytes": 1}}})
    assert blobs.has_markers(with_marker)
    assert not blobs.has_markers(bson.encode({"m": {"text": "__msm_blob is only text"}}))
