"""WebSocket push and SQS events from one manager via compose_metadata_hooks, plus SNS on feedback."""

from __future__ import annotations

import json
from typing import Any

from mongodb_session_manager import MongoDBSessionManagerFactory
from mongodb_session_manager.hooks import (
    compose_metadata_hooks,
    create_feedback_sns_hook,
    create_metadata_sqs_hook,
    create_metadata_websocket_hook,
    flush_aws_hooks,
)

from .conftest import FakeApiGateway, make_queue, receive_all


def test_one_manager_feeds_the_ui_the_backend_and_the_alerts(
    api_gateway: FakeApiGateway, subscribed_topic: Any, make_manager: Any
) -> None:
    queue_url = make_queue("backend-events")
    bad = subscribed_topic("feedback-bad")
    websocket = create_metadata_websocket_hook(api_gateway.url, metadata_fields=["status", "progress"])
    sqs = create_metadata_sqs_hook(queue_url, metadata_fields=["status", "assigned_to"])
    metadata_hook = compose_metadata_hooks(websocket, sqs)
    manager = make_manager(
        "combined-session",
        metadata_hook=metadata_hook,
        feedback_hook=create_feedback_sns_hook(topic_arn_bad=bad.topic_arn),
    )

    manager.update_metadata({"ws_connection_id": "conn-ui"})
    manager.update_metadata({"status": "processing", "progress": 40, "assigned_to": "agent-7"})
    manager.delete_metadata(["assigned_to"])
    assert manager.get_metadata() == {"ws_connection_id": "conn-ui", "status": "processing", "progress": 40}
    manager.add_feedback({"rating": "down", "comment": "Too slow"})
    assert flush_aws_hooks(30)

    assert [(cid, p["event_type"], p["metadata"]) for cid, p in api_gateway.posts] == [
        ("conn-ui", "metadata_update", {"status": "processing", "progress": 40}),
    ]
    backend = [json.loads(m["Body"]) for m in receive_all(queue_url, expected=5)]
    assert [(e["event_type"], e.get("metadata"), e.get("deleted_keys")) for e in backend] == [
        ("metadata_update", {"status": "processing", "assigned_to": "agent-7"}, None),
        ("metadata_delete", None, ["assigned_to"]),
    ]
    [alert] = bad.receive(expected=1)
    assert alert["Subject"] == "Virtual Agents Feedback negative on session combined-session"
    assert alert["Message"].endswith("Session: combined-session\n\nToo slow")
    assert metadata_hook.flush(1) and metadata_hook.close(1)


def test_one_hook_serves_every_manager_of_a_factory(aws: None, mongo_uri: str, db_name: str) -> None:
    queue_url = make_queue("factory-events")
    hook = create_metadata_sqs_hook(queue_url, metadata_fields=["status"])
    factory = MongoDBSessionManagerFactory(connection_string=mongo_uri, database_name=db_name, metadata_hook=hook)
    try:
        for session_id in ("factory-a", "factory-b"):
            manager = factory.create_session_manager(session_id)
            manager.update_metadata({"status": f"open-{session_id}"})
        assert hook.flush(30)
    finally:
        factory.close()
    received = sorted((e["session_id"], e["metadata"]["status"]) for e in map(json.loads, bodies(queue_url)))
    assert received == [("factory-a", "open-factory-a"), ("factory-b", "open-factory-b")]


def bodies(queue_url: str) -> list[str]:
    return [m["Body"] for m in receive_all(queue_url, expected=5)]
