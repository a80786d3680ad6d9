"""``MongoDBSessionManager``: Strands' ``RepositorySessionManager`` plus the features of this library.

The Strands lifecycle (restore, turns, sync) lives in :mod:`.session_lifecycle`, the features
(metadata, feedback, agent configuration, password, application name, guardrail auditing) in
:mod:`.manager_features`; this module builds the manager from its arguments. Nothing here builds
a query: the repository and :mod:`.documents` do.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any

from pymongo import MongoClient
from strands.session.repository_session_manager import RepositorySessionManager
from strands.types.session import Session

from . import documents as d
from . import documents_indexes as dx
from .documents import VALID_RATINGS
from .documents_archive import ArchivePolicy
from .documents_lifecycle import validate_retention_days
from .errors import MessageNotFoundError, SessionAlreadyExistsError, SessionStoreError
from .hooks.contract import OperationHook, check_hook
from .manager_async import AsyncManagerMethods
from .manager_features import SessionFeaturesMixin
from .manager_lifecycle import LifecycleFeaturesMixin
from .mongodb_connection_pool import is_client_option, split_client_options
from .mongodb_session_repository import MongoDBSessionRepository
from .redaction import Redactor
from .session_lifecycle import DEFAULT_BUSY_TIMEOUT, DEFAULT_TURN_LEASE_SECONDS, SessionLifecycleMixin

#: ``archive_policy`` not given: the repository's default applies (``None`` is a real choice: never split).
_REPOSITORY_DEFAULT = object()

logger = logging.getLogger(__name__)

__all__ = [
    "VALID_RATINGS",
    "MongoDBSessionManager",
    "OperationHook",
    "create_mongodb_session_manager",
    "is_client_option",
    "split_client_kwargs",
]

#: The camelCase keyword names of the original library, still accepted with a ``DeprecationWarning``.
DEPRECATED_HOOK_NAMES = {"metadataHook": "metadata_hook", "feedbackHook": "feedback_hook"}


def split_client_kwargs(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(MongoClient options, the rest)``; see :func:`.mongodb_connection_pool.split_client_options`."""
    return split_client_options(kwargs)


def pop_deprecated_hooks(
    kwargs: dict[str, Any], *, stacklevel: int = 3, **current: OperationHook | None
) -> dict[str, OperationHook | None]:
    """Move ``metadataHook`` / ``feedbackHook`` out of ``kwargs`` into their snake_case names, warning once each.

    ``current`` holds the snake_case values already given; passing both spellings is a ``TypeError``.
    """
    resolved = dict(current)
    for old, new in DEPRECATED_HOOK_NAMES.items():
        if old not in kwargs:
            continue
        value = kwargs.pop(old)
        warnings.warn(f"{old} is deprecated, use {new} instead", DeprecationWarning, stacklevel=stacklevel)
        if resolved.get(new) is not None and value is not None and value is not resolved[new]:
            raise TypeError(f"got both {old} and {new}; pass only {new}")
        resolved[new] = resolved.get(new) or value
    return resolved


class _AlreadyRead:
    """The repository as Strands' constructor sees it: ``read_session`` answered from a prefetch,
    every other call (``create_session``, whatever a later Strands adds) passed through."""

    def __init__(self, repository: MongoDBSessionRepository, session: Session | None) -> None:
        self._repository = repository
        self._session = session

    def read_session(self, session_id: str, **kwargs: Any) -> Session | None:
        return self._session

    def __getattr__(self, name: str) -> Any:
        return getattr(self._repository, name)


