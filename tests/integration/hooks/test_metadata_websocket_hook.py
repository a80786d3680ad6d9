"""MetadataWebSocketHook against a loopback API Gateway Management API (and moto) with a real manager."""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime
from typing import Any

import pytest
from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
from moto.core import DEFAULT_ACCOUNT_ID

from mongodb_session_manager.hooks import create_metadata_websocket_hook

from .conftest import REGION, FakeApiGateway


def without_timestamp(payload: dict[str, Any]) -> dict[str, Any]:
    stamp = payload.pop("timestamp")
    assert datetime.fromisoformat(stamp).utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    return payload


def test_selected_changes_are_pushed_to_the_stored_connection(api_gateway: FakeApiGateway, make_manager: Any) -> None:
    hook = create_metadata_websocket_hook(api_gateway.url, metadata_fields=["status", "agent_state", "progress"])
    manager = make_manager("ws-session", metadata_hook=hook)
    manager.update_metadata({"ws_connection_id": "conn-1"})  # what the $connect handler stores
    manager.update_metadata({"status": "processing", "agent_state": "thinking", "progress": 50, "internal": "x"})
    assert hook.flush(30)

    assert [cid for cid, _ in api_gateway.posts] == ["conn-1"]
    assert without_timestamp(api_gateway.payloads()[0]) == {
        "event_type": "metadata_update",
        "session_id": "ws-session",
        "metadata": {"status": "processing", "agent_state": "thinking", "progress": 50},
    }
    assert hook.stats == {"skipped": 1, "sent": 1}  # the connection id alone is not pushed


def test_the_connection_id_in_the_same_update_is_used_and_not_pushed(
    api_gateway: FakeApiGateway, make_manager: Any
) -> None:
    hook = create_metadata_websocket_hook(api_gateway.url)
    manager = make_manager("ws-inline", metadata_hook=hook)
    manager.update_metadata({"ws_connection_id": "conn-2", "status": "connected"})
    assert hook.flush(30)
    [(cid, payload)] = api_gateway.posts
    assert cid == "conn-2" and payload["metadata"] == {"status": "connected"}


def test_connection_id_alias_and_deletes(api_gateway: FakeApiGateway, make_manager: Any) -> None:
    hook = create_metadata_websocket_hook(api_gateway.url, metadata_fields=["status", "progress"])
    manager = make_manager("ws-alias", metadata_hook=hook)
    manager.update_metadata({"connection_id": "conn-3", "status": "open", "progress": 10})
    manager.delete_metadata(["progress", "internal"])
    assert hook.flush(30)
    payloads = [without_timestamp(p) for p in api_gateway.payloads("conn-3")]
    assert payloads == [
        {"event_type": "metadata_update", "session_id": "ws-alias", "metadata": {"status": "open", "progress": 10}},
        {"event_type": "metadata_delete", "session_id": "ws-alias", "deleted_keys": ["progress"]},
    ]


def test_without_a_connection_id_nothing_is_pushed(api_gateway: FakeApiGateway, make_manager: Any) -> None:
    hook = create_metadata_websocket_hook(api_gateway.url)
    manager = make_manager("ws-none", metadata_hook=hook)
    manager.update_metadata({"status": "open"})
    assert manager.get_metadata() == {"status": "open"}
    assert hook.flush(30)
    assert api_gateway.posts == [] and hook.stats == {"skipped": 1}


def test_a_gone_client_is_handled_quietly(
    api_gateway: FakeApiGateway, make_manager: Any, caplog: pytest.LogCaptureFixture
) -> None:
    api_gateway.gone.add("conn-old")
    hook = create_metadata_websocket_hook(api_gateway.url)
    manager = make_manager("ws-gone", metadata_hook=hook)
    with caplog.at_level(logging.INFO):
        manager.update_metadata({"ws_connection_id": "conn-old", "status": "thinking"})
        assert hook.flush(30)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("session_id=<ws-gone>" in r.getMessage() and "410" in r.getMessage() for r in caplog.records)
    assert hook.stats == {"gone": 1}
    # The client reconnects; the service stores the new id and pushes resume.
    manager.update_metadata({"ws_connection_id": "conn-new"})
    manager.update_metadata({"status": "done"})
    assert hook.flush(30)
    assert [(cid, p["metadata"]) for cid, p in api_gateway.posts] == [("conn-new", {"status": "done"})]


def test_an_api_gateway_failure_is_logged_and_the_caller_is_unaffected(
    api_gateway: FakeApiGateway, make_manager: Any, caplog: pytest.LogCaptureFixture
) -> None:
    api_gateway.forbidden.add("conn-denied")
    hook = create_metadata_websocket_hook(api_gateway.url)
    manager = make_manager("ws-denied", metadata_hook=hook)
    with caplog.at_level(logging.ERROR):
        assert manager.update_metadata({"ws_connection_id": "conn-denied", "status": "kept"}) is None
        assert hook.flush(30)
    failures = [r for r in caplog.records if "AWS call failed" in r.getMessage()]
    assert len(failures) == 1 and "session_id=<ws-denied>" in failures[0].getMessage()
    assert manager.get_metadata() == {"ws_connection_id": "conn-denied", "status": "kept"}
    assert hook.stats == {"failed": 1}


def test_the_caller_does_not_wait_for_the_push(api_gateway: FakeApiGateway, make_manager: Any) -> None:
    hook = create_metadata_websocket_hook(api_gateway.url)
    manager = make_manager("ws-async", metadata_hook=hook)
    manager.update_metadata({"ws_connection_id": "conn-4"})
    api_gateway.open_gate.clear()  # the gateway now holds every request until released
    caller = threading.Thread(target=manager.update_metadata, args=({"status": "thinking"},))
    caller.start()
    caller.join(30)
    assert not caller.is_alive()  # returned while its push is still held by the gateway
    assert api_gateway.posts == [] and manager.get_metadata()["status"] == "thinking"
    assert hook.flush(timeout=0.1) is False
    api_gateway.open_gate.set()
    assert hook.flush(30)
    assert api_gateway.payloads("conn-4")[0]["metadata"] == {"status": "thinking"}


def test_pushes_through_moto_to_a_real_style_endpoint(aws: None, make_manager: Any) -> None:
    endpoint = f"wss://abc123.execute-api.{REGION}.amazonaws.com/prod"
    hook = create_metadata_websocket_hook(endpoint, metadata_fields=["status"])
    manager = make_manager("ws-moto", metadata_hook=hook)
    manager.update_metadata({"ws_connection_id": "conn-5", "status": "ready"})
    assert hook.flush(30) and hook.stats == {"sent": 1}
    data = apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID][REGION].connections["conn-5"].data
    assert json.loads(data)["metadata"] == {"status": "ready"}
