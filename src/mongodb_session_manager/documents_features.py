"""Session features in the document: metadata, feedback (the end user's and reviewers' notes), the
viewer password, and guardrail events with their redactions.

Pure updates and projections on :mod:`.documents`' field names, sent by the repository's feature
mixin and read by the Session Viewer.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from strands.types.session import SessionMessage

from . import documents as d
from .errors import InvalidFeedbackError

# ---- metadata and feedback --------------------------------------------------------------------------------


def set_metadata_update(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Partial update: one ``$set metadata.<key>`` per key; other keys are untouched."""
    return {"$set": {**{d.metadata_path(k): v for k, v in metadata.items()}, **d.touch()}}


def unset_metadata_update(keys: list[str]) -> dict[str, Any]:
    return {"$unset": {d.metadata_path(k): "" for k in keys}, "$set": d.touch()}


METADATA_PROJECTION = {d.ID: 0, d.METADATA: 1}


def push_feedback_update(feedback: Mapping[str, Any]) -> dict[str, Any]:
    return {"$push": {d.FEEDBACKS: dict(feedback)}, "$set": d.touch()}


#: A feedback entry's author kind. End users' entries have none; the viewer's reviewer notes say "reviewer".
FEEDBACK_SOURCE = "source"
REVIEWER_SOURCE = "reviewer"


def reviewer_note(comment: str, rating: str | None, at: datetime | None = None) -> dict[str, Any]:
    """A reviewer's note as a feedback entry, marked so it is never counted as end-user feedback."""
    return {"rating": rating, "comment": comment, d.CREATED_AT: at or d.now(), FEEDBACK_SOURCE: REVIEWER_SOURCE}


def push_reviewer_note_update(note: Mapping[str, Any]) -> dict[str, Any]:
    """Append a note without touching ``updated_at``: a review is not activity in the conversation."""
    return {"$push": {d.FEEDBACKS: dict(note)}}


def is_end_user_feedback(entry_expr: str = "$$this") -> dict[str, Any]:
    """Aggregation condition: the feedback entry at ``entry_expr`` came from an end user, not a reviewer."""
    return {"$ne": [f"{entry_expr}.{FEEDBACK_SOURCE}", REVIEWER_SOURCE]}


FEEDBACKS_PROJECTION = {d.ID: 0, d.FEEDBACKS: 1}
VIEWER_PASSWORD_PROJECTION = {d.ID: 0, d.VIEWER_PASSWORD: 1}
GUARDRAIL_EVENTS_PROJECTION = {d.ID: 0, d.GUARDRAIL_EVENTS: 1}


def feedback_entry(feedback: object, *, session_id: str | None = None) -> dict[str, Any]:
    """The stored feedback: ``rating`` in :data:`VALID_RATINGS`, a string ``comment``, a UTC ``created_at``.

    Extra keys (a message id, a user id...) are kept when they are valid field names; a caller's own
    ``created_at`` is replaced, so the timeline orders feedback by when it was stored.
    """
    if not isinstance(feedback, Mapping):
        raise InvalidFeedbackError(f"feedback must be a mapping, got {type(feedback).__name__}", session_id=session_id)
    rating = feedback.get(d.RATING)
    if rating not in d.VALID_RATINGS:
        raise InvalidFeedbackError(f"rating must be 'up', 'down' or None, got {rating!r}", session_id=session_id)
    comment = feedback.get(d.COMMENT, "")
    if comment is not None and not isinstance(comment, str):
        raise InvalidFeedbackError("comment must be a string", session_id=session_id)
    extra = {k: v for k, v in feedback.items() if k not in (d.RATING, d.COMMENT, d.CREATED_AT)}
    entry = {**extra, d.RATING: rating, d.COMMENT: comment or "", d.CREATED_AT: d.now()}
    try:
        for key in extra:
            d.validate_metadata_key(key, session_id=session_id)
        d.ensure_encodable(entry, what="feedback", session_id=session_id)
    except ValueError as exc:
        raise InvalidFeedbackError(f"feedback refused: {exc}", session_id=session_id) from exc
    return entry


def set_viewer_password_update(password: str | None = None) -> dict[str, Any]:
    """Give a session from an older version its viewer password (with :func:`missing_viewer_password_filter`)."""
    return {"$set": {d.VIEWER_PASSWORD: password or d.new_viewer_password()}}


# ---- guardrail auditing -------------------------------------------------------------------------------------
#: The action recorded when the caller does not name one (what Strands' redaction means).
GUARDRAIL_ACTION_BLOCKED = "BLOCKED"


def guardrail_events(
    agent_id: str,
    message_id: int,
    *,
    action: str = GUARDRAIL_ACTION_BLOCKED,
    stop_reason: str | None = None,
    policies_triggered: Mapping[str, list[str]] | None = None,
    trace: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(event stored on the message, entry of the session-level ``guardrail_events`` list).

    Same fields as the original library: the full trace stays on the message only, the session list
    carries the summary that reviewers filter on.
    """
    timestamp = at or d.now()
    optional: dict[str, Any] = {}
    if stop_reason:
        optional["stop_reason"] = stop_reason
    if policies_triggered:
        optional["policies_triggered"] = {k: list(v) for k, v in policies_triggered.items()}
    on_message: dict[str, Any] = {"action": action, "timestamp": timestamp, **optional}
    if trace:
        on_message["trace"] = dict(trace)
    on_session: dict[str, Any] = {
        d.MESSAGE_ID: message_id,
        "agent_id": agent_id,
        "action": action,
        "timestamp": timestamp,
        **optional,
    }
    return on_message, on_session


def guardrail_event_update(
    agent_id: str, message_id: int, on_message: Mapping[str, Any], on_session: Mapping[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One write: the event on the message (array filter) and its entry in the session-level list."""
    at = d.now()
    update = {
        "$set": {f"{d.messages_path(agent_id)}.$[m].{d.GUARDRAIL_EVENT}": dict(on_message), **d.touch(at)},
        "$push": {d.GUARDRAIL_EVENTS: dict(on_session)},
    }
    return update, [{f"m.{d.MESSAGE_ID}": message_id}]


def redact_message_update(
    agent_id: str, message: SessionMessage, on_message: Mapping[str, Any], on_session: Mapping[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One write: the redacted message (as :func:`update_message_update`), its guardrail event, and the
    session-level entry, so the audit trail can never disagree with the stored message."""
    update, array_filters = d.update_message_update(agent_id, message)
    update["$set"][f"{d.messages_path(agent_id)}.$[m].{d.GUARDRAIL_EVENT}"] = dict(on_message)
    update["$push"] = {d.GUARDRAIL_EVENTS: dict(on_session)}
    return update, array_filters


def missing_viewer_password_filter(session_id: str) -> dict[str, Any]:
    """Sessions written before passwords existed get one, once, without racing a concurrent reader."""
    return {d.ID: session_id, d.VIEWER_PASSWORD: {"$exists": False}}
