"""The one module that knows the shape of a session document.

Field names, dotted-path builders, id/key validation and every filter, update, projection and
pipeline the library sends are pure functions here. The synchronous repository and the async
Session Viewer both call them, so a schema change is one edit, and everything here is unit-tested
without a database.

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

import base64
import inspect
import secrets
import string
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions
from bson.dbref import DBRef
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType, decode_bytes_values

from .errors import InvalidFeedbackError, InvalidIdentifierError, InvalidInputError, InvalidMetadataError

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
    if not _encodable_text(key):
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


# ---- values read back ---------------------------------------------------------------------------------


def from_bson(value: Any) -> Any:
    """Return a stored value exactly as it was written.

    Two things come back different otherwise: the driver decodes every sub-document with ``$ref``
    and ``$id`` keys (ordinary JSON Schema in tool arguments, or user metadata) as a
    ``bson.dbref.DBRef``, and sessions written by older versions hold bytes as Strands' base64
    ``{"__bytes_encoded__": true, "data": ...}`` wrapper. Both are turned back into the plain values.
    """
    if isinstance(value, DBRef):
        value = dict(value.as_doc())
    if isinstance(value, dict):
        if value.get("__bytes_encoded__") is True and "data" in value:
            return base64.b64decode(value["data"])
        if len(value) == 1 and isinstance(value.get(JSON_MARKER), str):
            return _from_json_marker(value[JSON_MARKER])
        return {k: from_bson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_bson(v) for v in value]
    return value


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


# ---- agents --------------------------------------------------------------------------------------------


def agent_data_document(agent: SessionAgent) -> dict[str, Any]:
    return {
        "agent_id": agent.agent_id,
        STATE: agent.state,
        "conversation_manager_state": agent.conversation_manager_state,
        INTERNAL_STATE: agent._internal_state,
        CREATED_AT: to_datetime(agent.created_at),
        UPDATED_AT: to_datetime(agent.updated_at),
    }


def create_agent_filter(session_id: str, agent_id: str) -> dict[str, Any]:
    """Match the session only while the agent does not exist yet (never wipe a concurrent create)."""
    return {ID: session_id, agent_path(agent_id): {"$exists": False}}


def create_agent_update(agent: SessionAgent) -> dict[str, Any]:
    at = now()
    return {
        "$set": {
            agent_path(agent.agent_id): {
                AGENT_DATA: agent_data_document(agent),
                MESSAGES: [],
                NEXT_MESSAGE_ID: 0,
                # Beside agent_data, as the original library kept them (dashboards read these).
                CREATED_AT: at,
                UPDATED_AT: at,
            },
            **touch(at),
        },
        "$addToSet": {AGENT_IDS: agent.agent_id},
    }


def agent_exists_filter(session_id: str, agent_id: str) -> dict[str, Any]:
    return {ID: session_id, agent_data_path(agent_id): {"$exists": True}}


def update_agent_update(agent: SessionAgent) -> dict[str, Any]:
    """Replace Strands-owned agent fields only: ``created_at``, ``model`` and ``system_prompt`` survive."""
    at = now()
    aid = agent.agent_id
    return {
        "$set": {
            agent_data_path(aid, STATE): agent.state,
            agent_data_path(aid, "conversation_manager_state"): agent.conversation_manager_state,
            agent_data_path(aid, INTERNAL_STATE): agent._internal_state,
            agent_data_path(aid, UPDATED_AT): at,
            agent_field_path(aid, UPDATED_AT): at,
            **touch(at),
        }
    }


def agent_projection(agent_id: str) -> dict[str, Any]:
    return {ID: 0, agent_data_path(agent_id): 1}


def raw_agent_data(doc: Mapping[str, Any] | None, agent_id: str) -> dict[str, Any] | None:
    data = ((doc or {}).get(AGENTS) or {}).get(agent_id, {}).get(AGENT_DATA)
    return from_bson(dict(data)) if data is not None else None


def captured_config(agent_data: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """The (model, system_prompt) last captured from the agent itself, if any."""
    captured = agent_data.get(CONFIG_CAPTURED)
    if not isinstance(captured, Mapping) or MODEL not in captured:
        return None
    return captured[MODEL], captured.get(SYSTEM_PROMPT)


#: What ``SessionAgent`` accepts, computed once: Strands' ``SessionAgent.from_dict`` recomputes its
#: signature for every key it filters (8 signatures per restored agent: 0.3-0.7 ms of CPU measured).
_AGENT_PARAMETERS = frozenset(inspect.signature(SessionAgent).parameters)


def agent_from_document(doc: Mapping[str, Any] | None, agent_id: str) -> SessionAgent | None:
    data = ((doc or {}).get(AGENTS) or {}).get(agent_id, {}).get(AGENT_DATA)
    if data is None:
        return None
    fields = from_bson({k: v for k, v in data.items() if k not in (CREATED_AT, UPDATED_AT)})
    fields.setdefault("agent_id", agent_id)
    fields.setdefault(STATE, {})
    fields.setdefault("conversation_manager_state", {})
    # What SessionAgent.from_dict does (unknown keys dropped, encoded bytes decoded), signature once.
    agent = SessionAgent(**decode_bytes_values({k: v for k, v in fields.items() if k in _AGENT_PARAMETERS}))
    agent.created_at = to_iso(data.get(CREATED_AT))
    agent.updated_at = to_iso(data.get(UPDATED_AT))
    return agent


def agent_config_update(
    agent_id: str,
    *,
    model: str | None,
    system_prompt: str | None,
    prompt_metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``$set`` of the given config values; ``None`` leaves a value as it is.

    ``prompt_metadata`` goes beside ``agent_data`` (see the module docstring): an agent sync never
    touches it there.
    """
    at = now()
    fields: dict[str, Any] = {
        agent_data_path(agent_id, UPDATED_AT): at,
        agent_field_path(agent_id, UPDATED_AT): at,
        **touch(at),
    }
    if model is not None:
        fields[agent_data_path(agent_id, MODEL)] = model
    if system_prompt is not None:
        fields[agent_data_path(agent_id, SYSTEM_PROMPT)] = system_prompt
    if prompt_metadata is not None:
        fields[agent_field_path(agent_id, PROMPT_METADATA)] = dict(prompt_metadata)
    update: dict[str, Any] = {"$set": fields}
    if model is not None:
        update["$addToSet"] = {MODELS: model}
    return update


