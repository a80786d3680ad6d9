"""A message-log session converted in place and restored by Strands' own SnapshotSessionManager."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pymongo import MongoClient
from strands import Agent
from strands.session import SnapshotSessionManager

from mongodb_session_manager import MongoDBSessionManager, MongoDBSnapshotSessionManager, MongoDBStorage
from mongodb_session_manager.cli import main
from mongodb_session_manager.snapshot_migration import migrate_all, migrate_session
from mongodb_session_manager.testing import ScriptedModel

SID = "legacy"


def _texts(messages: list[Any]) -> list[str]:
    return [b["text"] for m in messages for b in m["content"] if "text" in b]


def _legacy_session(make_manager: Callable[..., MongoDBSessionManager]) -> Agent:
    manager = make_manager(SID)
    agent = Agent(
        model=ScriptedModel(["first reply", "second reply"]),
        session_manager=manager,
        callback_handler=None,
        system_prompt="Be helpful.",
    )
    agent.state.set("cart", ["book"])
    agent("hello")
    agent("and then?")
    manager.update_metadata({"customer": "ana"})
    manager.add_feedback({"rating": "up", "comment": "fine"})
    return agent


def test_migrated_session_is_restored_by_strands_snapshot_manager(
    make_manager: Callable[..., MongoDBSessionManager], mongo_client: MongoClient[Any], db_name: str
) -> None:
    original = _legacy_session(make_manager)
    collection = mongo_client[db_name]["sessions"]
    password = collection.find_one({"_id": SID})["session_viewer_password"]

    dry = migrate_session(collection, SID, dry_run=True)
    assert dry.status == "would-migrate" and dry.agents == {"default": 4}
    assert "snapshots" not in collection.find_one({"_id": SID})

    result = migrate_session(collection, SID)
    assert result.status == "migrated"
    doc = collection.find_one({"_id": SID})
    assert "agents" not in doc and doc["snapshot_format"] == "strands-snapshot-1.0"
    assert doc["metadata"] == {"customer": "ana"} and doc["feedbacks"][0]["rating"] == "up"
    assert doc["session_viewer_password"] == password

    storage = MongoDBStorage(database_name=db_name, collection_name="sessions", client=mongo_client)
    restored = Agent(
        model=ScriptedModel(["third reply"]),
        session_manager=SnapshotSessionManager(SID, storage=storage),
        callback_handler=None,
    )
    assert (
        _texts(restored.messages) == _texts(original.messages) == ["hello", "first reply", "and then?", "second reply"]
    )
    assert restored.state.get("cart") == ["book"]
    assert restored.system_prompt == "Be helpful."
    restored("one more")  # and it carries on on the snapshot path

    features = MongoDBSnapshotSessionManager(SID, storage=storage)
    [row] = features.list_agents()
    assert row["message_count"] == 6 and row["model"] == "scripted-offline-model"
    # The two migrated turns (Strands' own manager, used for the third, records no metrics).
    assert [t["message_index"] for t in features.get_turn_metrics("default")] == [1, 3]
    assert features.get_metadata() == {"customer": "ana"}
    assert migrate_session(collection, SID).status == "skipped"  # idempotent


def test_cli_migrates_all_and_dry_run_writes_nothing(
    make_manager: Callable[..., MongoDBSessionManager],
    mongo_uri: str,
    mongo_client: MongoClient[Any],
    db_name: str,
    capsys: Any,
) -> None:
    _legacy_session(make_manager)
    collection = mongo_client[db_name]["sessions"]
    common = ["--connection-string", mongo_uri, "--database", db_name, "--collection", "sessions"]
    assert main(["migrate-to-snapshot", "--all", "--dry-run", *common]) == 0
    assert "legacy: would-migrate | agents: default (4 messages)" in capsys.readouterr().out
    assert "agents" in collection.find_one({"_id": SID})
    assert main(["migrate-to-snapshot", SID, *common]) == 0
    assert "legacy: migrated" in capsys.readouterr().out
    assert migrate_all(collection) == []


def test_a_session_changed_meanwhile_is_left_alone(
    make_manager: Callable[..., MongoDBSessionManager], mongo_client: MongoClient[Any], db_name: str
) -> None:
    _legacy_session(make_manager)
    collection = mongo_client[db_name]["sessions"]
    original_find_one = collection.find_one

    class Racing:
        """The collection, with another writer touching the session between the read and the update."""

        def __getattr__(self, name: str) -> Any:
            return getattr(collection, name)

        def find_one(self, *args: Any, **kwargs: Any) -> Any:
            doc = original_find_one(*args, **kwargs)
            collection.update_one(
                {"_id": SID}, {"$set": {"metadata.touched": True}, "$currentDate": {"updated_at": True}}
            )
            return doc

    assert migrate_session(Racing(), SID).status == "conflict"  # type: ignore[arg-type]
    assert "agents" in collection.find_one({"_id": SID})


def test_image_bytes_survive_the_migration(
    make_manager: Callable[..., MongoDBSessionManager], mongo_client: MongoClient[Any], db_name: str
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    manager = make_manager("with-image")
    agent = Agent(model=ScriptedModel(["nice picture"]), session_manager=manager, callback_handler=None)
    agent([{"text": "look"}, {"image": {"format": "png", "source": {"bytes": png}}}])
    assert migrate_session(mongo_client[db_name]["sessions"], "with-image").status == "migrated"
    storage = MongoDBStorage(database_name=db_name, collection_name="sessions", client=mongo_client)
    restored = Agent(
        model=ScriptedModel(),
        session_manager=SnapshotSessionManager("with-image", storage=storage),
        callback_handler=None,
    )
    assert restored.messages[0]["content"][1]["image"]["source"]["bytes"] == png
