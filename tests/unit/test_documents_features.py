"""``documents.py`` builders of the feature operations (pure; their server behaviour is tested in
``tests/integration/test_repository_features.py``)."""

from __future__ import annotations

import pytest
from strands.types.session import SessionMessage

from mongodb_session_manager import documents as d
from mongodb_session_manager import documents_features as df
from mongodb_session_manager.errors import InvalidFeedbackError, InvalidInputError, InvalidMetadataError
from mongodb_session_manager.mongodb_connection_pool import split_client_options


def test_feedback_entry_validates_and_stamps() -> None:
    entry = df.feedback_entry({"rating": "down", "comment": None, "created_at": "ignored", "ticket": 4})
    assert entry[d.RATING] == "down" and entry[d.COMMENT] == "" and entry["ticket"] == 4
    assert entry[d.CREATED_AT].tzinfo is not None
    for bad in ({"rating": "meh"}, {"rating": "up", "comment": 3}, {"rating": "up", "$x": 1}, "up"):
        with pytest.raises(InvalidFeedbackError):
            df.feedback_entry(bad)


def test_prompt_metadata_validation() -> None:
    assert d.validate_prompt_metadata({"prompt_id": "p", "temperature": 1}) == {"prompt_id": "p", "temperature": 1}
    for bad in ({"temperature": True}, {"temperature": "0.2"}, {"a.b": 1}, ["prompt_id"]):
        with pytest.raises(InvalidMetadataError):
            d.validate_prompt_metadata(bad)


def test_application_name_validation() -> None:
    assert d.validate_application_name(None) is None and d.validate_application_name("app") == "app"
    with pytest.raises(InvalidInputError):
        d.validate_application_name(" ")


def test_new_sessions_carry_the_original_fields() -> None:
    from strands.types.session import Session, SessionType

    doc = d.new_session_document(Session(session_id="s", session_type=SessionType.AGENT), application_name="a")
    assert doc[d.APPLICATION_NAME] == "a" and doc[d.GUARDRAIL_EVENTS] == []


def test_prompt_metadata_is_written_beside_agent_data_never_inside() -> None:
    update = d.set_prompt_metadata_update("a1", {"prompt_id": "p"})
    assert update["$set"]["agents.a1.prompt_metadata"] == {"prompt_id": "p"}
    assert not any(key.startswith("agents.a1.agent_data.prompt") for key in update["$set"])


def test_guardrail_updates_are_one_write_with_an_array_filter() -> None:
    on_message, on_session = df.guardrail_events("a1", 3, stop_reason="guardrail_intervened", trace={"t": 1})
    assert "trace" in on_message and "trace" not in on_session and on_session[d.MESSAGE_ID] == 3
    update, filters = df.guardrail_event_update("a1", 3, on_message, on_session)
    assert update["$push"] == {d.GUARDRAIL_EVENTS: on_session} and filters == [{"m.message_id": 3}]
    message = SessionMessage(message={"role": "user", "content": []}, message_id=3, redact_message={"role": "user"})
    update, filters = df.redact_message_update("a1", message, on_message, on_session)
    assert update["$set"]["agents.a1.messages.$[m].guardrail_event"] == on_message
    assert "agents.a1.messages.$[m].redact_message" in update["$set"] and "$push" in update


def test_list_agents_pipeline_can_target_one_agent() -> None:
    stages = d.list_agents_pipeline("s", "a1")
    assert {"$match": {"agents.k": "a1"}} in stages
    assert set(stages[-1]["$project"]) >= set(d.AGENT_CONFIG_KEYS)


def test_split_client_options_is_the_one_splitter() -> None:
    client, rest = split_client_options({"maxPoolSize": 3, "appName": "x", "metadata_fields": []})
    assert client == {"maxPoolSize": 3, "appName": "x"} and rest == {"metadata_fields": []}
    with pytest.raises(TypeError, match="'typo'"):
        split_client_options({"typo": 1, "metadata_fields": []}, accepted=["metadata_fields"], where="X()")
