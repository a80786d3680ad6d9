"""The module that knows the shape of a session document, and the base of its ``documents_*`` companions.

Field names, dotted-path builders, id/key validation and the filters, updates, projections and
pipelines of sessions, agents and messages are pure functions here. The rest of the shape builds on
these field names in companions, one concern each: ``documents_values`` (what BSON cannot hold, and
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

import inspect
import secrets
import string
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType, decode_bytes_values

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
    return dv.from_bson(dict(data)) if data is not None else None


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
    fields = dv.from_bson({k: v for k, v in data.items() if k not in (CREATED_AT, UPDATED_AT)})
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
        MESSAGE: dv.storable(message.message),
        REDACT_MESSAGE: dv.storable(message.redact_message) if message.redact_message else None,
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
            f"{element}.{MESSAGE}": dv.storable(message.message),
            f"{element}.{REDACT_MESSAGE}": dv.storable(message.redact_message) if message.redact_message else None,
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
    for key, value in totals.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInputError(f"totals[{key!r:.60}] must be an integer count, got {type(value).__name__}")
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
    message = dv.from_bson(doc.get(MESSAGE)) if repair else doc.get(MESSAGE)
    redact = doc.get(REDACT_MESSAGE)
    if redact and repair:
        redact = dv.from_bson(redact)
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
    return None if entry is None else dv.from_bson(dict(entry.get(STATE) or {}))


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
