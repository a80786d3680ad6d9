"""The storage side of a turn: one-round-trip restore, the turn lease, and the one-write commit.

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
from typing import TYPE_CHECKING, Any, Literal

import bson
from bson.raw_bson import RawBSONDocument
from strands.types.session import Session, SessionAgent, SessionMessage

from . import documents as d
from . import documents_archive as da
from .errors import (
    AgentNotFoundError,
    MessageConflictError,
    MessageNotFoundError,
    SessionNotFoundError,
    TurnLeaseLostError,
)
from .raw_flags import HOLDS, RawFlags

if TYPE_CHECKING:
    from pymongo.collection import Collection

    from .blobs import BlobStore

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
class RestoredAgent:
    """What a restore read: the agent, the messages Strands restores, and where the ids stand.

    ``tool_blocks`` is False only when the raw bytes read hold no ``toolUse``/``toolResult`` block,
    so the restore may skip Strands' walk that repairs unanswered tool calls.
    """

    agent: SessionAgent
    raw: dict[str, Any]
    messages: list[SessionMessage]
    offset: int
    next_message_id: int
    size: int
    tool_blocks: bool = True


@dataclass
class LeaseRefusal:
    """Why a lease was not granted: held by another live turn, or the caller's history is stale."""

    held: bool
    stale: bool
    next_message_id: int
    retry_after: float