def _object_or_empty(expr: str) -> dict[str, Any]:
    """``expr`` if it is a sub-document, else ``{}`` (hand-edited or partial documents must not fail)."""
    return {"$cond": [{"$eq": [{"$type": expr}, "object"]}, expr, {}]}


def _array_size(expr: str) -> dict[str, Any]:
    return {"$size": {"$cond": [{"$isArray": expr}, expr, []]}}


def _message_count(agent_expr: str) -> dict[str, Any]:
    from .documents_archive import message_count_expr

    return message_count_expr(agent_expr)


def all_agents_message_count() -> dict[str, Any]:
    """Expression: the messages of every agent of the session document, summed on the server."""
    return {
        "$sum": {
            "$map": {
                "input": {"$objectToArray": _object_or_empty(f"${AGENTS}")},
                "in": _message_count("$$this.v"),
            }
        }
    }


#: The keys ``list_agents`` / ``get_agent_config`` always return (``None`` when not recorded yet).
AGENT_CONFIG_KEYS = ("agent_id", MODEL, SYSTEM_PROMPT, PROMPT_METADATA, CREATED_AT, UPDATED_AT, "message_count")


def list_agents_pipeline(session_id: str, agent_id: str | None = None) -> list[dict[str, Any]]:
    """Agent ids with their config, totals and message counts, never the messages themselves.

    ``agent_id`` restricts the result to that agent (``get_agent_config``). Timestamps and
    ``prompt_metadata`` are read beside ``agent_data`` first, then inside it (sessions written by
    this library's 0.3 or by the original library).
    """
    agent = "$agents.v"
    data = f"{agent}.{AGENT_DATA}"
    stages: list[dict[str, Any]] = [
        {"$match": {ID: session_id}},
        {"$project": {ID: 0, "agents": {"$objectToArray": _object_or_empty(f"${AGENTS}")}}},
        {"$unwind": "$agents"},
    ]
    if agent_id is not None:
        stages.append({"$match": {"agents.k": agent_id}})
    stages.append(
        {
            "$project": {
                "agent_id": "$agents.k",
                MODEL: {"$ifNull": [f"{data}.{MODEL}", None]},
                SYSTEM_PROMPT: {"$ifNull": [f"{data}.{SYSTEM_PROMPT}", None]},
                PROMPT_METADATA: {"$ifNull": [f"{agent}.{PROMPT_METADATA}", f"{data}.{PROMPT_METADATA}", None]},
                CREATED_AT: {"$ifNull": [f"{agent}.{CREATED_AT}", f"{data}.{CREATED_AT}", None]},
                UPDATED_AT: {"$ifNull": [f"{agent}.{UPDATED_AT}", f"{data}.{UPDATED_AT}", None]},
                TOTALS: {"$ifNull": [f"{data}.{TOTALS}", {}]},
                "message_count": _message_count(agent),
            }
        }
    )
    return stages


def set_prompt_metadata_update(agent_id: str, prompt_metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Replace the agent's ``prompt_metadata`` (beside ``agent_data``, so agent syncs keep it)."""
    return agent_config_update(agent_id, model=None, system_prompt=None, prompt_metadata=prompt_metadata)


#: Keys the original library documents for ``prompt_metadata`` (others are stored too).
PROMPT_METADATA_KEYS = ("prompt_id", "prompt_name", "prompt_version", "deployment_id", "deployment_name", "temperature")


def validate_prompt_metadata(value: object, *, session_id: str | None = None) -> dict[str, Any]:
    """A mapping with valid keys, BSON-encodable values and, if present, a numeric ``temperature``."""
    checked = validate_metadata(value, session_id=session_id)
    temperature = checked.get("temperature")
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, int | float)):
        raise InvalidMetadataError(
            f"prompt_metadata temperature must be a number, got {type(temperature).__name__}", session_id=session_id
        )
    return checked


# ---- messages --------------------------------------------------------------------------------------------


def message_document(message: SessionMessage) -> dict[str, Any]:
    """Stored form: bytes stay bytes (BSON binary); timestamps become BSON dates."""
    return {
        MESSAGE_ID: message.message_id,
        MESSAGE: storable(message.message),
        REDACT_MESSAGE: storable(message.redact_message) if message.redact_message else None,
        CREATED_AT: to_datetime(message.created_at),
        UPDATED_AT: to_datetime(message.updated_at),
    }


def append_message_filter(session_id: str, agent_id: str, message_id: int) -> dict[str, Any]:
    """Match only if the agent exists and ``message_id`` is new and in order.

    ``next_message_id`` makes the check O(1) and keeps the array sorted by id (so pagination is a
    plain ``$slice``); documents written by older versions without the counter fall back to an
    explicit "no message with this id" check.
    """
    counter = next_message_id_path(agent_id)
    return {
        ID: session_id,
        agent_data_path(agent_id): {"$exists": True},
        "$or": [
            {counter: {"$lte": message_id}},
            {counter: {"$exists": False}, f"{messages_path(agent_id)}.{MESSAGE_ID}": {"$ne": message_id}},
        ],
    }


def append_message_update(agent_id: str, message: SessionMessage) -> dict[str, Any]:
    return {
        "$push": {messages_path(agent_id): message_document(message)},
        "$max": {next_message_id_path(agent_id): message.message_id + 1},
        "$set": touch(),
    }


def message_exists_filter(session_id: str, agent_id: str, message_id: int) -> dict[str, Any]:
    return {ID: session_id, f"{messages_path(agent_id)}.{MESSAGE_ID}": message_id}


