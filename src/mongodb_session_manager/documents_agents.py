"""The agent entries of a session document: Strands' agents, their config, and multi-agents.

Split from :mod:`documents` so that module stays the short owner of field names, paths and
sessions. This one knows what lives under ``agents.<agent_id>`` apart from the messages: the
``agent_data`` Strands owns (created once, then only Strands' own fields rewritten, so a config set
with ``update_agent_config`` and the ``prompt_metadata`` beside it survive every sync), the config
captured from the agent, the listing of agents with their message counts, and
``multi_agents.<id>.state``. Every field name and path comes from :mod:`documents`, read as ``d.``
at call time, so the demo's virtual clock (it replaces ``documents.now``) dates these writes too.

:mod:`documents` re-exports every public name here (callers keep ``d.<name>``) and imports this
module at its very end; the package's ``__init__`` loads :mod:`documents` first, which is what
lets this module import it back. Pure and unit-tested.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from strands.types.session import SessionAgent, decode_bytes_values

from . import documents as d
from . import documents_values as dv
from .errors import InvalidMetadataError

# ---- agents --------------------------------------------------------------------------------------------


def agent_data_document(agent: SessionAgent) -> dict[str, Any]:
    return {
        "agent_id": agent.agent_id,
        d.STATE: agent.state,
        "conversation_manager_state": agent.conversation_manager_state,
        d.INTERNAL_STATE: agent._internal_state,
        d.CREATED_AT: d.to_datetime(agent.created_at),
        d.UPDATED_AT: d.to_datetime(agent.updated_at),
    }


def create_agent_filter(session_id: str, agent_id: str) -> dict[str, Any]:
    """Match the session only while the agent does not exist yet (never wipe a concurrent create)."""
    return {d.ID: session_id, d.agent_path(agent_id): {"$exists": False}}


def create_agent_update(agent: SessionAgent) -> dict[str, Any]:
    at = d.now()
    return {
        "$set": {
            d.agent_path(agent.agent_id): {
                d.AGENT_DATA: agent_data_document(agent),
                d.MESSAGES: [],
                d.NEXT_MESSAGE_ID: 0,
                # Beside agent_data, as the original library kept them (dashboards read these).
                d.CREATED_AT: at,
                d.UPDATED_AT: at,
            },
            **d.touch(at),
        },
        "$addToSet": {d.AGENT_IDS: agent.agent_id},
    }


def agent_exists_filter(session_id: str, agent_id: str) -> dict[str, Any]:
    return {d.ID: session_id, d.agent_data_path(agent_id): {"$exists": True}}


def update_agent_update(agent: SessionAgent) -> dict[str, Any]:
    """Replace Strands-owned agent fields only: ``created_at``, ``model`` and ``system_prompt`` survive."""
    at = d.now()
    aid = agent.agent_id
    return {
        "$set": {
            d.agent_data_path(aid, d.STATE): agent.state,
            d.agent_data_path(aid, "conversation_manager_state"): agent.conversation_manager_state,
            d.agent_data_path(aid, d.INTERNAL_STATE): agent._internal_state,
            d.agent_data_path(aid, d.UPDATED_AT): at,
            d.agent_field_path(aid, d.UPDATED_AT): at,
            **d.touch(at),
        }
    }


def agent_projection(agent_id: str) -> dict[str, Any]:
    return {d.ID: 0, d.agent_data_path(agent_id): 1}


def raw_agent_data(doc: Mapping[str, Any] | None, agent_id: str) -> dict[str, Any] | None:
    data = ((doc or {}).get(d.AGENTS) or {}).get(agent_id, {}).get(d.AGENT_DATA)
    return dv.from_bson(dict(data)) if data is not None else None


def captured_config(agent_data: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """The (model, system_prompt) last captured from the agent itself, if any."""
    captured = agent_data.get(d.CONFIG_CAPTURED)
    if not isinstance(captured, Mapping) or d.MODEL not in captured:
        return None
    return captured[d.MODEL], captured.get(d.SYSTEM_PROMPT)


#: What ``SessionAgent`` accepts, computed once: Strands' ``SessionAgent.from_dict`` recomputes its
#: signature for every key it filters (8 signatures per restored agent: 0.3-0.7 ms of CPU measured).
_AGENT_PARAMETERS = frozenset(inspect.signature(SessionAgent).parameters)


def agent_from_document(doc: Mapping[str, Any] | None, agent_id: str) -> SessionAgent | None:
    data = ((doc or {}).get(d.AGENTS) or {}).get(agent_id, {}).get(d.AGENT_DATA)
    if data is None:
        return None
    fields = dv.from_bson({k: v for k, v in data.items() if k not in (d.CREATED_AT, d.UPDATED_AT)})
    fields.setdefault("agent_id", agent_id)
    fields.setdefault(d.STATE, {})
    fields.setdefault("conversation_manager_state", {})
    # What SessionAgent.from_dict does (unknown keys dropped, encoded bytes decoded), signature once.
    agent = SessionAgent(**decode_bytes_values({k: v for k, v in fields.items() if k in _AGENT_PARAMETERS}))
    agent.created_at = d.to_iso(data.get(d.CREATED_AT))
    agent.updated_at = d.to_iso(data.get(d.UPDATED_AT))
    return agent


def agent_config_update(
    agent_id: str,
    *,
    model: str | None,
    system_prompt: str | None,
    prompt_metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``$set`` of the given config values; ``None`` leaves a value as it is.

    ``prompt_metadata`` goes beside ``agent_data`` (see the docstring of :mod:`documents`): an agent sync never
    touches it there.
    """
    at = d.now()
    fields: dict[str, Any] = {
        d.agent_data_path(agent_id, d.UPDATED_AT): at,
        d.agent_field_path(agent_id, d.UPDATED_AT): at,
        **d.touch(at),
    }
    if model is not None:
        fields[d.agent_data_path(agent_id, d.MODEL)] = model
    if system_prompt is not None:
        fields[d.agent_data_path(agent_id, d.SYSTEM_PROMPT)] = system_prompt
    if prompt_metadata is not None:
        fields[d.agent_field_path(agent_id, d.PROMPT_METADATA)] = dict(prompt_metadata)
    update: dict[str, Any] = {"$set": fields}
    if model is not None:
        update["$addToSet"] = {d.MODELS: model}
    return update


