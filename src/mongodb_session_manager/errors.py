"""The library's typed errors.

Every error is a Strands ``SessionException`` so code written against Strands' own session
managers keeps catching what it caught before; the subclasses let callers react precisely
(retry a conflict, tell a user their input was refused, page an operator when the database is
down). Input errors are also ``ValueError`` so ordinary validation handlers catch them.
"""

from __future__ import annotations

from strands.types.exceptions import SessionException, StorageError


class SessionStoreError(SessionException):
    """Root of this library's errors. Carries the session id (and agent id) it concerns."""

    def __init__(self, message: str, *, session_id: str | None = None, agent_id: str | None = None) -> None:
        self.session_id = session_id
        self.agent_id = agent_id
        context = []
        if session_id is not None:
            context.append(f"session_id=<{session_id}>")
        if agent_id is not None:
            context.append(f"agent_id=<{agent_id}>")
        super().__init__(f"{' | '.join(context)} | {message}" if context else message)


# ---- refused input (nothing was written) ----------------------------------------------------------


class InvalidInputError(SessionStoreError, ValueError):
    """Input was refused before it reached MongoDB; nothing was written."""


class InvalidIdentifierError(InvalidInputError):
    """A session, agent, multi-agent or message id cannot be used as (part of) a field path."""


class InvalidMetadataError(InvalidInputError):
    """A metadata key or value cannot be stored (bad key, or a value BSON cannot encode)."""


class InvalidFeedbackError(InvalidInputError):
    """A feedback payload is malformed (for example an unknown rating)."""


class InvalidExportError(InvalidInputError):
    """Data given to ``import_session`` is not a session export (wrong format, missing or bad fields)."""


class UnsupportedSchemaVersionError(InvalidExportError):
    """The export (or a stored document) has a schema version newer than this library understands.

    Upgrade the library that imports it; nothing was written.
    """


# ---- missing / existing records --------------------------------------------------------------------


class NotFoundError(SessionStoreError):
    """The record an update or delete targets does not exist."""


class SessionNotFoundError(NotFoundError):
    pass


class AgentNotFoundError(NotFoundError):
    pass


class MessageNotFoundError(NotFoundError):
    pass


class MultiAgentNotFoundError(NotFoundError):
    pass


class AlreadyExistsError(SessionStoreError):
    """A create targets a record that already exists; the existing record was left untouched."""


class SessionAlreadyExistsError(AlreadyExistsError):
    pass


class AgentAlreadyExistsError(AlreadyExistsError):
    pass


class MultiAgentAlreadyExistsError(AlreadyExistsError):
    pass


# ---- write conflicts and limits --------------------------------------------------------------------


class ConcurrentModificationError(SessionStoreError):
    """Another writer got there first (for example it already stored this message id).

    The stored document is unchanged by the refused write; re-read the session and retry.
    """


class MessageConflictError(ConcurrentModificationError):
    pass


class SessionBusyError(ConcurrentModificationError):
    """Another invocation of the same agent in the same session holds the turn lease.

    Raised before this invocation wrote anything, after waiting ``busy_timeout`` seconds for the
    other turn to finish. Retry later (HTTP 409/429), or show "still answering" to the user.
    """


class TurnLeaseLostError(ConcurrentModificationError):
    """This turn's lease expired and another invocation took it before the turn could be stored.

    Nothing of this turn was stored and the agent's in-memory history was rolled back, so the
    same agent can be invoked again. It happens when a turn outlives its lease without renewing
    it (a stalled process); raise ``turn_lease_seconds`` if turns legitimately pause that long.
    """


class DocumentTooLargeError(SessionStoreError):
    """The write would push the session document past MongoDB's 16 MB BSON limit.

    Nothing was written; the existing session stays readable. Start a new session, or trim the
    conversation (a conversation manager) before it grows this far.
    """


# ---- stored data that is not whole ------------------------------------------------------------------


class MissingBlobError(SessionStoreError):
    """A stored message refers to an out-of-line content block (GridFS ``<collection>_blobs``) that is gone.

    The library deletes a block only after no stored message refers to it any more, so this is data
    lost outside it: the bucket's files or chunks deleted by hand, or a database restored without
    them. Reading again does not bring it back (a block that went with a purge, deletion or rewrite
    racing the read is a ``ConcurrentModificationError`` instead): restore the bucket from a backup,
    or rewrite (``update_message``) or purge the messages that refer to it.
    """


# ---- the database itself -----------------------------------------------------------------------------


class DatabaseError(SessionStoreError):
    """MongoDB (or the network to it) failed. The original ``PyMongoError`` is the ``__cause__``."""


class DatabaseUnavailableError(DatabaseError):
    """No server could be reached in time (server selection / network timeout)."""


class FactoryNotInitializedError(RuntimeError):
    """``get_global_factory()`` was called before ``initialize_global_factory()``."""


__all__ = [
    "AgentAlreadyExistsError",
    "AgentNotFoundError",
    "AlreadyExistsError",
    "ConcurrentModificationError",
    "DatabaseError",
    "DatabaseUnavailableError",
    "DocumentTooLargeError",
    "FactoryNotInitializedError",
    "InvalidExportError",
    "InvalidFeedbackError",
    "InvalidIdentifierError",
    "InvalidInputError",
    "InvalidMetadataError",
    "MessageConflictError",
    "MessageNotFoundError",
    "MissingBlobError",
    "MultiAgentAlreadyExistsError",
    "MultiAgentNotFoundError",
    "NotFoundError",
    "SessionAlreadyExistsError",
    "SessionBusyError",
    "SessionException",
    "SessionNotFoundError",
    "SessionStoreError",
    "TurnLeaseLostError",
    "UnsupportedSchemaVersionError",
]


# ---- Strands ``Storage`` (the snapshot path) ----------------------------------------------------------


class StorageKeyError(InvalidInputError, StorageError):
    """A ``Storage`` key or prefix was refused (empty, a ``..`` segment, a backslash); nothing was sent.

    Also Strands' ``StorageError``, which its own backends raise for the same keys.
    """


class StorageBackendError(DatabaseError, StorageError):
    """MongoDB failed during a ``MongoDBStorage`` operation.

    Also Strands' ``StorageError``, the one type Strands' snapshot code expects from a storage; the
    precise typed error (``DatabaseUnavailableError``, ``DocumentTooLargeError``...) is the ``__cause__``.
    """


__all__ += ["StorageBackendError", "StorageKeyError"]