def update_message_update(agent_id: str, message: SessionMessage) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Rewrite content in place by array filter; ``created_at`` and stored metrics survive."""
    at = now()
    element = f"{messages_path(agent_id)}.$[m]"
    update = {
        "$set": {
            f"{element}.{MESSAGE}": storable(message.message),
            f"{element}.{REDACT_MESSAGE}": storable(message.redact_message) if message.redact_message else None,
            f"{element}.{UPDATED_AT}": at,
            **touch(at),
        }
    }
    return update, [{f"m.{MESSAGE_ID}": message.message_id}]


def message_metrics_update(
    agent_id: str, message_id: int, metrics: Mapping[str, Any], totals: Mapping[str, int] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Metrics onto one message and, in the same write, ``$inc`` of the agent's and the session's totals.

    The session-level copy (``totals`` at the top) is what the viewer sorts by tokens on: per-agent
    totals live under map keys that no index can reach.
    """
    at = now()
    element = f"{messages_path(agent_id)}.$[m]"
    update: dict[str, Any] = {"$set": {f"{element}.{METRICS}": {**metrics, "recorded_at": at}, **touch(at)}}
    if totals:
        update["$inc"] = totals_inc(agent_id, totals)
    return update, [{f"m.{MESSAGE_ID}": message_id}]


def totals_inc(agent_id: str, totals: Mapping[str, int]) -> dict[str, int]:
    """The ``$inc`` of one turn's totals: on the agent and on the session-level copy.

    Every write that adds to ``agents.<id>.agent_data.totals`` must use this, so the session-level
    ``totals`` (what the viewer sorts by tokens on) never drifts from the sum over agents.
    """
    base = agent_data_path(agent_id, TOTALS)
    inc = {f"{base}.{_safe_segment(k)}": int(v) for k, v in totals.items()}
    inc.update({f"{TOTALS}.{_safe_segment(k)}": int(v) for k, v in totals.items()})
    return inc


def _safe_segment(path: str) -> str:
    """Keep the dotted sub-paths of ``totals_increment`` but neutralise ``$`` and empty segments."""
    return ".".join(part.replace("$", "_").replace("\x00", "_") or "_" for part in path.split("."))


def capture_config_filter(session_id: str, agent_id: str, model: str, system_prompt: str | None) -> dict[str, Any]:
    """Match only when the agent's own config differs from what was last captured from it."""
    captured = agent_data_path(agent_id, CONFIG_CAPTURED)
    return {
        ID: session_id,
        agent_data_path(agent_id): {"$exists": True},
        "$or": [
            {f"{captured}.{MODEL}": {"$ne": model}},
            {f"{captured}.{SYSTEM_PROMPT}": {"$ne": system_prompt}},
        ],
    }


def capture_config_update(agent_id: str, model: str, system_prompt: str | None) -> list[dict[str, Any]]:
    """Pipeline update: overwrite ``model``/``system_prompt`` only where the agent's value changed.

    A value set with ``update_agent_config`` therefore survives later syncs of an unchanged agent.
    Values are wrapped in ``$literal`` so a prompt such as "$5 off" is never read as a field path.
    """
    at = now()
    captured = f"${agent_data_path(agent_id, CONFIG_CAPTURED)}"

    def pick(field: str, value: Any) -> dict[str, Any]:
        return {
            "$cond": [
                {"$ne": [f"{captured}.{field}", {"$literal": value}]},
                {"$literal": value},
                f"${agent_data_path(agent_id, field)}",
            ]
        }

    return [
        {
            "$set": {
                agent_data_path(agent_id, MODEL): pick(MODEL, model),
                agent_data_path(agent_id, SYSTEM_PROMPT): pick(SYSTEM_PROMPT, system_prompt),
                agent_data_path(agent_id, CONFIG_CAPTURED): {"$literal": {MODEL: model, SYSTEM_PROMPT: system_prompt}},
                agent_data_path(agent_id, UPDATED_AT): {"$literal": at},
                MODELS: {"$setUnion": [{"$ifNull": [f"${MODELS}", []]}, [{"$literal": model}]]},
                UPDATED_AT: {"$literal": at},
            }
        }
    ]


_MESSAGE_FIELDS = (MESSAGE_ID, MESSAGE, REDACT_MESSAGE, CREATED_AT, UPDATED_AT)
#: The fields of a stored message that a listing returns.
MESSAGE_FIELDS = _MESSAGE_FIELDS


def _strip_message(expr: str, *, with_metrics: bool = False) -> dict[str, Any]:
    fields = {f: f"{expr}.{f}" for f in _MESSAGE_FIELDS}
    if with_metrics:
        fields[METRICS] = f"{expr}.{METRICS}"
    return fields


def _narrow(agent_id: str, *extra: str) -> dict[str, Any]:
    """A plain inclusion of one agent, first: the expression stage after it then works on that agent
    alone (on a 10,000-message session a page costs 1.7 ms instead of 3.6 ms)."""
    return {"$project": {agent_path(agent_id): 1, **{field: 1 for field in extra}}}


def list_messages_pipeline(
    session_id: str,
    agent_id: str,
    limit: int | None,
    offset: int,
    *,
    with_metrics: bool = False,
    buckets: str | None = None,
) -> list[dict[str, Any]]:
    """One projected page of an agent's messages (and whether the agent exists).

    The server slices the array, so listing 20 messages of a 10,000-message session transfers 20.
    Positions are over the whole history: the part of the page that was archived comes from the
    companion collection ``buckets`` (sliced there too) in the same round trip.
    """
    from .documents_archive import bucket_lookup_stage, window_fields

    window = window_fields(f"${agent_path(agent_id)}", offset, limit)
    strip = _strip_message("$$this", with_metrics=with_metrics)
    window["messages"] = {"$map": {"input": window["messages"], "in": strip}}
    stages: list[dict[str, Any]] = [
        {"$match": {ID: session_id}},
        _narrow(agent_id),
        {
            "$project": {
                ID: 0,
                "agent_exists": {"$ne": [{"$type": f"${agent_data_path(agent_id)}"}, "missing"]},
                **window,
            }
        },
    ]
    if buckets is not None:
        stages.append(bucket_lookup_stage(buckets, strip=strip))
    return stages