def _restored(agent_id: str, doc: Mapping[str, Any], stored: list[Any], flags: RawFlags) -> RestoredAgent | None:
    raw = doc.get("agent_data")
    if raw is None:
        return None
    agent = d.agent_from_document({d.AGENTS: {agent_id: {d.AGENT_DATA: raw}}}, agent_id)
    assert agent is not None
    # Strands never reads message dates back: these records carry the time of the restore, and any
    # write of them keeps the stored dates (see update_message_update).
    read_at = d.now().isoformat()
    record, message, message_id, redacted = SessionMessage, d.MESSAGE, d.MESSAGE_ID, d.REDACT_MESSAGE
    if flags.repair:
        fix = d.from_bson
        messages = [
            record(fix(m[message]), int(m[message_id]), fix(m[redacted]) if m.get(redacted) else None, read_at, read_at)
            for m in stored
        ]
    else:  # the common case, thousands of messages: positional arguments, nothing walked
        messages = [record(m[message], int(m[message_id]), m.get(redacted) or None, read_at, read_at) for m in stored]
    return RestoredAgent(
        agent=agent,
        raw=d.from_bson(dict(raw)),
        messages=messages,
        offset=int(doc.get("offset") or 0),
        next_message_id=int(doc.get("next_message_id") or 0),
        size=int(doc.get("size") or 0),
        tool_blocks=flags.tools,
    )


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

        def _fetch_restore_buckets(self, ids: list[Any]) -> list[dict[str, Any]]: ...

        @property
        def blobs(self) -> BlobStore: ...

        def _externalize(self, sid: str, aid: str, update: dict[str, Any]) -> list[Any]: ...

        def _discard_blobs(self, sid: str, ids: list[Any]) -> None: ...

        def _archive_after_write(
            self, sid: str, aid: str, *, token: str | None = None, release: bool = False
        ) -> None: ...

    # ---- restore -------------------------------------------------------------------------------

    def restore_agent(self, session_id: str, agent_id: str) -> RestoredAgent | None:
        """The agent and the messages from its conversation manager's offset on.

        One ``find`` of the agent (under a policy, as stored; without one, exactly its window as
        the server computes it, so a sliding-window agent transfers its 40 messages however long
        the array), then, only if the window reaches into the archive, one ``find`` of those
        buckets by ``_id``. Returns None when the agent does not exist (the session must). The
        replies are decoded by the driver in C; values are walked in Python only when the raw
        bytes show something to repair (:func:`d.needs_repair`).
        """
        sid, aid = self._ids(session_id, agent_id)
        for _ in range(2):  # a listed bucket vanished (purged meanwhile): the document lists anew
            found = self._restore_by_find(sid, aid)
            if found is not None:
                return found or None
        # Listed twice and still missing: restoring without them would silently lose messages.
        raise MessageNotFoundError("archived messages the session lists are missing", session_id=sid, agent_id=aid)

    def _restore_by_find(self, sid: str, aid: str) -> RestoredAgent | Literal[False] | None:
        """The window by plain ``find``s; False: no such agent; None: a listed bucket is missing.

        Under a policy the document keeps a few hundred messages: one read of the agent as stored
        (plain inclusion, the cheapest read there is) answers, cut in Python, unless the window
        reaches back past the newest bucket entries read with it. Otherwise (no policy: arrays of
        any length) the server computes exactly the window. Without a policy the document's size
        comes along (it feeds the size check); with one, the size check measures it after writes.
        """
        window: dict[str, Any] | None = None
        if self.archive_policy is not None:
            limit = da.restore_document_limit(self.archive_policy)
            doc, raw = self._read_for_restore(sid, aid, da.restore_document_projection(aid, limit))
            window = da.document_window(doc, aid, limit)
        if window is None:
            size = self.archive_policy is None
            window, raw = self._read_for_restore(sid, aid, da.restore_window_projection(aid, size=size))
            if window.get("agent_data") is None:
                return False
            if size:
                self._remember_size(sid, int(window.get("size") or 0))
        elif not window:
            return False
        flags = RawFlags.of(raw)  # the bytes of the read the window came from, searched in C
        return self._restore_window(sid, aid, window, flags)

    def _restore_window(
        self,
        sid: str,
        aid: str,
        window: Mapping[str, Any],
        flags: RawFlags,
        read: tuple[list[dict[str, Any]], RawFlags] | None = None,
    ) -> RestoredAgent | None:
        """The agent out of its window (:func:`da.document_window`'s shape) and the buckets it lists
        (``read``: already read, with other agents' buckets); None when a listed bucket is missing
        (purged meanwhile)."""
        self._remember_stored(sid, aid, int(window.get("stored") or 0))
        messages = list(window.get(d.MESSAGES) or [])
        ids = list(window.get("bucket_ids") or [])
        if ids:  # the window reaches into the archive: its buckets by _id
            if read is None:
                fetched, more = self._read_buckets(ids)
            else:
                fetched, more = [b for b in read[0] if b.get("agent_id") == aid], read[1]
            if len(fetched) != len(ids):
                return None
            flags |= more
            offset = int(window.get("offset") or 0)
            sliced = [da.slice_bucket(bucket, offset, da.NO_END) for bucket in fetched]
            messages = da.join_window({"buckets": sliced, "messages": messages})
        if flags.blobs:
            with self._translate(sid, aid):
                messages = self.blobs.resolve(messages, d.RESTORE_CODEC_OPTIONS)
        return _restored(aid, window, messages, flags)

    def _read_for_restore(self, sid: str, aid: str, projection: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        """The session read with ``projection``: decoded, and its raw bytes (a memoryview would be
        searched byte by byte in Python)."""
        with self._translate(sid, aid):
            found = self._raw_collection().find_one({d.ID: sid}, projection)
        if found is None:
            raise SessionNotFoundError("session does not exist", session_id=sid, agent_id=aid)
        raw = bytes(found.raw)
        return bson.decode(raw, codec_options=d.RESTORE_CODEC_OPTIONS), raw

    def _read_buckets(self, ids: list[Any]) -> tuple[list[dict[str, Any]], RawFlags]:
        """Listed buckets by ``_id``, decoded, and what their messages hold.

        A bucket records that when it is written; one without the record (a message in it was
        rewritten since) is encoded again to be searched: the markers are keys and type bytes,
        which survive the round trip, and such buckets are rare.
        """
        fetched = self._fetch_restore_buckets(ids)
        flags = RawFlags()
        for bucket in fetched:
            recorded = RawFlags.recorded(bucket.get(HOLDS))
            flags |= recorded or RawFlags.of(bson.encode(bucket, codec_options=d.RESTORE_CODEC_OPTIONS))
        return fetched, flags

    def restore_agents(self, session_id: str) -> tuple[bool, dict[str, RestoredAgent]]:
        """Whether the session exists, and every agent with its message window: one round trip."""
        session, agents = self.restore_session(session_id)
        return session is not None, agents

    def restore_session(self, session_id: str) -> tuple[Session | None, dict[str, RestoredAgent]]:
        """The session (None if it does not exist) and every agent with its message window: one round trip
        (and one more for the archived buckets a window reaches into).

        What ``read_session`` and a restore of each agent would read: the async creation path builds
        its manager from it without another read. Under a policy the document stays small, so it is
        read whole with a plain ``find`` and the windows are cut in Python; its size comes with it.
        The all-agents aggregation that computes the windows on the server cost about 2.5 ms more
        server time for a 60-message session (4.1 against 1.6 ms on loopback), so it serves only
        sessions without a policy, whose arrays may be of any length.
        """
        sid, _ = self._ids(session_id)
        if self.archive_policy is None:
            return self._restore_session_computed(sid)
        with self._translate(sid):
            found = self._raw_collection().find_one({d.ID: sid})
        if found is None:
            return None, {}
        raw = bytes(found.raw)
        doc = bson.decode(raw, codec_options=d.RESTORE_CODEC_OPTIONS)
        self._remember_size(sid, len(raw))
        flags = RawFlags.of(raw)  # every agent's bytes: a false "yes" costs a walk, never a missed repair
        windows = {aid: da.document_window(doc, aid, None) for aid in doc.get(d.AGENTS) or {}}
        ids = [i for window in windows.values() if window for i in window.get("bucket_ids") or []]
        read = self._read_buckets(ids) if ids else None  # every agent's archived part in one find
        agents: dict[str, RestoredAgent] = {}
        for aid, window in windows.items():
            restored: RestoredAgent | None
            if window is None:  # the listing does not reach back to the window: the agent's own reads
                restored = self.restore_agent(sid, aid)
            elif not window:  # no agent data: not an agent
                continue
            else:  # a listed bucket gone (purged meanwhile): the agent's own reads list anew
                restored = self._restore_window(sid, aid, window, flags, read) or self.restore_agent(sid, aid)
            if restored is not None:
                agents[aid] = restored
        return d.session_from_document(doc), agents

    def _restore_session_computed(self, sid: str) -> tuple[Session | None, dict[str, RestoredAgent]]:
        """:meth:`restore_session` by one aggregation computing every window (sessions without a policy)."""
        with self._translate(sid):
            pipeline = d.restore_agents_pipeline(sid, buckets=self.buckets_name)
            docs = list(self._raw_collection().aggregate(pipeline))
        if not docs:
            return None, {}
        raw = bytes(docs[0].raw)
        doc = bson.decode(raw, codec_options=d.RESTORE_CODEC_OPTIONS)
        self._remember_size(sid, int(doc.get("size") or 0))
        flags = RawFlags.of(raw)
        agents: dict[str, RestoredAgent] = {}
        buckets = doc.get("buckets") or []
        missing = da.window_needs_query(doc)
        if missing:
            buckets, more = self._read_buckets(missing)
            flags |= more
        for entry in doc.get("agents") or []:
            aid = entry["agent_id"]
            self._remember_stored(sid, aid, int(entry.get("stored") or 0))
            archived = [] if not buckets else da.slice_whole_buckets(buckets, aid, int(entry.get("offset") or 0))
            messages = [*archived, *(entry.get("messages") or [])]
            if flags.blobs:
                with self._translate(sid, aid):
                    messages = self.blobs.resolve(messages, d.RESTORE_CODEC_OPTIONS)
            restored = _restored(aid, entry, messages, flags)
            if restored is not None:
                agents[entry["agent_id"]] = restored
        return d.session_from_document(doc), agents

    def _raw_collection(self) -> Collection[Any]:
        raw = self.__dict__.get("_raw")
        if raw is None:
            options = d.CODEC_OPTIONS.with_options(document_class=RawBSONDocument)
            raw = self.__dict__["_raw"] = self.collection.with_options(codec_options=options)
        return raw

    # ---- the lease -------------------------------------------------------------------------------

    def acquire_lease(
        self, session_id: str, agent_id: str, *, token: str, owner: str, ttl_ms: int, next_message_id: int
    ) -> LeaseRefusal | None:
        """Take the agent's turn lease (one update); on a miss, say why. None means granted."""
        sid, aid = session_id, agent_id
        with self._translate(sid, aid):
            result = self.collection.update_one(
                d.acquire_lease_filter(sid, aid, token, next_message_id),
                d.acquire_lease_update(aid, token, owner, ttl_ms),
            )
            if result.matched_count:
                return None
            docs = list(self.collection.aggregate(d.lease_state_pipeline(sid, aid)))
        if not docs:
            raise SessionNotFoundError("session does not exist", session_id=sid, agent_id=aid)
        state = docs[0]
        if not state.get("agent_exists"):
            raise AgentNotFoundError("agent does not exist", session_id=sid, agent_id=aid)
        lease = state.get("lease") or {}
        stored_next = int(state.get("next_message_id") or 0)
        expires, now = lease.get(d.LEASE_EXPIRES_AT), state.get("now")
        held = bool(lease) and isinstance(expires, datetime) and isinstance(now, datetime) and expires > now
        held = held and lease.get(d.LEASE_TOKEN) != token
        retry_after = (expires - now).total_seconds() if held else 0.0
        return LeaseRefusal(
            held=held, stale=stored_next != next_message_id, next_message_id=stored_next, retry_after=retry_after
        )

    def renew_lease(self, session_id: str, agent_id: str, *, token: str, ttl_ms: int) -> bool:
        """Extend a held lease; False if it is no longer ours."""
        with self._translate(session_id, agent_id):
            result = self.collection.update_one(
                d.lease_held_filter(session_id, agent_id, token), d.renew_lease_update(agent_id, ttl_ms)
            )
        return result.matched_count > 0

    def release_lease(self, session_id: str, agent_id: str, *, token: str) -> None:
        """Give the lease back without storing anything (a failed or empty turn)."""
        with self._translate(session_id, agent_id):
            self.collection.update_one(
                d.lease_held_filter(session_id, agent_id, token), d.release_lease_update(agent_id)
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
        update = d.commit_turn_update(
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
            result = self.collection.update_one(d.commit_turn_filter(sid, aid, token, first_message_id), update)
            if result.matched_count:
                self._grow_size(sid, aid, update, added)
                self._note_appended(sid, aid, count)
                if split:
                    self._archive_after_write(sid, aid, token=token, release=True)
                return None
            self._require_agent(sid, aid)
            return int(self.collection.count_documents(d.lease_held_filter(sid, aid, token), limit=1))

    def append_messages(self, session_id: str, agent_id: str, messages: list[SessionMessage]) -> None:
        """Append several consecutive messages in one guarded write (outside a turn)."""
        if not messages:
            return
        sid, aid = session_id, agent_id
        first = messages[0].message_id
        update = d.append_messages_update(aid, messages)
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
                d.set_aside_filter(session_id, agent_id, messages[0].message_id, next_message_id),
                d.set_aside_update(agent_id, messages[0].message_id, next_message_id),
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
