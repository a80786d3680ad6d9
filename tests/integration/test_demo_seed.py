"""Seeding the demo through real agent loops: dated over days, newest first, nothing left patched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import MongoClient
from strands.types import session as strands_session

from mongodb_session_manager import documents
from mongodb_session_manager.demo import seed_demo_sessions
from mongodb_session_manager.demo_data import demo_conversations


def test_seeded_sessions_are_dated_over_days_with_the_showcase_newest(
    mongo_client: MongoClient[Any], db_name: str
) -> None:
    now = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
    created = seed_demo_sessions(client=mongo_client, database_name=db_name, collection_name="sessions", now=now)
    assert len(created) == len(demo_conversations())
    sessions = mongo_client[db_name]["sessions"]
    newest = [doc["_id"] for doc in sessions.find({}, {"_id": 1}).sort("created_at", -1).limit(2)]
    assert newest == ["demo-order-1001", "demo-billing-2002"]

    def aware(value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value

    dates = [aware(doc["created_at"]) for doc in sessions.find({}, {"created_at": 1})]
    assert max(dates) <= now and now - min(dates) > timedelta(days=7), "spread over more than a week"
    order = sessions.find_one({"_id": "demo-order-1001"})
    assert order is not None
    messages = [m for agent in order["agents"].values() for m in agent["messages"]]
    stamps = sorted(aware(m["created_at"]) for m in messages)
    assert stamps[-1] - stamps[0] > timedelta(minutes=3), "turns are minutes apart, as people type"
    assert [f["rating"] for f in order["feedbacks"]] == ["up"]
    tools = {b["toolUse"]["name"] for m in messages for b in m["message"]["content"] if "toolUse" in b}
    assert {"lookup_order", "calculator", "manage_metadata"} <= tools

    # The virtual clock is gone afterwards, and a second seeding creates nothing.
    assert strands_session.datetime is datetime and documents.now() > now
    assert seed_demo_sessions(client=mongo_client, database_name=db_name, collection_name="sessions") == []