def last_message_pipeline(session_id: str, agent_id: str, *, buckets: str | None = None) -> list[dict[str, Any]]:
    from .documents_archive import last_bucket_id, whole_bucket_lookup_stage

    array = {"$ifNull": [f"${messages_path(agent_id)}", []]}
    stages: list[dict[str, Any]] = [
        {"$match": {ID: session_id}},
        _narrow(agent_id),
        {
            "$project": {
                ID: 0,
                "messages": {"$map": {"input": {"$slice": [array, -1]}, "in": _strip_message("$$this")}},
                "bucket_ids": last_bucket_id(f"${agent_path(agent_id)}"),
            }
        },
    ]
    if buckets is not None:
        stages.append(whole_bucket_lookup_stage(buckets, "bucket_ids"))
    return stages


def read_message_pipeline(
    session_id: str, agent_id: str, message_id: int, *, buckets: str | None = None
) -> list[dict[str, Any]]:
    from .documents_archive import containing_bucket_ids, message_in_bucket_lookup_stage

    stages: list[dict[str, Any]] = [
        {"$match": {ID: session_id}},
        _narrow(agent_id),
        {
            "$project": {
                ID: 0,
                "messages": {
                    "$map": {
                        "input": {
                            "$filter": {
                                "input": {"$ifNull": [f"${messages_path(agent_id)}", []]},
                                "cond": {"$eq": [f"$$this.{MESSAGE_ID}", message_id]},
                                "limit": 1,
                            }
                        },
                        "in": _strip_message("$$this"),
                    }
                },
                "bucket_ids": containing_bucket_ids(f"${agent_path(agent_id)}", message_id),
            }
        },
    ]
    if buckets is not None:
        stages.append(message_in_bucket_lookup_stage(buckets, message_id, _strip_message("$$this")))
    return stages


def message_count_pipeline(session_id: str, agent_id: str | None) -> list[dict[str, Any]]:
    """Count on the server: one agent's history (archived and in the document), or the sum over all agents."""
    if agent_id is not None:
        total: Any = _message_count(f"${agent_path(agent_id)}")
    else:
        total = all_agents_message_count()
    return [{"$match": {ID: session_id}}, {"$project": {ID: 0, "count": total}}]


def message_from_document(doc: Mapping[str, Any], *, repair: bool = True) -> SessionMessage:
    """Plain ``SessionMessage`` for Strands: metrics and unknown fields are dropped.

    ``repair=False`` skips the value-by-value walk of :func:`from_bson`, for documents known (by
    :func:`needs_repair` on their raw bytes) to hold no DBRef-shaped, base64 or JSON-text values.
    """
    message = from_bson(doc.get(MESSAGE)) if repair else doc.get(MESSAGE)
    redact = doc.get(REDACT_MESSAGE)
    if redact and repair:
        redact = from_bson(redact)
    return SessionMessage(
        message=message,  # type: ignore[arg-type]
        message_id=int(doc[MESSAGE_ID]),
        redact_message=redact or None,
        created_at=to_iso(doc.get(CREATED_AT)),
        updated_at=to_iso(doc.get(UPDATED_AT)),
    )


# ---- multi-agent ----------------------------------------------------------------------------------------


def create_multi_agent_filter(session_id: str, multi_agent_id: str) -> dict[str, Any]:
    return {ID: session_id, multi_agent_path(multi_agent_id): {"$exists": False}}


def create_multi_agent_update(multi_agent_id: str, state: Mapping[str, Any]) -> dict[str, Any]:
    at = now()
    return {
        "$set": {
            multi_agent_path(multi_agent_id): {STATE: dict(state), CREATED_AT: at, UPDATED_AT: at},
            **touch(at),
        }
    }


def multi_agent_exists_filter(session_id: str, multi_agent_id: str) -> dict[str, Any]:
    return {ID: session_id, multi_agent_path(multi_agent_id): {"$exists": True}}


def update_multi_agent_update(multi_agent_id: str, state: Mapping[str, Any]) -> dict[str, Any]:
    at = now()
    base = multi_agent_path(multi_agent_id)
    return {"$set": {f"{base}.{STATE}": dict(state), f"{base}.{UPDATED_AT}": at, **touch(at)}}


def multi_agent_projection(multi_agent_id: str) -> dict[str, Any]:
    return {ID: 0, f"{multi_agent_path(multi_agent_id)}.{STATE}": 1}


def multi_agent_from_document(doc: Mapping[str, Any] | None, multi_agent_id: str) -> dict[str, Any] | None:
    entry = ((doc or {}).get(MULTI_AGENTS) or {}).get(multi_agent_id)
    return None if entry is None else from_bson(dict(entry.get(STATE) or {}))


# ---- metadata and feedback --------------------------------------------------------------------------------


