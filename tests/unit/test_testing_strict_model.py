"""The strict ScriptedModel refuses exactly what Bedrock's Converse API refuses, with its message."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mongodb_session_manager.testing import ScriptedModel, converse_violation

U = {"role": "user", "content": [{"text": "q"}]}
A = {"role": "assistant", "content": [{"text": "a"}]}
USE = {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "x", "input": {}}}]}
RESULT = {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "r"}]}}]}
OTHER_RESULT = {"role": "user", "content": [{"toolResult": {"toolUseId": "t9", "content": [{"text": "r"}]}}]}


@pytest.mark.parametrize("history", [[U], [U, A, U], [U, USE, RESULT], [U, USE, {**RESULT, "tracking_id": "x"}]])
def test_valid_requests_pass(history: list[dict[str, Any]]) -> None:
    assert converse_violation(history) is None


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ([], "must start with a user message"),
        ([A, U], "must start with a user message"),
        ([U, U], "must alternate between user and assistant roles"),
        ([U, A, A, U], "must alternate between user and assistant roles"),
        ([U, USE, U], "Expected toolResult blocks at messages.2.content for the following Ids: t1"),
        ([U, USE, OTHER_RESULT], "Expected toolResult blocks"),
        ([U, A, RESULT], "exceeds the number of toolUse blocks"),
        ([U, A], "must end with a user message"),
        ([{"role": "user", "content": [{"text": "  "}]}], "is blank"),
        ([{"role": "user", "content": []}], "is empty"),
    ],
)
def test_invalid_requests_get_bedrocks_message(history: list[dict[str, Any]], message: str) -> None:
    problem = converse_violation(history)
    assert problem is not None and message in problem


def test_a_strict_model_raises_a_validation_exception_and_a_lenient_one_answers() -> None:
    async def first_event(model: ScriptedModel) -> Any:
        async for event in model.stream([U, U]):  # type: ignore[list-item]
            return event

    with pytest.raises(ClientError) as caught:
        asyncio.run(first_event(ScriptedModel()))
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert asyncio.run(first_event(ScriptedModel(strict=False))) == {"messageStart": {"role": "assistant"}}
