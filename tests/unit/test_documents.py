"""Pure logic of the session document: validation, conversions, and the queries sent to MongoDB.

The behaviour these queries have on a real server is proven in ``tests/integration``; here we pin
what a user relies on without a database: bad ids are refused with a typed error, bytes stay
bytes, timestamps become dates, and reads and writes only touch the paths they name.
"""

from __future__ import annotations

import base64
import json
import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import bson
import pytest
from strands.types.exceptions import SessionException
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from mongodb_session_manager import documents as d
from mongodb_session_manager import documents_features as df
from mongodb_session_manager import documents_indexes as dx
from mongodb_session_manager import documents_values as dv
from mongodb_session_manager.errors import InvalidIdentifierError, InvalidInputError, InvalidMetadataError

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\xff\x00binary\x00payload"

BAD_IDS: list[tuple[Any, str]] = [
    ("", "is empty"),
    ("$where", "starts with '$'"),
    ("a.b", "contains '.'"),
    ("nul\x00byte", "NUL"),
    ("x" * (d.MAX_ID_LENGTH + 1), "longer than"),
    (42, "must be a string"),
    (None, "must be a string"),
    (b"bytes", "must be a string"),
]


# ---- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["session-1", "a", "user@example_com", "ünïcödé-会话", "x" * d.MAX_ID_LENGTH, "a$b"])
def test_valid_ids_are_returned_unchanged(value: str) -> None:
    assert d.validate_id(value) == value


@pytest.mark.parametrize(("value", "reason"), BAD_IDS)
def test_bad_ids_raise_a_typed_value_error_naming_the_problem(value: Any, reason: str) -> None:
    with pytest.raises(InvalidIdentifierError) as info:
        d.validate_id(value, "agent", session_id="s-1")
    exc = info.value
    assert isinstance(exc, ValueError) and isinstance(exc, SessionException) and isinstance(exc, InvalidInputError)
    assert reason in str(exc)
    assert "agent id" in str(exc)
    assert exc.session_id == "s-1"
    assert "session_id=<s-1>" in str(exc)


def test_very_long_bad_id_is_truncated_in_the_message() -> None:
    with pytest.raises(InvalidIdentifierError) as info:
        d.validate_id("$" + "y" * 10_000)
    assert len(str(info.value)) < 300


@pytest.mark.parametrize("value", [0, 1, 10_000])
def test_message_ids_are_non_negative_integers(value: int) -> None:
    assert d.validate_message_id(value) == value


@pytest.mark.parametrize("value", [-1, True, False, 1.0, "1", None])
def test_bad_message_ids_are_refused(value: Any) -> None:
    with pytest.raises(InvalidIdentifierError, match="message id"):
        d.validate_message_id(value, session_id="s")


@pytest.mark.parametrize("key", ["", "$set", "a.b", "a\x00", 3])
def test_bad_metadata_keys_are_refused(key: Any) -> None:
    with pytest.raises(InvalidMetadataError):
        d.validate_metadata_key(key)
    with pytest.raises(InvalidMetadataError):
        d.validate_metadata({"fine": 1, key: "x"})


def test_metadata_must_be_a_mapping_of_encodable_values() -> None:
    assert d.validate_metadata({"a": {"nested.dots": "allowed below top level"}, "b": [1, 2]}) == {
        "a": {"nested.dots": "allowed below top level"},
        "b": [1, 2],
    }
    with pytest.raises(InvalidMetadataError, match="mapping"):
        d.validate_metadata([("a", 1)])
    with pytest.raises(InvalidMetadataError, match="cannot be stored"):
        d.validate_metadata({"tags": {"a", "b"}})
    with pytest.raises(InvalidMetadataError, match="cannot be stored"):
        d.validate_metadata({"huge": 2**70})


def test_viewer_passwords_are_32_random_alphanumerics() -> None:
    passwords = {d.new_viewer_password() for _ in range(50)}
    assert len(passwords) == 50
    for password in passwords:
        assert len(password) == 32
        assert set(password) <= set(string.ascii_letters + string.digits)


# ---- time -------------------------------------------------------------------------------------------