class MongoDBSessionManager(
    AsyncManagerMethods, LifecycleFeaturesMixin, SessionFeaturesMixin, SessionLifecycleMixin, RepositorySessionManager
):
    """Persist Strands agents in MongoDB, one document per session.

    Args:
        session_id: The conversation. Created on first use, resumed afterwards.
        connection_string: MongoDB URI (ignored when ``client`` is given).
        database_name / collection_name: Where sessions live.
        client: A shared ``MongoClient`` to borrow (the factory passes its pool's client).
        metadata_fields: Metadata keys to index (the viewer can filter on indexed fields).
        metadata_hook: Intercepts every metadata operation (``metadataHook=`` still works, with a
            ``DeprecationWarning``); see :mod:`.hooks.contract`.
        feedback_hook: Intercepts every feedback operation (``feedbackHook=`` likewise).
        application_name: Written into the session when this manager creates it (immutable, indexed,
            the viewer filters on it); an existing session keeps the one it was created with.
        repository: A ready ``MongoDBSessionRepository`` to use instead of building one.
        turn_lease_seconds: How long a turn's lease lasts without renewal (renewed while the turn
            runs); after a crash, the next invocation of the agent waits at most this long.
        busy_timeout: How long an invocation waits for another invocation of the same agent in
            the same session before ``SessionBusyError``.
        retention_days: Keep the session this many days after a manager last opened it (MongoDB's
            TTL index deletes it then); ``set_retention`` / ``set_legal_hold`` override it per session.
        redactor: ``(value, kind) -> value`` run on each message, metadata value and feedback comment
            before it is stored (``redaction.PIIRedactor()`` for e-mails, phones, card numbers).
        archive_policy: When the oldest messages of an agent move out of the session document
            (:class:`~.documents_archive.ArchivePolicy`; ``None`` keeps them all in it). Passed to the
            repository the manager builds.
        **kwargs: ``MongoClient`` options (``maxPoolSize=...``) for the owned client; any other
            name raises ``TypeError`` naming it.
    """

    def __init__(
        self,
        session_id: str,
        connection_string: str | None = None,
        database_name: str = "database_name",
        collection_name: str = "collection_name",
        client: MongoClient[Any] | None = None,
        metadata_fields: list[str] | None = None,
        metadata_hook: OperationHook | None = None,
        feedback_hook: OperationHook | None = None,
        application_name: str | None = None,
        *,
        repository: MongoDBSessionRepository | None = None,
        turn_lease_seconds: float = DEFAULT_TURN_LEASE_SECONDS,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        retention_days: float | None = None,
        redactor: Redactor | None = None,
        archive_policy: ArchivePolicy | object | None = _REPOSITORY_DEFAULT,
        _prefetch: bool = False,
        **kwargs: Any,
    ) -> None:
        # _prefetch (the acreate paths): read the session and every agent in one round trip now.
        d.validate_id(session_id, "session")
        metadata_fields = dx.metadata_field_list(metadata_fields)  # before a client is created
        hooks = pop_deprecated_hooks(kwargs, metadata_hook=metadata_hook, feedback_hook=feedback_hook)
        client_kwargs, _ = split_client_options(kwargs, where="MongoDBSessionManager()")
        strands_kwargs: dict[str, Any] = {}
        self.metadata_hook = check_hook(hooks["metadata_hook"], "metadata_hook")
        self.feedback_hook = check_hook(hooks["feedback_hook"], "feedback_hook")
        self._init_lifecycle(turn_lease_seconds=turn_lease_seconds, busy_timeout=busy_timeout)
        self._init_lifecycle_features(retention_days=validate_retention_days(retention_days), redactor=redactor)
        self._owns_repository = repository is None
        if repository is None:
            repository = MongoDBSessionRepository(
                connection_string=connection_string,
                database_name=database_name,
                collection_name=collection_name,
                client=client,
                metadata_fields=metadata_fields,
                application_name=application_name,
                **({} if archive_policy is _REPOSITORY_DEFAULT else {"archive_policy": archive_policy}),
                **client_kwargs,
            )
        else:
            if archive_policy is not _REPOSITORY_DEFAULT:
                raise TypeError("archive_policy given with repository=: pass it to the repository instead")
            if client_kwargs:
                raise TypeError(f"MongoClient option {sorted(client_kwargs)[0]!r} given with repository=")
            if application_name is not None and application_name != repository.application_name:
                raise TypeError("application_name given with repository=: pass it to the repository instead")
            if metadata_fields:
                repository.ensure_metadata_indexes(metadata_fields)
        self.metadata_fields = metadata_fields  # checked (a new list) above
        # One read answers Strands' read_session and every agent's restore: under an archive policy it
        # is a plain find of the document (which the policy keeps small), cheaper than the session
        # read and the agent read it replaces. The acreate paths (_prefetch) always read so, and hold
        # a new agent back until its first turn; without a policy a sync manager reads as Strands does.
        prefetched = None
        if _prefetch or (repository.archive_policy is not None and _reads_as_shipped(repository)):
            try:
                prefetched = repository.restore_session(session_id)
            except MessageNotFoundError:
                if _prefetch:
                    raise
                # An agent's listed archive is missing: the sync manager still builds (for an export
                # or metadata), and the restore or export that needs those messages reports it.
                logger.warning("session_id=<%s> | archived messages missing, reading agent by agent", session_id)
        try:
            # Strands' constructor reads the session (and creates it if missing); a prefetch answers that read.
            reads = repository if prefetched is None else _AlreadyRead(repository, prefetched[0])
            super().__init__(session_id=session_id, session_repository=reads, **strands_kwargs)
        except SessionAlreadyExistsError:
            # Another manager created the session between our read and our insert: it exists now,
            # so initialising again simply reads it (and its agents, which that manager may have added).
            logger.debug("session_id=<%s> | lost a creation race, resuming the session", session_id)
            super().__init__(session_id=session_id, session_repository=repository, **strands_kwargs)
            prefetched = None
        self.session_repository: MongoDBSessionRepository = repository
        if prefetched is not None:
            self._take_prefetched(prefetched[1], defer=_prefetch)
        elif _prefetch:
            self.prefetch_agents()
        self._apply_default_retention()

    @property
    def repository(self) -> MongoDBSessionRepository:
        return self.session_repository

    def close(self) -> None:
        """Record redaction counts still pending, then close the MongoDB client if this manager
        created it (a borrowed client stays open). A failed count write is logged with the counts and
        the client is closed anyway: close runs in ``finally`` blocks, where raising would hide the
        caller's own error."""
        try:
            self.flush_redactions()
        except SessionStoreError as exc:
            logger.warning(
                "session_id=<%s> | counts=<%s> | redaction counts not recorded: %s",
                self.session_id,
                dict(self._pending_redactions),
                exc,
            )
        finally:
            if self._owns_repository:
                self.session_repository.close()

    def __enter__(self) -> MongoDBSessionManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reads_as_shipped(repository: MongoDBSessionRepository) -> bool:
    """Whether ``repository`` reads sessions and agents with this library's own methods: a subclass
    that overrides ``read_session`` or ``restore_agent`` gets them called, not the one-read prefetch."""
    cls = type(repository)
    return (
        cls.read_session is MongoDBSessionRepository.read_session
        and cls.restore_agent is MongoDBSessionRepository.restore_agent
    )


def create_mongodb_session_manager(
    session_id: str,
    connection_string: str | None = None,
    database_name: str = "database_name",
    collection_name: str = "collection_name",
    client: MongoClient[Any] | None = None,
    application_name: str | None = None,
    **kwargs: Any,
) -> MongoDBSessionManager:
    """Convenience constructor with the original library's signature (use the factory in services).

    Importable from ``mongodb_session_manager`` and, as in the original, from this module.
    """
    current = {name: kwargs.get(name) for name in DEPRECATED_HOOK_NAMES.values()}
    kwargs.update(pop_deprecated_hooks(kwargs, stacklevel=3, **current))
    return MongoDBSessionManager(
        session_id=session_id,
        connection_string=connection_string,
        database_name=database_name,
        collection_name=collection_name,
        client=client,
        application_name=application_name,
        **kwargs,
    )
