"""Async twins of the manager's public methods, for ``async def`` services.

Each twin runs its sync method in the library's bounded thread pool
(:func:`~.blocking_io.run_blocking`), so the event loop never waits on MongoDB; the sync
API stays exactly as it is. Nothing here is bound to an event loop: a manager created with
``await MongoDBSessionManager.acreate(...)`` also works with Strands' synchronous ``agent()``
(which runs its own loop in another thread), and the other way round.

The turn itself (lease, commit) needs no twin: the manager's Strands hooks are coroutines that
already run their I/O in the pool during ``invoke_async`` / ``stream_async``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Any, Self

from .blocking_io import run_blocking


class AsyncManagerMethods:
    """Mixed into ``MongoDBSessionManager``: ``await manager.aget_metadata()`` and friends."""

    @classmethod
    async def acreate(cls, session_id: str, *args: Any, **kwargs: Any) -> Self:
        """Build the manager and read the session with all its agents, off the event loop.

        One round trip reads the session with every agent and its message window (one write
        creates a session that does not exist); ``Agent(session_manager=manager)`` then restores
        without any I/O, and a new agent is stored with its first turn. Arguments are those of the
        constructor.
        """
        if _takes_prefetch(cls):
            return await run_blocking(functools.partial(cls, session_id, *args, _prefetch=True, **kwargs))

        def build() -> Self:  # a subclass whose constructor does not pass the flag on: two reads
            manager = cls(session_id, *args, **kwargs)
            manager.prefetch_agents()  # type: ignore[attr-defined]
            return manager

        return await run_blocking(build)

    async def aclose(self) -> None:
        await run_blocking(self.close)  # type: ignore[attr-defined]

    # ---- metadata ------------------------------------------------------------------------------

    async def aupdate_metadata(self, metadata: Mapping[str, Any]) -> Any:
        return await run_blocking(self.update_metadata, metadata)  # type: ignore[attr-defined]

    async def aget_metadata(self) -> dict[str, Any]:
        return await run_blocking(self.get_metadata)  # type: ignore[attr-defined]

    async def adelete_metadata(self, metadata_keys: list[str]) -> Any:
        return await run_blocking(self.delete_metadata, metadata_keys)  # type: ignore[attr-defined]

    # ---- feedback ------------------------------------------------------------------------------

    async def aadd_feedback(self, feedback: Mapping[str, Any]) -> Any:
        return await run_blocking(self.add_feedback, feedback)  # type: ignore[attr-defined]

    async def aget_feedbacks(self) -> list[dict[str, Any]]:
        return await run_blocking(self.get_feedbacks)  # type: ignore[attr-defined]

    # ---- agents, counts, password ------------------------------------------------------------------

    async def aget_message_count(self, agent_id: str | None = None) -> int:
        return await run_blocking(self.get_message_count, agent_id)  # type: ignore[attr-defined]

    async def alist_agents(self) -> list[dict[str, Any]]:
        return await run_blocking(self.list_agents)  # type: ignore[attr-defined]

    async def aget_agent_config(self, agent_id: str) -> dict[str, Any] | None:
        return await run_blocking(self.get_agent_config, agent_id)  # type: ignore[attr-defined]

    async def aupdate_agent_config(
        self, agent_id: str, model: str | None = None, system_prompt: str | None = None
    ) -> None:
        await run_blocking(self.update_agent_config, agent_id, model, system_prompt)  # type: ignore[attr-defined]

    async def aset_prompt_metadata(self, agent_id: str, prompt_metadata: Mapping[str, Any]) -> None:
        await run_blocking(self.set_prompt_metadata, agent_id, prompt_metadata)  # type: ignore[attr-defined]

    async def aget_application_name(self) -> str | None:
        return await run_blocking(self.get_application_name)  # type: ignore[attr-defined]

    async def aget_session_viewer_password(self) -> str:
        return await run_blocking(self.get_session_viewer_password)  # type: ignore[attr-defined]

    async def aget_guardrail_events(self) -> list[dict[str, Any]]:
        return await run_blocking(self.get_guardrail_events)  # type: ignore[attr-defined]


@functools.cache
def _takes_prefetch(cls: type) -> bool:
    """Whether ``cls(...)`` passes ``_prefetch`` on to ``MongoDBSessionManager.__init__``."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    return any(p.name == "_prefetch" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