def test_iso_strings_from_strands_become_aware_datetimes() -> None:
    aware = d.to_datetime("2025-03-04T05:06:07.123456+02:00")
    assert aware == datetime(2025, 3, 4, 3, 6, 7, 123456, tzinfo=UTC)
    naive = d.to_datetime("2025-03-04T05:06:07")
    assert naive.tzinfo is not None and naive == datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert d.to_datetime("2025-03-04T05:06:07Z") == datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


def test_missing_timestamps_become_now() -> None:
    before = datetime.now(UTC)
    for value in (None, ""):
        stamp = d.to_datetime(value)
        assert stamp.tzinfo is not None and stamp >= before


def test_unparseable_timestamp_is_a_typed_input_error() -> None:
    with pytest.raises(InvalidInputError, match="timestamp"):
        d.to_datetime("yesterday-ish")


def test_datetimes_round_trip_through_iso() -> None:
    stamp = datetime(2024, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    assert datetime.fromisoformat(d.to_iso(stamp)) == stamp
    assert d.to_iso(datetime(2024, 1, 1)).endswith("+00:00")
    other_zone = datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=5)))
    assert datetime.fromisoformat(d.to_iso(other_zone)) == other_zone
    assert d.to_iso("2024-01-01T00:00:00+00:00") == "2024-01-01T00:00:00+00:00"
    assert datetime.fromisoformat(d.to_iso(None)).tzinfo is not None


# ---- paths ------------------------------------------------------------------------------------------


def test_paths_embed_agents_messages_and_counters_under_the_agent_id() -> None:
    assert d.agent_path("a1") == "agents.a1"
    assert d.agent_data_path("a1") == "agents.a1.agent_data"
    assert d.agent_data_path("a1", "state") == "agents.a1.agent_data.state"
    assert d.messages_path("a1") == "agents.a1.messages"
    assert d.next_message_id_path("a1") == "agents.a1.next_message_id"
    assert d.multi_agent_path("swarm") == "multi_agents.swarm"
    assert d.metadata_path("priority") == "metadata.priority"


# ---- sessions -----------------------------------------------------------------------------------------


def test_new_session_document_has_the_documented_shape() -> None:
    session = Session(session_id="s-1", session_type=SessionType.AGENT, created_at="2025-01-02T03:04:05+00:00")
    doc = d.new_session_document(session)
    assert doc["_id"] == doc["session_id"] == "s-1"
    assert doc["session_type"] == "AGENT"
    assert doc["created_at"] == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert isinstance(doc["updated_at"], datetime)
    assert doc["metadata"] == {} and doc["feedbacks"] == [] and doc["agents"] == {} and doc["multi_agents"] == {}
    assert len(doc["session_viewer_password"]) == d.PASSWORD_LENGTH
    assert d.new_session_document(session, viewer_password="given")["session_viewer_password"] == "given"
    bson.encode(doc)


def test_session_round_trips_and_projection_hides_internal_fields() -> None:
    session = Session(session_id="s-1", session_type=SessionType.AGENT)
    restored = d.session_from_document(d.new_session_document(session))
    assert restored.session_id == "s-1" and restored.session_type is SessionType.AGENT
    assert datetime.fromisoformat(restored.created_at) == datetime.fromisoformat(session.created_at)
    assert d.SESSION_PROJECTION["_id"] == 0 and d.VIEWER_PASSWORD not in d.SESSION_PROJECTION
    assert d.session_from_document({"session_id": "s", "session_type": "FUTURE_TYPE"}).session_type == "FUTURE_TYPE"


# ---- agents -------------------------------------------------------------------------------------------


def make_agent(agent_id: str = "a1", **state: Any) -> SessionAgent:
    return SessionAgent(
        agent_id=agent_id,
        state=state or {"k": "v"},
        conversation_manager_state={"removed_message_count": 2},
        _internal_state={"interrupt_state": {"activated": False}},
        created_at="2025-01-01T00:00:00.123456+00:00",
    )


