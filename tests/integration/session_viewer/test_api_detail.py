"""The detail endpoint against the real mongod: unified timeline, metrics, agent config, content."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import Binary
from fastapi.testclient import TestClient
from pymongo import MongoClient

from .conftest import GLOBAL, AppFactory

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def get(api: TestClient, session_id: str) -> dict[str, Any]:
    response = api.get(f"/api/v1/sessions/{session_id}", headers=GLOBAL)
    assert response.status_code == 200, response.text
    return response.json()


def test_timeline_merges_agents_and_feedback_in_time_order(api: TestClient) -> None:
    body = get(api, "support-ada-001")
    timeline = body["timeline"]
    stamps = [item["created_at"] for item in timeline]
    assert stamps == sorted(stamps)
    assert all(s.endswith("Z") for s in stamps)
    messages = [i for i in timeline if i["type"] == "message"]
    assert len(messages) == 10
    # The conversation as it happened: support, then billing (with a calculator call), then support again.
    assert [m["agent_id"] for m in messages] == ["support"] * 2 + ["billing"] * 4 + ["support"] * 4
    for agent_id in ("support", "billing"):
        own = [m["message_id"] for m in messages if m["agent_id"] == agent_id]
        assert own == sorted(own)
    assert timeline[0]["content"] == [{"type": "text", "text": "Hi, my order 1001 arrived damaged."}]
    assert timeline[-1] == {
        "type": "feedback",
        "id": "feedback:0",
        "rating": "up",
        "comment": "Quick and **clear**, thank you!",
        "created_at": timeline[-1]["created_at"],
        "source": None,
        "extra": {},
    }


def test_tool_calls_and_results_are_readable_blocks(api: TestClient) -> None:
    timeline = get(api, "support-ada-001")["timeline"]
    billing = [i for i in timeline if i.get("agent_id") == "billing"]
    tool_use = billing[1]["content"][1]
    assert tool_use["type"] == "tool_use" and tool_use["name"] == "calculator"
    assert tool_use["input"] == {"expression": "3 * 19.99"}
    result = billing[2]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == tool_use["tool_use_id"]
    assert result["status"] == "success" and result["content"] == [{"type": "text", "text": "Result: 59.97"}]


def test_metrics_per_message_and_per_turn(api: TestClient) -> None:
    body = get(api, "support-ada-001")
    assistant = [i for i in body["timeline"] if i.get("role") == "assistant"]
    assert all(m["usage"]["totalTokens"] > 0 and m["latency_ms"] == 42 for m in assistant)
    turn_ends = [m for m in assistant if m["metrics"]]
    assert len(turn_ends) == 3  # one per agent invocation
    metrics = turn_ends[1]["metrics"]
    assert metrics["turn_tool_calls"] == {"calculator": 1}
    assert metrics["turn_cycle_count"] == 2
    assert metrics["turn_metrics"]["latencyMs"] == 84
    assert metrics["turn_usage"]["totalTokens"] > 0
    assert metrics["recorded_at"].endswith("Z")
    totals = body["totals"]
    assert totals["turns"] == 3 and totals["latencyMs"] == 42 * 5
    assert totals["totalTokens"] == sum(m["metrics"]["turn_usage"]["totalTokens"] for m in turn_ends)


def test_agent_configuration_and_metadata(api: TestClient) -> None:
    body = get(api, "billing-grace-002")
    agents = {a["agent_id"]: a for a in body["agents"]}
    assert [a["agent_id"] for a in body["agents"]] == ["triage", "billing"]  # creation order
    assert agents["billing"]["model"] == "scripted-billing"
    assert agents["billing"]["system_prompt"] == "You are a billing specialist. Be precise with amounts."
    assert agents["billing"]["message_count"] == 4
    assert agents["billing"]["totals"]["tool_calls"] == {"calculator": 1}
    assert body["metadata"]["vip"] is True
    assert body["feedbacks"][0]["rating"] == "down"
    assert body["session_type"] == "AGENT"


def test_missing_and_invalid_session_ids(api: TestClient) -> None:
    assert api.get("/api/v1/sessions/nope", headers=GLOBAL).status_code == 404
    assert api.get("/api/v1/sessions/nope", headers=GLOBAL).json() == {"detail": "session not found"}
    for bad in ("a.b", "$where", "x" * 600):
        response = api.get(f"/api/v1/sessions/{bad}", headers=GLOBAL)
        assert response.status_code == 422
        assert response.json() == {"detail": "invalid session id"}


def raw_session(session_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "_id": session_id,
        "session_id": session_id,
        "session_type": "AGENT",
        "session_viewer_password": "P" * 32,
        "created_at": T0,
        "updated_at": T0,
        "metadata": {},
        "feedbacks": [],
        "agents": {},
        "multi_agents": {},
        **fields,
    }


def msg(message_id: int, role: str, content: list[Any], at: datetime) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "message": {"role": role, "content": content},
        "redact_message": None,
        "created_at": at,
        "updated_at": at,
    }


def test_equal_timestamps_give_a_stable_order(
    make_api: AppFactory, mongo_client: MongoClient[Any], db_name: str
) -> None:
    same = [msg(i, "user" if i % 2 == 0 else "assistant", [{"text": f"m{i}"}], T0) for i in range(3)]
    mongo_client[db_name]["sessions"].insert_one(
        raw_session(
            "ties",
            agents={
                "b-later": {"agent_data": {"created_at": T0 + timedelta(seconds=1)}, "messages": same[:2]},
                "a-first": {"agent_data": {"created_at": T0}, "messages": same},
            },
            feedbacks=[{"rating": "up", "comment": "x", "created_at": T0}],
        )
    )
    with make_api(db_name) as api:
        orders = {tuple(i["id"] for i in get(api, "ties")["timeline"]) for _ in range(3)}
    assert orders == {("a-first:0", "a-first:1", "a-first:2", "b-later:0", "b-later:1", "feedback:0")}


def test_binary_content_is_a_size_placeholder_and_never_returned(
    make_api: AppFactory, mongo_client: MongoClient[Any], db_name: str
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\xab" * 2040
    content = [
        {"text": "Here is the picture"},
        {"image": {"format": "png", "source": {"bytes": Binary(png)}}},
        {"document": {"format": "pdf", "name": "invoice", "source": {"bytes": Binary(b"%PDF-1.7" * 16)}}},
        {
            "toolResult": {
                "toolUseId": "t",
                "status": "error",
                "content": [{"json": {"when": T0, "raw": Binary(b"xyz")}}],
            }
        },
    ]
    mongo_client[db_name]["sessions"].insert_one(
        raw_session(
            "files", agents={"a": {"agent_data": {"created_at": T0}, "messages": [msg(0, "user", content, T0)]}}
        )
    )
    with make_api(db_name) as api:
        response = api.get("/api/v1/sessions/files", headers=GLOBAL)
    blocks = response.json()["timeline"][0]["content"]
    assert blocks[1] == {"type": "image", "format": "png", "size_bytes": 2048}
    assert blocks[2] == {"type": "document", "name": "invoice", "format": "pdf", "size_bytes": 128}
    assert blocks[3]["status"] == "error"
    assert blocks[3]["content"] == [
        {"type": "json", "json": {"when": "2024-05-01T12:00:00.000Z", "raw": "[binary data: 3 bytes]"}}
    ]
    assert "iVBOR" not in response.text and "JVBER" not in response.text  # no base64 of the bytes either


def test_session_ids_with_slashes_and_unicode(
    make_api: AppFactory, mongo_client: MongoClient[Any], db_name: str
) -> None:
    mongo_client[db_name]["sessions"].insert_many([raw_session("tenant/42/chat"), raw_session("café-☕")])
    with make_api(db_name) as api:
        assert get(api, "tenant%2F42%2Fchat")["session_id"] == "tenant/42/chat"
        assert get(api, "caf%C3%A9-%E2%98%95")["session_id"] == "café-☕"
        assert json.dumps(get(api, "tenant/42/chat"))
