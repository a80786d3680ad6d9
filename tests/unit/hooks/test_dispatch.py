"""The shared worker pool and the hook base class: order of work, bounds, failures, flush/close."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from mongodb_session_manager.hooks import _aws, _dispatch, close_aws_hooks, flush_aws_hooks
from mongodb_session_manager.hooks._dispatch import DispatchingHook, call_original


class RecordingHook(DispatchingHook):
    """Sends ``kwargs["metadata"]`` through ``send`` (a stand-in for the AWS call)."""

    def __init__(self, send: Callable[[str, Any], None]) -> None:
        super().__init__("recording")
        self.send = send

    def _schedule(self, action: str, session_id: str, kwargs: Mapping[str, Any]) -> None:
        if action == "update":
            self._dispatch(session_id, "send", self.send, session_id, kwargs["metadata"])


def test_call_original_passes_the_right_argument_for_each_action() -> None:
    seen: list[tuple[Any, ...]] = []

    def original(*args: Any) -> str:
        seen.append(args)
        return "result"

    kwargs = {"metadata": {"a": 1}, "keys": ["a"], "feedback": {"rating": "up"}, "session_manager": object()}
    for action in ("update", "delete", "add", "get"):
        assert call_original(original, action, kwargs) == "result"
    assert seen == [({"a": 1},), (["a"],), ({"rating": "up"},), ()]
    with pytest.raises(ValueError, match="unknown hook action 'upsert'"):
        call_original(original, "upsert", kwargs)


def test_the_operation_runs_and_returns_before_the_send_starts() -> None:
    events: list[str] = []
    release = threading.Event()

    def send(session_id: str, metadata: Any) -> None:
        release.wait(30)
        events.append("sent")

    def original(metadata: Any) -> str:
        events.append("stored")
        return "stored-result"

    hook = RecordingHook(send)
    assert hook(original, "update", "s1", metadata={"a": 1}) == "stored-result"
    assert events == ["stored"]  # the send is still waiting; the caller already has its result
    release.set()
    assert hook.flush(30)
    assert events == ["stored", "sent"]


def test_a_refused_operation_sends_nothing_and_the_caller_sees_the_error() -> None:
    sends: list[Any] = []
    hook = RecordingHook(lambda sid, m: sends.append(m))

    def original(metadata: Any) -> None:
        raise ValueError("metadata refused")

    with pytest.raises(ValueError, match="metadata refused"):
        hook(original, "update", "s1", metadata={"a": 1})
    assert hook.flush(30) and sends == []


def test_a_failing_send_is_logged_with_the_session_and_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    def send(session_id: str, metadata: Any) -> None:
        raise ConnectionError("endpoint unreachable")

    hook = RecordingHook(send)
    with caplog.at_level(logging.ERROR):
        assert hook(lambda m: "ok", "update", "s-fail", metadata={}) == "ok"
        assert hook.flush(30)
    record = next(r for r in caplog.records if "AWS call failed" in r.getMessage())
    assert "session_id=<s-fail>" in record.getMessage() and record.exc_info is not None
    assert hook.stats == {"failed": 1}


def test_a_failure_while_preparing_the_send_still_returns_the_result(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(DispatchingHook):
        def _schedule(self, action: str, session_id: str, kwargs: Mapping[str, Any]) -> None:
            raise KeyError("surprise")

    with caplog.at_level(logging.ERROR):
        assert Broken("broken")(lambda m: "ok", "update", "s-prep", metadata={}) == "ok"
    assert "session_id=<s-prep>" in caplog.text


def test_sends_of_one_session_keep_their_order_while_other_sessions_proceed() -> None:
    order: list[tuple[str, int]] = []
    first_started, release = threading.Event(), threading.Event()

    def send(session_id: str, n: int) -> None:
        if (session_id, n) == ("slow", 0):
            first_started.set()
            release.wait(30)
        order.append((session_id, n))

    hook = RecordingHook(send)
    for n in range(5):
        hook(lambda m: None, "update", "slow", metadata=n)
    assert first_started.wait(30)
    other = RecordingHook(lambda sid, n: order.append((sid, n)))
    other(lambda m: None, "update", "fast", metadata=0)
    assert other.flush(30)
    assert order == [("fast", 0)]  # not stuck behind the blocked session
    release.set()
    assert hook.flush(30)
    assert [n for sid, n in order if sid == "slow"] == [0, 1, 2, 3, 4]


def test_the_pool_is_bounded_and_reused() -> None:
    names: set[str] = set()
    lock = threading.Lock()

    def send(session_id: str, n: int) -> None:
        with lock:
            names.add(threading.current_thread().name)

    hook = RecordingHook(send)
    for n in range(60):
        hook(lambda m: None, "update", f"session-{n % 12}", metadata=n)
    assert flush_aws_hooks(30)
    assert 1 <= len(names) <= _dispatch.MAX_WORKERS
    assert all(name.startswith("msm-aws-hook") for name in names)


def test_flush_times_out_while_a_send_is_stuck_and_succeeds_afterwards() -> None:
    release = threading.Event()
    hook = RecordingHook(lambda sid, m: release.wait(30))
    hook(lambda m: None, "update", "s1", metadata={})
    assert hook.flush(timeout=0.05) is False
    assert flush_aws_hooks(timeout=0.05) is False
    release.set()
    assert hook.flush(30) and flush_aws_hooks(30)


def test_close_cancels_what_is_still_queued_after_the_timeout() -> None:
    release = threading.Event()
    ran: list[int] = []

    def send(session_id: str, n: int) -> None:
        release.wait(30)
        ran.append(n)

    hook = RecordingHook(send)
    for n in range(3):
        hook(lambda m: None, "update", "s1", metadata=n)
    assert close_aws_hooks(timeout=0.05) is False
    release.set()
    assert hook.flush(30)  # the queued ones were cancelled, so nothing is left pending
    assert ran == [0]
    # The pool comes back on next use.
    hook(lambda m: None, "update", "s1", metadata=9)
    assert hook.flush(30) and ran == [0, 9]


def test_a_closed_hook_keeps_working_but_sends_nothing(caplog: pytest.LogCaptureFixture) -> None:
    sends: list[Any] = []
    hook = RecordingHook(lambda sid, m: sends.append(m))
    hook(lambda m: None, "update", "s1", metadata=1)
    assert hook.close(30)
    with caplog.at_level(logging.WARNING):
        assert hook(lambda m: "still stored", "update", "s1", metadata=2) == "still stored"
    assert sends == [1] and hook.stats == {"skipped": 1}
    assert "session_id=<s1>" in caplog.text and "hook is closed" in caplog.text


def test_boto3_clients_are_cached_per_service_region_and_endpoint() -> None:
    sqs = _aws.get_client("sqs", "us-east-1")
    assert _aws.get_client("sqs", "us-east-1") is sqs
    assert _aws.get_client("sqs", "eu-west-1") is not sqs
    assert _aws.get_client("sqs", "us-east-1", "http://127.0.0.1:9") is not sqs
    close_aws_hooks()
    assert _aws.get_client("sqs", "us-east-1") is not sqs