def test_agent_round_trips_through_its_stored_form() -> None:
    agent = make_agent(nested={"list": [1, 2], "flag": True})
    doc = {"agents": {"a1": {"agent_data": d.agent_data_document(agent)}}}
    bson.encode(doc)
    restored = d.agent_from_document(doc, "a1")
    assert restored is not None
    assert restored.agent_id == "a1"
    assert restored.state == {"nested": {"list": [1, 2], "flag": True}}
    assert restored.conversation_manager_state == {"removed_message_count": 2}
    assert restored._internal_state == {"interrupt_state": {"activated": False}}
    assert datetime.fromisoformat(restored.created_at) == datetime.fromisoformat(agent.created_at)


def test_agent_from_document_builds_what_strands_from_dict_builds() -> None:
    """Same filtering of unknown keys and the same decoding of Strands' encoded bytes as
    ``SessionAgent.from_dict``, without its signature computation per key."""
    encoded = {"__bytes_encoded__": True, "data": base64.b64encode(b"\x89PNG").decode()}
    data = d.agent_data_document(make_agent(image=encoded, nested={"inner": [encoded]}))
    data |= {"model": "m", "system_prompt": "p", "totals": {"turns": 1}}
    restored = d.agent_from_document({"agents": {"a1": {"agent_data": data}}}, "a1")
    fields = {k: v for k, v in dv.from_bson(data).items() if k not in ("created_at", "updated_at")}
    expected = SessionAgent.from_dict({"agent_id": "a1", "state": {}, "conversation_manager_state": {}, **fields})
    assert restored is not None
    assert restored.state == expected.state == {"image": b"\x89PNG", "nested": {"inner": [b"\x89PNG"]}}
    assert (restored.agent_id, restored.conversation_manager_state, restored._internal_state) == (
        expected.agent_id,
        expected.conversation_manager_state,
        expected._internal_state,
    )


def test_agent_from_document_ignores_library_fields_and_returns_none_when_absent() -> None:
    data = d.agent_data_document(make_agent())
    data |= {"model": "m", "system_prompt": "p", "config_captured": {"model": "m"}, "totals": {"turns": 1}}
    restored = d.agent_from_document({"agents": {"a1": {"agent_data": data}}}, "a1")
    assert restored is not None and restored.state == {"k": "v"}
    assert d.agent_from_document(None, "a1") is None
    assert d.agent_from_document({}, "a1") is None
    assert d.agent_from_document({"agents": {"other": {"agent_data": data}}}, "a1") is None
    assert d.raw_agent_data({"agents": {"a1": {"agent_data": data}}}, "a1")["model"] == "m"
    assert d.raw_agent_data({"agents": {}}, "a1") is None


def test_creating_an_agent_only_matches_while_it_does_not_exist() -> None:
    assert d.create_agent_filter("s", "a1") == {"_id": "s", "agents.a1": {"$exists": False}}
    update = d.create_agent_update(make_agent())
    entry = update["$set"]["agents.a1"]
    assert entry["messages"] == [] and entry["next_message_id"] == 0
    assert entry["agent_data"]["agent_id"] == "a1"
    assert isinstance(update["$set"]["updated_at"], datetime)


def test_updating_an_agent_never_touches_created_at_model_or_prompt() -> None:
    update = d.update_agent_update(make_agent())
    assert set(update) == {"$set"}
    fields = update["$set"]
    assert "agents.a1.agent_data.created_at" not in fields
    assert "agents.a1.agent_data.model" not in fields
    assert "agents.a1.agent_data.system_prompt" not in fields
    assert fields["agents.a1.agent_data.state"] == {"k": "v"}
    assert not any(key.startswith("agents.a1.messages") for key in fields)


def test_agent_projection_excludes_messages() -> None:
    assert d.agent_projection("a1") == {"_id": 0, "agents.a1.agent_data": 1}


def test_captured_config() -> None:
    assert d.captured_config({"config_captured": {"model": "m", "system_prompt": None}}) == ("m", None)
    assert d.captured_config({}) is None
    assert d.captured_config({"config_captured": "garbage"}) is None


def test_capture_config_update_treats_values_as_literals() -> None:
    pipeline = d.capture_config_update("a1", "model-$x", "$5 off today")
    rendered = json.dumps(pipeline, default=str)
    assert '{"$literal": "$5 off today"}' in rendered
    assert '{"$literal": "model-$x"}' in rendered


