"""The restore: an agent, or every agent of a session, with the messages Strands restores.

Mixed into :class:`~.mongodb_session_manager.MongoDBSessionRepository`. Strands' own restore reads
the agent and then lists its messages; here one read answers (plus one for archived buckets the
window reaches into), the replies are decoded by the driver in C, and values are walked in Python
only when the raw bytes show something to repair (:mod:`.raw_flags`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import bson
from bson.raw_bson import RawBSONDocument
from strands.types.session import Session, SessionAgent, SessionMessage

from . import documents as d
from . import documents_archive as da
from . import documents_turns as dt
from . import documents_values as dv
from .errors import MessageNotFoundError, SessionNotFoundError
from .held_records import HeldRecords
from .raw_flags import HOLDS, RawFlags

if TYPE_CHECKING:
    from pymongo.collection import Collection

    from .blobs import BlobStore


@dataclass
class RestoredAgent:
    """What a restore read: the agent, the messages Strands restores, and where the ids stand.

    ``tool_blocks`` is False only when the raw bytes read hold no ``toolUse``/``toolResult`` block,
    so the restore may skip Strands' walk that repairs unanswered tool calls.
    """

    agent: SessionAgent
    raw: dict[str, Any]
    messages: Sequence[SessionMessage]
    offset: int
    next_message_id: int
    size: int
    tool_blocks: bool = True


def _restored(
    agent_id: str, doc: Mapping[str, Any], stored: list[Any], flags: RawFlags, ids: list[Any] | None = None
) -> RestoredAgent | None:
    """``ids``: each stored message's id, when its buckets were read without them (by position)."""
    raw = doc.get("agent_data")
    if raw is None:
        return None
    agent = d.agent_from_document({d.AGENTS: {agent_id: {d.AGENT_DATA: raw}}}, agent_id)
    assert agent is not None
    if flags.repair:
        fix, message, redacted = dv.from_bson, d.MESSAGE, d.REDACT_MESSAGE
        stored = [{**m, message: fix(m[message]), redacted: fix(m.get(redacted)) or None} for m in stored]
    # Records are built as they are read (see held_records): the agent gets the message dicts. Strands
    # never reads message dates back: records carry the time of the restore, and any write of them
    # keeps the stored dates (see update_message_update).
    messages = HeldRecords(stored, d.now().isoformat(), ids=ids)
    return RestoredAgent(
        agent=agent,
        raw=dv.from_bson(dict(raw)),
        messages=messages,
        offset=int(doc.get("offset") or 0),
        next_message_id=int(doc.get("next_message_id") or 0),
        size=int(doc.get("size") or 0),
        tool_blocks=flags.tools,
    )


class BucketRead(NamedTuple):
    """Buckets a restore read, what their messages hold, and whether they were read by position
    (without their messages' ids, see :data:`da.SEQUENTIAL_IDS`)."""

    buckets: list[dict[str, Any]]
    flags: RawFlags
    by_position: bool


