"""Pure builders for snapshot sessions' features, migration and viewer reads; and the migration's conversion."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from mongodb_session_manager import documents_snapshot_features as dsf
from mongodb_session_manager.snapshot_migration import snapshot_of_agent

AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_turn_pipeline_caps_metrics_and_keeps_overrides_in_the_server() -> None:
    [base, stage] = dsf.turn_pipeline(
        "s1",
        "a.b",
        metrics={"message_index": 3},
        totals={"usage.totalTokens": 5, "turns": 1},
        config=("m1", "prompt"),
        at=AT,
    )
    fields = stage["$set"]
    metrics = fields["snapshot_agents.a%2Eb.turn_metrics"]
    assert metrics["$slice"][1] == -1000
    assert fields["snapshot_agents.a%2Eb.totals.turns"] == {
        "$add": [{"$ifNull": ["$snapshot_agents.a%2Eb.totals.turns", 0]}, {"$literal": 1}]
    }
    assert "totals.usage.totalTokens" in fields  # the session-wide sum the viewer sorts on
    cond = fields["snapshot_agents.a%2Eb.model"]["$cond"]
    assert cond[1] == "$snapshot_agents.a%2Eb.model" and cond[2] == {"$literal": "m1"}
    assert fields["snapshot_agents.a%2Eb.config_captured"] == {"$literal": {"model": "m1", "system_prompt": "prompt"}}
    assert base["$set"]["agent_ids"]["$setUnion"][1] == {"$literal": ["a.b"]}


def test_ensure_session_keeps_updated_at() -> None:
    [stage] = dsf.ensure_session_pipeline("s1", "app")
    assert stage["$set"]["updated_at"]["$ifNull"][0] == "$updated_at"
    assert stage["$set"]["application_name"] == {"$ifNull": ["$application_name", {"$literal": "app"}]}


def test_viewer_reads_never_include_the_password_or_tokens() -> None:
    assert "session_viewer_password" not in dsf.VIEWER_PROJECTION
    assert all("token" not in key for key in dsf.VIEWER_PROJECTION)
    assert "messages" not in json.dumps(dsf.card_agents_expression()) + json.dumps(dsf.card_preview_expression())


def test_snapshot_of_a_message_log_agent() -> None:
    def stored(i: int, role: str, text: str, **extra: object) -> dict[str, object]:
        return {"message_id": i, "message": {"role": role, "content": [{"text": text}]}, "created_at": AT, **extra}

    agent = {
        "agent_data": {
            "state": {"k": 1},
            "conversation_manager_state": {"__name__": "SlidingWindowConversationManager", "removed_message_count": 2},
            "_internal_state": {"interrupt_state": {"interrupts": {}, "context": {}, "activated": False}},
            "model": "m1",
            "system_prompt": "be brief",
            "totals": {"turns": 2},
            "updated_at": AT,
        },
        "messages": [
            stored(0, "user", "trimmed"),
            stored(1, "assistant", "trimmed too", event_loop_metrics={"turn_usage": {"totalTokens": 3}}),
            stored(2, "user", "secret", redact_message={"role": "user", "content": [{"text": "[redacted]"}]}),
            stored(3, "assistant", "answer", event_loop_metrics={"turn_usage": {"totalTokens": 4}}),
        ],
    }
    data, features, count = snapshot_of_agent("s1", "a", agent)
    snapshot = json.loads(data)
    assert snapshot["scope"] == "agent" and snapshot["schema_version"] == "1.0"
    assert [m["content"][0]["text"] for m in snapshot["data"]["messages"]] == ["[redacted]", "answer"]
    assert snapshot["data"]["system_prompt"] == [{"text": "be brief"}] and snapshot["data"]["state"] == {"k": 1}
    assert count == 2 and features["model"] == "m1" and features["totals"] == {"turns": 2}
    assert [t["message_index"] for t in features["turn_metrics"]] == [1, 3]  # positions in the whole conversation
