"""The hook contract module: one definition used by the manager, ``compose`` and the AWS hooks."""

from __future__ import annotations

from typing import Any

import pytest

from mongodb_session_manager.hooks import _dispatch, compose
from mongodb_session_manager.hooks.contract import (
    ACTION_ARGUMENT,
    OperationHook,
    call_original,
    check_hook,
    run_operation,
)
from mongodb_session_manager.mongodb_session_manager import OperationHook as ManagerOperationHook


def test_everyone_uses_the_same_contract() -> None:
    assert ManagerOperationHook is OperationHook
    assert _dispatch.ACTION_ARGUMENT is ACTION_ARGUMENT and _dispatch.call_original is call_original
    assert compose.Hook is OperationHook


def test_run_operation_without_a_hook_calls_the_operation_directly() -> None:
    assert run_operation(None, lambda metadata: metadata["a"], "update", "s", {"a": 1}) == 1
    assert run_operation(None, lambda: "got", "get", "s") == "got"


def test_run_operation_passes_the_value_under_the_actions_keyword() -> None:
    seen: list[tuple[str, str, dict[str, Any]]] = []

    def hook(original_func: Any, action: str, session_id: str, **kwargs: Any) -> Any:
        seen.append((action, session_id, dict(kwargs)))
        return call_original(original_func, action, kwargs)

    assert isinstance(hook, OperationHook)
    assert run_operation(hook, lambda keys: len(keys), "delete", "s1", ["a", "b"], session_manager="m") == 2
    assert run_operation(hook, lambda feedback: feedback["rating"], "add", "s1", {"rating": "up"}) == "up"
    assert seen == [
        ("delete", "s1", {"keys": ["a", "b"], "session_manager": "m"}),
        ("add", "s1", {"feedback": {"rating": "up"}}),
    ]


def test_unknown_actions_and_non_callable_hooks_are_refused() -> None:
    with pytest.raises(ValueError, match="upsert"):
        run_operation(None, lambda: None, "upsert", "s")
    with pytest.raises(TypeError, match="metadata_hook must be a callable"):
        check_hook("not a hook", "metadata_hook")
    assert check_hook(None, "metadata_hook") is None