class RestoreStorageMixin:
    """Restores on the session collection (``self.collection``) and its buckets."""

    collection: Collection[Any]

    if TYPE_CHECKING:  # provided by MongoDBSessionRepository and its other mixins
        archive_policy: da.ArchivePolicy | None
        buckets_name: str

        @staticmethod
        def _ids(session_id: object, other_id: object = ..., *, kind: str = "agent") -> tuple[str, Any]: ...

        def _translate(self, session_id: str | None, agent_id: str | None = None) -> Any: ...

        def _remember_stored(self, sid: str, aid: str, stored: int) -> None: ...

        def _remember_size(self, sid: str, size: int) -> None: ...

        def _fetch_restore_buckets(
            self, ids: list[Any], *, by_position: bool = False, redacted: bool = False
        ) -> list[dict[str, Any]]: ...

        @property
        def blobs(self) -> BlobStore: ...

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
        read: BucketRead | None = None,
    ) -> RestoredAgent | None:
        """The agent out of its window (:func:`da.document_window`'s shape) and the buckets it lists
        (``read``: already read, with other agents' buckets); None when a listed bucket is missing
        (purged meanwhile)."""
        self._remember_stored(sid, aid, int(window.get("stored") or 0))
        messages = list(window.get(d.MESSAGES) or [])
        ids = list(window.get("bucket_ids") or [])
        numbers: list[Any] | None = None
        if ids:  # the window reaches into the archive: its buckets by _id
            if read is None:
                read = self._read_buckets(
                    ids, by_position=window.get(da.SEQUENTIAL_IDS) is True, redacted=window.get(da.REDACTED) is True
                )
                fetched = read.buckets
            else:
                fetched = [b for b in read.buckets if b.get("agent_id") == aid]
            if len(fetched) != len(ids):
                return None
            flags |= read.flags
            # Read by position, no message carries its id: each is numbered from its bucket's first.
            offset = int(window.get("offset") or 0)
            messages, numbers = da.restore_window_messages(fetched, offset, messages, by_position=read.by_position)
        if flags.blobs:
            with self._translate(sid, aid):
                messages = self.blobs.resolve(messages, d.RESTORE_CODEC_OPTIONS, session_id=sid)
        return _restored(aid, window, messages, flags, numbers)

    def _read_for_restore(self, sid: str, aid: str, projection: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        """The session read with ``projection``: decoded, and its raw bytes (a memoryview would be
        searched byte by byte in Python)."""
        with self._translate(sid, aid):
            found = self._raw_collection().find_one({d.ID: sid}, projection)
        if found is None:
            raise SessionNotFoundError("session does not exist", session_id=sid, agent_id=aid)
        raw = bytes(found.raw)
        return bson.decode(raw, codec_options=d.RESTORE_CODEC_OPTIONS), raw

    def _read_buckets(self, ids: list[Any], *, by_position: bool = False, redacted: bool = False) -> BucketRead:
        """Listed buckets by ``_id``, decoded, and what their messages hold (``by_position``: without
        their messages' ids, see :data:`da.SEQUENTIAL_IDS`; ``redacted``: with their redactions at once,
        an entry says one held a redaction, :data:`da.REDACTED`).

        A bucket records that when it is written; one without the record (a message in it was
        rewritten since) is encoded again to be searched: the markers are keys and type bytes,
        which survive the round trip, and such buckets are rare.
        """
        fetched = self._fetch_restore_buckets(ids, by_position=by_position, redacted=redacted)
        flags = RawFlags()
        for bucket in fetched:
            recorded = RawFlags.recorded(bucket.get(HOLDS))
            flags |= recorded or RawFlags.of(bson.encode(bucket, codec_options=d.RESTORE_CODEC_OPTIONS))
        return BucketRead(fetched, flags, by_position)

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
        reaching = [window for window in windows.values() if window and window.get("bucket_ids")]
        ids = [i for window in reaching for i in window["bucket_ids"]]
        read = None
        if ids:  # every agent's archived part in one find, by position if every window's buckets allow
            by_position = all(window.get(da.SEQUENTIAL_IDS) is True for window in reaching)
            redacted = any(window.get(da.REDACTED) is True for window in reaching)
            read = self._read_buckets(ids, by_position=by_position, redacted=redacted)
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
            pipeline = dt.restore_agents_pipeline(sid, buckets=self.buckets_name)
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
            buckets, more, _ = self._read_buckets(missing)
            flags |= more
        for entry in doc.get("agents") or []:
            aid = entry["agent_id"]
            self._remember_stored(sid, aid, int(entry.get("stored") or 0))
            archived = [] if not buckets else da.slice_whole_buckets(buckets, aid, int(entry.get("offset") or 0))
            messages = [*archived, *(entry.get("messages") or [])]
            if flags.blobs:
                with self._translate(sid, aid):
                    messages = self.blobs.resolve(messages, d.RESTORE_CODEC_OPTIONS, session_id=sid)
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
