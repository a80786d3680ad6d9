"""The storage side of a turn: the turn lease, the one-write commit, appends, the size estimate.

Mixed into :class:`~.mongodb_session_repository.MongoDBSessionRepository`; kept apart because
these operations are this library's own (Strands' ``SessionRepository`` has no notion of a
turn). Each method is one round trip in the normal case; a miss is diagnosed with one more read
so the caller learns precisely why (held by another turn, stale history, session gone).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import bson
from strands.types.session import SessionAgent, SessionMessage

from . import documents as d
from . import documents_archive as da
from . import documents_turns as dt
from .errors import (
    AgentNotFoundError,
    MessageConflictError,
    SessionNotFoundError,
    TurnLeaseLostError,
)

if TYPE_CHECKING:
    from pymongo.collection import Collection

logger = logging.getLogger(__name__)

#: Sessions not restored in this process are measured every n-th message, and after large writes.
SIZE_CHECK_INTERVAL = 25
LARGE_WRITE_BYTES = 64 * 1024


#: A turn that would take the document past this is preceded by a split (inside the turn's lease).
SPLIT_BEFORE_BYTES = 15 * 1024 * 1024


def _pushed_bytes(update: Mapping[str, Any]) -> int:
    """The bytes a write adds to the document (what its ``$push`` carries)."""
    pushed = update.get("$push") or {}
    return sum(len(bson.encode({"v": v})) for v in pushed.values())


@dataclass
class LeaseRefusal:
    """Why a lease was not granted: held by another live turn, or the caller's history is stale."""

    held: bool
    stale: bool
    next_message_id: int
    retry_after: float


