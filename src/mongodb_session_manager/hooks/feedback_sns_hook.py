"""``FeedbackSNSHook``: publish every stored feedback to the SNS topic of its rating.

Teams subscribe people (e-mail, chat) or queues to a "bad feedback" topic to react while the user
is still around; the notification carries the Session Viewer password so whoever receives it can
open that one conversation straight away. Publishing happens on the shared worker pool after the
feedback is stored, so a slow or failing SNS never delays or breaks the user's request.

Message format (``{session_id}``, ``{rating}``, ``{timestamp}`` are filled in the prefixes)::

    Subject: <subject_prefix>Virtual Agents Feedback <positive|negative|neutral> on session <id>
    Body:    <body_prefix>Password: <viewer password or N/A>\\n\\nSession: <id>\\n\\n<comment>
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from .. import documents as d
from . import _aws
from ._dispatch import DispatchingHook
from ._events import utc_timestamp

logger = logging.getLogger(__name__)

#: rating -> (route, text used in the subject and in ``{rating}``)
RATING_ROUTES: dict[str | None, tuple[str, str]] = {
    "up": ("good", "positive"),
    "down": ("bad", "negative"),
    None: ("neutral", "neutral"),
}
PASSWORD_UNKNOWN = "N/A"

#: SNS refuses subjects of 100 characters or more, and line breaks / control characters in them.
MAX_SUBJECT_CHARS = 99
#: SNS messages are limited to 256 KiB; keep room for the message attributes.
MAX_BODY_BYTES = 256 * 1024 - 2048
TRUNCATION_MARK = "\n[comment truncated]"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class _KeepUnknown(dict[str, str]):
    """Placeholders the hook does not know stay in the text as written (``{foo}`` stays ``{foo}``)."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render_template(template: str, *, session_id: str, rating: str, timestamp: str) -> str:
    return template.format_map(_KeepUnknown(session_id=session_id, rating=rating, timestamp=timestamp))


def check_template(template: str, name: str) -> str:
    """Refuse a prefix that cannot be rendered when the hook is built, not at the first feedback."""
    if not isinstance(template, str):
        raise TypeError(f"{name} must be a string, got {type(template).__name__}")
    try:
        render_template(template, session_id="s", rating="neutral", timestamp="t")
    except (ValueError, IndexError, AttributeError, KeyError) as exc:
        raise ValueError(
            f"{name} is not a valid template ({exc}); use {{session_id}}, {{rating}}, {{timestamp}} "
            "and double braces for literal ones"
        ) from None
    return template


def format_subject(prefix: str, rating_text: str, session_id: str) -> str:
    subject = _CONTROL.sub(" ", f"{prefix}Virtual Agents Feedback {rating_text} on session {session_id}")
    if len(subject) > MAX_SUBJECT_CHARS:
        subject = subject[: MAX_SUBJECT_CHARS - 3] + "..."
    return subject


def format_body(prefix: str, password: str, session_id: str, comment: str) -> str:
    head = f"{prefix}Password: {password}\n\nSession: {session_id}\n\n"
    body = head + comment
    if len(body.encode("utf-8")) <= MAX_BODY_BYTES:
        return body
    room = MAX_BODY_BYTES - len(head.encode("utf-8")) - len(TRUNCATION_MARK.encode("utf-8"))
    kept = comment.encode("utf-8")[: max(room, 0)].decode("utf-8", errors="ignore")
    return head + kept + TRUNCATION_MARK


def _check_topic(arn: str | None, name: str) -> str | None:
    if arn is None or arn == "":
        return None
    if not isinstance(arn, str) or not arn.startswith("arn:"):
        raise ValueError(f"{name} must be an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>), got {arn!r}")
    return arn


