"""The session that used to hit the wall: one agent reading forty ~1 MB tool results, then a long
small-talk tail. With the default policy every byte is stored, a fresh Agent restores and answers,
the viewer opens it, and ``delete_session`` removes it all (buckets included)."""

from __future__ import annotations

from typing import Any

from pymongo import MongoClient
from strands import Agent, tool

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.testing import Reply, ScriptedModel, ToolCall, converse_violation
from tests.integration.session_viewer.conftest import GLOBAL

TOOL_TURNS, SMALL_TURNS = 40, 1_500  # 40 * 4 messages + 1,500 * 2 = 3,160 messages, ~40 MB of content
DOCUMENT_CHARS = 1_000_000


@tool
def read_document(number: int) -> str:
    """Return the full text of a (large) document."""
    return f"document {number}: " + chr(ord("a") + number % 26) * DOCUMENT_CHARS


def test_forty_megabyte_tool_results_and_three_thousand_messages_store_restore_view_and_delete(
    mongo_client: MongoClient[Any], db_name: str, make_api: Any
) -> None:
    sid = "big-reader"
    script: list[Any] = []
    for n in range(TOOL_TURNS):
        script += [ToolCall("read_document", {"number": n}), Reply(text=f"document {n} read")]
    script += [f"small answer {i}" for i in range(SMALL_TURNS)]
    manager = MongoDBSessionManager(sid, client=mongo_client, database_name=db_name, collection_name="sessions")
    agent = Agent(
        agent_id="reader",
        model=ScriptedModel(script),
        tools=[read_document],
        session_manager=manager,
        callback_handler=None,
    )
    for n in range(TOOL_TURNS):
        agent(f"read document {n}")
    for i in range(SMALL_TURNS):
        agent(f"small question {i}")
    manager.close()

    sessions = mongo_client[db_name]["sessions"]
    buckets = mongo_client[db_name]["sessions_messages"]
    total = TOOL_TURNS * 4 + SMALL_TURNS * 2
    doc_size = sessions.aggregate([{"$match": {"_id": sid}}, {"$project": {"s": {"$bsonSize": "$$ROOT"}}}]).next()["s"]
    assert doc_size < 2 * 1024 * 1024, "the session document stays small"
    assert buckets.count_documents({"session_id": sid}) > 0

    reader = MongoDBSessionManager(sid, client=mongo_client, database_name=db_name, collection_name="sessions")
    assert reader.get_message_count() == total
    history = reader.session_repository.list_messages(sid, "reader")
    assert [m.message_id for m in history] == list(range(total)), "everything stored, once, in order"
    results = [
        block["toolResult"]["content"][0]["text"]
        for m in history
        for block in m.message["content"]
        if "toolResult" in block
    ]
    assert len(results) == TOOL_TURNS and all(len(r) > DOCUMENT_CHARS for r in results)
    assert results[7].startswith("document 7: hhh")

    fresh = Agent(
        agent_id="reader",
        model=ScriptedModel(["I remember"]),  # strict: the restored window must be valid Converse
        tools=[read_document],
        session_manager=reader,
        callback_handler=None,
    )
    assert converse_violation([*fresh.messages, {"role": "user", "content": [{"text": "x"}]}]) is None
    assert str(fresh("do you remember?")).strip() == "I remember"
    reader.close()
    total += 2  # the restored agent's turn

    with make_api(db_name) as api:
        detail = api.get(f"/api/v1/session/{sid}", headers=GLOBAL, params={"timeline_offset": 0, "timeline_limit": 20})
        assert detail.status_code == 200, detail.text[:500]
        body = detail.json()
        assert body["timeline_total"] == total
        assert [item["message_id"] for item in body["timeline"]] == list(range(20))
        last = api.get(
            f"/api/v1/session/{sid}", headers=GLOBAL, params={"timeline_offset": total - 5, "timeline_limit": 20}
        )
        assert last.status_code == 200, last.text[:500]
        assert [item["message_id"] for item in last.json()["timeline"]] == list(range(total - 5, total))

    repository = MongoDBSessionManager(
        sid, client=mongo_client, database_name=db_name, collection_name="sessions"
    ).session_repository
    repository.delete_session(sid)
    assert sessions.count_documents({"_id": sid}) == 0
    assert buckets.count_documents({"session_id": sid}) == 0, "delete_session removed every bucket"