class TurnStorageMixin:
    """Turn operations on the session collection (``self.collection``, ``self._translate``)."""

    collection: Collection[Any]

    # Provided by MongoDBSessionRepository.
    @staticmethod
    def _ids(session_id: object, other_id: object = ..., *, kind: str = "agent") -> tuple[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def _translate(self, session_id: str | None, agent_id: str | None = None) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _require_agent(self, sid: str, aid: str) -> None:  # pragma: no cover
        raise NotImplementedError

    def _check_size(self, sid: str, size: int | None) -> None:  # pragma: no cover
        raise NotImplementedError

    if TYPE_CHECKING:  # provided by ArchiveStorageMixin (earlier in the MRO)
        archive_policy: da.ArchivePolicy | None
        buckets_name: str

        def _remember_stored(self, sid: str, aid: str, stored: int) -> None: ...

        def _split_due(
            self, sid: str, aid: str, added_messages: int, added_bytes: int, *, next_message_id: int | None = None
        ) -> bool: ...

        def _note_appended(self, sid: str, aid: str, added_messages: int) -> None: ...

        def archive_agent(
            self, session_id: str, agent_id: str, *, token: str | None = None, release: bool = False
        ) -> int: ...

        def _externalize(self, sid: str, aid: str, update: dict[str, Any]) -> list[Any]: ...

        def _discard_blobs(self, sid: str, ids: list[Any]) -> None: ...

        def _archive_after_write(
            self, sid: str, aid: str, *, token: str | None = None, release: bool = False
        ) -> None: ...

    # ---- the lease -------------------------------------------------------------------------------

    def acquire_lease(
        self, session_id: str, agent_id: str, *, token: str, owner: str, ttl_ms: int, next_message_id: int
    ) -> LeaseRefusal | None:
        """Take the agent's turn lease (one update); on a miss, say why. None means granted."""
        sid, aid = session_id, agent_id
        with self._translate(sid, aid):
            result = self.collection.update_one(
                dt.acquire_lease_filter(sid, aid, token, next_message_id),
                dt.acquire_lease_update(aid, token, owner, ttl_ms),
            )
            if result.matched_count:
                return None
            docs = list(self.collection.aggregate(dt.lease_state_pipeline(sid, aid)))
        if not docs:
            raise SessionNotFoundError("session does not exist", session_id=sid, agent_id=aid)
        state = docs[0]
        if not state.get("agent_exists"):
            raise AgentNotFoundError("agent does not exist", session_id=sid, agent_id=aid)
        lease = state.get("lease") or {}
        stored_next = int(state.get("next_message_id") or 0)
        expires, now = lease.get(dt.LEASE_EXPIRES_AT), state.get("now")
        held = bool(lease) and isinstance(expires, datetime) and isinstance(now, datetime) and expires > now
        held = held and lease.get(dt.LEASE_TOKEN) != token
        retry_after = (expires - now).total_seconds() if held else 0.0
        return LeaseRefusal(
            held=held, stale=stored_next != next_message_id, next_message_id=stored_next, retry_after=retry_after
        )

    def renew_lease(self, session_id: str, agent_id: str, *, token: str, ttl_ms: int) -> bool:
        """Extend a held lease; False if it is no longer ours."""
        with self._translate(session_id, agent_id):
            result = self.collection.update_one(
                dt.lease_held_filter(session_id, agent_id, token), dt.renew_lease_update(agent_id, ttl_ms)
            )
        return result.matched_count > 0

    def release_lease(self, session_id: str, agent_id: str, *, token: str) -> None:
        """Give the lease back without storing anything (a failed or empty turn)."""
        with self._translate(session_id, agent_id):
            self.collection.update_one(
                dt.lease_held_filter(session_id, agent_id, token), dt.release_lease_update(agent_id)
            )

    # ---- the commit ------------------------------------------------------------------------------

    def commit_turn(
        self,
        session_id: str,
        agent_id: str,
        *,
        token: str,
        first_message_id: int,
        messages: list[SessionMessage],
        agent: SessionAgent | None = None,
        metrics: tuple[int, Mapping[str, Any]] | None = None,
        totals: Mapping[str, int] | None = None,
    ) -> None:
        """Store a whole turn and release the lease, in one atomic update.

        Refused with ``TurnLeaseLostError`` if the lease was taken over, ``MessageConflictError``
        if someone appended in between; in both cases nothing of the turn was written.
        """
        sid, aid = session_id, agent_id
        next_id = messages[-1].message_id + 1 if messages else first_message_id
        update = dt.commit_turn_update(
            aid, messages, next_message_id=next_id, agent=agent, metrics=metrics, totals=totals
        )
        with self._translate(sid, aid):  # a value BSON cannot hold is a typed error here, before any write
            uploaded = self._externalize(sid, aid, update)
            added = _pushed_bytes(update)
        try:
            held = self._commit(sid, aid, token, first_message_id, update, added, len(messages), next_id)
        except BaseException:
            self._discard_blobs(sid, uploaded)
            raise
        if held is None:
            return
        self._discard_blobs(sid, uploaded)
        if not held:
            raise TurnLeaseLostError(
                "the turn's lease expired and another invocation took it; nothing of this turn was stored",
                session_id=sid,
                agent_id=aid,
            )
        raise MessageConflictError(
            f"messages from id {first_message_id} on were stored by another writer during this turn; "
            "nothing of this turn was stored",
            session_id=sid,
            agent_id=aid,
        )

    def _commit(
        self,
        sid: str,
        aid: str,
        token: str,
        first_message_id: int,
        update: dict[str, Any],
        added: int,
        count: int,
        next_id: int,
    ) -> int | None:
        """Send the commit; None when stored, else whether the lease is still ours (why it missed)."""
        known = self._known_sizes().get(sid)
        if known is not None and known + added > SPLIT_BEFORE_BYTES and self.archive_policy is not None:
            # The turn would not fit beside the history: move history out first, inside this turn's lease.
            self.archive_agent(sid, aid, token=token)
        split = self._split_due(sid, aid, count, added, next_message_id=next_id)
        if split:
            update.pop("$unset", None)  # the split that follows releases the lease with its move
        with self._translate(sid, aid):
            result = self.collection.update_one(dt.commit_turn_filter(sid, aid, token, first_message_id), update)
            if result.matched_count:
                self._grow_size(sid, aid, update, added)
                self._note_appended(sid, aid, count)
                if split:
                    self._archive_after_write(sid, aid, token=token, release=True)
                return None
            self._require_agent(sid, aid)
            return int(self.collection.count_documents(dt.lease_held_filter(sid, aid, token), limit=1))

    def append_messages(self, session_id: str, agent_id: str, messages: list[SessionMessage]) -> None:
        """Append several consecutive messages in one guarded write (outside a turn)."""
        if not messages:
            return
        sid, aid = session_id, agent_id
        first = messages[0].message_id
        update = dt.append_messages_update(aid, messages)
        with self._translate(sid, aid):
            uploaded = self._externalize(sid, aid, update)
            added = _pushed_bytes(update)
        try:
            if self._append(sid, aid, first, update, added, messages):
                return
        except BaseException:
            self._discard_blobs(sid, uploaded)
            raise
        self._discard_blobs(sid, uploaded)
        raise MessageConflictError(
            f"message id {first} is already stored or older than the agent's latest message "
            "(another writer appended first); nothing was written",
            session_id=sid,
            agent_id=aid,
        )

    def _append(
        self, sid: str, aid: str, first: int, update: dict[str, Any], added: int, messages: list[SessionMessage]
    ) -> bool:
        known = self._known_sizes().get(sid)
        if known is not None and known + added > SPLIT_BEFORE_BYTES and self.archive_policy is not None:
            self._archive_after_write(sid, aid)  # make room first (the write below says if it did not)
        with self._translate(sid, aid):
            result = self.collection.update_one(d.append_message_filter(sid, aid, first), update)
            if result.matched_count:
                self._grow_size(sid, aid, update, added)
                self._note_appended(sid, aid, len(messages))
                if self._split_due(sid, aid, 0, 0, next_message_id=messages[-1].message_id + 1):
                    self._archive_after_write(sid, aid)
                return True
            self._require_agent(sid, aid)
        return False

    def set_aside_messages(
        self, session_id: str, agent_id: str, messages: list[SessionMessage], *, next_message_id: int
    ) -> bool:
        """Move an unfinished trailing turn into ``abandoned_messages``; False if the session moved on."""
        with self._translate(session_id, agent_id):
            result = self.collection.update_one(
                dt.set_aside_filter(session_id, agent_id, messages[0].message_id, next_message_id),
                dt.set_aside_update(agent_id, messages[0].message_id, next_message_id),
            )
        return result.modified_count > 0

    # ---- size, without measuring on every write -------------------------------------------------

    def _remember_size(self, sid: str, size: int) -> None:
        sizes = self._known_sizes()
        sizes[sid] = size
        if len(sizes) > 10_000:
            sizes.pop(next(iter(sizes)))
        self._check_size(sid, size)

    def _grow_size(self, sid: str, aid: str, update: Mapping[str, Any], added: int) -> None:
        """Add what a write pushed to the size last read; warn when it passes the threshold.

        Measuring on the server costs a pass over the document, so the size is read with the
        restore and estimated from the bytes each write adds. A session this process never restored
        is measured after every ``SIZE_CHECK_INTERVAL``-th message and after any large write.
        """
        pushed = update.get("$push") or {}
        sizes = self._known_sizes()
        if sid in sizes:
            sizes[sid] += added
            self._check_size(sid, sizes[sid])
            return
        ids = [m.get(d.MESSAGE_ID, 0) for v in pushed.values() for m in v.get("$each", [v])]
        if added >= LARGE_WRITE_BYTES or any((i + 1) % SIZE_CHECK_INTERVAL == 0 for i in ids):
            docs = list(self.collection.aggregate(d.document_size_pipeline(sid, aid)))
            if docs:
                self._remember_size(sid, int(docs[0]["size"]))
                self._remember_stored(sid, aid, int(docs[0]["stored"]))

    def _known_sizes(self) -> dict[str, int]:
        sizes = self.__dict__.get("_sizes")
        if sizes is None:
            sizes = self.__dict__["_sizes"] = {}
        return sizes
