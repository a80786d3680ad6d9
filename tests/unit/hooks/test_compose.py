"""Chaining hooks: one real operation, every hook around it, in the documented order."""

from __future__ import annotations

from typing import Any

import pytest

from mongodb_session_manager.hooks import compose_feedback_hooks, compose_metadata_hooks


def tracing(name: str, trace: list[str]) -> Any:
    def hook(original_func: Any, action: str, session_id: str, **kwargs: Any) -> Any:
        trace.append(f"{name}:before:{action}")
        if action == "update":
            result = original_func(kwargs["metadata"])
        elif action == "delete":
            result = original_func(kwargs["keys"])
        else:
            result = original_func()
        trace.append(f"{name}:after")
        return result

    return hook


def test_the_operation_runs_once_inside_every_hook() -> None:
    trace: list[str] = []
    stored: list[Any] = []
    composed = compose_metadata_hooks(tracing("ws", trace), tracing("sqs", trace))

    def original(metadata: Any) -> str:
        stored.append(metadata)
        trace.append("store")
        return "result"

    assert composed(original, "update", "s1", metadata={"a": 1}, session_manager=None) == "result"
    assert stored == [{"a": 1}]
    assert trace == ["ws:before:update", "sqs:before:update", "store", "sqs:after", "ws:after"]
    trace.clear()
    assert composed(lambda: {"a": 1}, "get", "s1") == {"a": 1}
    assert trace == ["ws:before:get", "sqs:before:get", "sqs:after", "ws:after"]


def test_a_rewritten_value_reaches_the_later_hooks_and_the_store() -> None:
    seen: list[Any] = []

    def redact(original_func: Any, action: str, session_id: str, **kwargs: Any) -> Any:
        return original_func({k: v for k, v in kwargs["metadata"].items() if k != "secret"})

    def spy(original_func: Any, action: str, session_id: str, **kwargs: Any) -> Any:
        seen.append((kwargs["metadata"], kwargs["session_manager"]))
        return original_func(kwargs["metadata"])

    stored: list[Any] = []
    composed = compose_metadata_hooks(redact, spy)
    composed(stored.append, "update", "s1", metadata={"a": 1, "secret": 2}, session_manager="mgr")
    assert stored == [{"a": 1}] and seen == [({"a": 1}, "mgr")]


def test_a_refusing_hook_stops_the_operation() -> None:
    def refuse(original_func: Any, action: str, session_id: str, **kwargs: Any) -> Any:
        raise PermissionError("read-only session")

    stored: list[Any] = []
    composed = compose_feedback_hooks(refuse, lambda f, a, s, **k: f(k["feedback"]))
    with pytest.raises(PermissionError):
        composed(stored.append, "add", "s1", feedback={"rating": "up"})
    assert stored == []


def test_flush_and_close_reach_members_that_have_them() -> None:
    calls: list[str] = []

    class Flushable:
        def __call__(self, original_func: Any, action: str, session_id: str, **kwargs: Any) -> Any:
            return original_func(kwargs["metadata"])

        def flush(self, timeout: float | None = None) -> bool:
            calls.append(f"flush:{timeout}")
            return True

        def close(self, timeout: float | None = None) -> bool:
            calls.append("close")
            return False

    composed = compose_metadata_hooks(Flushable(), tracing("plain", []))
    assert composed.flush(3) is True and composed.close() is False
    assert calls == ["flush:3", "close"]


def test_compose_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="at least one hook"):
        compose_metadata_hooks()
    with pytest.raises(TypeError, match="callables"):
        compose_metadata_hooks("not a hook")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown hook action"):
        compose_metadata_hooks(tracing("x", []))(lambda: None, "upsert", "s1")
