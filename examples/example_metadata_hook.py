"""Metadata hooks: audit, validation, caching, and a combination of them.

A hook is called as hook(original_func, action, session_id, **kwargs) for every metadata
operation ("update" with kwargs["metadata"], "delete" with kwargs["keys"], "get").

Run: uv run python examples/example_metadata_hook.py
"""

import time
from typing import Any

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.embedded import local_mongodb

AUDIT_LOG: list[str] = []


def call_original(original_func, action: str, kwargs: dict[str, Any]) -> Any:
    if action == "update":
        return original_func(kwargs["metadata"])
    if action == "delete":
        return original_func(kwargs["keys"])
    return original_func()


def audit_hook(original_func, action, session_id, **kwargs):
    detail = kwargs.get("metadata") or kwargs.get("keys") or ""
    AUDIT_LOG.append(f"{action} on {session_id}: {detail}")
    return call_original(original_func, action, kwargs)


ALLOWED_STATUS = {"open", "pending", "closed"}


def validation_hook(original_func, action, session_id, **kwargs):
    if action == "update":
        status = kwargs["metadata"].get("status")
        if status is not None and status not in ALLOWED_STATUS:
            raise ValueError(f"status must be one of {sorted(ALLOWED_STATUS)}, got {status!r}")
        kwargs["metadata"] = {**kwargs["metadata"], "validated_at": time.time()}  # enrichment
    return call_original(original_func, action, kwargs)


_CACHE: dict[str, dict[str, Any]] = {}


def caching_hook(original_func, action, session_id, **kwargs):
    if action == "get":
        if session_id not in _CACHE:
            _CACHE[session_id] = call_original(original_func, action, kwargs)
        return _CACHE[session_id]
    _CACHE.pop(session_id, None)  # any write invalidates
    return call_original(original_func, action, kwargs)


def combined_hook(original_func, action, session_id, **kwargs):
    """Audit, then validate, then cache: each layer wraps the next."""

    def validated(*args):
        inner = {"metadata": args[0]} if action == "update" else {"keys": args[0]} if action == "delete" else {}
        return caching_hook(original_func, action, session_id, **inner)

    def audited(*args):
        inner = {"metadata": args[0]} if action == "update" else {"keys": args[0]} if action == "delete" else {}
        return validation_hook(validated, action, session_id, **inner)

    return audit_hook(audited, action, session_id, **kwargs)


def main() -> None:
    with local_mongodb() as uri:
        for name, hook in (
            ("audit", audit_hook),
            ("validation", validation_hook),
            ("caching", caching_hook),
            ("combined", combined_hook),
        ):
            session_id = f"metadata-hook-{name}"
            manager = MongoDBSessionManager(
                session_id, connection_string=uri, database_name="chat", collection_name="sessions", metadata_hook=hook
            )
            manager.update_metadata({"status": "open", "owner": "alice"})
            try:
                manager.update_metadata({"status": "exploded"})
            except ValueError as exc:
                print(f"[{name}] refused: {exc}")
            manager.get_metadata()
            manager.delete_metadata(["owner"])
            print(f"[{name}] metadata: {manager.get_metadata()}")
            manager.repository.delete_session(session_id)
            manager.close()
        print("Audit log:")
        for line in AUDIT_LOG:
            print(f"  {line}")


if __name__ == "__main__":
    main()
