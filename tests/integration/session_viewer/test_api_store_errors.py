"""The viewer against the real mongod when the library raises one of its typed errors.

A session whose large block (stored out of line in GridFS, ``sessions_blobs``) was lost outside the
library must be answered with the error's name and a status that says what it is, never a bare
``500 Internal Server Error``; a block that a rewrite removed while the viewer read the session is
read again, and the page opens.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pymongo import MongoClient
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from mongodb_session_manager import MongoDBSessionRepository, blobs
from session_viewer.backend import store as store_module

from .conftest import GLOBAL, AppFactory

BIG = 1_000_000
DETAIL = "/api/v1/session/{}"
EXPORT = "/api/v1/session-export/{}"


def store_large_block(repo: MongoDBSessionRepository, sid: str, text: str) -> None:
    """A session whose first message has a block over ``ArchivePolicy.blob_bytes``: it goes to GridFS."""
    repo.create_session(Session(session_id=sid, session_type=SessionType.AGENT))
    repo.create_agent(sid, SessionAgent(agent_id="assistant", state={}, conversation_manager_state={}))
    body = {"role": "user", "content": [{"text": "see the attachment"}, {"text": text}]}
    repo.create_message(sid, "assistant", SessionMessage(message=body, message_id=0))


def blob_counts(mongo_client: MongoClient[Any], db_name: str) -> tuple[int, int]:
    database = mongo_client[db_name]
    return (
        database["sessions_blobs.files"].count_documents({}),
        database["sessions_blobs.chunks"].count_documents({}),
    )


@pytest.mark.parametrize("files_too", [True, False], ids=["files-and-chunks", "chunks-only"])
def test_a_lost_block_is_a_named_error_on_detail_and_export_not_a_bare_500(
    repo: MongoDBSessionRepository,
    make_api: AppFactory,
    mongo_client: MongoClient[Any],
    db_name: str,
    files_too: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store_large_block(repo, "lost", "l" * BIG)
    assert blob_counts(mongo_client, db_name) == (1, 1), "the block is stored out of line"
    mongo_client[db_name]["sessions_blobs.chunks"].delete_many({})
    if files_too:
        mongo_client[db_name]["sessions_blobs.files"].delete_many({})

    with make_api(db_name) as api, caplog.at_level(logging.ERROR, logger="session_viewer"):
        for path in (DETAIL.format("lost"), EXPORT.format("lost")):
            response = api.get(path, headers=GLOBAL)
            assert response.status_code == 500, (path, response.text[:300])
            assert response.headers["content-type"].startswith("application/json")
            body = response.json()
            assert set(body) == {"error", "detail"}
            assert body["error"] == "MissingBlobError", path
            assert body["detail"].startswith("session_id=<lost> | ") and "missing" in body["detail"]
            assert "will not bring them back" in body["detail"], "it never asks the caller to retry"
            assert "Traceback" not in response.text and "mongodb://" not in response.text
            assert "Content-Disposition" not in response.headers, "no half-built download"
        # The session itself is there: its header and the search still answer.
        assert api.get("/api/v1/sessions/search", headers=GLOBAL, params={"session_id": "lost"}).status_code == 200
    logged = [r.getMessage() for r in caplog.records if r.name == "session_viewer"]
    assert any("session_id=<lost>" in line and "MissingBlobError" in line for line in logged), logged
    assert not any(r.exc_info for r in caplog.records if r.name == "session_viewer"), "no stack trace for data loss"


@pytest.mark.parametrize("path", [DETAIL, EXPORT], ids=["detail", "export"])
def test_a_block_a_rewrite_removes_while_the_viewer_reads_is_read_again(
    repo: MongoDBSessionRepository,
    make_api: AppFactory,
    mongo_client: MongoClient[Any],
    db_name: str,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
) -> None:
    """A redaction stores the new version, then deletes the old blob: a reader in between reads again."""
    store_large_block(repo, "race", "secret " + "s" * BIG)
    redacted = {"role": "user", "content": [{"text": "see the attachment"}, {"text": "[redacted]"}]}
    original = blobs.aread_blocks
    reads: list[str | None] = []

    async def racing(database: Any, collection_name: str, ids: list[Any], **kwargs: Any) -> dict[Any, Any]:
        reads.append(kwargs.get("session_id"))
        if len(reads) == 1:  # the viewer has read the marker; the redaction lands before it reads GridFS
            repo.update_message("race", "assistant", SessionMessage(message=redacted, message_id=0))
        return await original(database, collection_name, ids, **kwargs)

    monkeypatch.setattr(store_module.blobs, "aread_blocks", racing)
    with make_api(db_name) as api:
        response = api.get(path.format("race"), headers=GLOBAL)
    assert response.status_code == 200, response.text[:300]
    assert "[redacted]" in response.text and "secret" not in response.text
    assert reads == ["race"], "read again: the new version has no marker left to resolve"
    assert blob_counts(mongo_client, db_name) == (0, 0)
