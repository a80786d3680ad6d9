"""FeedbackSNSHook against moto's SNS (topic -> SQS subscription) and a real MongoDBSessionManager."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from mongodb_session_manager.errors import InvalidFeedbackError
from mongodb_session_manager.hooks import create_feedback_sns_hook

BODY_BAD = "NEGATIVE FEEDBACK ALERT\nSession: {session_id}\nRating: {rating}\nTimestamp: {timestamp}\n---\n"


@pytest.fixture
def topics(subscribed_topic: Any) -> dict[str, Any]:
    return {route: subscribed_topic(f"feedback-{route}") for route in ("good", "bad", "neutral")}


@pytest.fixture
def hook(topics: dict[str, Any]) -> Any:
    return create_feedback_sns_hook(
        topic_arn_good=topics["good"].topic_arn,
        topic_arn_bad=topics["bad"].topic_arn,
        topic_arn_neutral=topics["neutral"].topic_arn,
        subject_prefix_good="[PROD] OK: ",
        subject_prefix_bad="[PROD] URGENT: ",
        subject_prefix_neutral="[PROD] ",
        body_prefix_bad=BODY_BAD,
        body_prefix_good="Session {session_id} was rated {rating}\n",
    )


def test_negative_feedback_reaches_the_bad_topic_with_the_exact_subject_and_body(
    hook: Any, topics: dict[str, Any], make_manager: Any
) -> None:
    manager = make_manager("user-session", feedback_hook=hook)
    before = datetime.now(UTC)
    assert manager.add_feedback({"rating": "down", "comment": "Response was incomplete"}) is None
    assert hook.flush(30)
    after = datetime.now(UTC)

    [envelope] = topics["bad"].receive(expected=1)
    assert envelope["Type"] == "Notification" and envelope["TopicArn"] == topics["bad"].topic_arn
    assert envelope["Subject"] == "[PROD] URGENT: Virtual Agents Feedback negative on session user-session"
    stamp = re.search(r"Timestamp: (\S+)\n", envelope["Message"]).group(1)  # type: ignore[union-attr]
    assert before <= datetime.fromisoformat(stamp) <= after  # ISO 8601, UTC, taken when it was processed
    password = manager.get_session_viewer_password()
    assert envelope["Message"] == (
        "NEGATIVE FEEDBACK ALERT\nSession: user-session\nRating: negative\n"
        f"Timestamp: {stamp}\n---\n"
        f"Password: {password}\n\nSession: user-session\n\nResponse was incomplete"
    )
    assert envelope["MessageAttributes"]["rating"]["Value"] == "negative"
    assert topics["good"].receive(expected=1) == [] and topics["neutral"].receive(expected=1) == []
    assert [f["comment"] for f in manager.get_feedbacks()] == ["Response was incomplete"]
    assert hook.stats == {"sent": 1}


def test_each_rating_goes_to_its_own_topic(hook: Any, topics: dict[str, Any], make_manager: Any) -> None:
    manager = make_manager("route-session", feedback_hook=hook)
    manager.add_feedback({"rating": "up", "comment": "Great answer"})
    manager.add_feedback({"rating": None, "comment": "Just a note"})
    assert hook.flush(30)
    password = manager.get_session_viewer_password()

    [good] = topics["good"].receive(expected=1)
    assert good["Subject"] == "[PROD] OK: Virtual Agents Feedback positive on session route-session"
    assert good["Message"] == (
        f"Session route-session was rated positive\nPassword: {password}\n\nSession: route-session\n\nGreat answer"
    )
    [neutral] = topics["neutral"].receive(expected=1)
    assert neutral["Subject"] == "[PROD] Virtual Agents Feedback neutral on session route-session"
    assert neutral["Message"] == f"Password: {password}\n\nSession: route-session\n\nJust a note"
    assert topics["bad"].receive(expected=1) == []


def test_a_rating_without_topic_sends_nothing(topics: dict[str, Any], make_manager: Any) -> None:
    hook = create_feedback_sns_hook(topic_arn_bad=topics["bad"].topic_arn)
    manager = make_manager("unset-session", feedback_hook=hook)
    manager.add_feedback({"rating": "up", "comment": "fine"})
    manager.add_feedback({"rating": None, "comment": "meh"})
    assert hook.flush(30)
    assert all(t.receive(expected=1) == [] for t in topics.values())
    assert hook.stats == {"skipped": 2}
    assert len(manager.get_feedbacks()) == 2  # stored all the same


def test_refused_feedback_is_neither_stored_nor_announced(hook: Any, topics: dict[str, Any], make_manager: Any) -> None:
    manager = make_manager("refused-session", feedback_hook=hook)
    with pytest.raises(InvalidFeedbackError):
        manager.add_feedback({"rating": "excellent", "comment": "?"})
    assert hook.flush(30)
    assert manager.get_feedbacks() == []
    assert all(t.receive(expected=1) == [] for t in topics.values())


def test_an_sns_failure_is_logged_and_the_caller_is_unaffected(
    aws: None, make_manager: Any, caplog: pytest.LogCaptureFixture
) -> None:
    hook = create_feedback_sns_hook(topic_arn_bad="arn:aws:sns:us-east-1:123456789012:deleted-topic")
    manager = make_manager("failing-session", feedback_hook=hook)
    with caplog.at_level(logging.ERROR):
        assert manager.add_feedback({"rating": "down", "comment": "still stored"}) is None
        assert hook.flush(30)
    assert [f["comment"] for f in manager.get_feedbacks()] == ["still stored"]
    failures = [r for r in caplog.records if "AWS call failed" in r.getMessage()]
    assert len(failures) == 1 and "session_id=<failing-session>" in failures[0].getMessage()
    assert "NotFound" in failures[0].getMessage() and failures[0].levelno == logging.ERROR
    assert hook.stats == {"failed": 1}


def test_without_a_session_manager_the_password_is_na(hook: Any, topics: dict[str, Any]) -> None:
    stored: list[Any] = []
    result = hook(lambda feedback: stored.append(feedback) or "ok", "add", "bare", feedback={"rating": "up"})
    assert result == "ok" and stored == [{"rating": "up"}]
    assert hook.flush(30)
    [good] = topics["good"].receive(expected=1)
    assert good["Message"] == "Session bare was rated positive\nPassword: N/A\n\nSession: bare\n\n"
