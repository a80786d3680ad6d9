"""Review features of the detail API against the real mongod: timeline pages, JSON export, reviewer notes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bson import Binary
from fastapi.testclient import TestClient
from pymongo import MongoClient

from mongodb_session_manager.export import EXPORT_SCHEMA_VERSION
from session_viewer.backend.timeline import session_detail

from .conftest import GLOBAL, AppFactory, SeededDatabase
from .test_api_detail import T0, msg, raw_session


def long_session(mongo_client: MongoClient[Any], db_name: str, count: int) -> dict[str, Any]:
    """Two agents taking turns, and feedback in between: a timeline that needs several pages."""
    a = [msg(i, "user", [{"text": f"a{i}"}], T0 + timedelta(seconds=2 * i)) for i in range(count)]
    b = [msg(i, "assistant", [{"text": f"b{i}"}], T0 + timedelta(seconds=2 * i + 1)) for i in range(count)]
    feedbacks = [{"rating": "up", "comment": f"f{n}", "created_at": T0 + timedelta(seconds=10 * n)} for n in range(5)]
    doc = raw_session(
        "long",
        agents={
            "a": {"agent_data": {"created_at": T0}, "messages": a},
            "b": {"agent_data": {"created_at": T0}, "messages": b},
        },
        feedbacks=feedbacks,
    )
    mongo_client[db_name]["sessions"].insert_one(doc)
    return doc


def test_the_timeline_comes_in_pages_that_add_up_to_the_whole_in_order(
    make_api: AppFactory, mongo_client: MongoClient[Any], db_name: str
) -> None:
    doc = long_session(mongo_client, db_name, 60)
    whole = [item["id"] for item in session_detail(doc)["timeline"]]
    assert len(whole) == 125
    with make_api(db_name, timeline_page_size=50) as api:
        seen: list[str] = []
        offset: int | None = 0
        pages = 0
        while offset is not None:
            body = api.get("/api/v1/session/long", headers=GLOBAL, params={"timeline_offset": offset}).json()
            assert body["timeline_total"] == 125 and body["timeline_offset"] == offset
            assert len(body["timeline"]) <= 50
            assert body["agents"][0]["message_count"] == 60  # counted on the server, messages not read
            seen += [item["id"] for item in body["timeline"]]
            offset = body["timeline_next_offset"]
            pages += 1
        assert pages == 3 and seen == whole
        small = api.get("/api/v1/session/long", headers=GLOBAL, params={"timeline_limit": 7}).json()
        assert [i["id"] for i in small["timeline"]] == whole[:7] and small["timeline_next_offset"] == 7
        capped = api.get("/api/v1/session/long", headers=GLOBAL, params={"timeline_limit": 10_000}).json()
        assert len(capped["timeline"]) == 125  # under MAX_TIMELINE_PAGE_SIZE (500)
        beyond = api.get("/api/v1/session/long", headers=GLOBAL, params={"timeline_offset": 500}).json()
        assert beyond["timeline"] == [] and beyond["timeline_next_offset"] is None


def test_export_is_the_whole_session_as_versioned_json_without_the_password(
    make_api: AppFactory, mongo_client: MongoClient[Any], db_name: str
) -> None:
    image = b"\x89PNG" + b"\x01" * 20
    content = [{"text": "see picture"}, {"image": {"format": "png", "source": {"bytes": Binary(image)}}}]
    doc = raw_session(
        "exported",
        metadata={"status": "open"},
        agents={"a": {"agent_data": {"created_at": T0, "model": "m"}, "messages": [msg(0, "user", content, T0)]}},
    )
    mongo_client[db_name]["sessions"].insert_one(doc)
    with make_api(db_name) as api:
        response = api.get("/api/v1/session-export/exported", headers=GLOBAL)
        assert response.status_code == 200
        assert response.headers["content-disposition"] == 'attachment; filename="session-exported.json"'
        body = response.json()
        assert body["schema_version"] == EXPORT_SCHEMA_VERSION and body["format"].endswith("session-export")
        session = body["session"]
        assert "session_viewer_password" not in session and "_id" not in session
        assert "P" * 32 not in response.text
        assert session["session_id"] == "exported" and session["metadata"] == {"status": "open"}
        stored = session["agents"]["a"]["messages"][0]
        assert stored["created_at"] == "2024-05-01T12:00:00.000Z"
        assert stored["message"]["content"][1]["image"]["source"]["bytes"] == {
            "__bytes_encoded__": True,
            "data": "iVBORwEBAQEBAQEBAQEBAQEBAQEBAQEB",
        }  # faithful: Strands' own encoding, so a message can be handed back to Strands
        assert api.get("/api/v1/session-export/nope", headers=GLOBAL).status_code == 404
        assert api.get("/api/v1/session-export/exported").status_code == 401


def test_the_session_password_exports_its_own_session_only(api: TestClient, seeded: SeededDatabase) -> None:
    own = {"X-Session-Password": seeded.passwords["support-ada-001"]}
    assert api.get("/api/v1/session-export/support-ada-001", headers=own).status_code == 200
    assert api.get("/api/v1/session-export/billing-grace-002", headers=own).status_code == 401


def test_reviewer_notes_are_marked_feedback_never_counted_as_end_user_feedback(
    make_api: AppFactory, mongo_client: MongoClient[Any], db_name: str
) -> None:
    doc = raw_session("reviewed", feedbacks=[{"rating": "down", "comment": "slow", "created_at": T0}])
    collection = mongo_client[db_name]["sessions"]
    collection.insert_one(doc)
    with make_api(db_name) as api:
        before = api.get("/api/v1/session/reviewed", headers=GLOBAL).json()
        assert before["feedback_summary"] == {"up": 0, "down": 1, "total": 1, "reviewer_notes": 0}
        note = {"comment": "Agent should have offered a refund.", "rating": "down"}
        created = api.post("/api/v1/session-notes/reviewed", headers=GLOBAL, json=note)
        assert created.status_code == 201
        assert created.json()["source"] == "reviewer" and created.json()["comment"] == note["comment"]
        after = api.get("/api/v1/session/reviewed", headers=GLOBAL).json()
        assert after["feedback_summary"] == {"up": 0, "down": 1, "total": 1, "reviewer_notes": 1}
        assert after["timeline"][-1]["source"] == "reviewer"
        assert after["updated_at"] == before["updated_at"]  # a review is not activity in the conversation
        # Only the global password writes notes; a session password (an end user's link) cannot.
        session_password = {"X-Session-Password": "P" * 32}
        assert api.post("/api/v1/session-notes/reviewed", headers=session_password, json=note).status_code == 401
        assert api.post("/api/v1/session-notes/missing", headers=GLOBAL, json=note).status_code == 404
        too_long = {"comment": "x" * 5001}
        assert api.post("/api/v1/session-notes/reviewed", headers=GLOBAL, json=too_long).status_code == 422
    stored = collection.find_one({"_id": "reviewed"})
    assert stored is not None and stored["feedbacks"][-1]["source"] == "reviewer"
    assert stored["feedbacks"][-1]["created_at"] is not None