class FeedbackSNSHook(DispatchingHook):
    """Feedback hook (``feedback_hook=``) that publishes to one SNS topic per rating.

    Args:
        topic_arn_good / topic_arn_bad / topic_arn_neutral: Topic for "up" / "down" / None ratings;
            leave one unset (None or "") to send nothing for that rating.
        subject_prefix_*: Text put before the subject, e.g. ``"[PROD] "``.
        body_prefix_*: Text put before the body; ``{session_id}``, ``{rating}`` and ``{timestamp}``
            are replaced, unknown ``{names}`` are kept as written.
        region: AWS region; by default the one in each topic ARN.
        endpoint_url: Another SNS endpoint (moto, LocalStack, a VPC endpoint).
    """

    def __init__(
        self,
        topic_arn_good: str | None = None,
        topic_arn_bad: str | None = None,
        topic_arn_neutral: str | None = None,
        subject_prefix_good: str | None = "",
        subject_prefix_bad: str | None = "",
        subject_prefix_neutral: str | None = "",
        body_prefix_good: str | None = "",
        body_prefix_bad: str | None = "",
        body_prefix_neutral: str | None = "",
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        _aws.require_boto3("FeedbackSNSHook")
        super().__init__("feedback_sns")
        self.topics = {
            "good": _check_topic(topic_arn_good, "topic_arn_good"),
            "bad": _check_topic(topic_arn_bad, "topic_arn_bad"),
            "neutral": _check_topic(topic_arn_neutral, "topic_arn_neutral"),
        }
        # Positional, and None for "no prefix", as in the original library's class.
        subjects = {"good": subject_prefix_good, "bad": subject_prefix_bad, "neutral": subject_prefix_neutral}
        bodies = {"good": body_prefix_good, "bad": body_prefix_bad, "neutral": body_prefix_neutral}
        subjects = {route: prefix or "" for route, prefix in subjects.items()}
        bodies = {route: prefix or "" for route, prefix in bodies.items()}
        self.subject_prefixes = {r: check_template(v, f"subject_prefix_{r}") for r, v in subjects.items()}
        self.body_prefixes = {r: check_template(v, f"body_prefix_{r}") for r, v in bodies.items()}
        self.endpoint_url = endpoint_url
        self.regions = {
            route: _aws.resolve_region(region, _aws.region_from_arn(arn), f"topic_arn_{route}")
            for route, arn in self.topics.items()
            if arn
        }
        if not self.regions:
            logger.warning("FeedbackSNSHook has no topic configured: it will not send any notification")

    def _schedule(self, action: str, session_id: str, kwargs: Mapping[str, Any]) -> None:
        if action != "add":
            return
        feedback = kwargs.get("feedback") or {}
        rating = feedback.get(d.RATING)
        if rating not in RATING_ROUTES:
            self._count("skipped")
            logger.warning("session_id=<%s> | rating=<%r> | unknown rating, no notification", session_id, rating)
            return
        route, rating_text = RATING_ROUTES[rating]
        if not self.topics[route]:
            self._count("skipped")
            logger.debug("session_id=<%s> | rating=<%s> | no topic for this rating", session_id, rating_text)
            return
        comment = feedback.get(d.COMMENT) or ""
        timestamp = utc_timestamp()
        manager = kwargs.get("session_manager")
        args = (route, rating_text, session_id, str(comment), timestamp, manager)
        self._dispatch(session_id, "sns.publish", self._publish, *args)

    def _publish(
        self, route: str, rating_text: str, session_id: str, comment: str, timestamp: str, manager: Any
    ) -> None:
        values = {"session_id": session_id, "rating": rating_text, "timestamp": timestamp}
        subject = format_subject(render_template(self.subject_prefixes[route], **values), rating_text, session_id)
        prefix = render_template(self.body_prefixes[route], **values)
        body = format_body(prefix, viewer_password(manager, session_id), session_id, comment)
        client = _aws.get_client("sns", self.regions[route], self.endpoint_url)
        client.publish(
            TopicArn=self.topics[route],
            Subject=subject,
            Message=body,
            MessageAttributes={
                "session_id": {"DataType": "String", "StringValue": session_id},
                "rating": {"DataType": "String", "StringValue": rating_text},
            },
        )
        self._count("sent")
        logger.info("session_id=<%s> | rating=<%s> | feedback notification published", session_id, rating_text)


def viewer_password(manager: Any, session_id: str) -> str:
    """The Session Viewer password of the session, or ``N/A`` (the notification still goes out)."""
    getter = getattr(manager, "get_session_viewer_password", None)
    if getter is None:
        return PASSWORD_UNKNOWN
    try:
        return str(getter()) or PASSWORD_UNKNOWN
    except Exception as exc:
        # Never let a password lookup cost the notification; the password itself is never logged.
        logger.warning("session_id=<%s> | viewer password unavailable (%s), using N/A", session_id, type(exc).__name__)
        return PASSWORD_UNKNOWN


def create_feedback_sns_hook(
    topic_arn_good: str | None = None,
    topic_arn_bad: str | None = None,
    topic_arn_neutral: str | None = None,
    *,
    subject_prefix_good: str = "",
    subject_prefix_bad: str = "",
    subject_prefix_neutral: str = "",
    body_prefix_good: str = "",
    body_prefix_bad: str = "",
    body_prefix_neutral: str = "",
    region: str | None = None,
    endpoint_url: str | None = None,
) -> FeedbackSNSHook:
    """Build a :class:`FeedbackSNSHook` (raises ImportError naming the ``aws`` extra without boto3)."""
    return FeedbackSNSHook(
        topic_arn_good,
        topic_arn_bad,
        topic_arn_neutral,
        subject_prefix_good=subject_prefix_good,
        subject_prefix_bad=subject_prefix_bad,
        subject_prefix_neutral=subject_prefix_neutral,
        body_prefix_good=body_prefix_good,
        body_prefix_bad=body_prefix_bad,
        body_prefix_neutral=body_prefix_neutral,
        region=region,
        endpoint_url=endpoint_url,
    )


def create_feedback_hook(
    topic_arn_good: str | None,
    topic_arn_bad: str | None,
    topic_arn_neutral: str | None,
    subject_prefix_good: str | None = None,
    subject_prefix_bad: str | None = None,
    subject_prefix_neutral: str | None = None,
    body_prefix_good: str | None = None,
    body_prefix_bad: str | None = None,
    body_prefix_neutral: str | None = None,
) -> FeedbackSNSHook:
    """The original library's name and positional signature for :func:`create_feedback_sns_hook`.

    ``None`` prefixes mean no prefix; an empty or ``"none"`` topic ARN disables that rating (as in
    the original). The region is read from each topic ARN.
    """

    def topic(arn: str | None) -> str | None:
        return None if arn is None or arn.strip().lower() == "none" else arn

    return FeedbackSNSHook(
        topic(topic_arn_good),
        topic(topic_arn_bad),
        topic(topic_arn_neutral),
        subject_prefix_good=subject_prefix_good or "",
        subject_prefix_bad=subject_prefix_bad or "",
        subject_prefix_neutral=subject_prefix_neutral or "",
        body_prefix_good=body_prefix_good or "",
        body_prefix_bad=body_prefix_bad or "",
        body_prefix_neutral=body_prefix_neutral or "",
    )
