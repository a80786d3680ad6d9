"""The import's checks (pure): a session export is refused before anything is written when the
session could not be restored or continued afterwards, and every legitimate export still passes."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import pytest

from mongodb_session_manager.errors import InvalidExportError, InvalidInputError, UnsupportedSchemaVersionError
from mongodb_session_manager.export import export_session_document
from mongodb_session_manager.portable import (
    check_agent_entry,
    check_export,
    check_import,
    check_session_content,
    stored_message_problem,
)

T0 = datetime(2025, 6, 1, 9, 0, 0)


def _message(mid: int, role: str = "user", text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {
        "message_id": mid,
        "message": {"role": role, "content": [{"text": f"{mid} {text}"}]},
        "redact_message": None,
        "created_at": T0,
        "updated_at": T0,
        **extra,
    }


def _agent(**entry: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "agent_data": {"agent_id": "a", "state": {}, "conversation_manager_state": {}, "created_at": T0},
        "messages": [_message(0), _message(1, "assistant")],
        "next_message_id": 2,
    }
    return {**base, **entry}


def _export(**session: Any) -> dict[str, Any]:
    doc = {"_id": "s", "session_id": "s", "created_at": T0, "agents": {"a": _agent()}, **session}
    return export_session_document(doc)


def _refused(data: dict[str, Any], *fragments: str) -> InvalidExportError:
    with pytest.raises(InvalidExportError) as caught:
        check_import(data)
    for fragment in fragments:
        assert fragment in str(caught.value), str(caught.value)
    assert caught.value.session_id == "s"
    return caught.value


# ---- what passes -------------------------------------------------------------------------------------------


def test_an_ordinary_export_passes_and_is_returned_with_its_dates() -> None:
    data = _export(feedbacks=[{"rating": "up", "comment": "ok", "created_at": T0}], metadata={"k": "v"})
    session = check_import(data)
    assert session["agents"]["a"]["next_message_id"] == 2
    assert isinstance(session["agents"]["a"]["messages"][0]["created_at"], datetime)
    assert session is not data["session"], "a private copy, as check_export gives"


def test_an_original_library_session_passes() -> None:
    """No next_message_id, extra keys in the message body, cumulative metrics, no guardrail_events."""
    metrics = {"accumulated_usage": {"totalTokens": 7}}
    entry = {
        "agent_data": {"agent_id": "a", "state": {"step": 2}, "prompt_metadata": {"prompt_id": "p"}},
        "created_at": T0,
        "messages": [
            {**_message(0), "message": {"role": "user", "content": [{"text": "x"}], "tracking_id": "t-0"}},
            _message(1, "assistant", event_loop_metrics=metrics),
        ],
    }
    data = _export(agents={"a": entry}, feedbacks=[{"rating": "up", "comment": "nice", "created_at": T0}])
    assert "guardrail_events" not in data["session"]
    check_import(data)


@pytest.mark.parametrize("counter", [None, 2, 10])
def test_a_missing_null_or_higher_counter_is_accepted(counter: int | None) -> None:
    entry = _agent()
    if counter is None:
        del entry["next_message_id"]
    else:
        entry["next_message_id"] = counter
    check_import(_export(agents={"a": entry}))
    check_agent_entry("a", {**entry, "next_message_id": None})


def test_what_live_sessions_legitimately_hold_passes() -> None:
    """Empty agents, a purged agent (no messages, counter pinned), abandoned turns past the counter,
    redactions, reviewer notes without a rating, tool blocks and bytes, blob-free content markers."""
    redacted = _message(1, "assistant", redact_message={"role": "assistant", "content": [{"text": "[REDACTED]"}]})
    tool = {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t", "name": "n", "input": {}}}]}
    image = {"role": "user", "content": [{"image": {"format": "png", "source": {"bytes": b"\x89PNG"}}}]}
    agents = {
        "a": _agent(
            messages=[_message(0), redacted, {**_message(2), "message": tool}, {**_message(3), "message": image}],
            next_message_id=4,
        ),
        "purged": {"agent_data": {}, "messages": [], "abandoned_messages": [], "next_message_id": 40},
        "empty": {},
        "aside": _agent(abandoned_messages=[{"message_id": 9, "message": {"role": "user", "content": []}}]),
        "unredacted": _agent(messages=[_message(0, redact_message={})], next_message_id=1),
    }
    feedbacks = [{"rating": None, "comment": "note", "source": "reviewer"}, {"rating": "down"}]
    check_import(_export(agents=agents, feedbacks=feedbacks, guardrail_events=[], multi_agents={"m": {"state": {}}}))


def test_a_session_without_agents_passes() -> None:
    check_import(export_session_document({"_id": "s", "session_id": "s"}))


# ---- the message id counter --------------------------------------------------------------------------------


@pytest.mark.parametrize("counter", [0, 1, -1])
def test_a_counter_at_or_below_a_stored_id_is_refused_not_corrected(counter: int) -> None:
    _refused(_export(agents={"a": _agent(next_message_id=counter)}), "agent 'a'", "next_message_id", "at least 2")


@pytest.mark.parametrize("counter", ["x", "2", True, 2.0, [2], {"n": 2}, 2**64])
def test_a_counter_that_is_not_an_integer_is_refused(counter: Any) -> None:
    _refused(_export(agents={"a": _agent(next_message_id=counter)}), "agent 'a'", "next_message_id must be an integer")


def test_a_counter_of_an_agent_without_messages_must_be_non_negative() -> None:
    _refused(_export(agents={"a": _agent(messages=[], next_message_id=-1)}), "next_message_id", "at least 0")


# ---- message ids -------------------------------------------------------------------------------------------


def test_duplicate_message_ids_are_refused() -> None:
    messages = [_message(0), _message(1, "assistant"), _message(0), _message(1, "assistant")]
    data = _export(agents={"a": _agent(messages=messages, next_message_id=2)})
    _refused(data, "agent 'a'", "message ids must be unique integers >= 0")


@pytest.mark.parametrize("bad_id", [-1, True, "1", 1.0, None, 2**63])
def test_a_message_id_that_is_not_a_non_negative_integer_is_refused(bad_id: Any) -> None:
    messages = [_message(0), {**_message(1, "assistant"), "message_id": bad_id}]
    _refused(_export(agents={"a": _agent(messages=messages)}), "agent 'a'", "messages[1]", "message_id")


def test_a_message_without_an_id_is_refused() -> None:
    stored = _message(0)
    del stored["message_id"]
    _refused(_export(agents={"a": _agent(messages=[stored])}), "messages[0]", "message_id")


# ---- the messages themselves -------------------------------------------------------------------------------


@pytest.mark.parametrize("messages", [{"0": _message(0)}, "hello", 3])
def test_messages_that_are_not_a_list_are_refused(messages: Any) -> None:
    _refused(_export(agents={"a": _agent(messages=messages)}), "agent 'a'", "messages must be a list")


@pytest.mark.parametrize(
    ("stored", "fragment"),
    [
        ("hello", "messages[0] must be an object"),
        ({"message_id": 0}, "has no message field"),
        ({"message_id": 0, "message": "hello"}, "message must be an object"),
        ({"message_id": 0, "message": None}, "message must be an object"),
        ({"message_id": 0, "message": {"content": []}}, "message.role"),
        ({"message_id": 0, "message": {"role": "system", "content": []}}, "message.role"),
        ({"message_id": 0, "message": {"role": "user"}}, "message.content"),
        ({"message_id": 0, "message": {"role": "user", "content": "hi"}}, "message.content"),
        ({"message_id": 0, "message": {"role": "user", "content": ["hi"]}}, "message.content"),
        ({**_message(0), "redact_message": "[REDACTED]"}, "redact_message must be an object"),
        ({**_message(0), "redact_message": {"role": "user", "content": "x"}}, "redact_message.content"),
    ],
)
def test_a_message_strands_cannot_be_given_is_refused(stored: Any, fragment: str) -> None:
    _refused(_export(agents={"a": _agent(messages=[stored], next_message_id=1)}), "agent 'a'", fragment)


def test_abandoned_turns_are_held_to_the_same_shape() -> None:
    _refused(_export(agents={"a": _agent(abandoned_messages="x")}), "abandoned_messages must be a list")
    _refused(_export(agents={"a": _agent(abandoned_messages=[{"message_id": 5}])}), "abandoned_messages[0]")


def test_the_agent_data_must_be_restorable() -> None:
    _refused(_export(agents={"a": _agent(agent_data="x")}), "agent 'a'", "agent_data must be an object")
    _refused(_export(agents={"a": _agent(agent_data={"state": []})}), "agent_data.state must be an object")
    _refused(
        _export(agents={"a": _agent(agent_data={"conversation_manager_state": "x"})}),
        "agent_data.conversation_manager_state",
    )


def test_the_first_bad_agent_is_named() -> None:
    agents = {"good": _agent(), "bad one": _agent(next_message_id=0)}
    _refused(_export(agents=agents), "agent 'bad one'")


# ---- session-level fields ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("feedbacks", "fragment"),
    [
        ([{"rating": "meh"}], "feedbacks[0]: rating must be 'up', 'down' or null"),
        ([{"rating": "up"}, {"rating": 1}], "feedbacks[1]: rating"),
        ([{"rating": "up", "comment": 5}], "feedbacks[0]: comment must be a string"),
        (["up"], "feedbacks[0] must be an object"),
        ({"rating": "up"}, "feedbacks must be a list"),
        (None, "feedbacks must be a list"),
    ],
)
def test_feedback_add_feedback_would_refuse_is_refused(feedbacks: Any, fragment: str) -> None:
    _refused(_export(feedbacks=feedbacks), fragment)


def test_metadata_guardrail_events_and_multi_agents_must_have_their_shape() -> None:
    _refused(_export(metadata=["k"]), "metadata must be an object")
    _refused(_export(guardrail_events={"x": 1}), "guardrail_events must be a list")
    _refused(_export(guardrail_events=["x"]), "guardrail_events must be a list")
    _refused(_export(multi_agents={"m": "x"}), "multi_agents")


# ---- the functions themselves ------------------------------------------------------------------------------


def test_errors_are_typed_input_errors() -> None:
    error = _refused(_export(agents={"a": _agent(next_message_id="x")}))
    assert isinstance(error, InvalidInputError) and isinstance(error, ValueError)
    assert str(error).startswith("session_id=<s> | agent 'a': next_message_id")


def test_check_import_keeps_check_export_errors_and_leaves_the_data_alone() -> None:
    data = _export(agents={"a": _agent(next_message_id=0)})
    before = copy.deepcopy(data)
    with pytest.raises(InvalidExportError):
        check_import(data)
    assert data == before
    with pytest.raises(InvalidExportError):
        check_import({"format": "other"})
    with pytest.raises(UnsupportedSchemaVersionError):
        check_import({**data, "schema_version": 99})
    assert check_export(data)["agents"]["a"]["next_message_id"] == 0, "check_export alone checks the envelope"


def test_the_pure_checks_are_usable_alone() -> None:
    assert stored_message_problem(_message(3)) is None
    assert stored_message_problem({"message_id": 3, "message": {"role": "tool", "content": []}}) is not None
    check_agent_entry("a", _agent())
    with pytest.raises(InvalidExportError, match="the agent entry must be an object"):
        check_agent_entry("a", "x", session_id="s")
    check_session_content({"agents": {"a": _agent()}})
    with pytest.raises(InvalidExportError, match="agents must be an object"):
        check_session_content({"agents": []})
