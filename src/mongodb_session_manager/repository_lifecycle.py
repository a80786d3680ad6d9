"""The data-lifecycle operations of :class:`~.mongodb_session_repository.MongoDBSessionRepository`.

Retention, legal hold, purge, redaction counts, export and import: one named method per
operation, each one server command built by :mod:`.documents_lifecycle`, typed errors with the
session id. Kept apart from the repository module (whose code is the Strands-facing storage) so
the lifecycle features evolve on their own; the repository class inherits these methods.

Archived messages (buckets in ``<collection>_messages``) are part of every operation: an export
carries the whole history, an import writes a long history as document plus buckets, a purge
removes the buckets, and :meth:`LifecycleStorageMethods.purge_orphan_buckets` removes buckets no
session lists (those of sessions the TTL index deleted), with the collection-wide pipelines of
:mod:`.documents_maintenance`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo.errors import DuplicateKeyError, PyMongoError

from . import documents as d
from . import documents_archive as da
from . import documents_lifecycle as dl
from . import documents_maintenance as dm
from . import documents_turns as dt
from .blobs import BlobStore, externalize_message, resolve_whole_session
from .errors import ConcurrentModificationError, SessionAlreadyExistsError, SessionNotFoundError
from .export import export_session_document, join_archived_messages, listed_bucket_ids
from .indexes import ensure_bucket_indexes
from .portable import check_import

if TYPE_CHECKING:
    from pymongo.collection import Collection

#: How often a read of a session with its archive is tried when a purge or replacement races it.
_WHOLE_READ_ATTEMPTS = 3


def read_with_archive(
    collection: Collection[Any], buckets: Collection[Any], query: Mapping[str, Any], projection: Mapping[str, Any]
) -> dict[str, Any] | None:
    """One session document with every agent's whole history in ``messages`` (no ``archive``).

    Two reads: the document, then the buckets it lists (by ``_id``). Listed buckets are never
    deleted while they are listed, so a bucket missing from the second read means the session was
    purged or replaced in between: the document is read again. Driver errors propagate (callers
    translate them with their session id).
    """
    for attempt in range(_WHOLE_READ_ATTEMPTS):
        doc = collection.find_one(dict(query), dict(projection))
        if doc is None:
            return None
        ids = listed_bucket_ids(doc)
        try:
            if ids:
                sid = str(doc.get(d.SESSION_ID, doc.get(d.ID)))
                found = list(buckets.find(dl.bucket_ids_filter(sid, ids), dl.BUCKET_MESSAGES_PROJECTION))
                doc = join_archived_messages(doc, found)
            # Large blocks stored out of line come back inline: an export is self-contained.
            return resolve_whole_session(collection.database, collection.name, dict(doc))
        except ConcurrentModificationError:
            if attempt == _WHOLE_READ_ATTEMPTS - 1:
                raise
    return None  # pragma: no cover (the loop returns or raises)


logger = logging.getLogger(__name__)


class LifecycleStorageMethods:
    """Mixin: needs ``collection`` and ``_translate`` from the repository."""

    if TYPE_CHECKING:
        collection: Collection[Any]
        archive_policy: da.ArchivePolicy | None
        _translate: Callable[..., contextlib.AbstractContextManager[None]]

        @property
        def buckets(self) -> Collection[Any]: ...

        @property
        def blobs(self) -> BlobStore: ...

    def _lifecycle_update(self, sid: str, update: Any) -> None:
        with self._translate(sid):
            result = self.collection.update_one({d.ID: sid}, update)
        if result.matched_count == 0:
            raise SessionNotFoundError("session does not exist", session_id=sid)

    # ---- retention -----------------------------------------------------------------------------------

    def apply_default_retention(self, session_id: str, days: float | int | None) -> None:
        """A manager's ``retention_days``, counted from now, unless the session has its own or is held."""
        sid = d.validate_id(session_id, "session")
        self._lifecycle_update(sid, dl.default_retention_update(dl.validate_retention_days(days, session_id=sid)))

    def set_retention(self, session_id: str, days: float | int | None) -> None:
        """This session's own retention (``None``: kept until deleted), counted from now."""
        sid = d.validate_id(session_id, "session")
        self._lifecycle_update(sid, dl.set_retention_update(dl.validate_retention_days(days, session_id=sid)))
        logger.info("session_id=<%s> | retention_days=<%s> | retention set", sid, days)

    def set_legal_hold(self, session_id: str, held: bool) -> None:
        """Hold (never expires) or release (expiry restored from ``retention_days``, counted from now)."""
        sid = d.validate_id(session_id, "session")
        self._lifecycle_update(sid, dl.legal_hold_update(bool(held)))
        logger.info("session_id=<%s> | legal_hold=<%s> | legal hold changed", sid, bool(held))

    def get_retention(self, session_id: str) -> dict[str, Any]:
        """``{retention_days, retention_explicit, expires_at, legal_hold}`` (``None``/``False`` when unset)."""
        sid = d.validate_id(session_id, "session")
        with self._translate(sid):
            doc = self.collection.find_one({d.ID: sid}, dl.RETENTION_PROJECTION)
        if doc is None:
            raise SessionNotFoundError("session does not exist", session_id=sid)
        expires: datetime | None = doc.get(dl.EXPIRES_AT)
        return {
            dl.RETENTION_DAYS: doc.get(dl.RETENTION_DAYS),
            dl.RETENTION_EXPLICIT: bool(doc.get(dl.RETENTION_EXPLICIT, False)),
            dl.EXPIRES_AT: expires,
            dl.LEGAL_HOLD: bool(doc.get(dl.LEGAL_HOLD, False)),
        }

    # ---- purge and redaction counts -----------------------------------------------------------------------

    def purge_messages(self, session_id: str, *, keep_feedback: bool = True) -> None:
        """Empty every agent's messages (archived ones too); metadata, totals and (by default) feedback stay."""
        sid = d.validate_id(session_id, "session")
        self._lifecycle_update(sid, dl.purge_messages_update(keep_feedback=keep_feedback))
        # The update unlisted every bucket (no reader sees them any more); now they go. A split
        # racing the purge fails its guarded move (the messages it copied are gone) and removes its own.
        with self._translate(sid):
            archived = self.buckets.delete_many(dl.session_buckets_filter(sid)).deleted_count
            archived += self.blobs.delete_session(sid)  # out-of-line blocks of the purged messages
        logger.info(
            "session_id=<%s> | keep_feedback=<%s>, buckets=<%d> | messages purged", sid, keep_feedback, archived
        )

    def record_redactions(self, session_id: str, counts: Mapping[str, int]) -> None:
        """Add to the session's ``redactions`` counters (rule names and counts only)."""
        sid = d.validate_id(session_id, "session")
        if counts:
            self._lifecycle_update(sid, dl.redactions_update(counts))

    def get_redactions(self, session_id: str) -> dict[str, int]:
        sid = d.validate_id(session_id, "session")
        with self._translate(sid):
            doc = self.collection.find_one({d.ID: sid}, dl.REDACTIONS_PROJECTION)
        if doc is None:
            raise SessionNotFoundError("session does not exist", session_id=sid)
        return dict(doc.get(dl.REDACTIONS) or {})

    # ---- export and import ------------------------------------------------------------------------------

    def export_session(self, session_id: str) -> dict[str, Any]:
        """The session as plain JSON, in the one export format (see :mod:`.portable`).

        Every agent's whole history, archived messages included, exactly as the session unsplit.
        """
        sid = d.validate_id(session_id, "session")
        with self._translate(sid):
            doc = read_with_archive(self.collection, self.buckets, {d.ID: sid}, dl.EXPORT_PROJECTION)
        if doc is None:
            raise SessionNotFoundError("session does not exist", session_id=sid)
        logger.info("session_id=<%s> | session exported", sid)
        return export_session_document(doc)

    def import_session(self, data: object, *, overwrite: bool = False, session_id: str | None = None) -> str:
        """Store an exported session (under its own id, or ``session_id``); return the id.

        One write of the session document: an insert (``SessionAlreadyExistsError`` if the session
        exists) or, with ``overwrite=True``, a replacement of the whole document. A history past the
        repository's ``archive_policy`` is written as the split would leave it: the oldest messages
        go into buckets first, the document keeps the newest and lists the buckets (so an export of
        any size imports). The imported session gets a new viewer password and no turn lease; its
        expiry is counted again from its ``retention_days``.

        The whole export is checked before anything is written (:func:`.portable.check_import`):
        an agent's messages, their ids and its ``next_message_id``, the feedback, so a session that
        could not be restored or continued is refused with ``InvalidExportError``, never stored.
        """
        session = check_import(data)
        doc = dl.import_document(session, session_id=session_id)
        sid = doc[d.ID]
        with self._translate(sid):
            uploaded = self._externalize_imported(sid, doc)  # large blocks to GridFS, as live writes do
        doc, buckets = dl.archive_imported_document(doc, self.archive_policy, ObjectId)
        ids = [b[d.ID] for b in buckets]
        with self._translate(sid):
            try:
                if buckets:  # first: the document that lists them is written only once they all exist
                    ensure_bucket_indexes(self.buckets)
                    self.buckets.insert_many(buckets, ordered=True)
                self._write_imported(sid, doc, overwrite=overwrite)
            except BaseException:
                if ids:
                    with contextlib.suppress(PyMongoError):  # never listed: orphans either way
                        self.buckets.delete_many(dl.bucket_ids_filter(sid, ids))
                with contextlib.suppress(PyMongoError):
                    self.blobs.delete(uploaded)
                raise
            if overwrite:
                self._settle_replaced_archive(sid, buckets)
                self.blobs.delete_session(sid, keep=uploaded)  # the replaced session's blocks
        logger.info("session_id=<%s> | overwrite=<%s>, buckets=<%d> | session imported", sid, overwrite, len(ids))
        return str(sid)

    def _externalize_imported(self, sid: str, doc: dict[str, Any]) -> list[Any]:
        """Store the imported messages' large blocks out of line (a block over 16 MB imports too)."""
        policy = self.archive_policy
        if policy is None:
            return []
        uploaded: list[Any] = []
        try:
            for aid, agent in (doc.get(d.AGENTS) or {}).items():
                for field in (d.MESSAGES, dt.ABANDONED_MESSAGES):
                    for stored in agent.get(field) or []:
                        for key in (d.MESSAGE, d.REDACT_MESSAGE):
                            body = stored.get(key)
                            if isinstance(body, dict):
                                upload = self.blobs.uploader(sid, aid, int(stored.get(d.MESSAGE_ID) or 0))
                                new, ids = externalize_message(body, policy.blob_bytes, upload)
                                if new is not None:
                                    stored[key] = new
                                    uploaded += ids
        except BaseException:
            with contextlib.suppress(PyMongoError):
                self.blobs.delete(uploaded)
            raise
        return uploaded

    def _settle_replaced_archive(self, sid: str, buckets: list[dict[str, Any]]) -> None:
        """After an overwrite: the replaced session's buckets go, and ours are all there.

        A split of the replaced session that was running removes the agent's unlisted buckets
        (ours were unlisted until the replacement): any it removed are inserted again.
        """
        ids = [b[d.ID] for b in buckets]
        self.buckets.delete_many(dl.stale_buckets_filter(sid, ids))
        if not ids:
            return
        present = set(self.buckets.distinct(d.ID, dl.bucket_ids_filter(sid, ids)))
        missing = [b for b in buckets if b[d.ID] not in present]
        if missing:
            self.buckets.insert_many(missing, ordered=False)

    def _write_imported(self, sid: str, doc: dict[str, Any], *, overwrite: bool) -> None:
        if overwrite:
            self.collection.replace_one(dl.replace_filter(sid), doc, upsert=True)
            return
        try:
            self.collection.insert_one(doc)
        except DuplicateKeyError as exc:
            raise SessionAlreadyExistsError(
                "session already exists; pass overwrite=True to replace it", session_id=sid
            ) from exc

    # ---- buckets no session lists -------------------------------------------------------------------------

    def purge_orphan_buckets(self, *, older_than: timedelta = dm.ORPHAN_GRACE, dry_run: bool = False) -> int:
        """Delete the archived-message buckets no session document lists, and the out-of-line blocks of
        sessions whose document is gone; return how many (would) go.

        MongoDB's TTL index deletes an expired session's document, not its buckets in
        ``<collection>_messages``: run this periodically (``mongodb-session-manager purge-orphans``)
        where sessions expire. It also removes what a crashed split or import left. Buckets younger
        than ``older_than`` are kept: a split lists its buckets a moment after inserting them.
        """
        cutoff = d.now() - older_than
        pipeline = dm.orphan_buckets_pipeline(self.collection.name, cutoff)
        removed = 0
        with self._translate(None):
            for row in self.buckets.aggregate(pipeline, allowDiskUse=True):
                orphans = list(row["orphans"])
                if not dry_run:
                    orphans_filter = dl.bucket_ids_filter(row[d.ID], orphans)
                    removed += int(self.buckets.delete_many(orphans_filter).deleted_count)
                else:
                    removed += len(orphans)
            blobs = self._orphan_blobs(cutoff)
            if not dry_run:
                self.blobs.delete(blobs)
        logger.info(
            "buckets=<%d>, blobs=<%d>, dry_run=<%s> | buckets no session lists and blobs of deleted sessions removed",
            removed,
            len(blobs),
            dry_run,
        )
        return removed + len(blobs)

    def _orphan_blobs(self, cutoff: Any) -> list[Any]:
        """Out-of-line blocks whose session document is gone (expired by the TTL index, or deleted by hand)."""
        pipeline = dm.orphan_blobs_pipeline(self.collection.name, cutoff)
        return [blob_id for row in self.blobs.files.aggregate(pipeline, allowDiskUse=True) for blob_id in row["ids"]]
