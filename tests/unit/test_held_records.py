"""HeldRecords: a restored history's records are built only when read, and behave like Strands' list."""

from __future__ import annotations

from typing import Any

import pytest
from strands.types.session import SessionMessage

from mongodb_session_manager.held_records import HeldRecords

READ_AT = "2026-12-02T00:00:00+00:00"


def _entries(count: int) -> list[dict[str, Any]]:
    return [
        {"message_id": i, "message": {"role": "user" if i % 2 == 0 else "assistant", "content": [{"text": f"m{i}"}]}}
        for i in range(count)
    ]


def _record(i: int) -> SessionMessage:
    return SessionMessage({"role": "user", "content": [{"text": f"new {i}"}]}, i, None, READ_AT, READ_AT)


def test_the_agents_messages_come_from_the_entries_without_building_a_record() -> None:
    entries = _entries(4)
    held = HeldRecords(entries, READ_AT)

    messages = held.messages()

    assert [m is e["message"] for m, e in zip(messages, entries, strict=True)] == [True] * 4
    assert held._built == {}


def test_a_record_is_built_once_with_the_stored_id_and_the_restore_time_as_its_dates() -> None:
    held = HeldRecords(_entries(3), READ_AT)

    first, again = held[1], held[-2]

    assert first is again
    assert (first.message_id, first.created_at, first.updated_at, first.redact_message) == (1, READ_AT, READ_AT, None)
    assert list(held._built) == [1]


def test_a_change_to_a_built_record_shows_in_the_messages_and_in_a_copy() -> None:
    held = HeldRecords(_entries(3), READ_AT)
    blocked = {"role": "user", "content": [{"text": "[blocked]"}]}

    held[-1].redact_message = blocked  # what Strands' redact_latest_message does
    copy = held.copy()

    assert held.messages()[-1] is blocked
    assert copy[-1] is held[-1]


def test_a_stored_redaction_is_what_the_agent_gets() -> None:
    entries = _entries(2)
    entries[1]["redact_message"] = {"role": "assistant", "content": [{"text": "[redacted]"}]}
    entries[0]["redact_message"] = None  # stored as null: not a redaction

    held = HeldRecords(entries, READ_AT)

    assert held.messages() == [entries[0]["message"], entries[1]["redact_message"]]
    assert held[1].redact_message == entries[1]["redact_message"]
    assert held[0].redact_message is None


def test_records_added_after_the_restore_follow_the_restored_ones() -> None:
    held = HeldRecords(_entries(2), READ_AT)
    added = _record(2)

    held.append(added)

    assert len(held) == 3
    assert held[2] is added and held.last() is added
    assert [r.message_id for r in held] == [0, 1, 2]
    assert [r.message_id for r in reversed(held)] == [2, 1, 0]
    assert [r.message_id for r in held[1:]] == [1, 2]
    assert held.messages()[-1] is added.message


def test_an_index_out_of_range_raises_like_a_list() -> None:
    held = HeldRecords(_entries(1), READ_AT)

    with pytest.raises(IndexError):
        held[1]
    with pytest.raises(IndexError):
        held[-2]
    assert HeldRecords().last() is None


def test_discarding_a_rolled_back_turn_leaves_the_restored_records_unbuilt() -> None:
    held = HeldRecords(_entries(3), READ_AT)
    kept, rolled_back = _record(3), _record(4)
    held.append(kept)
    held.append(rolled_back)

    held.discard([rolled_back])

    assert held.last() is kept
    assert len(held) == 4
    assert held._built == {}


def test_pruning_keeps_what_the_agent_still_holds_by_identity_or_tracking_id() -> None:
    entries = _entries(5)
    entries[3]["message"]["tracking_id"] = "t-3"
    held = HeldRecords(entries, READ_AT)
    survivor = held[4]  # built before the prune: the same object afterwards
    added = _record(5)
    held.append(added)
    # A sliding window dropped the two oldest; message 3 was replaced by a copy with its tracking id.
    agent_messages = [entries[2]["message"], {**entries[3]["message"]}, entries[4]["message"], added.message]

    held.prune(agent_messages)

    assert [r.message_id for r in held] == [2, 3, 4, 5]
    assert held[2] is survivor
    assert held.last() is added


def test_pruning_drops_added_records_the_agent_no_longer_holds() -> None:
    held = HeldRecords(_entries(1), READ_AT)
    gone = _record(1)
    held.append(gone)

    held.prune([])

    assert len(held) == 0


def test_of_wraps_existing_records_and_copies_a_holder() -> None:
    records = [_record(0), _record(1)]
    held = HeldRecords.of(records)
    other = HeldRecords.of(held)
    other.append(_record(2))

    assert list(held) == records
    assert len(held) == 2 and len(other) == 3


def test_entries_read_by_position_get_their_ids_from_the_ids_given_and_keep_them_when_pruned() -> None:
    entries = [{k: v for k, v in entry.items() if k != "message_id"} for entry in _entries(4)]
    held = HeldRecords(entries, READ_AT, ids=[10, 11, 13, 14])

    assert [held[i].message_id for i in (0, 2)] == [10, 13]
    messages = held.messages()
    held.prune([messages[1], messages[3]])  # the agent dropped the first and third

    assert [record.message_id for record in held] == [11, 14]
    assert held.copy()[0].message_id == 11
    with pytest.raises(ValueError, match="3 ids for 4 restored messages"):
        HeldRecords(entries, READ_AT, ids=[1, 2, 3])
