"""The module that knows the shape of a session document, and the base of its ``documents_*`` companions.

Field names, dotted-path builders, id/key validation, timestamps and the session's own filters,
updates and projections are pure functions here. The rest of the shape builds on these field names
in companions, one concern each: ``documents_agents`` (agent entries, their config, multi-agents)
and ``documents_messages`` (appends, rewrites, metrics, projected reads), whose names this module
re-exports so callers keep using ``d.<name>``; ``documents_values`` (what BSON cannot hold, and
a stored value read back exactly), ``documents_turns`` (the lease, the turn commit),
``documents_features`` (metadata, feedback, guardrail events), ``documents_indexes``,
``documents_archive`` (archived messages), ``documents_lifecycle`` and ``documents_snapshot``. The
synchronous repository and the async Session Viewer both call them, so a schema change is one edit
in one of these modules, and all of them are unit-tested without a database.

Shape (one document per session, ``_id == session_id``)::

    {
      _id, session_id, session_type, session_viewer_password, created_at, updated_at,
      application_name,                      # immutable, set at creation (None when not given), indexed
      metadata: {<key>: <value>},
      feedbacks: [{rating, comment, created_at}],
      guardrail_events: [{message_id, agent_id, action, timestamp, stop_reason?, policies_triggered?}],
      agents: {<agent_id>: {
          agent_data: {agent_id, state, conversation_manager_state, _internal_state,
                       model, system_prompt, totals, created_at, updated_at},
          created_at, updated_at,            # the agent's own timestamps, as the original library kept them
          prompt_metadata?: {prompt_id, prompt_name, prompt_version, deployment_id, ...},
          messages: [{message_id, message, redact_message, created_at, updated_at,
                      event_loop_metrics?, guardrail_event?}],
          next_message_id: <int>}},
      multi_agents: {<multi_agent_id>: {state, created_at, updated_at}}
    }

``prompt_metadata`` lives beside ``agent_data``, not in it, so an agent sync (which rewrites Strands'
fields) can never wipe it; sessions written by the original library keep it in ``agent_data`` and are
read from there.

Timestamps are BSON dates (UTC) so the viewer can range-filter and sort them; Strands receives
ISO-8601 strings as it expects. Bytes (images, documents) are stored as BSON binary, not base64.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions
from strands.types.session import Session, SessionType

from . import documents_values as dv
from .errors import InvalidIdentifierError, InvalidInputError, InvalidMetadataError

# ---- field names -----------------------------------------------------------------------------------

ID = "_id"
SESSION_ID = "session_id"
SESSION_TYPE = "session_type"
VIEWER_PASSWORD = "session_viewer_password"
CREATED_AT = "created_at"
UPDATED_AT = "updated_at"
METADATA = "metadata"
FEEDBACKS = "feedbacks"
AGENTS = "agents"
MULTI_AGENTS = "multi_agents"
AGENT_DATA = "agent_data"
MESSAGES = "messages"
NEXT_MESSAGE_ID = "next_message_id"
MESSAGE_ID = "message_id"
MESSAGE = "message"
REDACT_MESSAGE = "redact_message"
METRICS = "event_loop_metrics"
INTERNAL_STATE = "_internal_state"
MODEL = "model"
SYSTEM_PROMPT = "system_prompt"
STATE = "state"
TOTALS = "totals"
CONFIG_CAPTURED = "config_captured"
APPLICATION_NAME = "application_name"
GUARDRAIL_EVENTS = "guardrail_events"
GUARDRAIL_EVENT = "guardrail_event"
PROMPT_METADATA = "prompt_metadata"
#: The session document's shape version (absent: the original library or this one before 0.5); see migrations.py.
SCHEMA_VERSION = "schema_version"
CURRENT_SCHEMA_VERSION = 2

# Feedback entries: ``{rating, comment, created_at, <extra keys>}``.
RATING = "rating"
COMMENT = "comment"
VALID_RATINGS = ("up", "down", None)

# Per-agent running totals (``agent_data.totals``), summed with ``$inc`` after every turn.
TOTALS_USAGE = "usage"
TOTALS_LATENCY_MS = "latencyMs"
TOTALS_TURNS = "turns"
TOTALS_CYCLES = "cycles"
TOTALS_TOOL_CALLS = "tool_calls"
#: Session-level lists and totals kept beside the per-agent data so the viewer can filter and sort
#: sessions by agent, model and tokens through ordinary indexes (agent ids are map keys, which no
#: index can reach).
AGENT_IDS = "agent_ids"
MODELS = "models"
USAGE = "usage"
TOTAL_TOKENS_PATH = f"{TOTALS}.{USAGE}.totalTokens"
FEEDBACK_RATING_PATH = f"{FEEDBACKS}.rating"

MAX_BSON_SIZE = 16 * 1024 * 1024
#: How values are encoded and decoded: aware UTC datetimes, and ``uuid.UUID`` as the standard binary subtype.
CODEC_OPTIONS: CodecOptions[Any] = CodecOptions(tz_aware=True, uuid_representation=UuidRepresentation.STANDARD)
#: For restores: the stored array is sliced as it is (no per-message projection on the server) and its
#: dates, which Strands never reads back, are decoded naive (half the decoding cost of aware ones).
RESTORE_CODEC_OPTIONS: CodecOptions[Any] = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)
MAX_ID_LENGTH = 512
PASSWORD_LENGTH = 32
PASSWORD_ALPHABET = string.ascii_letters + string.digits

#: Fields the viewer must never return or let a client filter / sort on.
INTERNAL_FIELDS = frozenset({VIEWER_PASSWORD, ID})


# ---- validation --------------------------------------------------------------------------------------


def validate_id(value: object, kind: str = "session", *, session_id: str | None = None) -> str:
    """Return ``value`` if it can be used as a key in a field path, else raise.

    Ids become path segments (``agents.<agent_id>.messages``), so ``.`` would split them,
    a leading ``$`` would read as an operator and NUL terminates C strings in the server.
    """
    if not isinstance(value, str):
        raise InvalidIdentifierError(f"{kind} id must be a string, got {type(value).__name__}", session_id=session_id)
    problem = _key_problem(value)
    if problem is None and len(value) > MAX_ID_LENGTH:
        problem = f"is longer than {MAX_ID_LENGTH} characters"
    if problem:
        raise InvalidIdentifierError(f"{kind} id {value[:80]!r} {problem}", session_id=session_id)
    return value


def validate_message_id(value: object, *, session_id: str | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidIdentifierError(f"message id must be a non-negative integer, got {value!r}", session_id=session_id)
    return value


def validate_metadata_key(key: object, *, session_id: str | None = None) -> str:
    if not isinstance(key, str):
        raise InvalidMetadataError(f"metadata key must be a string, got {type(key).__name__}", session_id=session_id)
    problem = _key_problem(key)
    if problem:
        raise InvalidMetadataError(f"metadata key {key[:80]!r} {problem}", session_id=session_id)
    return key


def _key_problem(key: str) -> str | None:
    if key == "":
        return "is empty"
    if key.startswith("$"):
        return "starts with '$'"
    if "." in key:
        return "contains '.'"
    if "\x00" in key:
        return "contains a NUL character"
    if not dv.encodable_text(key):
        return "is not valid Unicode text (lone surrogate)"
    return None


def validate_metadata(metadata: object, *, session_id: str | None = None) -> dict[str, Any]:
    """Check keys (top level) and that every value is BSON-encodable, before anything is written."""
    if not isinstance(metadata, Mapping):
        raise InvalidMetadataError(f"metadata must be a mapping, got {type(metadata).__name__}", session_id=session_id)
    checked = {validate_metadata_key(k, session_id=session_id): v for k, v in metadata.items()}
    ensure_encodable(checked, what="metadata", session_id=session_id)
    return checked


def ensure_encodable(value: Mapping[str, Any], *, what: str, session_id: str | None = None) -> None:
    """Raise ``InvalidMetadataError`` if BSON cannot encode ``value`` (sets, arbitrary objects...)."""
    import bson
    from bson.errors import InvalidDocument

    try:
        bson.encode(dict(value), codec_options=CODEC_OPTIONS)
    except (InvalidDocument, TypeError, OverflowError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise InvalidMetadataError(f"{what} cannot be stored in MongoDB: {exc}", session_id=session_id) from exc


def approximate_size(value: Any) -> int:
    """A cheap lower bound of a value's BSON size: the lengths of its strings and bytes, plus keys."""
    if isinstance(value, str | bytes | bytearray):
        return len(value)
    if isinstance(value, Mapping):
        return sum(len(str(k)) + approximate_size(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return sum(approximate_size(v) for v in value)
    return 8


def new_viewer_password() -> str:
    """32 alphanumeric characters from ``secrets``: opens one session in the viewer."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))


# ---- time ----------------------------------------------------------------------------------------------


def now() -> datetime:
    return datetime.now(UTC)


def to_datetime(value: Any) -> datetime:
    """Strands passes ISO strings; store BSON dates. Naive values are taken as UTC."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str) and value:
        try:
            dt = datetime.fromisoformat(value)
        except ValueError as exc:
            raise InvalidInputError(f"timestamp {value[:40]!r} is not an ISO-8601 date") from exc
    else:
        return now()
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def to_iso(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return str(value) if value is not None else now().isoformat()


# ---- paths ---------------------------------------------------------------------------------------------


def agent_path(agent_id: str) -> str:
    return f"{AGENTS}.{agent_id}"


def agent_data_path(agent_id: str, field: str | None = None) -> str:
    base = f"{AGENTS}.{agent_id}.{AGENT_DATA}"
    return f"{base}.{field}" if field else base


def agent_field_path(agent_id: str, field: str) -> str:
    """A field of the agent entry itself, beside ``agent_data`` (``created_at``, ``prompt_metadata``)."""
    return f"{AGENTS}.{agent_id}.{field}"


def messages_path(agent_id: str) -> str:
    return f"{AGENTS}.{agent_id}.{MESSAGES}"


def next_message_id_path(agent_id: str) -> str:
    return f"{AGENTS}.{agent_id}.{NEXT_MESSAGE_ID}"


def multi_agent_path(multi_agent_id: str) -> str:
    return f"{MULTI_AGENTS}.{multi_agent_id}"


def metadata_path(key: str) -> str:
    return f"{METADATA}.{key}"


# ---- sessions ------------------------------------------------------------------------------------------


def new_session_document(
    session: Session, *, viewer_password: str | None = None, application_name: str | None = None
) -> dict[str, Any]:
    """The inserted document. ``application_name`` is written here only: no update ever sets it."""
    created = to_datetime(session.created_at)
    return {
        ID: session.session_id,
        SESSION_ID: session.session_id,
        SESSION_TYPE: _session_type_value(session.session_type),
        VIEWER_PASSWORD: viewer_password or new_viewer_password(),
        APPLICATION_NAME: application_name,
        CREATED_AT: created,
        UPDATED_AT: to_datetime(session.updated_at),
        METADATA: {},
        FEEDBACKS: [],
        GUARDRAIL_EVENTS: [],
        AGENTS: {},
        MULTI_AGENTS: {},
        AGENT_IDS: [],
        MODELS: [],
        TOTALS: {USAGE: {"totalTokens": 0}},
        SCHEMA_VERSION: CURRENT_SCHEMA_VERSION,
    }


def validate_application_name(value: object) -> str | None:
    """``None`` or a non-empty string (a filter value in the viewer, never a path segment)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or "\x00" in value or len(value) > MAX_ID_LENGTH:
        raise InvalidInputError(
            f"application_name must be None or a non-empty string of at most {MAX_ID_LENGTH} characters, "
            f"got {value!r:.80}"
        )
    return value


APPLICATION_NAME_PROJECTION = {ID: 0, APPLICATION_NAME: 1}


def _session_type_value(value: Any) -> str:
    return value.value if isinstance(value, SessionType) else str(value)


SESSION_PROJECTION = {ID: 0, SESSION_ID: 1, SESSION_TYPE: 1, CREATED_AT: 1, UPDATED_AT: 1}


def session_from_document(doc: Mapping[str, Any]) -> Session:
    raw_type = doc.get(SESSION_TYPE, SessionType.AGENT.value)
    try:
        session_type: Any = SessionType(raw_type)
    except ValueError:
        session_type = raw_type
    return Session(
        session_id=doc[SESSION_ID],
        session_type=session_type,
        created_at=to_iso(doc.get(CREATED_AT)),
        updated_at=to_iso(doc.get(UPDATED_AT)),
    )


def touch(at: datetime | None = None) -> dict[str, Any]:
    """The ``$set`` fragment every write carries, so ``updated_at`` is always current."""
    return {UPDATED_AT: at or now()}


# ---- snapshot path -------------------------------------------------------------------------------------
# Field names a session written by Strands' SnapshotSessionManager over MongoDBStorage adds to the same
# session document; the snapshot shapes themselves live in documents_snapshot.py.
SNAPSHOTS = "snapshots"
SNAPSHOT_KEYS = "snapshot_keys"
SNAPSHOT_TOKENS = "snapshot_tokens"
SNAPSHOT_AGENTS = "snapshot_agents"
SNAPSHOT_FORMAT = "snapshot_format"


# ---- re-exports ------------------------------------------------------------------------------------------
# The agent entries and the messages live in their own modules (this one would pass 800 lines), but
# `documents` stays the one namespace the rest of the library, the viewer and the tests use for the
# document's shape (`from . import documents as d`, then `d.<name>`). Imported last: both modules
# import this one, and every name they read from it is defined by now.
from .documents_agents import AGENT_CONFIG_KEYS as AGENT_CONFIG_KEYS  # noqa: E402
from .documents_agents import PROMPT_METADATA_KEYS as PROMPT_METADATA_KEYS  # noqa: E402
from .documents_agents import agent_config_update as agent_config_update  # noqa: E402
from .documents_agents import agent_data_document as agent_data_document  # noqa: E402
from .documents_agents import agent_exists_filter as agent_exists_filter  # noqa: E402
from .documents_agents import agent_from_document as agent_from_document  # noqa: E402
from .documents_agents import agent_projection as agent_projection  # noqa: E402
from .documents_agents import all_agents_message_count as all_agents_message_count  # noqa: E402
from .documents_agents import capture_config_filter as capture_config_filter  # noqa: E402
from .documents_agents import capture_config_update as capture_config_update  # noqa: E402
from .documents_agents import captured_config as captured_config  # noqa: E402
from .documents_agents import create_agent_filter as create_agent_filter  # noqa: E402
from .documents_agents import create_agent_update as create_agent_update  # noqa: E402
from .documents_agents import create_multi_agent_filter as create_multi_agent_filter  # noqa: E402
from .documents_agents import create_multi_agent_update as create_multi_agent_update  # noqa: E402
from .documents_agents import list_agents_pipeline as list_agents_pipeline  # noqa: E402
from .documents_agents import multi_agent_exists_filter as multi_agent_exists_filter  # noqa: E402
from .documents_agents import multi_agent_from_document as multi_agent_from_document  # noqa: E402
from .documents_agents import multi_agent_projection as multi_agent_projection  # noqa: E402
from .documents_agents import raw_agent_data as raw_agent_data  # noqa: E402
from .documents_agents import set_prompt_metadata_update as set_prompt_metadata_update  # noqa: E402
from .documents_agents import update_agent_update as update_agent_update  # noqa: E402
from .documents_agents import update_multi_agent_update as update_multi_agent_update  # noqa: E402
from .documents_agents import validate_prompt_metadata as validate_prompt_metadata  # noqa: E402
from .documents_messages import MESSAGE_FIELDS as MESSAGE_FIELDS  # noqa: E402
from .documents_messages import append_message_filter as append_message_filter  # noqa: E402
from .documents_messages import append_message_update as append_message_update  # noqa: E402
from .documents_messages import document_size_pipeline as document_size_pipeline  # noqa: E402
from .documents_messages import last_message_pipeline as last_message_pipeline  # noqa: E402
from .documents_messages import list_messages_pipeline as list_messages_pipeline  # noqa: E402
from .documents_messages import message_count_pipeline as message_count_pipeline  # noqa: E402
from .documents_messages import message_document as message_document  # noqa: E402
from .documents_messages import message_exists_filter as message_exists_filter  # noqa: E402
from .documents_messages import message_from_document as message_from_document  # noqa: E402
from .documents_messages import message_metrics_update as message_metrics_update  # noqa: E402
from .documents_messages import read_message_pipeline as read_message_pipeline  # noqa: E402
from .documents_messages import totals_inc as totals_inc  # noqa: E402
from .documents_messages import update_message_update as update_message_update  # noqa: E402