def set_metadata_update(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Partial update: one ``$set metadata.<key>`` per key; other keys are untouched."""
    return {"$set": {**{metadata_path(k): v for k, v in metadata.items()}, **touch()}}


def unset_metadata_update(keys: list[str]) -> dict[str, Any]:
    return {"$unset": {metadata_path(k): "" for k in keys}, "$set": touch()}


METADATA_PROJECTION = {ID: 0, METADATA: 1}


def push_feedback_update(feedback: Mapping[str, Any]) -> dict[str, Any]:
    return {"$push": {FEEDBACKS: dict(feedback)}, "$set": touch()}


#: A feedback entry's author kind. End users' entries have none; the viewer's reviewer notes say "reviewer".
FEEDBACK_SOURCE = "source"
REVIEWER_SOURCE = "reviewer"


def reviewer_note(comment: str, rating: str | None, at: datetime | None = None) -> dict[str, Any]:
    """A reviewer's note as a feedback entry, marked so it is never counted as end-user feedback."""
    return {"rating": rating, "comment": comment, CREATED_AT: at or now(), FEEDBACK_SOURCE: REVIEWER_SOURCE}


def push_reviewer_note_update(note: Mapping[str, Any]) -> dict[str, Any]:
    """Append a note without touching ``updated_at``: a review is not activity in the conversation."""
    return {"$push": {FEEDBACKS: dict(note)}}


def is_end_user_feedback(entry_expr: str = "$$this") -> dict[str, Any]:
    """Aggregation condition: the feedback entry at ``entry_expr`` came from an end user, not a reviewer."""
    return {"$ne": [f"{entry_expr}.{FEEDBACK_SOURCE}", REVIEWER_SOURCE]}


FEEDBACKS_PROJECTION = {ID: 0, FEEDBACKS: 1}
VIEWER_PASSWORD_PROJECTION = {ID: 0, VIEWER_PASSWORD: 1}
GUARDRAIL_EVENTS_PROJECTION = {ID: 0, GUARDRAIL_EVENTS: 1}


def feedback_entry(feedback: object, *, session_id: str | None = None) -> dict[str, Any]:
    """The stored feedback: ``rating`` in :data:`VALID_RATINGS`, a string ``comment``, a UTC ``created_at``.

    Extra keys (a message id, a user id...) are kept when they are valid field names; a caller's own
    ``created_at`` is replaced, so the timeline orders feedback by when it was stored.
    """
    if not isinstance(feedback, Mapping):
        raise InvalidFeedbackError(f"feedback must be a mapping, got {type(feedback).__name__}", session_id=session_id)
    rating = feedback.get(RATING)
    if rating not in VALID_RATINGS:
        raise InvalidFeedbackError(f"rating must be 'up', 'down' or None, got {rating!r}", session_id=session_id)
    comment = feedback.get(COMMENT, "")
    if comment is not None and not isinstance(comment, str):
        raise InvalidFeedbackError("comment must be a string", session_id=session_id)
    extra = {k: v for k, v in feedback.items() if k not in (RATING, COMMENT, CREATED_AT)}
    entry = {**extra, RATING: rating, COMMENT: comment or "", CREATED_AT: now()}
    try:
        for key in extra:
            validate_metadata_key(key, session_id=session_id)
        ensure_encodable(entry, what="feedback", session_id=session_id)
    except ValueError as exc:
        raise InvalidFeedbackError(f"feedback refused: {exc}", session_id=session_id) from exc
    return entry


def set_viewer_password_update(password: str | None = None) -> dict[str, Any]:
    """Give a session from an older version its viewer password (with :func:`missing_viewer_password_filter`)."""
    return {"$set": {VIEWER_PASSWORD: password or new_viewer_password()}}


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
    timestamp = at or now()
    optional: dict[str, Any] = {}
    if stop_reason:
        optional["stop_reason"] = stop_reason
    if policies_triggered:
        optional["policies_triggered"] = {k: list(v) for k, v in policies_triggered.items()}
    on_message: dict[str, Any] = {"action": action, "timestamp": timestamp, **optional}
    if trace:
        on_message["trace"] = dict(trace)
    on_session: dict[str, Any] = {
        MESSAGE_ID: message_id,
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
    at = now()
    update = {
        "$set": {f"{messages_path(agent_id)}.$[m].{GUARDRAIL_EVENT}": dict(on_message), **touch(at)},
        "$push": {GUARDRAIL_EVENTS: dict(on_session)},
    }
    return update, [{f"m.{MESSAGE_ID}": message_id}]


def redact_message_update(
    agent_id: str, message: SessionMessage, on_message: Mapping[str, Any], on_session: Mapping[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One write: the redacted message (as :func:`update_message_update`), its guardrail event, and the
    session-level entry, so the audit trail can never disagree with the stored message."""
    update, array_filters = update_message_update(agent_id, message)
    update["$set"][f"{messages_path(agent_id)}.$[m].{GUARDRAIL_EVENT}"] = dict(on_message)
    update["$push"] = {GUARDRAIL_EVENTS: dict(on_session)}
    return update, array_filters


def missing_viewer_password_filter(session_id: str) -> dict[str, Any]:
    """Sessions written before passwords existed get one, once, without racing a concurrent reader."""
    return {ID: session_id, VIEWER_PASSWORD: {"$exists": False}}


# ---- indexes ----------------------------------------------------------------------------------------------

#: Leading key of each index every session collection gets (the viewer lists fields that have an index).
#: The indexes themselves are the compound keys of :data:`BASE_INDEX_KEYS`.
BASE_INDEXES: tuple[tuple[str, int], ...] = ((CREATED_AT, -1), (UPDATED_AT, -1), (SESSION_ID, 1))

IndexKey = tuple[tuple[str, int], ...]
#: The dates (and the token total) the viewer sorts sessions by, newest / largest first.
SORT_FIELDS: tuple[str, ...] = (CREATED_AT, UPDATED_AT, TOTAL_TOKENS_PATH)
#: Session-level fields the viewer filters by equality besides metadata (multikey: one key per element).
LIST_FILTER_FIELDS: tuple[str, ...] = (AGENT_IDS, MODELS, FEEDBACK_RATING_PATH, APPLICATION_NAME)


def sort_index_key(field: str) -> IndexKey:
    """``{field: -1, _id: 1}``: the viewer's sort order exactly, ``_id`` breaking ties for stable pages."""
    return ((field, -1), (ID, 1))


def filter_index_keys(path: str) -> list[IndexKey]:
    """Equality first, then the sort (equality-sort-range): one index per date the viewer sorts by.

    ``{path: 1, created_at: -1, _id: 1}`` serves "filter on path, newest first" and a created-date
    range, reading only the page it returns; the ``updated_at`` twin does the same for "recently updated".
    """
    return [((path, 1), (CREATED_AT, -1), (ID, 1)), ((path, 1), (UPDATED_AT, -1), (ID, 1))]


#: Every session collection: the three sorts, the session-id lookup, and the built-in list filters.
BASE_INDEX_KEYS: tuple[IndexKey, ...] = (
    *(sort_index_key(f) for f in SORT_FIELDS),
    ((SESSION_ID, 1),),
    *(key for f in LIST_FILTER_FIELDS for key in filter_index_keys(f)),
)


def backfill_list_fields_filter() -> dict[str, Any]:
    """Sessions written before ``agent_ids`` / ``models`` / session-level ``totals`` existed."""
    return {AGENT_IDS: {"$exists": False}}


def backfill_list_fields_update() -> list[dict[str, Any]]:
    """Pipeline update that derives the session-level list fields from the per-agent data, in place.

    ``collection.update_many(backfill_list_fields_filter(), backfill_list_fields_update())`` makes
    older sessions visible to the viewer's agent and model filters and to its sort by tokens.
    """
    agents = {"$objectToArray": {"$ifNull": [f"${AGENTS}", {}]}}

    def agent_sum(path: str) -> dict[str, Any]:
        return {"$sum": {"$map": {"input": agents, "in": {"$ifNull": [f"$$this.v.{AGENT_DATA}.{TOTALS}.{path}", 0]}}}}

    return [
        {
            "$set": {
                AGENT_IDS: {"$map": {"input": agents, "in": "$$this.k"}},
                MODELS: {
                    "$setDifference": [{"$map": {"input": agents, "in": f"$$this.v.{AGENT_DATA}.{MODEL}"}}, [None]]
                },
                TOTAL_TOKENS_PATH: agent_sum(f"{USAGE}.totalTokens"),
                f"{TOTALS}.turns": agent_sum("turns"),
            }
        }
    ]


def index_keys(metadata_paths: list[str] | None = None) -> list[IndexKey]:
    """The base indexes plus the compound pair of each ``metadata.<field>`` path, without duplicates."""
    keys = list(BASE_INDEX_KEYS)
    for path in metadata_paths or []:
        keys += [k for k in filter_index_keys(path) if k not in keys]
    return keys


def metadata_index_fields(metadata_fields: list[str] | None) -> list[str]:
    return [metadata_path(validate_metadata_key(f)) for f in (metadata_fields or [])]


# ---- values MongoDB cannot store as they are ----------------------------------------------------------

#: A value stored as JSON text because BSON cannot hold it as it is (see :func:`storable`).
JSON_MARKER = "__msm_json__"
#: Nesting (below a message) after which a subtree is stored as JSON text; the server allows 100 levels
#: for a whole document and a message already sits about ten levels deep in its session.
MAX_VALUE_DEPTH = 60
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_SPECIAL_KEYS = frozenset({"$ref", "$id", "$db"})


def storable(value: Any, depth: int = 0) -> Any:
    """``value`` with every part BSON cannot store replaced by a JSON-text marker, losing nothing.

    Models and tools produce values the driver or the server refuse: keys with NUL or a leading
    ``$``, strings with lone surrogates, integers beyond 64 bits, nesting deeper than MongoDB allows.
    Refusing them would fail the whole turn for one odd tool argument; storing just that subtree as
    JSON (``{"__msm_json__": "..."}``) keeps the turn and the exact value, and :func:`from_bson` turns
    it back. Strands' base64 wrapper for bytes becomes BSON binary on the way (the walk is bounded by
    ``MAX_VALUE_DEPTH``, unlike a recursive decode, so no input can exhaust the stack). A value even
    JSON cannot hold (nesting beyond Python's recursion limit, arbitrary objects) raises
    :class:`InvalidInputError`.
    """
    if isinstance(value, str):
        return value if _encodable_text(value) else _as_json(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _INT64_MAX else _as_json(value)
    if isinstance(value, Mapping):
        if value.get("__bytes_encoded__") is True and isinstance(value.get("data"), str):
            return base64.b64decode(value["data"])  # Strands' own encoding of bytes: store real binary
        if value and (depth >= MAX_VALUE_DEPTH or any(_stored_key_problem(k) for k in value)):
            return _as_json(value)
        return {k: storable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if value and depth >= MAX_VALUE_DEPTH:
            return _as_json(value)
        return [storable(v, depth + 1) for v in value]
    return value  # bytes, dates, UUIDs, ObjectIds: BSON has a type for them


def _encodable_text(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _stored_key_problem(key: object) -> bool:
    if not isinstance(key, str):
        return True
    if key in _SPECIAL_KEYS:
        return False
    return key == "" or key.startswith("$") or "." in key or "\x00" in key or not _encodable_text(key)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"__bytes_encoded__": True, "data": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _as_json(value: Any) -> dict[str, str]:
    import json

    try:
        return {JSON_MARKER: json.dumps(value, ensure_ascii=True, default=_json_default)}
    except (RecursionError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"a value cannot be stored in MongoDB, even as JSON: {exc}") from exc


def _from_json_marker(text: str) -> Any:
    import json

    # object_hook runs bottom-up inside the C decoder: no Python recursion, whatever the depth.
    return json.loads(text, object_hook=_bytes_from_json)


def _bytes_from_json(obj: dict[str, Any]) -> Any:
    if obj.get("__bytes_encoded__") is True and isinstance(obj.get("data"), str):
        return base64.b64decode(obj["data"])
    return obj


# ---- turns: the lease, the commit, the one-round-trip restore -------------------------------------------

#: ``agents.<id>.lease``: who runs a turn of this agent now, until when (server time).
LEASE = "lease"
LEASE_TOKEN = "token"
LEASE_OWNER = "owner"
LEASE_EXPIRES_AT = "expires_at"
#: ``agents.<id>.abandoned_messages``: unfinished turns found on restore, kept out of the history.
ABANDONED_MESSAGES = "abandoned_messages"


def lease_path(agent_id: str, field: str | None = None) -> str:
    base = f"{AGENTS}.{agent_id}.{LEASE}"
    return f"{base}.{field}" if field else base


def abandoned_messages_path(agent_id: str) -> str:
    return f"{AGENTS}.{agent_id}.{ABANDONED_MESSAGES}"


def next_message_id_expr(agent_id: str) -> dict[str, Any]:
    """The agent's next message id; derived from the stored ids for documents without the counter."""
    return {
        "$ifNull": [
            f"${next_message_id_path(agent_id)}",
            {"$add": [{"$ifNull": [{"$max": f"${messages_path(agent_id)}.{MESSAGE_ID}"}, -1]}, 1]},
        ]
    }


def _lease_free_expr(agent_id: str, token: str | None = None) -> dict[str, Any]:
    lease = f"${lease_path(agent_id)}"
    free: list[Any] = [
        {"$eq": [{"$type": lease}, "missing"]},
        {"$lte": [f"{lease}.{LEASE_EXPIRES_AT}", "$$NOW"]},
    ]
    if token is not None:
        free.append({"$eq": [f"{lease}.{LEASE_TOKEN}", token]})
    return {"$or": free}


def lease_free_expr(agent_id: str, token: str | None = None) -> dict[str, Any]:
    """Expression: no live lease on the agent (or it is the one with ``token``)."""
    return _lease_free_expr(agent_id, token)


def acquire_lease_filter(session_id: str, agent_id: str, token: str, next_message_id: int) -> dict[str, Any]:
    """Match only if nobody else holds a live lease and the caller's history is current.

    Expiry is judged by the server's clock (``$$NOW``), so hosts with skewed clocks agree.
    """
    return {
        ID: session_id,
        agent_data_path(agent_id): {"$exists": True},
        "$expr": {
            "$and": [
                _lease_free_expr(agent_id, token),
                {"$eq": [next_message_id_expr(agent_id), next_message_id]},
            ]
        },
    }


def acquire_lease_update(agent_id: str, token: str, owner: str, ttl_ms: int) -> list[dict[str, Any]]:
    """Pipeline update: take the lease until ``$$NOW + ttl`` and materialise the id counter."""
    return [
        {
            "$set": {
                lease_path(agent_id): {
                    LEASE_TOKEN: {"$literal": token},
                    LEASE_OWNER: {"$literal": owner},
                    LEASE_EXPIRES_AT: {"$add": ["$$NOW", ttl_ms]},
                },
                next_message_id_path(agent_id): next_message_id_expr(agent_id),
            }
        }
    ]


def lease_held_filter(session_id: str, agent_id: str, token: str) -> dict[str, Any]:
    return {ID: session_id, lease_path(agent_id, LEASE_TOKEN): token}


def renew_lease_update(agent_id: str, ttl_ms: int) -> list[dict[str, Any]]:
    return [{"$set": {lease_path(agent_id, LEASE_EXPIRES_AT): {"$add": ["$$NOW", ttl_ms]}}}]


def release_lease_update(agent_id: str) -> dict[str, Any]:
    return {"$unset": {lease_path(agent_id): ""}}


def lease_state_pipeline(session_id: str, agent_id: str) -> list[dict[str, Any]]:
    """Why an acquire matched nothing: the agent, its lease, its next id and the server's clock."""
    return [
        {"$match": {ID: session_id}},
        {
            "$project": {
                ID: 0,
                "agent_exists": {"$ne": [{"$type": f"${agent_data_path(agent_id)}"}, "missing"]},
                "lease": f"${lease_path(agent_id)}",
                "next_message_id": next_message_id_expr(agent_id),
                "now": "$$NOW",
            }
        },
    ]


def commit_turn_filter(session_id: str, agent_id: str, token: str, first_message_id: int) -> dict[str, Any]:
    """The turn's writer still holds the lease and nobody appended since the turn began."""
    return {
        ID: session_id,
        lease_path(agent_id, LEASE_TOKEN): token,
        next_message_id_path(agent_id): first_message_id,
    }


def commit_turn_update(
    agent_id: str,
    messages: list[SessionMessage],
    *,
    next_message_id: int,
    agent: SessionAgent | None = None,
    metrics: tuple[int, Mapping[str, Any]] | None = None,
    totals: Mapping[str, int] | None = None,
    release: bool = True,
) -> dict[str, Any]:
    """A whole turn in one update: its messages, their metrics, the agent's state, the lease released.

    ``metrics`` is ``(index in messages, summary)``: the summary is stored on that message, so the
    metrics cost no write of their own.
    """
    at = now()
    documents = [message_document(m) for m in messages]
    if metrics is not None:
        index, summary = metrics
        documents[index][METRICS] = {**summary, "recorded_at": at}
    fields: dict[str, Any] = {next_message_id_path(agent_id): next_message_id, **touch(at)}
    if agent is not None:
        fields.update(update_agent_update(agent)["$set"])
        fields.update(touch(at))
    update: dict[str, Any] = {"$set": fields}
    if documents:
        update["$push"] = {messages_path(agent_id): {"$each": documents}}
    if totals:
        update["$inc"] = totals_inc(agent_id, totals)
    if release:
        update["$unset"] = {lease_path(agent_id): ""}
    return update


def append_messages_update(agent_id: str, messages: list[SessionMessage]) -> dict[str, Any]:
    """Several messages in one guarded ``$push`` (an agent created with a history, direct tool calls)."""
    return {
        "$push": {messages_path(agent_id): {"$each": [message_document(m) for m in messages]}},
        "$max": {next_message_id_path(agent_id): messages[-1].message_id + 1},
        "$set": touch(),
    }


def set_aside_filter(session_id: str, agent_id: str, first_message_id: int, next_message_id: int) -> dict[str, Any]:
    """Nobody runs a turn, nothing was appended since the restore, and the tail was not moved already."""
    return {
        ID: session_id,
        f"{messages_path(agent_id)}.{MESSAGE_ID}": first_message_id,
        "$expr": {"$and": [_lease_free_expr(agent_id), {"$eq": [next_message_id_expr(agent_id), next_message_id]}]},
    }


def set_aside_update(agent_id: str, first_message_id: int, next_message_id: int) -> list[dict[str, Any]]:
    """Pipeline update: move messages from ``first_message_id`` on into ``abandoned_messages``.

    The server moves the stored documents themselves (dates and metrics included), so nothing is
    rebuilt on the client; the id counter is pinned, so the moved ids are never given out again.
    """
    messages = {"$ifNull": [f"${messages_path(agent_id)}", []]}
    moved = {"$filter": {"input": messages, "cond": {"$gte": [f"$$this.{MESSAGE_ID}", first_message_id]}}}
    kept = {"$filter": {"input": messages, "cond": {"$lt": [f"$$this.{MESSAGE_ID}", first_message_id]}}}
    return [
        {
            "$set": {
                abandoned_messages_path(agent_id): {
                    "$concatArrays": [{"$ifNull": [f"${abandoned_messages_path(agent_id)}", []]}, moved]
                },
                messages_path(agent_id): kept,
                next_message_id_path(agent_id): {"$literal": next_message_id},
                UPDATED_AT: "$$NOW",
            }
        }
    ]


# ---- snapshot path -------------------------------------------------------------------------------------
# Field names a session written by Strands' SnapshotSessionManager over MongoDBStorage adds to the same
# session document; the snapshot shapes themselves live in documents_snapshot.py.
SNAPSHOTS = "snapshots"
SNAPSHOT_KEYS = "snapshot_keys"
SNAPSHOT_TOKENS = "snapshot_tokens"
SNAPSHOT_AGENTS = "snapshot_agents"
SNAPSHOT_FORMAT = "snapshot_format"


def document_size_pipeline(session_id: str, agent_id: str | None = None) -> list[dict[str, Any]]:
    """The session document's BSON size, measured by the server, and how many messages the agent
    keeps in the document (nothing else is sent back)."""
    fields: dict[str, Any] = {ID: 0, "size": {"$bsonSize": "$$ROOT"}}
    if agent_id is not None:
        fields["stored"] = _array_size(f"${messages_path(agent_id)}")
    return [{"$match": {ID: session_id}}, {"$project": fields}]


#: Byte patterns of the values :func:`from_bson` rewrites; a document without them decodes as it is.
_REPAIR_MARKERS = (b"$ref\x00", b"__bytes_encoded__\x00", JSON_MARKER.encode() + b"\x00")


def needs_repair(raw: bytes) -> bool:
    """Whether raw BSON holds anything :func:`from_bson` must rewrite (checked in C, not walked in Python)."""
    return any(marker in raw for marker in _REPAIR_MARKERS)


#: A ``toolUse`` or ``toolResult`` content block: an embedded document (type 0x03) under a key named tool...
_TOOL_BLOCK_MARKER = b"\x03tool"


def has_tool_blocks(raw: bytes) -> bool:
    """Whether raw BSON may hold tool blocks (a history without any needs no tool-pairing repair)."""
    return _TOOL_BLOCK_MARKER in raw


def removed_offset_expr(agent_expr: str) -> dict[str, Any]:
    """Strands' restore offset read on the server: ``removed_message_count`` if a number, else 0.

    ``agent_expr`` is the agent as an expression (``$agents.<id>``, or ``$$a.v`` inside a ``$map``);
    :func:`.documents_archive.removed_offset` reads it the same way in Python.
    """
    removed = f"{agent_expr}.{AGENT_DATA}.conversation_manager_state.removed_message_count"
    return {"$cond": [{"$isNumber": removed}, {"$max": [{"$toInt": removed}, 0]}, 0]}


def restore_agents_pipeline(session_id: str, *, buckets: str | None = None) -> list[dict[str, Any]]:
    """The session and every agent with its message window, in one round trip (the async creation path).

    The session's own fields (:data:`SESSION_PROJECTION`) come with it, so a manager built from
    this read needs no ``read_session`` of its own.

    Archived buckets an agent's window reaches into come whole (``$lookup``) and are sliced per agent
    by :func:`documents_archive.slice_whole_buckets`.
    """
    from .documents_archive import archived_count_expr, buckets_expr

    agent = "$$a.v"
    array = {"$ifNull": [f"{agent}.{MESSAGES}", []]}
    offset = removed_offset_expr(agent)
    archived = archived_count_expr(agent)
    counter = {
        "$ifNull": [
            f"{agent}.next_message_id",
            {"$add": [{"$ifNull": [{"$max": f"{agent}.{MESSAGES}.{MESSAGE_ID}"}, -1]}, 1]},
        ]
    }
    doc_offset = {"$max": [{"$subtract": [offset, archived]}, 0]}
    overlapping = {
        "$filter": {
            "input": buckets_expr(agent),
            "as": "b",
            "cond": {"$gt": [{"$add": ["$$b.start", "$$b.count"]}, offset]},
        }
    }
    needed = {"$map": {"input": overlapping, "as": "b", "in": "$$b.id"}}
    needed_bytes = {"$sum": {"$map": {"input": overlapping, "as": "b", "in": {"$ifNull": ["$$b.bytes", 0]}}}}
    stages: list[dict[str, Any]] = [
        {"$match": {ID: session_id}},
        {
            "$project": {
                **SESSION_PROJECTION,  # the session itself comes along: its read is this one
                "size": {"$bsonSize": "$$ROOT"},
                "agents": {
                    "$map": {
                        "input": {"$objectToArray": {"$ifNull": [f"${AGENTS}", {}]}},
                        "as": "a",
                        "in": {
                            "agent_id": "$$a.k",
                            "agent_data": "$$a.v.agent_data",
                            "next_message_id": counter,
                            "offset": offset,
                            "archived": archived,
                            "stored": {"$size": array},
                            "messages": {"$slice": [array, doc_offset, {"$max": [{"$size": array}, 1]}]},
                            "bucket_ids": needed,
                            "bucket_bytes": needed_bytes,
                        },
                    }
                },
            }
        },
    ]
    if buckets is not None:
        from .documents_archive import LOOKUP_BYTES, whole_bucket_lookup_stage

        stages.append(
            {
                "$set": {
                    "bucket_ids": {
                        "$reduce": {
                            "input": "$agents.bucket_ids",
                            "initialValue": [],
                            "in": {"$concatArrays": ["$$value", "$$this"]},
                        }
                    },
                    "bucket_bytes": {"$sum": "$agents.bucket_bytes"},
                }
            }
        )
        stages.append(
            {"$set": {"lookup_ids": {"$cond": [{"$lte": ["$bucket_bytes", LOOKUP_BYTES]}, "$bucket_ids", []]}}}
        )
        stages.append(whole_bucket_lookup_stage(buckets, restore=True))
    return stages
