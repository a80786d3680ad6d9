"""The detail view's data: JSON-safe values, readable content blocks, a stable unified timeline."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from bson import Binary, Decimal128, ObjectId

from session_viewer.backend import timeline as t

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def message(message_id: int, role: str, text: str, at: datetime | None, **extra: Any) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "message": {"role": role, "content": [{"text": text}]},
        "redact_message": None,
        "created_at": at,
        "updated_at": at,
        **extra,
    }


def agent(created: datetime | None, *messages: dict[str, Any], **data: Any) -> dict[str, Any]:
    return {"agent_data": {"created_at": created, **data}, "messages": list(messages)}


def test_to_jsonable_never_returns_bytes_and_writes_dates_as_utc_iso() -> None:
    value = {
        "when": datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
        "naive": datetime(2024, 5, 1, 12, 0),
        "raw": b"\x00" * 10,
        "binary": Binary(b"abc", 0),
        "encoded": {"__bytes_encoded__": True, "data": base64.b64encode(b"12345678").decode()},
        "oid": ObjectId("0123456789ab0123456789ab"),
        "decimal": Decimal128("1.5"),
        "nan": float("nan"),
        "nested": [{"inf": float("inf")}, (1, 2)],
    }
    out = t.to_jsonable(value)
    json.dumps(out, allow_nan=False)  # plain, strict JSON
    assert out["when"] == "2024-05-01T12:00:00.000Z"
    assert out["naive"] == "2024-05-01T12:00:00.000Z"
    assert out["raw"] == "[binary data: 10 bytes]"
    assert out["binary"] == "[binary data: 3 bytes]"
    assert out["encoded"] == "[binary data: 8 bytes]"
    assert out["oid"] == "0123456789ab0123456789ab"
    assert out["decimal"] == "1.5"
    assert out["nan"] == "nan"
    assert out["nested"] == [{"inf": "inf"}, [1, 2]]


def test_iso_strings_have_a_fixed_width_so_they_sort_like_the_dates() -> None:
    whole = t.iso(datetime(2024, 5, 1, 12, 0, 52, tzinfo=UTC))
    fraction = t.iso(datetime(2024, 5, 1, 12, 0, 52, 499_999, tzinfo=UTC))
    assert (whole, fraction) == ("2024-05-01T12:00:52.000Z", "2024-05-01T12:00:52.499Z")
    assert sorted([fraction, whole]) == [whole, fraction]


def test_content_blocks_become_readable_tagged_blocks() -> None:
    blocks = [
        {"text": "**hi**"},
        {"toolUse": {"toolUseId": "t1", "name": "calculator", "input": {"expression": "2+2"}}},
        {"toolResult": {"toolUseId": "t1", "status": "success", "content": [{"text": "4"}, {"json": {"at": T0}}]}},
        {"image": {"format": "png", "source": {"bytes": b"\x89PNG" + b"\x00" * 96}}},
        {"document": {"format": "pdf", "name": "invoice", "source": {"bytes": Binary(b"%PDF" * 5)}}},
        {"reasoningContent": {"reasoningText": {"text": "thinking", "signature": "sig"}}},
        {"cachePoint": {"type": "default"}},
        "bare string",
    ]
    assert t.normalize_content(blocks) == [
        {"type": "text", "text": "**hi**"},
        {"type": "tool_use", "tool_use_id": "t1", "name": "calculator", "input": {"expression": "2+2"}},
        {
            "type": "tool_result",
            "tool_use_id": "t1",
            "status": "success",
            "content": [{"type": "text", "text": "4"}, {"type": "json", "json": {"at": "2024-05-01T12:00:00.000Z"}}],
        },
        {"type": "image", "format": "png", "size_bytes": 100},
        {"type": "document", "name": "invoice", "format": "pdf", "size_bytes": 20},
        {"type": "reasoning", "text": "thinking"},
        {"type": "other", "data": {"cachePoint": {"type": "default"}}},
        {"type": "text", "text": "bare string"},
    ]
    assert t.normalize_content("plain") == [{"type": "text", "text": "plain"}]
    assert t.normalize_content(None) == []


def test_timeline_is_chronological_across_agents_with_feedback() -> None:
    doc = {
        "agents": {
            "support": agent(
                T0, message(0, "user", "s0", T0), message(1, "assistant", "s1", T0 + timedelta(seconds=3))
            ),
            "billing": agent(T0, message(0, "user", "b0", T0 + timedelta(seconds=1))),
        },
        "feedbacks": [{"rating": "up", "comment": "nice", "created_at": T0 + timedelta(seconds=2)}],
    }
    items = t.build_timeline(doc)
    assert [i["id"] for i in items] == ["support:0", "billing:0", "feedback:0", "support:1"]
    assert [i["created_at"] for i in items] == sorted(i["created_at"] for i in items)


def test_equal_timestamps_order_by_agent_creation_then_id_then_feedback() -> None:
    doc = {
        "agents": {
            # Inserted in a different order than created: creation time wins, then the agent id.
            "zeta": agent(T0 + timedelta(seconds=1), message(0, "user", "z0", T0), message(1, "assistant", "z1", T0)),
            "alpha": agent(T0 + timedelta(seconds=1), message(0, "user", "a0", T0)),
            "first": agent(T0, message(0, "user", "f0", T0), message(1, "assistant", "f1", T0)),
        },
        "feedbacks": [
            {"rating": "down", "comment": "1", "created_at": T0},
            {"rating": None, "comment": "2", "created_at": T0},
        ],
    }
    expected = ["first:0", "first:1", "alpha:0", "zeta:0", "zeta:1", "feedback:0", "feedback:1"]
    assert [i["id"] for i in t.build_timeline(doc)] == expected
    reordered = {"agents": dict(reversed(list(doc["agents"].items()))), "feedbacks": doc["feedbacks"]}
    assert [i["id"] for i in t.build_timeline(reordered)] == expected


def test_items_without_a_timestamp_keep_their_place() -> None:
    doc = {
        "agents": {
            "a": agent(T0, message(0, "user", "x", T0 + timedelta(seconds=5)), message(1, "assistant", "y", None))
        }
    }
    items = t.build_timeline(doc)
    assert [i["id"] for i in items] == ["a:0", "a:1"]
    assert items[1]["created_at"] is None


def test_message_items_carry_usage_metrics_and_redaction() -> None:
    stored = message(
        3, "assistant", "secret", T0, event_loop_metrics={"turn_usage": {"totalTokens": 7}, "recorded_at": T0}
    )
    stored["message"]["metadata"] = {
        "usage": {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7},
        "metrics": {"latencyMs": 42},
    }
    stored["redact_message"] = {"role": "assistant", "content": [{"text": "[REDACTED]"}]}
    item = t.build_timeline({"agents": {"a": agent(T0, stored)}})[0]
    assert item["content"] == [{"type": "text", "text": "[REDACTED]"}]
    assert item["redacted"] is True
    assert item["usage"] == {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7}
    assert item["latency_ms"] == 42
    assert item["metrics"] == {"turn_usage": {"totalTokens": 7}, "recorded_at": "2024-05-01T12:00:00.000Z"}


def test_session_detail_is_an_allow_list_without_passwords() -> None:
    doc = {
        "_id": "s1",
        "session_id": "s1",
        "session_type": "AGENT",
        "session_viewer_password": "TOPSECRET",
        "created_at": T0,
        "updated_at": T0,
        "metadata": {"status": "open", "when": T0},
        "feedbacks": [{"rating": "up", "comment": "ok", "created_at": T0, "source": "widget"}],
        "agents": {
            "a": agent(
                T0,
                message(0, "user", "hi", T0),
                model="m1",
                system_prompt="be nice",
                totals={"usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}, "latencyMs": 5, "turns": 1},
                _internal_state={"interrupt": "x"},
                conversation_manager_state={"removed": 0},
            ),
            "b": agent(T0, totals={"usage": {"totalTokens": 10}, "latencyMs": 1, "turns": 2}),
        },
        "multi_agents": {"graph": {"state": {"x": 1}}},
    }
    detail = t.session_detail(doc)
    assert "TOPSECRET" not in json.dumps(detail)
    assert set(detail) == {
        "session_id",
        "session_type",
        "created_at",
        "updated_at",
        "metadata",
        "agents",
        "totals",
        "feedbacks",
        "feedback_summary",
        "timeline",
        "timeline_offset",
        "timeline_total",
        "timeline_next_offset",
    }
    assert detail["metadata"] == {"status": "open", "when": "2024-05-01T12:00:00.000Z"}
    assert detail["agents"][0]["model"] == "m1" and detail["agents"][0]["system_prompt"] == "be nice"
    assert "_internal_state" not in json.dumps(detail["agents"])
    assert detail["totals"] == {"inputTokens": 1, "outputTokens": 2, "totalTokens": 13, "latencyMs": 6, "turns": 3}
    assert detail["feedbacks"][0]["source"] == "widget" and detail["feedbacks"][0]["extra"] == {}


def test_malformed_documents_do_not_break_the_view() -> None:
    doc = {"session_id": "s", "agents": "oops", "feedbacks": {"not": "a list"}, "metadata": ["x"]}
    detail = t.session_detail(doc)
    assert detail["timeline"] == [] and detail["agents"] == [] and detail["metadata"] == {}
    odd = {"agents": {"a": {"agent_data": None, "messages": [None, {"message": "x", "message_id": True}]}}}
    [item] = t.build_timeline(odd)
    assert item["role"] == "unknown" and item["message_id"] is None and item["content"] == []


def test_ref_shaped_sub_documents_come_back_as_the_stored_mapping() -> None:
    import bson

    stored = bson.decode(bson.encode({"input": {"schema": {"$ref": "#/defs/x", "$id": "y"}}}))
    assert type(stored["input"]["schema"]).__name__ == "DBRef"  # what the driver hands the viewer
    assert t.to_jsonable(stored) == {"input": {"schema": {"$ref": "#/defs/x", "$id": "y"}}}


def test_agent_counts_include_archived_messages() -> None:
    split = agent(T0, message(7, "user", "recent", T0))
    split["archive"] = {"count": 7, "bytes": 700, "buckets": [{"id": "b0", "start": 0, "count": 7}]}
    header_row = {"agent_data": {"created_at": T0}, "message_count": 8}  # detail_queries.header_pipeline's shape
    detail = t.session_detail({"agents": {"whole": split, "header": header_row}})
    assert {a["agent_id"]: a["message_count"] for a in detail["agents"]} == {"whole": 8, "header": 8}
