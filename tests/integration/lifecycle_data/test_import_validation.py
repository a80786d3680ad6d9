"""import_session refuses, before any write, an export whose session could not be restored or continued.

On the real mongod: the bad exports the audit found (a message id counter below the stored ids,
duplicate ids, a counter or a message of the wrong type, messages that are not a list, a feedback
rating add_feedback refuses) raise ``InvalidExportError`` and leave no session document, no
archived bucket and no GridFS block behind, even with ``overwrite=True`` over an existing session;
a valid export (also without ``next_message_id``, as the original library wrote) still imports,
resumes with a strict model and continues with fresh, unique ids.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from strands import Agent

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.documents_archive import ArchivePolicy
from mongodb_session_manager.errors import InvalidExportError
from mongodb_session_manager.testing import ScriptedModel

Make = Callable[..., MongoDBSessionManager]


def _agent(manager: MongoDBSessionManager, replies: list[str]) -> Agent:
    return Agent(agent_id="assistant", model=ScriptedModel(replies), session_manager=manager, callback_handler=None)


def _exported(make_manager: Make) -> dict[str, Any]:
    manager = make_manager("source")
    agent = _agent(manager, ["first answer", "second answer"])
    agent("hello")
    agent("again")
    manager.add_feedback({"rating": "up", "comment": "helpful"})
    return manager.export_session()


def _entry(data: dict[str, Any]) -> dict[str, Any]:
    return data["session"]["agents"]["assistant"]


def _bad_exports(data: dict[str, Any]) -> dict[str, tuple[dict[str, Any], str]]:
    """Each bad variant of ``data`` and a fragment of the message that must name what is wrong."""
    cases: dict[str, tuple[dict[str, Any], str]] = {}

    def case(name: str, fragment: str, change: Callable[[dict[str, Any]], None]) -> None:
        bad = copy.deepcopy(data)
        change(bad)
        cases[name] = (bad, fragment)

    case(
        "counter 0",
        "agent 'assistant': next_message_id must be an integer above every message id",
        lambda b: _entry(b).update(next_message_id=0),
    )
    case("counter 'x'", "next_message_id must be an integer", lambda b: _entry(b).update(next_message_id="x"))
    case(
        "duplicate ids",
        "agent 'assistant': message ids must be unique integers >= 0",
        lambda b: _entry(b)["messages"][2].update(message_id=0),
    )
    case(
        "negative id",
        "messages[0] message_id must be an integer >= 0",
        lambda b: _entry(b)["messages"][0].update(message_id=-1),
    )
    case("message is a string", "messages[1] must be an object", lambda b: _entry(b)["messages"].__setitem__(1, "hi"))
    case("messages not a list", "messages must be a list", lambda b: _entry(b).update(messages={"0": "hi"}))
    case("rating meh", "feedbacks[0]: rating must be", lambda b: b["session"]["feedbacks"][0].update(rating="meh"))
    return cases


def _nothing_written(collection: Any, session_id: str) -> None:
    db = collection.database
    assert collection.count_documents({"_id": session_id}) == 0
    assert db[f"{collection.name}_messages"].count_documents({"session_id": session_id}) == 0
    assert db[f"{collection.name}_blobs.files"].count_documents({"metadata.session_id": session_id}) == 0


def test_a_bad_export_is_refused_with_the_typed_error_and_nothing_is_written(
    make_manager: Make, collection: Any
) -> None:
    data = _exported(make_manager)
    # A policy that would split and externalize on the way in: the check must come before any of it.
    importer = make_manager("importer", archive_policy=ArchivePolicy(max_messages=2, keep_messages=1, blob_bytes=1))
    for name, (bad, fragment) in _bad_exports(data).items():
        with pytest.raises(InvalidExportError) as caught:
            importer.import_session(bad, session_id="copy")
        assert fragment in str(caught.value), (name, str(caught.value))
        _nothing_written(collection, "copy")
    # The same importer does write buckets and blocks for the valid export: the checks above mean something.
    importer.import_session(data, session_id="copy")
    db = collection.database
    assert db[f"{collection.name}_messages"].count_documents({"session_id": "copy"}) > 0
    assert db[f"{collection.name}_blobs.files"].count_documents({"metadata.session_id": "copy"}) > 0


def test_a_refused_overwrite_leaves_the_existing_session_as_it_was(make_manager: Make, collection: Any) -> None:
    data = _exported(make_manager)
    before = collection.find_one({"_id": "source"})
    for _name, (bad, _fragment) in _bad_exports(data).items():
        with pytest.raises(InvalidExportError):
            make_manager("importer").import_session(bad, overwrite=True)
    assert collection.find_one({"_id": "source"}) == before
    agent = _agent(make_manager("source"), ["third answer"])
    assert len(agent.messages) == 4


@pytest.mark.parametrize("counter", ["kept", "absent"])
def test_a_valid_export_still_imports_resumes_and_continues_with_unique_ids(
    make_manager: Make, collection: Any, counter: str
) -> None:
    data = _exported(make_manager)
    if counter == "absent":  # as the original library wrote sessions: derived from the stored ids
        del _entry(data)["next_message_id"]
    assert make_manager("importer").import_session(data, session_id="copy") == "copy"
    resumed = make_manager("copy")
    agent = _agent(resumed, ["third answer"])
    assert [m["content"][0]["text"] for m in agent.messages] == ["hello", "first answer", "again", "second answer"]
    agent("and now?")
    stored = collection.find_one({"_id": "copy"})["agents"]["assistant"]
    assert [m["message_id"] for m in stored["messages"]] == [0, 1, 2, 3, 4, 5]
    assert stored["next_message_id"] == 6
    assert [f["rating"] for f in resumed.get_feedbacks()] == ["up"]
    again = _agent(make_manager("copy"), [])
    assert again.messages[-1]["content"][0]["text"] == "third answer"
