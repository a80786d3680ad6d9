"""MetadataSQSHook against moto's SQS and a real MongoDBSessionManager."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from mongodb_session_manager.errors import InvalidMetadataError
from mongodb_session_manager.hooks import create_metadata_sqs_hook

from .conftest import REGION, make_queue, receive_all


@pytest.fixture
def queue_url(aws: None) -> str:
    return make_queue("metadata-events")


def events(queue_url: str, expected: int = 10) -> list[dict[str, Any]]:
    return [json.loads(m["Body"]) for m in receive_all(queue_url, expected)]


def test_an_update_sends_only_the_selected_fields(queue_url: str, make_manager: Any) -> None:
    hook = create_metadata_sqs_hook(queue_url, metadata_fields=["status", "agent_state", "priority"])
    manager = make_manager("sqs-session", metadata_hook=hook)
    before = datetime.now(UTC)
    manager.update_metadata({"status": "processing", "agent_state": "thinking", "internal_field": "not propagated"})
    assert hook.flush(30)

    [message] = receive_all(queue_url, expected=2)
    event = json.loads(message["Body"])
    assert datetime.fromisoformat(event.pop("timestamp")) >= before
    assert event == {
        "event_type": "metadata_update",
        "session_id": "sqs-session",
        "metadata": {"status": "processing", "agent_state": "thinking"},
    }
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes == {"event_type": "metadata_update", "session_id": "sqs-session"}
    # Everything is stored; only the propagation is filtered.
    assert manager.get_metadata() == {
        "status": "processing",
        "agent_state": "thinking",
        "internal_field": "not propagated",
    }


def test_deletes_are_propagated(queue_url: str, make_manager: Any) -> None:
    hook = create_metadata_sqs_hook(queue_url, metadata_fields=["status", "priority"])
    manager = make_manager("sqs-delete", metadata_hook=hook)
    manager.update_metadata({"status": "open", "priority": "high", "internal_field": 1})
    manager.delete_metadata(["priority", "internal_field"])
    manager.delete_metadata(["internal_field"])  # nothing selected: no event
    assert hook.flush(30)

    received = events(queue_url)
    assert [(e["event_type"], e.get("metadata"), e.get("deleted_keys")) for e in received] == [
        ("metadata_update", {"status": "open", "priority": "high"}, None),
        ("metadata_delete", None, ["priority"]),
    ]
    assert manager.get_metadata() == {"status": "open"}
    assert hook.stats == {"sent": 2, "skipped": 1}


def test_reads_and_unselected_changes_send_nothing(queue_url: str, make_manager: Any) -> None:
    hook = create_metadata_sqs_hook(queue_url, metadata_fields=["status"])
    manager = make_manager("sqs-quiet", metadata_hook=hook)
    manager.update_metadata({"internal_field": "x"})
    assert manager.get_metadata() == {"internal_field": "x"}
    assert hook.flush(30)
    assert events(queue_url) == []
    assert hook.stats == {"skipped": 1}


def test_without_a_field_list_every_field_is_sent_as_json(queue_url: str, make_manager: Any) -> None:
    hook = create_metadata_sqs_hook(queue_url)
    manager = make_manager("sqs-all", metadata_hook=hook)
    due = datetime(2024, 1, 26, 10, 30, tzinfo=UTC)
    manager.update_metadata({"status": "open", "due": due, "tags": ["vip"]})
    assert hook.flush(30)
    [event] = events(queue_url)
    assert event["metadata"] == {"status": "open", "due": "2024-01-26T10:30:00+00:00", "tags": ["vip"]}


def test_refused_metadata_is_neither_stored_nor_sent(queue_url: str, make_manager: Any) -> None:
    hook = create_metadata_sqs_hook(queue_url)
    manager = make_manager("sqs-refused", metadata_hook=hook)
    with pytest.raises(InvalidMetadataError):
        manager.update_metadata({"$bad": 1})
    assert hook.flush(30)
    assert events(queue_url) == [] and manager.get_metadata() == {}


def test_a_fifo_queue_keeps_each_session_in_order(aws: None, make_manager: Any) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    fifo_url = sqs.create_queue(QueueName="metadata-events.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    hook = create_metadata_sqs_hook(fifo_url, metadata_fields=["progress"])
    manager = make_manager("sqs-fifo", metadata_hook=hook)
    for progress in range(0, 101, 20):
        manager.update_metadata({"progress": progress})
    assert hook.flush(30)
    messages = sqs.receive_message(
        QueueUrl=fifo_url,
        MaxNumberOfMessages=10,
        AttributeNames=["MessageGroupId"],  # the older name, which the lowest supported moto reads
        MessageSystemAttributeNames=["MessageGroupId"],
    )["Messages"]
    assert [json.loads(m["Body"])["metadata"]["progress"] for m in messages] == [0, 20, 40, 60, 80, 100]
    assert {m["Attributes"]["MessageGroupId"] for m in messages} == {"sqs-fifo"}


def test_an_sqs_failure_is_logged_and_the_caller_is_unaffected(
    aws: None, make_manager: Any, caplog: pytest.LogCaptureFixture
) -> None:
    hook = create_metadata_sqs_hook("https://sqs.us-east-1.amazonaws.com/123456789012/no-such-queue")
    manager = make_manager("sqs-failing", metadata_hook=hook)
    with caplog.at_level(logging.ERROR):
        assert manager.update_metadata({"status": "kept"}) is None
        assert manager.delete_metadata(["status"]) is None
        assert hook.flush(30)
    failures = [r for r in caplog.records if "AWS call failed" in r.getMessage()]
    assert len(failures) == 2 and all("session_id=<sqs-failing>" in r.getMessage() for r in failures)
    assert manager.get_metadata() == {}
    assert hook.stats == {"failed": 2}
