"""The viewer's rendering of a snapshot session: pure functions, no database."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bson import Binary

from session_viewer.backend.snapshot_timeline import detail_from_document, message_log_view

T1 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
T2 = datetime(2026, 1, 1, 10, 5, tzinfo=UTC)
SAVED = datetime(2026, 1, 1, 10, 6, tzinfo=UTC)


def snapshot(messages: list[dict[str, object]]) -> dict[str, object]:
    return {"scope": "agent", "schema_version": "1.0", "data": {"messages": messages, "state": {"k": 1}}}


MESSAGES = [
    {"role": "user", "content": [{"text": "q1"}]},
    {"role": "assistant", "content": [{"text": "a1"}]},
    {"role": "user", "content": [{"text": "q2"}]},
    {"role": "assistant", "content": [{"text": "a2"}]},
]


def doc(entry: dict[str, object]) -> dict[str, object]:
    return {
        "session_id": "s",
        "session_type": "AGENT",
        "created_at": T1,
        "updated_at": SAVED,
        "metadata": {"m": 1},
        "feedbacks": [{"rating": "up", "comment": "ok", "created_at": T2}],
        "snapshots": {"agent": {"main%2Ex": {"key": "k", **entry, "updated_at": SAVED}}},
        "snapshot_agents": {
            "main%2Ex": {
                "model": "m1",
                "system_prompt": "be kind",
                "totals": {"turns": 2, "usage": {"totalTokens": 30}},
                "turn_metrics": [
                    {"message_index": 1, "turn_usage": {"totalTokens": 10}, "created_at": T1},
                    {"message_index": 3, "turn_usage": {"totalTokens": 20}, "created_at": T2},
                ],
            }
        },
    }


def test_timeline_from_the_latest_snapshot_with_turn_times_and_metrics() -> None:
    body = detail_from_document(doc({"data": snapshot(MESSAGES), "raw": None}), 0, 50)
    messages = [i for i in body["timeline"] if i["type"] == "message"]
    assert [m["content"][0]["text"] for m in messages] == ["q1", "a1", "q2", "a2"]
    assert {m["agent_id"] for m in messages} == {"main.x"}
    assert [m["created_at"][:16] for m in messages] == ["2026-01-01T10:00"] * 2 + ["2026-01-01T10:05"] * 2
    assert messages[1]["metrics"] == {"turn_usage": {"totalTokens": 10}} and messages[0]["metrics"] is None
    assert body["timeline"][-1]["type"] == "feedback"
    [agent] = body["agents"]
    assert agent["message_count"] == 4 and agent["model"] == "m1" and agent["state"] == {"k": 1}
    assert body["totals"]["turns"] == 2 and body["timeline_total"] == 5


def test_raw_payloads_and_paging() -> None:
    raw = json.dumps(snapshot(MESSAGES), separators=(",", ":")).encode()
    body = detail_from_document(doc({"data": None, "raw": Binary(raw)}), 3, 1)
    assert body["timeline_offset"] == 3 and len(body["timeline"]) == 1 and body["timeline_next_offset"] == 4


def test_unreadable_snapshot_shows_an_empty_agent() -> None:
    view = message_log_view(doc({"data": None, "raw": Binary(b"\xff not json")}))
    assert view["agents"]["main.x"]["messages"] == []


def test_images_in_a_snapshot_are_shown_as_placeholders_never_as_base64() -> None:
    from strands.types.session import encode_bytes_values

    image = {"image": {"format": "png", "source": {"bytes": b"\x89PNG" + bytes(300)}}}
    messages = encode_bytes_values([{"role": "user", "content": [{"text": "photo"}, image]}])
    body = detail_from_document(doc({"data": snapshot(messages), "raw": None}), 0, 50)
    shown = json.dumps(body["timeline"][0]["content"])
    assert "photo" in shown and "iVBOR" not in shown and "__bytes_encoded__" not in shown
