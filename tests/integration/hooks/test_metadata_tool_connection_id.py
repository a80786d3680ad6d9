"""The agent's metadata tool can never overwrite or delete the WebSocket connection id."""

from __future__ import annotations

from typing import Any

from mongodb_session_manager.hooks import create_metadata_websocket_hook

from .conftest import FakeApiGateway


def test_the_metadata_tool_cannot_change_the_connection_id(api_gateway: FakeApiGateway, make_manager: Any) -> None:
    hook = create_metadata_websocket_hook(api_gateway.url, metadata_fields=["status"])
    manager = make_manager("ws-tool", metadata_hook=hook)
    manager.update_metadata({"ws_connection_id": "conn-real", "connection_id": "conn-real"})
    tool = manager.get_metadata_tool()

    for key in ("ws_connection_id", "connection_id"):
        answer = tool(action="set", metadata={key: "conn-hijacked", "status": "x"})
        assert "cannot be changed" in str(answer)
        assert "cannot be deleted" in str(tool(action="delete", keys=[key]))
    assert manager.get_metadata() == {"ws_connection_id": "conn-real", "connection_id": "conn-real"}

    # Ordinary keys still work through the tool, and their push reaches the real connection.
    assert tool(action="set", metadata={"status": "escalated"}).startswith("Metadata updated")
    assert hook.flush(30)
    assert [(cid, p["metadata"]) for cid, p in api_gateway.posts] == [("conn-real", {"status": "escalated"})]