def capture_config_filter(session_id: str, agent_id: str, model: str, system_prompt: str | None) -> dict[str, Any]:
    """Match only when the agent's own config differs from what was last captured from it."""
    captured = d.agent_data_path(agent_id, d.CONFIG_CAPTURED)
    return {
        d.ID: session_id,
        d.agent_data_path(agent_id): {"$exists": True},
        "$or": [
            {f"{captured}.{d.MODEL}": {"$ne": model}},
            {f"{captured}.{d.SYSTEM_PROMPT}": {"$ne": system_prompt}},
        ],
    }


def capture_config_update(agent_id: str, model: str, system_prompt: str | None) -> list[dict[str, Any]]:
    """Pipeline update: overwrite ``model``/``system_prompt`` only where the agent's value changed.

    A value set with ``update_agent_config`` therefore survives later syncs of an unchanged agent.
    Values are wrapped in ``$literal`` so a prompt such as "$5 off" is never read as a field path.
    """
    at = d.now()
    captured = f"${d.agent_data_path(agent_id, d.CONFIG_CAPTURED)}"

    def pick(field: str, value: Any) -> dict[str, Any]:
        return {
            "$cond": [
                {"$ne": [f"{captured}.{field}", {"$literal": value}]},
                {"$literal": value},
                f"${d.agent_data_path(agent_id, field)}",
            ]
        }

    return [
        {
            "$set": {
                d.agent_data_path(agent_id, d.MODEL): pick(d.MODEL, model),
                d.agent_data_path(agent_id, d.SYSTEM_PROMPT): pick(d.SYSTEM_PROMPT, system_prompt),
                d.agent_data_path(agent_id, d.CONFIG_CAPTURED): {
                    "$literal": {d.MODEL: model, d.SYSTEM_PROMPT: system_prompt}
                },
                d.agent_data_path(agent_id, d.UPDATED_AT): {"$literal": at},
                d.MODELS: {"$setUnion": [{"$ifNull": [f"${d.MODELS}", []]}, [{"$literal": model}]]},
                d.UPDATED_AT: {"$literal": at},
            }
        }
    ]


def _object_or_empty(expr: str) -> dict[str, Any]:
    """``expr`` if it is a sub-document, else ``{}`` (hand-edited or partial documents must not fail)."""
    return {"$cond": [{"$eq": [{"$type": expr}, "object"]}, expr, {}]}


def _message_count(agent_expr: str) -> dict[str, Any]:
    from .documents_archive import message_count_expr

    return message_count_expr(agent_expr)


