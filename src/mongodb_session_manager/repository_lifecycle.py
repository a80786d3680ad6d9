"""The data-lifecycle operations of :class:`~.mongodb_session_repository.MongoDBSessionRepository`.

Retention, legal hold, purge, redaction counts, export and import: one named method per
operation, each one server command built by :mod:`.documents_lifecycle`, typed errors with the
session id. Kept apart from the repository module (whose code is the Strands-facing storage) so
the lifecycle features evolve on their own; the repository class inherits these methods.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pymongo.errors import DuplicateKeyError

from . import documents as d
from . import documents_lifecycle as dl
from .errors import SessionAlreadyExistsError, SessionNotFoundError
from .export import export_session_document
from .portable import check_export

if TYPE_CHECKING:
    from pymongo.collection import Collection

logger = logging.getLogger(__name__)


class LifecycleStorageMethods:
    """Mixin: needs ``collection`` and ``_translate`` from the repository."""

    if TYPE_CHECKING:
        collection: Collection[Any]
        _translate: Callable[..., contextlib.AbstractContextManager[None]]

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
        """Empty every agent's messages in one update; metadata, totals and (by default) feedback stay."""
        sid = d.validate_id(session_id, "session")
        self._lifecycle_update(sid, dl.purge_messages_update(keep_feedback=keep_feedback))
        logger.info("session_id=<%s> | keep_feedback=<%s> | messages purged", sid, keep_feedback)

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
        """The session as plain JSON, in the one export format (see :mod:`.portable`)."""
        sid = d.validate_id(session_id, "session")
        with self._translate(sid):
            doc = self.collection.find_one({d.ID: sid}, dl.EXPORT_PROJECTION)
        if doc is None:
            raise SessionNotFoundError("session does not exist", session_id=sid)
        logger.info("session_id=<%s> | session exported", sid)
        return export_session_document(doc)

    def import_session(self, data: object, *, overwrite: bool = False, session_id: str | None = None) -> str:
        """Store an exported session (under its own id, or ``session_id``); return the id.

        One write: an insert (``SessionAlreadyExistsError`` if the session exists) or, with
        ``overwrite=True``, a replacement of the whole document. The imported session gets a new
        viewer password and no turn lease; its expiry is counted again from its ``retention_days``.
        """
        session = check_export(data)
        doc = dl.import_document(session, session_id=session_id)
        sid = doc[d.ID]
        with self._translate(sid):
            if overwrite:
                self.collection.replace_one(dl.replace_filter(sid), doc, upsert=True)
            else:
                try:
                    self.collection.insert_one(doc)
                except DuplicateKeyError as exc:
                    raise SessionAlreadyExistsError(
                        "session already exists; pass overwrite=True to replace it", session_id=sid
                    ) from exc
        logger.info("session_id=<%s> | overwrite=<%s> | session imported", sid, overwrite)
        return str(sid)
