"""The Session Viewer's export is the library's export: same document, importable with import_session."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from strands import Agent

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.testing import ScriptedModel
from session_viewer.backend.main import create_app
from tests.integration.session_viewer.conftest import BACKEND_PASSWORD, viewer_settings

Make = Callable[..., MongoDBSessionManager]


def test_the_viewer_download_equals_export_session_and_imports_back(
    make_manager: Make, mongo_uri: str, db_name: str, collection: Any
) -> None:
    manager = make_manager("v")
    Agent(agent_id="a", model=ScriptedModel(["answer"]), session_manager=manager, callback_handler=None)("question")
    manager.add_feedback({"rating": "up", "comment": "good"})
    settings = viewer_settings(mongo_uri, db_name, lockout_collection_name=f"lockout_{uuid.uuid4().hex[:8]}")
    with TestClient(create_app(settings)) as api:
        response = api.get("/api/v1/session-export/v", headers={"X-Backend-Password": BACKEND_PASSWORD})
    assert response.status_code == 200
    downloaded = response.json()
    library = manager.export_session()
    assert {k: v for k, v in downloaded.items() if k != "exported_at"} == {
        k: v for k, v in library.items() if k != "exported_at"
    }
    assert manager.import_session(downloaded, session_id="v-copy") == "v-copy"
    restored = Agent(
        agent_id="a", model=ScriptedModel(["more"]), session_manager=make_manager("v-copy"), callback_handler=None
    )
    assert [m["content"][0]["text"] for m in restored.messages] == ["question", "answer"]
    restored("next")
