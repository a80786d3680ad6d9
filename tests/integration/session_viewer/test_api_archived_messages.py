"""The viewer on a session whose agents' oldest messages moved into buckets (``sessions_messages``).

Two copies of one conversation are written through the repository: one with a small
:class:`ArchivePolicy` (each agent splits into several buckets) and one that never splits. The
viewer must show both the same way: the same counts on the list card and in the header, the same
preview, the same timeline in the same order on every page, and never a bucket that the session
document does not list (an orphan left by a crashed split).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from fastapi.testclient import TestClient
from pymongo import MongoClient
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from mongodb_session_manager import ArchivePolicy, MongoDBSessionRepository

from .conftest import GLOBAL, AppFactory

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SMALL = ArchivePolicy(max_messages=6, keep_messages=3, max_bytes=1024 * 1024, keep_bytes=512 * 1024, bucket_messages=2)
#: Agent "a" has 15 messages, three to a timestamp (ties inside an agent cross bucket boundaries);
#: agent "b" has 9, on the same seconds as some of a's (ties between agents).
A_COUNT, B_COUNT = 15, 9
FEEDBACK_SECONDS = (1, 5, 9, 100)
TOTAL = A_COUNT + B_COUNT + len(FEEDBACK_SECONDS)
ORPHAN = "ORPHAN: a bucket the session document does not list"


def iso(at: datetime) -> str:
    return at.isoformat()


def message(agent: str, i: int, at: datetime) -> SessionMessage:
    role = "user" if i % 2 == 0 else "assistant"
    return SessionMessage(
        message={"role": role, "content": [{"text": f"{agent}-{i}"}]}, message_id=i, created_at=iso(at)
    )


def write_conversation(repo: MongoDBSessionRepository, sid: str) -> None:
    repo.create_session(Session(session_id=sid, session_type=SessionType.AGENT))
    for aid, created in (("a", T0), ("b", T0 + timedelta(milliseconds=1))):
        repo.create_agent(
            sid, SessionAgent(agent_id=aid, state={}, conversation_manager_state={}, created_at=iso(created))
        )
    for i in range(max(A_COUNT, B_COUNT)):  # interleaved, as two agents taking turns would write them
        if i < A_COUNT:
            repo.create_message(sid, "a", message("a", i, T0 + timedelta(seconds=2 * (i // 3))))
        if i < B_COUNT:
            repo.create_message(sid, "b", message("b", i, T0 + timedelta(seconds=2 * i)))
    feedbacks = [
        {"rating": "up" if n % 2 == 0 else "down", "comment": f"f{n}", "created_at": T0 + timedelta(seconds=s)}
        for n, s in enumerate(FEEDBACK_SECONDS)
    ]
    repo.collection.update_one({"_id": sid}, {"$push": {"feedbacks": {"$each": feedbacks}}})


@pytest.fixture
def sessions(mongo_client: MongoClient[Any], db_name: str) -> Iterator[dict[str, Any]]:
    """``split`` (every agent in several listed buckets, plus two orphan buckets) and ``plain``."""
    split_repo = MongoDBSessionRepository(
        client=mongo_client, database_name=db_name, collection_name="sessions", archive_policy=SMALL
    )
    plain_repo = MongoDBSessionRepository(
        client=mongo_client, database_name=db_name, collection_name="sessions", archive_policy=None
    )
    try:
        write_conversation(split_repo, "split")
        write_conversation(plain_repo, "plain")
        for aid in ("a", "b"):
            split_repo.archive_agent("split", aid)
        sessions = mongo_client[db_name]["sessions"]
        doc = sessions.find_one({"_id": "split"})
        assert doc is not None
        for aid, count in (("a", A_COUNT), ("b", B_COUNT)):
            agent = doc["agents"][aid]
            assert len(agent["archive"]["buckets"]) >= 2, "the agent really split into several buckets"
            assert agent["archive"]["count"] + len(agent["messages"]) == count
            assert len(agent["messages"]) < count
        assert "archive" not in sessions.find_one({"_id": "plain"})["agents"]["a"]
        archived_a = doc["agents"]["a"]["archive"]["count"]
        orphan_message = {
            "message_id": 0,
            "message": {"role": "user", "content": [{"text": ORPHAN}]},
            "redact_message": None,
            "created_at": T0 - timedelta(days=1),  # earlier than everything: it would lead the timeline
            "updated_at": T0,
        }
        orphans = [
            {"start": 0, "first_message_id": 0, "last_message_id": 0},  # a lost race over the same positions
            {"start": archived_a, "first_message_id": 99, "last_message_id": 99},  # a crashed next split
        ]
        mongo_client[db_name]["sessions_messages"].insert_many(
            [
                {
                    "_id": ObjectId(),
                    "session_id": "split",
                    "agent_id": "a",
                    "count": 1,
                    "bytes": 100,
                    "created_at": T0,
                    "messages": [orphan_message],
                    **orphan,
                }
                for orphan in orphans
            ]
        )
        yield {"split": doc}
    finally:
        split_repo.close()
        plain_repo.close()


def card(api: TestClient, sid: str) -> dict[str, Any]:
    response = api.get(
        "/api/v1/sessions/search", headers=GLOBAL, params={"session_id": sid, "session_id_match": "exact"}
    )
    assert response.status_code == 200, response.text
    [row] = response.json()["sessions"]
    return row


def page(api: TestClient, sid: str, offset: int, limit: int) -> dict[str, Any]:
    response = api.get(
        f"/api/v1/session/{sid}", headers=GLOBAL, params={"timeline_offset": offset, "timeline_limit": limit}
    )
    assert response.status_code == 200, response.text
    return response.json()


def comparable(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Timeline items without ``updated_at`` (the two copies were written at different moments)."""
    return [{k: v for k, v in item.items() if k != "updated_at"} for item in items]


