"""The storage side of archived messages: the split, and reads and rewrites that reach the archive.

Mixed into :class:`~.mongodb_session_repository.MongoDBSessionRepository`. The shapes live in
:mod:`.documents_archive` and :mod:`.documents_split`; the rules that make a split safe are:

- it runs under the agent's turn lease (its own, or the committing turn's), so no two splits of one
  agent overlap and no turn commits half-way through one;
- the buckets are inserted first, then one guarded update of the session document drops the moved
  messages and lists the buckets. The guard pins the moved range exactly as copied, so a message
  rewritten in between (a redaction) fails the move instead of being lost;
- a bucket the document does not list is never read; under the lease, unlisted buckets of the
  agent are orphans by construction and are deleted before the next split.

A crash at any point therefore leaves the session readable, with every message exactly once.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo.errors import PyMongoError

from . import documents as d
from . import documents_archive as da
from . import documents_split as dsp
from . import documents_turns as dt
from .blobs import BlobStore, externalize_message, externalize_update
from .errors import MessageNotFoundError, SessionStoreError
from .indexes import ensure_bucket_indexes

if TYPE_CHECKING:
    from pymongo.collection import Collection

logger = logging.getLogger(__name__)

#: A split's own lease (when no turn holds one) lasts this long; a split takes a few round trips.
SPLIT_LEASE_MS = 30_000


def _owner() -> str:
    """Who holds a split's lease, for whoever reads it (the token decides): read at each split, so a
    forked worker names its own process, not its parent's."""
    return f"{socket.gethostname()}:{os.getpid()}:archive"