def test_agent_config_update_sets_only_given_fields() -> None:
    fields = d.agent_config_update("a1", model="m", system_prompt=None)["$set"]
    assert fields["agents.a1.agent_data.model"] == "m"
    assert "agents.a1.agent_data.system_prompt" not in fields


# ---- messages ------------------------------------------------------------------------------------------


def image_message(data: bytes = PNG) -> dict[str, Any]:
    return {
        "role": "user",
        "content": [{"text": "look"}, {"image": {"format": "png", "source": {"bytes": data}}}],
    }


def test_message_document_keeps_bytes_as_bytes_and_dates_as_dates() -> None:
    stored = d.message_document(SessionMessage(message=image_message(), message_id=3))
    assert stored["message"]["content"][1]["image"]["source"]["bytes"] == PNG
    assert stored["message_id"] == 3 and stored["redact_message"] is None
    assert isinstance(stored["created_at"], datetime) and isinstance(stored["updated_at"], datetime)
    encoded = bson.encode(stored)
    assert PNG in encoded, "bytes must be stored as BSON binary, not base64"
    assert base64.b64encode(PNG) not in encoded


def test_legacy_base64_values_are_decoded_on_write_and_on_read() -> None:
    legacy = {"__bytes_encoded__": True, "data": base64.b64encode(PNG).decode()}
    message = {"role": "user", "content": [{"image": {"format": "png", "source": {"bytes": legacy}}}]}
    stored = d.message_document(SessionMessage(message=message, message_id=0))
    assert stored["message"]["content"][0]["image"]["source"]["bytes"] == PNG
    doc = {"message_id": 0, "message": message, "redact_message": {"role": "user", "content": [{"text": legacy}]}}
    restored = d.message_from_document(doc)
    assert restored.message["content"][0]["image"]["source"]["bytes"] == PNG
    assert restored.redact_message is not None and restored.redact_message["content"][0]["text"] == PNG


def test_message_from_document_drops_metrics_and_unknown_fields() -> None:
    doc = {
        "message_id": 7,
        "message": {"role": "assistant", "content": [{"text": "hi"}]},
        "redact_message": None,
        "created_at": datetime(2025, 1, 1, 0, 0, 0, 123000, tzinfo=UTC),
        "updated_at": datetime(2025, 1, 1, 0, 0, 1, tzinfo=UTC),
        "event_loop_metrics": {"turn_usage": {}},
        "unexpected": 1,
    }
    message = d.message_from_document(doc)
    assert message.message_id == 7 and message.redact_message is None
    assert message.created_at == "2025-01-01T00:00:00.123000+00:00"
    assert message.to_message() == {"role": "assistant", "content": [{"text": "hi"}]}


def test_append_is_guarded_by_the_counter_with_a_fallback_for_old_documents() -> None:
    flt = d.append_message_filter("s", "a1", 5)
    assert flt["_id"] == "s"
    assert flt["agents.a1.agent_data"] == {"$exists": True}
    assert {"agents.a1.next_message_id": {"$lte": 5}} in flt["$or"]
    assert {
        "agents.a1.next_message_id": {"$exists": False},
        "agents.a1.messages.message_id": {"$ne": 5},
    } in flt["$or"]
    update = d.append_message_update("a1", SessionMessage(message={"role": "user", "content": []}, message_id=5))
    assert update["$push"]["agents.a1.messages"]["message_id"] == 5
    assert update["$max"] == {"agents.a1.next_message_id": 6}


def test_update_message_rewrites_one_element_and_keeps_created_at() -> None:
    message = SessionMessage(message={"role": "user", "content": [{"text": "final"}]}, message_id=4)
    message.redact_message = {"role": "user", "content": [{"text": "[redacted]"}]}
    update, array_filters = d.update_message_update("a1", message)
    assert array_filters == [{"m.message_id": 4}]
    fields = update["$set"]
    assert fields["agents.a1.messages.$[m].message"] == {"role": "user", "content": [{"text": "final"}]}
    assert fields["agents.a1.messages.$[m].redact_message"]["content"][0]["text"] == "[redacted]"
    assert "agents.a1.messages.$[m].created_at" not in fields
    assert "agents.a1.messages.$[m].event_loop_metrics" not in fields


