"""Subject / body formatting and configuration checks of the SNS feedback hook (no AWS calls)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from mongodb_session_manager.hooks import FeedbackSNSHook, create_feedback_sns_hook
from mongodb_session_manager.hooks.feedback_sns_hook import (
    MAX_BODY_BYTES,
    MAX_SUBJECT_CHARS,
    TRUNCATION_MARK,
    format_body,
    format_subject,
    render_template,
    viewer_password,
)

BAD = "arn:aws:sns:eu-west-1:123456789012:feedback-bad"


def test_template_fills_known_placeholders_and_keeps_unknown_ones() -> None:
    text = render_template(
        "{rating} on {session_id} at {timestamp} for {team} {{literal}}",
        session_id="s1",
        rating="negative",
        timestamp="2024-01-26T10:30:45+00:00",
    )
    assert text == "negative on s1 at 2024-01-26T10:30:45+00:00 for {team} {literal}"


@pytest.mark.parametrize("template", ["{", "Session {0}", "oops }"])
def test_a_broken_prefix_is_refused_when_the_hook_is_built(template: str) -> None:
    with pytest.raises(ValueError, match="body_prefix_bad is not a valid template"):
        create_feedback_sns_hook(topic_arn_bad=BAD, body_prefix_bad=template)


def test_prefix_must_be_a_string_or_none() -> None:
    with pytest.raises(TypeError, match="subject_prefix_good must be a string"):
        create_feedback_sns_hook(topic_arn_good=BAD, subject_prefix_good=5)  # type: ignore[arg-type]
    # None means no prefix, as in the original library.
    assert create_feedback_sns_hook(topic_arn_good=BAD, subject_prefix_good=None).subject_prefixes["good"] == ""


def test_subject_reads_like_the_documented_one() -> None:
    assert format_subject("[PROD] ", "negative", "user-session") == (
        "[PROD] Virtual Agents Feedback negative on session user-session"
    )


def test_subject_fits_sns_limits() -> None:
    subject = format_subject("[PROD]\nline\tbreak ", "positive", "s" * 200)
    assert len(subject) == MAX_SUBJECT_CHARS and subject.endswith("...")
    assert "\n" not in subject and "\t" not in subject


def test_body_puts_password_session_and_comment_after_the_prefix() -> None:
    body = format_body("ALERT s1\n---\n", "pw123", "s1", "Response was incomplete")
    assert body == "ALERT s1\n---\nPassword: pw123\n\nSession: s1\n\nResponse was incomplete"


def test_a_huge_comment_is_truncated_to_fit_an_sns_message() -> None:
    comment = "é" * MAX_BODY_BYTES  # two bytes each
    body = format_body("", "pw", "s1", comment)
    assert len(body.encode("utf-8")) <= MAX_BODY_BYTES
    assert body.startswith("Password: pw\n\nSession: s1\n\né") and body.endswith(TRUNCATION_MARK)


def test_unknown_password_is_na_and_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def get_session_viewer_password(self) -> str:
            raise RuntimeError("database down, password was hunter2")

    assert viewer_password(None, "s1") == "N/A"
    assert viewer_password(object(), "s1") == "N/A"
    with caplog.at_level(logging.WARNING):
        assert viewer_password(Broken(), "s1") == "N/A"
    assert "session_id=<s1>" in caplog.text and "hunter2" not in caplog.text


def test_topics_must_be_arns_and_unset_ones_are_allowed() -> None:
    with pytest.raises(ValueError, match="topic_arn_good must be an SNS topic ARN"):
        create_feedback_sns_hook(topic_arn_good="feedback-good")
    hook = create_feedback_sns_hook(topic_arn_bad=BAD, topic_arn_good="")
    assert hook.topics == {"good": None, "bad": BAD, "neutral": None}


def test_region_comes_from_the_arn_unless_given(monkeypatch: pytest.MonkeyPatch) -> None:
    assert create_feedback_sns_hook(topic_arn_bad=BAD).regions == {"bad": "eu-west-1"}
    assert create_feedback_sns_hook(topic_arn_bad=BAD, region="us-west-2").regions == {"bad": "us-west-2"}
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(ValueError, match="no AWS region"):
        FeedbackSNSHook(topic_arn_bad="arn:aws:sns::123:odd")


def test_a_hook_without_topics_warns_once_built(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        hook: Any = create_feedback_sns_hook()
    assert "no topic configured" in caplog.text
    assert hook(lambda feedback: "stored", "add", "s1", feedback={"rating": "down"}) == "stored"
    assert hook.flush(5) and hook.stats == {"skipped": 1}