def test_list_cards_count_the_whole_history_and_preview_the_first_archived_message(
    make_api: AppFactory, db_name: str, sessions: dict[str, Any]
) -> None:
    with make_api(db_name) as api:
        split, plain = card(api, "split"), card(api, "plain")
    assert split["message_count"] == plain["message_count"] == A_COUNT + B_COUNT
    assert split["preview"] == plain["preview"] == "a-0", "the first message lives in the first bucket"
    assert {k: v for k, v in split.items() if k not in ("session_id", "created_at", "updated_at")} == {
        k: v for k, v in plain.items() if k not in ("session_id", "created_at", "updated_at")
    }


def test_the_header_counts_every_agents_whole_history(
    make_api: AppFactory, db_name: str, sessions: dict[str, Any]
) -> None:
    with make_api(db_name) as api:
        body = page(api, "split", 0, 1)
    assert {a["agent_id"]: a["message_count"] for a in body["agents"]} == {"a": A_COUNT, "b": B_COUNT}
    assert body["timeline_total"] == TOTAL


def test_the_timeline_of_a_split_session_is_the_unsplit_timeline_on_every_page(
    make_api: AppFactory, db_name: str, sessions: dict[str, Any]
) -> None:
    with make_api(db_name) as api:
        whole = page(api, "split", 0, 500)
        reference = page(api, "plain", 0, 500)
        assert whole["timeline_total"] == reference["timeline_total"] == TOTAL
        assert comparable(whole["timeline"]) == comparable(reference["timeline"])
        ids = [item["id"] for item in whole["timeline"]]
        assert len(ids) == len(set(ids)) == TOTAL, "every message and feedback entry exactly once"
        for aid, count in (("a", A_COUNT), ("b", B_COUNT)):
            own = [item["message_id"] for item in whole["timeline"] if item.get("agent_id") == aid]
            assert own == list(range(count)), "each agent's messages in history order, ties included"
        stamps = [item["created_at"] for item in whole["timeline"]]
        assert stamps == sorted(stamps)
        for limit in (1, 2, 3, 5, 7):  # page boundaries land on every bucket and on the document boundary
            seen: list[dict[str, Any]] = []
            offset: int | None = 0
            while offset is not None:
                body = page(api, "split", offset, limit)
                assert comparable(body["timeline"]) == comparable(page(api, "plain", offset, limit)["timeline"])
                assert body["timeline_total"] == TOTAL and len(body["timeline"]) <= limit
                seen += body["timeline"]
                offset = body["timeline_next_offset"]
            assert [item["id"] for item in seen] == ids, limit


def test_orphan_buckets_never_show_up(make_api: AppFactory, db_name: str, sessions: dict[str, Any]) -> None:
    with make_api(db_name) as api:
        body = page(api, "split", 0, 500)
        texts = [block.get("text") for item in body["timeline"] for block in item.get("content", [])]
        assert ORPHAN not in texts and len(body["timeline"]) == TOTAL
        assert card(api, "split")["preview"] != ORPHAN
        assert {a["agent_id"]: a["message_count"] for a in body["agents"]}["a"] == A_COUNT


def test_the_export_carries_every_agents_whole_history_and_no_orphan(
    make_api: AppFactory, db_name: str, sessions: dict[str, Any]
) -> None:
    with make_api(db_name) as api:
        split = api.get("/api/v1/session-export/split", headers=GLOBAL)
        plain = api.get("/api/v1/session-export/plain", headers=GLOBAL)
    assert split.status_code == plain.status_code == 200, split.text
    assert ORPHAN not in split.text
    split_agents, plain_agents = split.json()["session"]["agents"], plain.json()["session"]["agents"]
    for aid, count in (("a", A_COUNT), ("b", B_COUNT)):
        assert "archive" not in split_agents[aid], "the bucket bookkeeping is not part of the portable format"
        messages = [{k: v for k, v in m.items() if k != "updated_at"} for m in split_agents[aid]["messages"]]
        assert [m["message_id"] for m in messages] == list(range(count))
        assert messages == [{k: v for k, v in m.items() if k != "updated_at"} for m in plain_agents[aid]["messages"]]