def test_metrics_update_neutralises_operator_characters_in_total_paths() -> None:
    update, array_filters = d.message_metrics_update(
        "a1", 2, {"turn_usage": {"inputTokens": 3}}, {"usage.inputTokens": 3, "tool_calls.$evil": 1, "a..b": 1}
    )
    assert array_filters == [{"m.message_id": 2}]
    assert set(update["$inc"]) == {
        "agents.a1.agent_data.totals.usage.inputTokens",
        "agents.a1.agent_data.totals.tool_calls._evil",
        "agents.a1.agent_data.totals.a._.b",
        "totals.usage.inputTokens",  # the session-level copy the viewer sorts by
        "totals.tool_calls._evil",
        "totals.a._.b",
    }
    assert "recorded_at" in update["$set"]["agents.a1.messages.$[m].event_loop_metrics"]


def test_list_messages_pipeline_slices_on_the_server_and_reaches_the_archive_in_the_same_round_trip() -> None:
    pipeline = d.list_messages_pipeline("s", "a1", 20, 40, buckets="sessions_messages")
    assert pipeline[0] == {"$match": {"_id": "s"}}
    assert pipeline[1] == {"$project": {"agents.a1": 1}}, "one agent first: the expressions then see only it"
    project = pipeline[2]["$project"]
    assert project["_id"] == 0
    assert project["offset"] == {"$literal": 40}, "a plain 0/1 would be read as exclude/include"
    fields = project["messages"]["$map"]["in"]
    assert "event_loop_metrics" not in fields
    with_metrics = d.list_messages_pipeline("s", "a1", 20, 0, with_metrics=True)[2]["$project"]
    assert "event_loop_metrics" in with_metrics["messages"]["$map"]["in"]
    lookup = pipeline[3]["$lookup"]
    assert lookup["from"] == "sessions_messages" and lookup["localField"] == "lookup_ids"
    assert lookup["foreignField"] == "_id", "buckets are fetched by the _id index"
    assert len(d.list_messages_pipeline("s", "a1", 20, 0)) == 3, "no companion collection, no $lookup"


def test_single_message_pipelines_return_one_element() -> None:
    last = d.last_message_pipeline("s", "a1")[2]["$project"]["messages"]["$map"]["input"]["$slice"]
    assert last[1] == -1
    one = d.read_message_pipeline("s", "a1", 9)[2]["$project"]["messages"]["$map"]["input"]["$filter"]
    assert one["limit"] == 1 and one["cond"] == {"$eq": ["$$this.message_id", 9]}


def test_message_count_pipeline_for_one_agent_or_all() -> None:
    one = d.message_count_pipeline("s", "a1")[1]["$project"]["count"]
    assert one["$add"][1] == {"$ifNull": ["$agents.a1.archive.count", 0]}, "archived messages count too"
    total = d.message_count_pipeline("s", None)[1]["$project"]["count"]
    assert "$sum" in total


def test_list_agents_pipeline_never_returns_messages() -> None:
    fields = d.list_agents_pipeline("s")[-1]["$project"]
    assert "messages" not in fields and "message_count" in fields


# ---- multi-agent, metadata, feedback, indexes ------------------------------------------------------------


def test_multi_agent_state_round_trips() -> None:
    update = d.create_multi_agent_update("swarm", {"status": "running", "node": "a"})
    entry = update["$set"]["multi_agents.swarm"]
    doc = {"multi_agents": {"swarm": entry}}
    assert d.multi_agent_from_document(doc, "swarm") == {"status": "running", "node": "a"}
    assert d.multi_agent_from_document(doc, "graph") is None
    assert d.multi_agent_from_document(None, "swarm") is None
    assert d.create_multi_agent_filter("s", "swarm") == {"_id": "s", "multi_agents.swarm": {"$exists": False}}
    assert d.update_multi_agent_update("swarm", {"x": 1})["$set"]["multi_agents.swarm.state"] == {"x": 1}
    assert d.multi_agent_projection("swarm") == {"_id": 0, "multi_agents.swarm.state": 1}