class ArchiveStorageMixin:
    """Archive operations (``self.collection``, ``self.archive_policy``, ``self._translate``)."""

    collection: Collection[Any]
    archive_policy: da.ArchivePolicy | None

    if TYPE_CHECKING:  # provided by MongoDBSessionRepository and TurnStorageMixin (later in the MRO)

        def _translate(self, session_id: str | None, agent_id: str | None = None) -> Any: ...

        def _raw_collection(self) -> Collection[Any]: ...

        def _known_sizes(self) -> dict[str, int]: ...

        def _require_agent(self, sid: str, aid: str) -> None: ...

    # ---- the companion collection -------------------------------------------------------------

    @property
    def buckets(self) -> Collection[Any]:
        """``<collection>_messages``: archived messages, one document per bucket."""
        coll = self.__dict__.get("_buckets")
        if coll is None:
            name = da.buckets_collection_name(self.collection.name)
            coll = self.__dict__["_buckets"] = self.collection.database.get_collection(
                name, codec_options=self.collection.codec_options
            )
        return coll

    @property
    def blobs(self) -> BlobStore:
        """``<collection>_blobs``: the GridFS bucket of content blocks stored out of line."""
        store = self.__dict__.get("_blobs")
        if store is None:
            store = self.__dict__["_blobs"] = BlobStore(self.collection.database, self.collection.name)
        return store

    def _externalize(self, sid: str, aid: str, update: dict[str, Any]) -> list[ObjectId]:
        """Upload the large blocks of the messages an append or commit pushes; markers replace them."""
        policy = self.archive_policy
        if policy is None:
            return []

        def uploader(message_id: int) -> Callable[[bytes], ObjectId]:
            # The GridFS bucket is built on the first upload only: most turns have no block to move.
            return lambda data: self.blobs.uploader(sid, aid, message_id)(data)

        return externalize_update(update, [d.messages_path(aid)], policy.blob_bytes, uploader)

    def _discard_blobs(self, sid: str, ids: list[ObjectId]) -> None:
        """A write that uploaded blobs failed: remove them (logged if that fails too; the write's error wins)."""
        if not ids:
            return
        try:
            self.blobs.delete(ids)
        except Exception as exc:  # the caller re-raises the write's own error
            logger.warning(
                "session_id=<%s>, blobs=<%d>, error=<%s> | could not remove unused blobs", sid, len(ids), exc
            )

    @property
    def buckets_name(self) -> str:
        return da.buckets_collection_name(self.collection.name)

    def _restore_buckets(self) -> Collection[Any]:
        """The bucket collection decoding as restores do (:data:`documents.RESTORE_CODEC_OPTIONS`)."""
        coll = self.__dict__.get("_restore_buckets_coll")
        if coll is None:
            coll = self.__dict__["_restore_buckets_coll"] = self.buckets.with_options(
                codec_options=d.RESTORE_CODEC_OPTIONS
            )
        return coll

    # ---- estimates: when is a split due ---------------------------------------------------------

    def _stored_counts(self) -> dict[tuple[str, str], int]:
        counts = self.__dict__.get("_stored")
        if counts is None:
            counts = self.__dict__["_stored"] = {}
        return counts

    def _remember_stored(self, sid: str, aid: str, stored: int) -> None:
        counts = self._stored_counts()
        counts[(sid, aid)] = stored
        if len(counts) > 10_000:
            counts.pop(next(iter(counts)))

    def _split_due(
        self, sid: str, aid: str, added_messages: int, added_bytes: int, *, next_message_id: int | None = None
    ) -> bool:
        """Whether the agent passes the policy after a write of this size (from estimates, no round trip).

        An agent this process neither created nor restored is not known. Once its message ids show
        that it may hold more than ``max_messages``, it is measured (one aggregation, once), and from
        then on every write is judged by the estimate.
        """
        policy = self.archive_policy
        if policy is None:
            return False
        stored = self._stored_counts().get((sid, aid))
        if stored is None and next_message_id is not None and next_message_id > policy.max_messages:
            with self._translate(sid, aid):
                docs = list(self.collection.aggregate(d.document_size_pipeline(sid, aid)))
            if docs:
                self._known_sizes()[sid] = int(docs[0]["size"])
                self._remember_stored(sid, aid, stored := int(docs[0]["stored"]))
                added_messages = 0  # measured after the write: it is already counted
                added_bytes = 0
        if stored is None:
            return False
        size = self._known_sizes().get(sid, 0)
        return policy.due(stored + added_messages, size + added_bytes)

    def _note_appended(self, sid: str, aid: str, added_messages: int) -> None:
        key = (sid, aid)
        counts = self._stored_counts()
        if key in counts:
            counts[key] += added_messages

    # ---- the split ---------------------------------------------------------------------------

    def archive_agent(self, session_id: str, agent_id: str, *, token: str | None = None, release: bool = False) -> int:
        """Move the agent's oldest messages into buckets if it passes the policy; return how many moved.

        ``token`` is the lease of a turn that is committing (the split then runs inside that turn,
        and ``release`` ends the lease with the move). Without it the split takes the lease itself,
        and does nothing when a turn is running: that turn splits when it commits.
        """
        policy = self.archive_policy or da.ArchivePolicy()
        sid, aid = self._ids(session_id, agent_id)
        own = token is None
        lease = token or uuid.uuid4().hex
        with self._translate(sid, aid):
            if own:
                taken = self.collection.update_one(
                    dsp.split_lease_filter(sid, aid, lease),
                    dsp.split_lease_update(aid, lease, _owner(), SPLIT_LEASE_MS),
                )
                if not taken.matched_count:
                    return 0
            moved = 0
            try:
                moved = self._split(sid, aid, lease, policy, release=own or release)
            finally:
                if moved == 0 and (own or release):
                    self.collection.update_one(dt.lease_held_filter(sid, aid, lease), dt.release_lease_update(aid))
        return moved

    def _split(self, sid: str, aid: str, token: str, policy: da.ArchivePolicy, *, release: bool) -> int:
        found = self._raw_collection().find_one({d.ID: sid}, dsp.split_read_projection(aid))
        if found is None:
            return 0
        try:
            state = dsp.split_state(found, aid)
        except ValueError as exc:
            logger.warning("session_id=<%s>, agent_id=<%s>, error=<%s> | cannot split the agent", sid, aid, exc)
            return 0
        size, archived, stored = state.size, state.archived, state.stored
        self._known_sizes()[sid] = size
        self._remember_stored(sid, aid, len(stored))
        plan = dsp.plan_split(stored, size, policy)
        if plan is None:
            return 0
        messages = state.raw_messages[: plan.count]  # as read, re-sent byte for byte
        ensure_bucket_indexes(self.buckets)
        self.buckets.delete_many(dsp.orphan_buckets_filter(sid, aid, archived))
        ids = [ObjectId() for _ in plan.groups]
        bucket_docs, entries = dsp.bucket_documents(sid, aid, messages, plan, archived=archived, ids=ids)
        self.buckets.insert_many(bucket_docs, ordered=True)
        result = self.collection.update_one(
            dsp.move_filter(sid, aid, token, plan, archived), dsp.move_update(aid, plan, entries, release=release)
        )
        if not result.matched_count:
            self.buckets.delete_many(da.buckets_query(ids))
            logger.info(
                "session_id=<%s>, agent_id=<%s> | messages changed during the split; it is tried again later",
                sid,
                aid,
            )
            return 0
        self._known_sizes()[sid] = size - plan.moved_bytes
        self._remember_stored(sid, aid, len(stored) - plan.count)
        logger.debug(
            "session_id=<%s>, agent_id=<%s>, moved=<%d>, buckets=<%d>, bytes=<%d> | archived oldest messages",
            sid,
            aid,
            plan.count,
            len(ids),
            plan.moved_bytes,
        )
        return plan.count

    def _archive_after_write(self, sid: str, aid: str, *, token: str | None = None, release: bool = False) -> None:
        """Split after a write that is already stored: a failure here is logged, never raised.

        The caller's write succeeded; failing it now would make the caller retry a stored turn. The
        split is tried again by the next write, and a session that cannot split is refused at the
        16 MB limit with the usual typed error.
        """
        try:
            self.archive_agent(sid, aid, token=token, release=release)
        except SessionStoreError as exc:
            logger.warning(
                "session_id=<%s>, agent_id=<%s>, error=<%s> | could not archive old messages; tried again "
                "after the next write",
                sid,
                aid,
                exc,
            )

    # ---- reads and rewrites that reach the archive --------------------------------------------

    def _fetch_window_buckets(self, doc: dict[str, Any], *, fields: tuple[str, ...] | None = None) -> None:
        """Add the buckets a too-large window left out of the aggregation (a second query, batched).

        ``doc`` is a window read (``bucket_ids``, ``offset``, ``end``); ``fields`` keeps only those
        message fields, as the aggregation's projection would have.
        """
        ids = da.window_needs_query(doc)
        if not ids:
            return
        offset, end = int(doc.get("offset") or 0), int(doc.get("end") or da.NO_END)
        cursor = self.buckets.find(da.buckets_query(ids), da.BUCKET_READ_PROJECTION)
        buckets = [da.slice_bucket(b, offset, end) for b in cursor]
        if fields is not None:
            for bucket in buckets:
                bucket[d.MESSAGES] = [{k: m[k] for k in fields if k in m} for m in bucket[d.MESSAGES]]
        doc["buckets"] = buckets

    def _fetch_restore_buckets(
        self, ids: list[Any], *, by_position: bool = False, redacted: bool = False
    ) -> list[dict[str, Any]]:
        """Listed buckets by ``_id`` as a restore reads them (:data:`da.BUCKET_RESTORE_PROJECTION`),
        decoded by the driver in one pass over the reply. ``by_position`` (:data:`da.SEQUENTIAL_IDS`
        buckets): without the message ids, and without redactions where the bucket records it has none;
        a bucket that does not (a message in it was rewritten) is read again with them. A bucket gone
        in between is left out, as one gone before the first read is. ``redacted``: an entry says its
        bucket held a redaction when written, so every bucket is read with the redactions at once
        (one read instead of two; a ``null`` more to decode per message of the others)."""
        buckets = self._restore_buckets()
        if not by_position:
            return list(buckets.find(da.buckets_query(ids), da.BUCKET_RESTORE_PROJECTION))
        if redacted:
            return list(buckets.find(da.buckets_query(ids), da.BUCKET_RESTORE_BY_POSITION_PROJECTION))
        fetched = list(buckets.find(da.buckets_query(ids), da.BUCKET_RESTORE_UNREDACTED_PROJECTION))
        unsure = {b[d.ID] for b in fetched if not da.bucket_unredacted(b)}
        if not unsure:
            return fetched
        # Rewritten since it was written (or holding a redaction): read again with the redactions.
        again = {
            b[d.ID]: b for b in buckets.find(da.buckets_query(list(unsure)), da.BUCKET_RESTORE_BY_POSITION_PROJECTION)
        }
        return [
            again[b[d.ID]] if b[d.ID] in unsure else b for b in fetched if b[d.ID] not in unsure or b[d.ID] in again
        ]

    def _update_archived_message(
        self, sid: str, aid: str, message_id: int, update: Mapping[str, Any], array_filters: list[dict[str, Any]]
    ) -> bool:
        """Apply a message update to the listed bucket that holds the message; False if none does."""
        docs = list(self.collection.aggregate(da.containing_buckets_pipeline(sid, aid, message_id)))
        bucket_ids = docs[0]["bucket_ids"] if docs else []
        if not bucket_ids:
            return False
        on_bucket, on_session = da.split_message_update(aid, update)
        result = self.buckets.update_one(
            da.bucket_of_message_filter(bucket_ids[0], message_id), on_bucket, array_filters=array_filters
        )
        if not result.matched_count:
            return False
        self._record_redactions(sid, aid, bucket_ids[0])
        if on_session:
            self.collection.update_one({d.ID: sid}, on_session)
        return True

    def _record_redactions(self, sid: str, aid: str, bucket_id: Any) -> None:
        """After a rewrite in a bucket: whether it holds a redaction, computed again on the server.

        The rewrite removed the record in its own update, so a restore meanwhile reads the bucket with
        its redactions; without the record again, every later restore would. The rewrite is stored
        whatever happens here: a failure is logged, and the bucket stays read with its redactions.
        """
        try:
            self.buckets.update_one({d.ID: bucket_id}, da.bucket_redacted_update())
        except PyMongoError as exc:
            logger.warning(
                "session_id=<%s>, agent_id=<%s>, error=<%s> | could not record the bucket's redactions; "
                "restores read them from its messages",
                sid,
                aid,
                exc,
            )

    def _guarded_message_update(
        self, sid: str, aid: str, message_id: int, update: Mapping[str, Any], array_filters: list[dict[str, Any]]
    ) -> None:
        """One update of one stored message, in the document or in its bucket; a precise error if absent.

        A rewrite of the message's body stores its large blocks out of line and, once stored, deletes
        the blobs its previous version referred to (a redaction leaves no copy of the original).
        """
        bodies = [
            k for k in (update.get("$set") or {}) if k.endswith((f".$[m].{d.MESSAGE}", f".$[m].{d.REDACT_MESSAGE}"))
        ]
        if not bodies:
            self._message_update(sid, aid, message_id, update, array_filters)
            return
        update = {op: dict(fields) for op, fields in update.items()}
        uploaded: list[ObjectId] = []
        policy = self.archive_policy
        with self._translate(sid, aid):
            for key in bodies:
                body = update["$set"][key]
                if policy is not None and isinstance(body, Mapping):
                    new, ids = externalize_message(body, policy.blob_bytes, self.blobs.uploader(sid, aid, message_id))
                    if new is not None:
                        update["$set"][key] = new
                        uploaded += ids
        try:
            self._message_update(sid, aid, message_id, update, array_filters)
        except BaseException:
            self._discard_blobs(sid, uploaded)
            raise
        with self._translate(sid, aid):
            self.blobs.superseded(sid, aid, message_id, keep=uploaded)

    def _message_update(
        self, sid: str, aid: str, message_id: int, update: Mapping[str, Any], array_filters: list[dict[str, Any]]
    ) -> None:
        with self._translate(sid, aid):
            result = self.collection.update_one(
                d.message_exists_filter(sid, aid, message_id), dict(update), array_filters=array_filters
            )
            if result.matched_count:
                return
            if self._update_archived_message(sid, aid, message_id, update, array_filters):
                return
            self._require_agent(sid, aid)
        raise MessageNotFoundError(f"message {message_id} does not exist", session_id=sid, agent_id=aid)

    def delete_archive(self, session_id: str) -> int:
        """Remove every bucket and out-of-line block of the session (after the session document itself)."""
        with self._translate(session_id):
            self.blobs.delete_session(session_id)
            return int(self.buckets.delete_many({d.SESSION_ID: session_id}).deleted_count)
