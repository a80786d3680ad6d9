"""The ``manage_metadata`` Strands tool: lets an agent read and change its session's metadata.

Real models are sloppy callers: they send JSON strings where objects are expected, a single key
where a list is expected, or an unknown action. The tool accepts the common shapes and answers
every mistake with a readable message the model can act on, never with an exception that would
end the turn. Metadata keys the infrastructure owns (the WebSocket connection id) are read-only.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from strands import tool
from strands.tools.decorator import DecoratedFunctionTool

from .errors import SessionStoreError

if TYPE_CHECKING:
    from .mongodb_session_manager import MongoDBSessionManager

logger = logging.getLogger(__name__)

#: Keys an agent may never write or delete through the tool (set by the hosting service).
PROTECTED_METADATA_KEYS = frozenset({"ws_connection_id", "connection_id"})

_ACTIONS = {"get", "set", "update", "delete"}


def _parse_json(value: Any, expected: type, name: str) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            if expected is list:
                return [part.strip() for part in text.split(",") if part.strip()]
            raise ValueError(f"'{name}' must be a JSON {expected.__name__}, got unparseable text") from None
    if expected is list and isinstance(value, str):
        return [value]
    if value is not None and not isinstance(value, expected):
        raise ValueError(f"'{name}' must be a {expected.__name__}, got {type(value).__name__}")
    return value


def build_metadata_tool(
    manager: MongoDBSessionManager, protected_keys: frozenset[str] = PROTECTED_METADATA_KEYS
) -> DecoratedFunctionTool[..., str]:
    """Create the tool bound to one session manager (hooks apply to the tool's calls too)."""

    @tool(name="manage_metadata")
    def manage_metadata(
        action: str,
        metadata: dict[str, Any] | str | None = None,
        keys: list[str] | str | None = None,
    ) -> str:
        """Read or change metadata of the current conversation session.

        Use it to remember facts about the session (customer name, case status, preferences).

        Args:
            action: "get" to read metadata (all of it, or only `keys`), "set" or "update" to store
                the key/value pairs in `metadata` (other keys are kept), "delete" to remove `keys`.
            metadata: Key/value pairs to store, for "set"/"update".
            keys: Metadata keys to read (for "get") or remove (for "delete").
        """
        act = (action or "").strip().lower()
        try:
            if act not in _ACTIONS:
                return f"Error: unknown action {action!r}; use one of get, set, update, delete."
            parsed_keys = _parse_json(keys, list, "keys")
            if act == "get":
                current = manager.get_metadata()
                if parsed_keys:
                    current = {k: current[k] for k in parsed_keys if k in current}
                if not current:
                    return "No metadata found for this session." if not parsed_keys else "None of those keys are set."
                return "Session metadata: " + json.dumps(current, default=str, ensure_ascii=False)
            if act in ("set", "update"):
                parsed = _parse_json(metadata, dict, "metadata")
                if not parsed:
                    return "Error: 'metadata' with at least one key/value pair is required for set/update."
                refused = sorted(protected_keys.intersection(parsed))
                if refused:
                    return f"Error: {', '.join(refused)} cannot be changed by the agent."
                manager.update_metadata(parsed)
                return "Metadata updated: " + ", ".join(sorted(parsed))
            if not parsed_keys:
                return "Error: 'keys' (a list of metadata keys) is required for delete."
            refused = sorted(protected_keys.intersection(parsed_keys))
            if refused:
                return f"Error: {', '.join(refused)} cannot be deleted by the agent."
            manager.delete_metadata(list(parsed_keys))
            return "Metadata deleted: " + ", ".join(parsed_keys)
        except (ValueError, TypeError, SessionStoreError) as exc:
            # The model gets a message it can correct; the operator gets the log line.
            logger.warning("session_id=<%s> | action=<%s> | metadata tool refused: %s", manager.session_id, act, exc)
            return f"Error: {exc}"

    return manage_metadata
