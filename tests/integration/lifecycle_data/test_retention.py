"""Retention on the real mongod: the TTL index, expiry dates, legal hold, and a real TTL deletion."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import MongoClient
from strands import Agent

from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionManagerFactory
from mongodb_session_manager import documents_lifecycle as dl
from mongodb_session_manager.errors import InvalidInputError, SessionNotFoundError
from mongodb_session_manager.indexes import ensure_indexes, forget_indexes
from mongodb_session_manager.testing import ScriptedModel

Make = Callable[..., MongoDBSessionManager]


def _ttl_indexes(collection: Any) -> list[dict[str, Any]]:
    return [spec for spec in collection.index_information().values() if list(spec["key"]) == [("expires_at", 1)]]


def _close_to(value: datetime, expected: datetime, seconds: float = 60) -> bool:
    return abs((value - expected).total_seconds()) < seconds


def test_the_ttl_index_is_created_once_with_the_others(make_manager: Make, collection: Any) -> None:
    make_manager("a").get_metadata()
    (ttl,) = _ttl_indexes(collection)
    assert ttl["expireAfterSeconds"] == 0
    forget_indexes()
    ensure_indexes(collection)  # a new process: created again by key, no duplicate, no error
    assert len(_ttl_indexes(collection)) == 1


def test_an_existing_index_on_the_key_is_found_by_key_not_duplicated(collection: Any) -> None:
    collection.create_index([("expires_at", 1)], name="my_own_ttl", expireAfterSeconds=3600)
    ensure_indexes(collection)
    (ttl,) = _ttl_indexes(collection)
    assert ttl["expireAfterSeconds"] == 3600  # the operator's own index is kept as it is
    assert any(list(s["key"]) == [("created_at", -1), ("_id", 1)] for s in collection.index_information().values())


def test_retention_days_gives_the_session_an_expiry_date(make_manager: Make, collection: Any) -> None:
    make_manager("kept", retention_days=30)
    doc = collection.find_one({"_id": "kept"})
    assert doc["retention_days"] == 30
    assert _close_to(doc["expires_at"].replace(tzinfo=UTC), datetime.now(UTC) + timedelta(days=30))
    make_manager("forever")
    assert "expires_at" not in collection.find_one({"_id": "forever"})


def test_the_factory_passes_retention_days_to_every_manager(
    mongo_client: MongoClient[Any], db_name: str, collection: Any
) -> None:
    factory = MongoDBSessionManagerFactory(
        client=mongo_client, database_name=db_name, collection_name="sessions", retention_days=7
    )
    factory.create_session_manager("via-factory")
    assert collection.find_one({"_id": "via-factory"})["retention_days"] == 7
    factory.create_session_manager("override", retention_days=1)
    assert collection.find_one({"_id": "override"})["retention_days"] == 1


def test_set_retention_wins_over_the_default_and_none_keeps_forever(make_manager: Make, collection: Any) -> None:
    manager = make_manager("s", retention_days=30)
    manager.set_retention(2)
    assert manager.get_retention()["retention_days"] == 2 and manager.get_retention()["retention_explicit"]
    make_manager("s", retention_days=30)  # opened again by a manager with another default
    doc = collection.find_one({"_id": "s"})
    assert doc["retention_days"] == 2
    assert _close_to(doc["expires_at"].replace(tzinfo=UTC), datetime.now(UTC) + timedelta(days=2))
    manager.set_retention(None)
    make_manager("s", retention_days=30)
    assert manager.get_retention() == {
        "retention_days": None,
        "retention_explicit": True,
        "expires_at": None,
        "legal_hold": False,
    }


def test_a_legal_hold_removes_the_expiry_and_releasing_restores_it(make_manager: Make, collection: Any) -> None:
    manager = make_manager("held", retention_days=10)
    manager.set_legal_hold()
    assert "expires_at" not in collection.find_one({"_id": "held"})
    make_manager("held", retention_days=10)  # a later open does not bring the expiry back
    manager.set_retention(5)  # nor does a new retention
    assert manager.get_retention()["expires_at"] is None and manager.get_retention()["legal_hold"]
    manager.release_legal_hold()
    retention = manager.get_retention()
    assert retention["legal_hold"] is False and retention["retention_days"] == 5
    assert _close_to(retention["expires_at"], datetime.now(UTC) + timedelta(days=5))


def test_bad_retention_values_are_typed_errors(make_manager: Make) -> None:
    manager = make_manager("s")
    for bad in (-1, True, "30", float("nan"), dl.MAX_RETENTION_DAYS + 1):
        with pytest.raises(InvalidInputError):
            manager.set_retention(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        make_manager("t", retention_days=-5)
    manager.repository.delete_session("s")
    with pytest.raises(SessionNotFoundError):
        manager.set_retention(3)


def test_the_ttl_monitor_deletes_an_expired_session_and_spares_a_held_one(
    make_manager: Make, collection: Any, fast_ttl_monitor: None
) -> None:
    expiring = make_manager("expiring")
    Agent(agent_id="a", model=ScriptedModel(["noted"]), session_manager=expiring, callback_handler=None)("hi")
    held = make_manager("held")
    held.set_legal_hold()  # first: a retention of 0 before the hold could expire it at once
    held.set_retention(0)
    expiring.set_retention(0)  # expires now
    deadline = time.monotonic() + 180  # the monitor may finish the 60 s sleep it began before
    while collection.count_documents({"_id": "expiring"}) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert collection.count_documents({"_id": "expiring"}) == 0, "the TTL monitor deleted the expired session"
    assert collection.count_documents({"_id": "held"}) == 1, "the held session has no expiry date"