def all_agents_message_count() -> dict[str, Any]:
    """Expression: the messages of every agent of the session document, summed on the server."""
    return {
        "$sum": {
            "$map": {
                "input": {"$objectToArray": _object_or_empty(f"${d.AGENTS}")},
                "in": _message_count("$$this.v"),
            }
        }
    }


#: The keys ``list_agents`` / ``get_agent_config`` always return (``None`` when not recorded yet).
AGENT_CONFIG_KEYS = (
    "agent_id",
    d.MODEL,
    d.SYSTEM_PROMPT,
    d.PROMPT_METADATA,
    d.CREATED_AT,
    d.UPDATED_AT,
    "message_count",
)


def list_agents_pipeline(session_id: str, agent_id: str | None = None) -> list[dict[str, Any]]:
    """Agent ids with their config, totals and message counts, never the messages themselves.

    ``agent_id`` restricts the result to that agent (``get_agent_config``). Timestamps and
    ``prompt_metadata`` are read beside ``agent_data`` first, then inside it (sessions written by
    this library's 0.3 or by the original library).
    """
    agent = "$agents.v"
    data = f"{agent}.{d.AGENT_DATA}"
    stages: list[dict[str, Any]] = [
        {"$match": {d.ID: session_id}},
        {"$project": {d.ID: 0, "agents": {"$objectToArray": _object_or_empty(f"${d.AGENTS}")}}},
        {"$unwind": "$agents"},
    ]
    if agent_id is not None:
        stages.append({"$match": {"agents.k": agent_id}})
    stages.append(
        {
            "$project": {
                "agent_id": "$agents.k",
                d.MODEL: {"$ifNull": [f"{data}.{d.MODEL}", None]},
                d.SYSTEM_PROMPT: {"$ifNull": [f"{data}.{d.SYSTEM_PROMPT}", None]},
                d.PROMPT_METADATA: {"$ifNull": [f"{agent}.{d.PROMPT_METADATA}", f"{data}.{d.PROMPT_METADATA}", None]},
                d.CREATED_AT: {"$ifNull": [f"{agent}.{d.CREATED_AT}", f"{data}.{d.CREATED_AT}", None]},
                d.UPDATED_AT: {"$ifNull": [f"{agent}.{d.UPDATED_AT}", f"{data}.{d.UPDATED_AT}", None]},
                d.TOTALS: {"$ifNull": [f"{data}.{d.TOTALS}", {}]},
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
    checked = d.validate_metadata(value, session_id=session_id)
    temperature = checked.get("temperature")
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, int | float)):
        raise InvalidMetadataError(
            f"prompt_metadata temperature must be a number, got {type(temperature).__name__}", session_id=session_id
        )
    return checked


# ---- multi-agent ----------------------------------------------------------------------------------------


def create_multi_agent_filter(session_id: str, multi_agent_id: str) -> dict[str, Any]:
    return {d.ID: session_id, d.multi_agent_path(multi_agent_id): {"$exists": False}}


def create_multi_agent_update(multi_agent_id: str, state: Mapping[str, Any]) -> dict[str, Any]:
    at = d.now()
    return {
        "$set": {
            d.multi_agent_path(multi_agent_id): {d.STATE: dict(state), d.CREATED_AT: at, d.UPDATED_AT: at},
            **d.touch(at),
        }
    }


def multi_agent_exists_filter(session_id: str, multi_agent_id: str) -> dict[str, Any]:
    return {d.ID: session_id, d.multi_agent_path(multi_agent_id): {"$exists": True}}


def update_multi_agent_update(multi_agent_id: str, state: Mapping[str, Any]) -> dict[str, Any]:
    at = d.now()
    base = d.multi_agent_path(multi_agent_id)
    return {"$set": {f"{base}.{d.STATE}": dict(state), f"{base}.{d.UPDATED_AT}": at, **d.touch(at)}}


def multi_agent_projection(multi_agent_id: str) -> dict[str, Any]:
    return {d.ID: 0, f"{d.multi_agent_path(multi_agent_id)}.{d.STATE}": 1}


def multi_agent_from_document(doc: Mapping[str, Any] | None, multi_agent_id: str) -> dict[str, Any] | None:
    entry = ((doc or {}).get(d.MULTI_AGENTS) or {}).get(multi_agent_id)
    return None if entry is None else dv.from_bson(dict(entry.get(d.STATE) or {}))
