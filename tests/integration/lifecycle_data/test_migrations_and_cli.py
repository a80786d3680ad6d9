"""Schema version and migration, and the export / import / migrate commands, on the real mongod."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from strands import Agent

from mongodb_session_manager import ArchivePolicy, MongoDBSessionManager, MongoDBSessionRepository
from mongodb_session_manager import documents as d
from mongodb_session_manager.cli import main
from mongodb_session_manager.migrations import migrate, plan
from mongodb_session_manager.testing import ScriptedModel

Make = Callable[..., MongoDBSessionManager]
LEGACY_CREATED = datetime(2025, 1, 2, 3, 4, 5)


def _original_library_session(sid: str) -> dict[str, Any]:
    """The shape the original library wrote (docs/shared design): no counters, no list fields, no version."""
    return {
        "_id": sid,
        "session_id": sid,
        "session_type": "AGENT",
        "created_at": LEGACY_CREATED,
        "updated_at": LEGACY_CREATED,
        "metadata": {"status": "done"},
        "feedbacks": [{"rating": "down", "comment": "slow", "created_at": LEGACY_CREATED}],
        "agents": {
            "a": {
                "agent_data": {
                    "agent_id": "a",
                    "state": {},
                    "conversation_manager_state": {
                        "__name__": "SlidingWindowConversationManager",
                        "removed_message_count": 0,
                    },
                    "model": "old-model",
                    "system_prompt": "be brief",
                    "prompt_metadata": {"prompt_id": "old"},
                    "created_at": LEGACY_CREATED,
                    "updated_at": LEGACY_CREATED,
                },
                "messages": [
                    {
                        "message_id": 0,
                        "message": {"role": "user", "content": [{"text": "hello"}]},
                        "created_at": LEGACY_CREATED,
                        "updated_at": LEGACY_CREATED,
                    },
                    {
                        "message_id": 1,
                        "message": {"role": "assistant", "content": [{"text": "hi there"}]},
                        "created_at": LEGACY_CREATED,
                        "updated_at": LEGACY_CREATED,
                        "event_loop_metrics": {"accumulated_usage": {"totalTokens": 12}},
                    },
                ],
            }
        },
    }


def test_new_sessions_carry_the_current_schema_version(make_manager: Make, collection: Any) -> None:
    make_manager("new")
    assert collection.find_one({"_id": "new"})["schema_version"] == d.CURRENT_SCHEMA_VERSION
    assert plan(collection).entries == []


def test_dry_run_reports_without_writing_and_migrate_is_idempotent(make_manager: Make, collection: Any) -> None:
    make_manager("current")
    collection.insert_one(_original_library_session("legacy"))
    older = {**collection.find_one({"_id": "current"}), "_id": "v1", "session_id": "v1"}
    del older["schema_version"]
    collection.insert_one(older)
    collection.insert_one({"_id": "future", "session_id": "future", "schema_version": d.CURRENT_SCHEMA_VERSION + 1})
    before = list(collection.find({}, sort=[("_id", 1)]))

    report = migrate(collection, dry_run=True)
    assert [e.session_id for e in report.entries] == ["legacy", "v1"] and report.newer == 1
    legacy = report.entries[0]
    assert "no viewer password" in legacy.reasons and "agents without a message id counter" in legacy.reasons
    assert "prompt_metadata inside agent_data" in legacy.reasons
    assert report.entries[1].reasons == ["no schema_version"]
    assert list(collection.find({}, sort=[("_id", 1)])) == before, "a dry run writes nothing"

    done = migrate(collection)
    assert [e.status for e in done.entries] == ["migrated", "migrated"]
    assert migrate(collection).entries == [], "a second run finds nothing to do"
    assert collection.find_one({"_id": "future"}) == {
        "_id": "future",
        "session_id": "future",
        "schema_version": d.CURRENT_SCHEMA_VERSION + 1,
    }
    migrated_v1 = collection.find_one({"_id": "v1"})
    assert {k: v for k, v in migrated_v1.items() if k != "schema_version"} == {
        k: v for k, v in older.items() if k != "schema_version"
    }, "a document already in the current shape only gains its version"


def test_a_migrated_original_session_works_with_this_library(make_manager: Make, collection: Any) -> None:
    collection.insert_one(_original_library_session("legacy"))
    migrate(collection)
    doc = collection.find_one({"_id": "legacy"})
    entry = doc["agents"]["a"]
    assert doc["schema_version"] == d.CURRENT_SCHEMA_VERSION and len(doc["session_viewer_password"]) == 32
    assert doc["agent_ids"] == ["a"] and doc["models"] == ["old-model"]
    assert entry["next_message_id"] == 2 and entry["prompt_metadata"] == {"prompt_id": "old"}
    assert entry["created_at"].replace(tzinfo=None) == LEGACY_CREATED
    assert doc["guardrail_events"] == [] and doc["application_name"] is None and doc["multi_agents"] == {}
    assert doc["metadata"] == {"status": "done"} and doc["feedbacks"][0]["comment"] == "slow"
    manager = make_manager("legacy")
    agent = Agent(agent_id="a", model=ScriptedModel(["again"]), session_manager=manager, callback_handler=None)
    assert [m["content"][0]["text"] for m in agent.messages] == ["hello", "hi there"]
    agent("continue")
    assert manager.get_message_count("a") == 4
    assert manager.get_agent_config("a")["prompt_metadata"] == {"prompt_id": "old"}  # type: ignore[index]


def test_string_dates_of_older_writers_become_dates(collection: Any) -> None:
    doc = _original_library_session("strings")
    doc["created_at"] = "2025-01-02T03:04:05+00:00"
    collection.insert_one(doc)
    assert "dates stored as strings" in plan(collection).entries[0].reasons
    migrate(collection)
    assert collection.find_one({"_id": "strings"})["created_at"].replace(tzinfo=None) == LEGACY_CREATED


# ---- the CLI ----------------------------------------------------------------------------------------------------


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_export_then_import_round_trip(
    make_manager: Make,
    mongo_uri: str,
    mongo_client: MongoClient[Any],
    db_name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    manager = make_manager("cli")
    Agent(agent_id="a", model=ScriptedModel(["answer"]), session_manager=manager, callback_handler=None)("question")
    manager.update_metadata({"status": "open"})
    where = ["--connection-string", mongo_uri, "--database", db_name, "--collection", "sessions"]
    code, out, _ = _cli(capsys, "export", "cli", *where)
    assert code == 0
    exported = json.loads(out)
    assert exported["session"]["metadata"] == {"status": "open"}
    path = tmp_path / "cli.json"
    path.write_text(out)

    target = ["--connection-string", mongo_uri, "--database", f"{db_name}_cli", "--collection", "sessions"]
    try:
        code, out, _ = _cli(capsys, "import", str(path), *target)
        assert code == 0 and "imported cli" in out
        code, _, err = _cli(capsys, "import", str(path), *target)
        assert code == 1 and "already exists" in err
        assert _cli(capsys, "import", str(path), "--overwrite", *target)[0] == 0
        resumed = MongoDBSessionManager(
            "cli", client=mongo_client, database_name=f"{db_name}_cli", collection_name="sessions"
        )
        agent = Agent(agent_id="a", model=ScriptedModel(["more"]), session_manager=resumed, callback_handler=None)
        assert [m["content"][0]["text"] for m in agent.messages] == ["question", "answer"]
        agent("follow-up")
        resumed.close()
        code, out, _ = _cli(capsys, "export", "cli", "--output", str(tmp_path / "again.json"), *target)
        assert code == 0 and json.loads((tmp_path / "again.json").read_text())["session"]["session_id"] == "cli"
    finally:
        mongo_client.drop_database(f"{db_name}_cli")


def test_cli_errors_are_one_line_and_exit_1(
    mongo_uri: str, db_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--connection-string", mongo_uri, "--database", db_name, "--collection", "sessions"]
    code, out, err = _cli(capsys, "export", "nobody", *where)
    assert code == 1 and out == "" and "session does not exist" in err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = _cli(capsys, "import", str(bad), *where)
    assert code == 1 and "cannot read a session export" in err


def test_cli_migrate_dry_run_then_migrate(
    collection: Any, mongo_uri: str, db_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    collection.insert_one(_original_library_session("legacy"))
    where = ["--connection-string", mongo_uri, "--database", db_name, "--collection", "sessions"]
    code, out, _ = _cli(capsys, "migrate", "--dry-run", *where)
    assert code == 0 and "legacy: needs migration" in out and "1 document(s) need migration" in out
    assert "schema_version" not in collection.find_one({"_id": "legacy"})
    code, out, _ = _cli(capsys, "migrate", *where)
    assert code == 0 and "legacy: migrated" in out
    assert _cli(capsys, "migrate", *where)[1].strip().endswith(f"0 document(s) migrated in {db_name}.sessions")


def test_a_snapshot_session_only_gets_its_base_fields(collection: Any) -> None:
    collection.insert_one({"_id": "snap", "session_id": "snap", "snapshot_format": "strands-snapshot-1.0"})
    (entry,) = plan(collection).entries
    assert entry.snapshot
    migrate(collection)
    doc = collection.find_one({"_id": "snap"})
    assert doc["schema_version"] == d.CURRENT_SCHEMA_VERSION and len(doc["session_viewer_password"]) == 32
    assert "agents" not in doc and "multi_agents" not in doc, "the snapshot path has no agents map"


def _ported_session(sid: str, messages: int) -> dict[str, Any]:
    """A session of the original library that kept every message in the document."""
    doc = _original_library_session(sid)
    doc["agents"]["a"]["messages"] = [
        {
            "message_id": i,
            "message": {"role": "user" if i % 2 == 0 else "assistant", "content": [{"text": f"m{i}"}]},
            "created_at": LEGACY_CREATED,
            "updated_at": LEGACY_CREATED,
        }
        for i in range(messages)
    ]
    return doc


def test_migrate_archive_splits_ported_sessions_now_and_a_second_run_moves_nothing(collection: Any) -> None:
    collection.insert_many([_ported_session("big", 300), _ported_session("small", 20)])
    buckets = collection.database["sessions_messages"]

    dry = migrate(collection, dry_run=True, archive=ArchivePolicy())
    assert [(e.session_id, e.agent_id, e.stored, e.status) for e in dry.archived] == [
        ("big", "a", 300, "would archive")
    ], "the session within the policy is not listed"
    assert buckets.count_documents({}) == 0 and "schema_version" not in collection.find_one({"_id": "big"})

    report = migrate(collection, archive=ArchivePolicy())
    ((entry),) = report.archived
    assert (entry.status, entry.moved) == ("archived", 200)
    doc = collection.find_one({"_id": "big"})
    assert len(doc["agents"]["a"]["messages"]) == 100 and doc["agents"]["a"]["archive"]["count"] == 200
    assert doc["schema_version"] == d.CURRENT_SCHEMA_VERSION, "the schema migration ran first"

    repository = MongoDBSessionRepository(
        client=collection.database.client, database_name=collection.database.name, collection_name="sessions"
    )
    restored = repository.restore_agent("big", "a")
    assert [(r.message_id, r.to_message()["content"][0]["text"]) for r in restored.messages] == [
        (i, f"m{i}") for i in range(300)
    ]
    assert migrate(collection, archive=ArchivePolicy()).archived == [], "nothing over the policy any more"
    repository.close()


def test_migrate_archive_leaves_an_agent_in_a_turn_to_that_turn(collection: Any) -> None:
    doc = _ported_session("busy", 300)
    doc["agents"]["a"]["lease"] = {"token": "t", "owner": "elsewhere", "expires_at": datetime(2999, 1, 1)}
    collection.insert_one(doc)

    ((entry),) = migrate(collection, archive=ArchivePolicy()).archived

    assert (entry.status, entry.moved) == ("left for its next write", 0)
    assert len(collection.find_one({"_id": "busy"})["agents"]["a"]["messages"]) == 300
    assert collection.database["sessions_messages"].count_documents({}) == 0


def test_cli_migrate_archive_dry_run_then_archive(
    collection: Any, mongo_uri: str, db_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    collection.insert_one(_ported_session("ported", 250))
    where = ["--connection-string", mongo_uri, "--database", db_name, "--collection", "sessions"]

    code, out, _ = _cli(capsys, "migrate", "--archive", "--dry-run", *where)
    assert code == 0 and "ported/a: 250 messages in the document | would archive" in out
    assert out.strip().endswith("1 agent(s) would be archived")

    code, out, _ = _cli(capsys, "migrate", "--archive", *where)
    assert code == 0 and "ported/a: 250 messages in the document, 100 moved to buckets | archived" in out
    assert out.strip().endswith("1 agent(s) archived")
    assert _cli(capsys, "migrate", "--archive", *where)[1].strip().endswith("0 agent(s) archived")


def test_migrate_archive_skips_an_agent_whose_id_this_library_refuses(collection: Any) -> None:
    doc = _ported_session("odd", 300)
    doc["agents"] = {"$bot": doc["agents"]["a"]}  # the original accepted it; a field path cannot hold it
    collection.insert_one(doc)

    ((entry),) = migrate(collection, archive=ArchivePolicy()).archived

    assert entry.agent_id == "$bot" and entry.status.startswith("skipped: ") and entry.moved == 0
    assert len(collection.find_one({"_id": "odd"})["agents"]["$bot"]["messages"]) == 300
