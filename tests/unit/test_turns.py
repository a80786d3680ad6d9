"""Which stored histories end in an unfinished turn (and so must not be sent to a model as they are)."""

from __future__ import annotations

from typing import Any

import pytest

from mongodb_session_manager.turns import closes_turn, unfinished_tail


def user(text: str = "q") -> dict[str, Any]:
    return {"role": "user", "content": [{"text": text}]}


def answer(text: str = "a") -> dict[str, Any]:
    return {"role": "assistant", "content": [{"text": text}]}


def tool_use(tid: str = "t1") -> dict[str, Any]:
    return {"role": "assistant", "content": [{"toolUse": {"toolUseId": tid, "name": "x", "input": {}}}]}


def tool_result(tid: str = "t1") -> dict[str, Any]:
    return {"role": "user", "content": [{"toolResult": {"toolUseId": tid, "content": [{"text": "r"}]}}]}


@pytest.mark.parametrize(
    "history",
    [[], [user(), answer()], [user(), tool_use(), tool_result(), answer()], [user(), answer(), user(), answer()]],
)
def test_histories_that_end_after_an_answer_are_complete(history: list[dict[str, Any]]) -> None:
    assert unfinished_tail(history) is None


@pytest.mark.parametrize(
    ("history", "start"),
    [
        ([user()], 0),
        ([user(), answer(), user()], 2),
        ([user(), answer(), user(), user()], 2),
        ([user(), answer(), user(), tool_use()], 2),
        ([user(), answer(), user(), tool_use(), tool_result()], 2),
        ([user(), tool_use(), user("hello again")], 0),
    ],
)
def test_a_trailing_turn_without_its_answer_is_unfinished(history: list[dict[str, Any]], start: int) -> None:
    assert unfinished_tail(history) == start


def test_an_interrupted_tool_call_waits_for_its_answer_and_is_not_cut() -> None:
    history = [user(), answer(), user(), tool_use()]
    assert unfinished_tail(history, interrupted=True) is None
    assert unfinished_tail([*history, tool_result()], interrupted=True) == 2


def test_only_an_assistant_message_without_tool_use_closes_a_turn() -> None:
    assert closes_turn(answer()) and not closes_turn(tool_use()) and not closes_turn(user())


def test_consecutive_user_messages_are_joined_into_one_and_the_originals_kept() -> None:
    from mongodb_session_manager.turns import join_user_runs

    result = {"role": "user", "content": [{"toolResult": {"toolUseId": "t", "status": "error", "content": []}}]}
    prompt = {"role": "user", "content": [{"text": "q1"}]}
    history = [{"role": "user", "content": [{"text": "q0"}]}, {"role": "assistant", "content": []}, result, prompt]
    joined = join_user_runs(history)
    assert [m["role"] for m in joined] == ["user", "assistant", "user"]
    assert joined[-1]["content"] == [*result["content"], *prompt["content"]]
    assert prompt["content"] == [{"text": "q1"}], "stored messages are not changed"
    alternating = history[:3]
    assert join_user_runs(alternating) is alternating, "nothing to join: the same list"


def test_a_lease_wait_tells_whichever_side_comes_second_to_give_the_lease_back() -> None:
    from mongodb_session_manager.turns import LeaseWait

    taken_first = LeaseWait()
    assert taken_first.take() is True, "nobody gave up: the thread keeps the lease"
    assert taken_first.give_up() is True, "the caller gives up after: it must release the lease"
    given_up_first = LeaseWait()
    assert given_up_first.give_up() is False, "no lease yet: nothing for the caller to release"
    assert given_up_first.abandoned.is_set()
    assert given_up_first.take() is False, "the thread takes it after: the thread must release it"