def test_metadata_updates_touch_only_named_keys() -> None:
    fields = df.set_metadata_update({"a": 1, "b": {"c": 2}})["$set"]
    assert fields["metadata.a"] == 1 and fields["metadata.b"] == {"c": 2}
    assert "metadata" not in fields
    assert df.unset_metadata_update(["a"])["$unset"] == {"metadata.a": ""}
    assert df.push_feedback_update({"rating": "up"})["$push"] == {"feedbacks": {"rating": "up"}}


def test_indexes() -> None:
    assert ("created_at", -1) in dx.BASE_INDEXES and ("updated_at", -1) in dx.BASE_INDEXES
    assert dx.metadata_index_fields(["priority", "customer"]) == ["metadata.priority", "metadata.customer"]
    assert dx.metadata_index_fields(None) == []
    with pytest.raises(InvalidMetadataError):
        dx.metadata_index_fields(["$bad"])


def test_index_keys_follow_equality_sort_range() -> None:
    keys = dx.index_keys(["metadata.status"])
    assert (("created_at", -1), ("_id", 1)) in keys and (("updated_at", -1), ("_id", 1)) in keys
    assert (("totals.usage.totalTokens", -1), ("_id", 1)) in keys
    for path in ("metadata.status", "agent_ids", "models", "feedbacks.rating"):
        assert ((path, 1), ("created_at", -1), ("_id", 1)) in keys
        assert ((path, 1), ("updated_at", -1), ("_id", 1)) in keys
    assert len(keys) == len(set(keys)) == len(dx.index_keys(["metadata.status", "metadata.status"]))


def test_session_level_lists_and_totals_are_maintained_by_the_writes() -> None:
    from strands.types.session import Session, SessionAgent, SessionType

    doc = d.new_session_document(Session(session_id="s", session_type=SessionType.AGENT))
    assert doc["agent_ids"] == [] and doc["models"] == [] and doc["totals"] == {"usage": {"totalTokens": 0}}
    agent = SessionAgent(agent_id="a1", state={}, conversation_manager_state={})
    assert d.create_agent_update(agent)["$addToSet"] == {"agent_ids": "a1"}
    assert d.agent_config_update("a1", model="m1", system_prompt=None)["$addToSet"] == {"models": "m1"}
    assert "$addToSet" not in d.agent_config_update("a1", model=None, system_prompt="p")
    [stage] = d.capture_config_update("a1", "m2", None)
    assert stage["$set"]["models"] == {"$setUnion": [{"$ifNull": ["$models", []]}, [{"$literal": "m2"}]]}


def test_internal_fields_include_the_viewer_password() -> None:
    assert "session_viewer_password" in d.INTERNAL_FIELDS and "_id" in d.INTERNAL_FIELDS


def test_from_bson_gives_back_what_was_stored() -> None:
    """DBRef-shaped JSON (``$ref``/``$id``) and legacy base64 wrappers come back as the plain values."""
    from bson.dbref import DBRef

    decoded = {
        "schema": DBRef("#/definitions/user", "schema-1"),
        "nested": [DBRef("users", {"inner": DBRef("x", 1)}, "db", extra=True)],
        "legacy": {"__bytes_encoded__": True, "data": base64.b64encode(PNG).decode()},
        "when": datetime(2025, 1, 1, tzinfo=UTC),
    }
    plain = dv.from_bson(decoded)
    assert plain["schema"] == {"$ref": "#/definitions/user", "$id": "schema-1"}
    assert type(plain["schema"]) is dict
    assert plain["nested"] == [{"$ref": "users", "$id": {"inner": {"$ref": "x", "$id": 1}}, "$db": "db", "extra": True}]
    assert plain["legacy"] == PNG
    assert plain["when"] == decoded["when"]


def test_approximate_size_counts_strings_bytes_and_keys() -> None:
    assert d.approximate_size({"text": "x" * 1000}) == 4 + 1000
    assert d.approximate_size([{"image": {"bytes": b"\0" * 70_000}}]) >= 70_000
    assert d.approximate_size({"n": 1}) == 1 + 8
