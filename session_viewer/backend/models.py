"""Response models: the API's contract, and the OpenAPI schema at ``/docs``.

Timestamps are ISO 8601 UTC strings (already converted by :mod:`.timeline`), and content blocks
and metrics stay loosely typed dictionaries: they mirror what Strands stored, which the viewer
shows rather than interprets. No model has a password field, so none can ever be serialised.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["reachable", "unreachable"]
    version: str


class AuthCheckResponse(BaseModel):
    scope: Literal["global", "session"]
    session_id: str | None = None


class MetadataField(BaseModel):
    field: str = Field(description="Full path to use in filters, e.g. metadata.status")
    label: str = Field(description="What the UI shows, e.g. status")
    type: Literal["string", "number", "boolean", "date", "enum", "other"]
    values: list[str | int | float | bool] | None = Field(
        default=None, description="Dropdown values for enum fields (at most ENUM_MAX_VALUES)"
    )


class MetadataFieldsResponse(BaseModel):
    fields: list[MetadataField]


class TokenTotals(BaseModel):
    inputTokens: int = 0
    outputTokens: int = 0
    totalTokens: int = 0


class SessionSummary(BaseModel):
    """One list card: aggregates from the library's running totals, never from loading the messages."""

    session_id: str
    session_type: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    application_name: str | None = None
    agent_ids: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list, description="model ids of the session's agents")
    message_count: int = 0
    turns: int = Field(default=0, description="model invocations recorded with metrics")
    tokens: TokenTotals = Field(default_factory=TokenTotals)
    latency_ms: int = Field(default=0, description="summed model latency")
    cost_usd: float | None = Field(default=None, description="estimate from MODEL_PRICES_STR; None: no price known")
    cost_complete: bool = Field(default=True, description="False when some tokens came from an unpriced model")
    feedback_count: int = Field(default=0, description="end-user feedback entries (reviewer notes excluded)")
    feedback_up: int = 0
    feedback_down: int = 0
    preview: str | None = Field(default=None, description="start of the first message (redacted text if redacted)")


class SearchResponse(BaseModel):
    sessions: list[SessionSummary]
    total: int | None = Field(description="None on cursor pages (the first page's total still holds)")
    total_kind: Literal["exact", "at_least", "estimate", "unknown", "not_counted"] = Field(
        description="at_least: more than COUNT_CAP match; estimate: nothing filtered, the collection's size; "
        "unknown: the count ran out of time; not_counted: a cursor page (the first page's total holds)"
    )
    page: int
    page_size: int
    total_pages: int | None
    next_cursor: str | None = Field(default=None, description="pass as cursor for the next page")
    prev_cursor: str | None = Field(default=None, description="pass as cursor for the previous page")
    sort: str
    sort_order: Literal["asc", "desc"]
    slow: list[str] = Field(default_factory=list, description="why this search cannot walk one index")


class SearchOptionsResponse(BaseModel):
    agent_ids: list[str] | None = Field(description="None: too many to list, type one in")
    models: list[str] | None
    application_names: list[str] | None
    feedback: list[str]
    sorts: list[str]
    count_cap: int
    #: Where this viewer reads, so an empty list can say which database and collection it looked in.
    database: str = ""
    collection: str = ""


class AgentInfo(BaseModel):
    agent_id: str
    model: str | None = None
    system_prompt: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    message_count: int = 0
    totals: dict[str, Any] = Field(default_factory=dict)
    state: dict[str, Any] = Field(default_factory=dict)


class FeedbackEntry(BaseModel):
    type: Literal["feedback"] = "feedback"
    id: str
    rating: Literal["up", "down"] | None = None
    comment: str = ""
    created_at: str | None = None
    source: str | None = Field(default=None, description='"reviewer" for a reviewer\'s note; None for end users')
    extra: dict[str, Any] = Field(default_factory=dict)


class FeedbackSummary(BaseModel):
    """End-user feedback only; reviewer notes are counted apart and never as feedback."""

    up: int = 0
    down: int = 0
    total: int = 0
    reviewer_notes: int = 0


class NoteRequest(BaseModel):
    """A reviewer's note on a session: free text and an optional rating."""

    model_config = {"extra": "forbid"}

    comment: str = Field(min_length=1, description="the note (at most MAX_NOTE_LENGTH characters)")
    rating: Literal["up", "down"] | None = None


class TimelineMessage(BaseModel):
    type: Literal["message"] = "message"
    id: str
    agent_id: str
    message_id: int | None = None
    role: str
    content: list[dict[str, Any]]
    redacted: bool = False
    created_at: str | None = None
    updated_at: str | None = None
    usage: dict[str, int] | None = Field(default=None, description="tokens the model reported for this message")
    latency_ms: int | None = Field(default=None, description="model latency for this message")
    metrics: dict[str, Any] | None = Field(
        default=None, description="event_loop_metrics of the turn (on the turn's last assistant message)"
    )


class SessionTotals(BaseModel):
    """Sums of the per-agent totals; camelCase because those are the names Strands reports usage in."""

    inputTokens: int = 0
    outputTokens: int = 0
    totalTokens: int = 0
    latencyMs: int = 0
    turns: int = 0


class SessionDetailResponse(BaseModel):
    session_id: str
    session_type: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    agents: list[AgentInfo]
    totals: SessionTotals
    feedbacks: list[FeedbackEntry]
    feedback_summary: FeedbackSummary
    timeline: list[Annotated[TimelineMessage | FeedbackEntry, Field(discriminator="type")]] = Field(
        description="One page of the messages of all agents and the feedback entries, oldest first"
    )
    timeline_offset: int = Field(description="position of the page's first item in the whole timeline")
    timeline_total: int = Field(description="items in the whole timeline")
    timeline_next_offset: int | None = Field(description="timeline_offset of the next page; None on the last page")
