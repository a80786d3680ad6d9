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


#: Default caps: a model that loops or is prompted to flood the session cannot grow it without bound.
DEFAULT_MAX_KEYS_PER_CALL = 50
DEFAULT_MAX_KEYS_PER_SESSION = 500
#: How many key names a reply names before it summarises (replies go back into the conversation).
_ECHO_KEYS = 20


def _error(text: str) -> dict[str, Any]:
    """A tool result with status "error": the model sees it failed and can correct itself."""
    return {"status": "error", "content": [{"text": f"Error: {text}"}]}


def _names(keys: list[str]) -> str:
    shown = ", ".join(k[:80] for k in keys[:_ECHO_KEYS])
    return shown + (f" and {len(keys) - _ECHO_KEYS} more" if len(keys) > _ECHO_KEYS else "")


def build_metadata_tool(
    manager: MongoDBSessionManager,
    protected_keys: frozenset[str] = PROTECTED_METADATA_KEYS,
    *,
    max_keys_per_call: int = DEFAULT_MAX_KEYS_PER_CALL,
    max_keys_per_session: int = DEFAULT_MAX_KEYS_PER_SESSION,
) -> DecoratedFunctionTool[..., Any]:
    """Create the tool bound to one session manager (hooks apply to the tool's calls too).

    Refusals come back as tool results with status "error" (never an exception that would end the
    turn); a call may set at most ``max_keys_per_call`` keys and the session may hold at most
    ``max_keys_per_session``; replies name at most a few keys, never echo unbounded input.
    """

    @tool(name="manage_metadata")
    def manage_metadata(
        action: str,
        metadata: dict[str, Any] | str | None = None,
        keys: list[str] | str | None = None,
    ) -> Any:
        """Read or change metadata of the current conversation session.

        Use it to remember facts about the session (customer name, case status, preferences).

        Args:
            action: "get" to read metadata (all of it, or only `keys`), "set" or "update" to store
                the key/value pairs in `metadata` (other keys are kept), "delete" to remove `keys`.
            metadata: Key/value pairs to store, for "set"/"update".
            keys: Metadata keys to read (for "get") or remove (for "delete").
        """
        act = (action or "").strip().lower() if isinstance(action, str) else ""
        try:
            if act not in _ACTIONS:
                return _error(f"unknown action {str(action)[:40]!r}; use one of get, set, update, delete.")
            parsed_keys = _parse_json(keys, list, "keys")
            if parsed_keys is not None and len(parsed_keys) > max_keys_per_call:
                return _error(f"at most {max_keys_per_call} keys per call, got {len(parsed_keys)}.")
            if act == "get":
                current = manager.get_metadata()
                if parsed_keys:
                    current = {k: current[k] for k in parsed_keys if isinstance(k, str) and k in current}
                if not current:
                    return "No metadata found for this session." if not parsed_keys else "None of those keys are set."
                return "Session metadata: " + json.dumps(current, default=str, ensure_ascii=False)
            if act in ("set", "update"):
                parsed = _parse_json(metadata, dict, "metadata")
                if not parsed:
                    return _error("'metadata' with at least one key/value pair is required for set/update.")
                if len(parsed) > max_keys_per_call:
                    return _error(f"at most {max_keys_per_call} keys per call, got {len(parsed)}.")
                refused = sorted(protected_keys.intersection(parsed))
                if refused:
                    return _error(f"{_names(refused)} cannot be changed by the agent.")
                # read_metadata: the stored keys, without running the metadata hook a second time
                reader = getattr(manager, "read_metadata", manager.get_metadata)
                existing = set(reader())
                total = len(existing | set(parsed))
                if total > max_keys_per_session:
                    return _error(
                        f"the session may hold at most {max_keys_per_session} metadata keys; "
                        f"this call would make it {total}. Delete keys first."
                    )
                manager.update_metadata(parsed)
                return "Metadata updated: " + _names(sorted(parsed))
            if not parsed_keys:
                return _error("'keys' (a list of metadata keys) is required for delete.")
            refused = sorted(protected_keys.intersection(k for k in parsed_keys if isinstance(k, str)))
            if refused:
                return _error(f"{_names(refused)} cannot be deleted by the agent.")
            manager.delete_metadata(list(parsed_keys))
            return "Metadata deleted: " + _names([str(k) for k in parsed_keys])
        except (ValueError, TypeError, SessionStoreError) as exc:
            # The model gets a message it can correct; the operator gets the log line.
            logger.warning(
                "session_id=<%s> | action=<%s> | metadata tool refused: %s", manager.session_id, act, str(exc)[:300]
            )
            return _error(str(exc)[:500])

    return manage_metadata
