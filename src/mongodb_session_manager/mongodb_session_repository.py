"""``MongoDBSessionRepository``: Strands' ``SessionRepository`` on one MongoDB document per session.

This layer talks to MongoDB and nothing else. Every write is one atomic update built by
:mod:`.documents`, guarded by a filter when order matters, so two processes writing the same
session can never overwrite each other; every read projects only what it returns. Driver errors
reach the caller as typed :mod:`.errors` carrying the session id.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import bson
from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.errors import (
    DuplicateKeyError,
    InvalidName,
)
from strands.session.session_repository import SessionRepository
from strands.types.session import Session, SessionAgent, SessionMessage

from . import documents as d
from . import documents_archive as da
from . import documents_indexes as dx
from . import documents_values as dv
from .documents_archive import DEFAULT_ARCHIVE_POLICY, ArchivePolicy
from .driver_errors import translate_errors
from .errors import (
    AgentAlreadyExistsError,
    AgentNotFoundError,
    InvalidInputError,
    MultiAgentAlreadyExistsError,
    MultiAgentNotFoundError,
    SessionAlreadyExistsError,
    SessionNotFoundError,
    SessionStoreError,
)
from .indexes import ensure_indexes, forget_indexes
from .mongodb_connection_pool import new_client, split_client_options
from .repository_archive import ArchiveStorageMixin
from .repository_features import SessionFeatureMethods
from .repository_lifecycle import LifecycleStorageMethods
from .repository_restore import RestoreStorageMixin
from .repository_turns import TurnStorageMixin

__all__ = ["MongoDBSessionRepository", "ensure_indexes", "forget_indexes"]

if TYPE_CHECKING:
    from strands.multiagent.base import MultiAgentBase

logger = logging.getLogger(__name__)

#: Default size after which a warning is logged once per session (75% of the BSON limit).
DEFAULT_SIZE_WARNING_BYTES = 12 * 1024 * 1024


#: Sessions already warned about their size, per process (a manager per request must not warn each time).
_warned_sizes: set[tuple[str, str]] = set()
_WARNED_SIZES_LIMIT = 10_000

_NOT_GIVEN: Any = object()

#: How many recent ``read_agent`` results are kept for ``take_agent_read``.
_RECENT_READS_LIMIT = 64


class MongoDBSessionRepository(
    ArchiveStorageMixin,
    LifecycleStorageMethods,
    SessionFeatureMethods,
    RestoreStorageMixin,
    TurnStorageMixin,
    SessionRepository,
):
    """Stores Strands sessions, agents, messages and multi-agent state in MongoDB.

    Args:
        connection_string: MongoDB URI. Ignored when ``client`` is given.
        database_name: Database holding the session collection.
        collection_name: Collection with one document per session.
        client: A ``MongoClient`` to borrow. The repository never closes a borrowed client;
            without one it creates and owns a client, which :meth:`close` closes.
        metadata_fields: Metadata keys to index, so the viewer can filter on them.
        application_name: Written into every session this repository creates (immutable, indexed;
            read back with :meth:`get_application_name`). ``None`` stores ``null``.
        size_warning_bytes: Log a warning (once per session) when a document grows past this.
        ensure_indexes_on_init: Ensure the collection's indexes (once per process) before the first
            operation; ``False`` leaves index management to the caller.
        archive_policy: When an agent's oldest messages move out of the session document into
            ``<collection>_messages`` (see :class:`~.documents_archive.ArchivePolicy`); ``None`` never
            moves them (sessions then stop at MongoDB's 16 MB document limit).
        **mongo_client_kwargs: Options for the owned ``MongoClient`` (``maxPoolSize=...``); any
            other name raises ``TypeError``. With a borrowed ``client`` they are ignored (logged).
    """

    def __init__(
        self,
        connection_string: str | None = None,
        database_name: str = "database_name",
        collection_name: str = "collection_name",
        client: MongoClient[Any] | None = None,
        metadata_fields: list[str] | None = None,
        application_name: str | None = None,
        *,
        size_warning_bytes: int = DEFAULT_SIZE_WARNING_BYTES,
        ensure_indexes_on_init: bool = True,
        archive_policy: ArchivePolicy | None = DEFAULT_ARCHIVE_POLICY,
        **mongo_client_kwargs: Any,
    ) -> None:
        client_options, _ = split_client_options(mongo_client_kwargs, where="MongoDBSessionRepository()")
        self.application_name = d.validate_application_name(application_name)
        metadata_fields = dx.metadata_field_list(metadata_fields)  # before a client is created
        if client is None:
            if connection_string is None:
                raise ValueError("MongoDBSessionRepository needs a connection_string or a client")
            client = new_client(connection_string, **client_options)
            self._owns_client = True
        else:
            if client_options:
                logger.warning(
                    "options=<%s> | MongoClient options are ignored when a client is passed", sorted(client_options)
                )
            self._owns_client = False
        self.client: MongoClient[Any] = client
        self.database_name = database_name
        self.collection_name = collection_name
        self.size_warning_bytes = size_warning_bytes
        if archive_policy is not None and not isinstance(archive_policy, ArchivePolicy):
            raise InvalidInputError(f"archive_policy must be an ArchivePolicy or None, got {archive_policy!r}")
        self.archive_policy = archive_policy
        self.metadata_fields = metadata_fields  # checked (a new list) above
        self._metadata_index_fields = dx.metadata_index_fields(self.metadata_fields)
        codec = d.CODEC_OPTIONS
        try:
            self.collection: Collection[Any] = client[database_name].get_collection(
                collection_name, codec_options=codec
            )
        except InvalidName as exc:
            raise InvalidInputError(f"invalid database or collection name: {exc}") from exc
        self._recent_agent_reads: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self._closed = False
        # Indexes are ensured by the first operation, not here: the constructor does no network I/O
        # (so building a manager per request is free), and if the server is down the error comes
        # from an operation that knows its session id.
        self._indexes_ready = not ensure_indexes_on_init

    # ---- lifecycle ------------------------------------------------------------------------------

    @property
    def owns_client(self) -> bool:
        return self._owns_client

    def close(self) -> None:
        """Close the client if this repository created it; a borrowed client stays open."""
        if self._owns_client and not self._closed:
            self.client.close()
        self._closed = True

    # ---- sessions --------------------------------------------------------------------------------

    def create_session(self, session: Session, **kwargs: Any) -> Session:
        """Insert the session document; raise ``SessionAlreadyExistsError`` if it exists."""
        sid, _ = self._ids(session.session_id)
        doc = d.new_session_document(session, application_name=self.application_name)
        with self._translate(sid):
            try:
                self.collection.insert_one(doc)
            except DuplicateKeyError as exc:
                raise SessionAlreadyExistsError("session already exists", session_id=sid) from exc
        # The size is known from here on (and estimated per write), so it is never measured on the server.
        self._remember_size(sid, len(bson.encode(doc)))
        logger.debug("session_id=<%s> | created session", sid)
        return session

    def read_session(self, session_id: str, **kwargs: Any) -> Session | None:
        sid, _ = self._ids(session_id)
        with self._translate(sid):
            doc = self.collection.find_one({d.ID: sid}, d.SESSION_PROJECTION)
        return d.session_from_document(doc) if doc else None

    def delete_session(self, session_id: str, **kwargs: Any) -> None:
        """Remove the session and everything in it (data-deletion requests)."""
        sid, _ = self._ids(session_id)
        with self._translate(sid):
            result = self.collection.delete_one({d.ID: sid})
            # Buckets go after the document: a crash in between leaves only unreadable orphans, which
            # the next delete (or a session created again with this id, on its first split) removes.
            archived = self.buckets.delete_many({d.SESSION_ID: sid}).deleted_count
            archived += self.blobs.delete_session(sid)
        if result.deleted_count == 0:
            if archived:
                logger.info("session_id=<%s>, buckets=<%d> | removed archived messages left by a crash", sid, archived)
                return
            raise SessionNotFoundError("session does not exist", session_id=sid)
        _warned_sizes.discard((self.collection.full_name, sid))
        logger.info("session_id=<%s> | deleted session", sid)

    # ---- agents ----------------------------------------------------------------------------------

    def create_agent(self, session_id: str, session_agent: SessionAgent, **kwargs: Any) -> None:
        sid, aid = self._ids(session_id, session_agent.agent_id)
        self._guarded_update(
            sid,
            aid,
            d.create_agent_filter(sid, aid),
            d.create_agent_update(session_agent),
            AgentAlreadyExistsError(
                "agent already exists (created concurrently?); existing agent left untouched",
                session_id=sid,
                agent_id=aid,
            ),
        )
        self._remember_stored(sid, aid, 0)  # a new agent: every later write is judged against the policy

    def read_agent(self, session_id: str, agent_id: str, **kwargs: Any) -> SessionAgent | None:
        sid, aid = self._ids(session_id, agent_id)
        with self._translate(sid, aid):
            doc = self.collection.find_one({d.ID: sid}, d.agent_projection(aid))
        raw = d.raw_agent_data(doc, aid)
        if raw is not None:
            self._recent_agent_reads[(sid, aid)] = raw
            while len(self._recent_agent_reads) > _RECENT_READS_LIMIT:
                self._recent_agent_reads.popitem(last=False)
        return d.agent_from_document(doc, aid)

    def take_agent_read(self, session_id: str, agent_id: str) -> dict[str, Any] | None:
        """The stored ``agent_data`` that the last ``read_agent`` returned, handed over once.

        The manager uses it right after Strands restores an agent (to know what is already stored:
        the captured config, and whether the restored state equals the stored one) without a
        second round trip. Bounded, so direct repository users never accumulate entries.
        """
        return self._recent_agent_reads.pop((session_id, agent_id), None)

    def update_agent(self, session_id: str, session_agent: SessionAgent, **kwargs: Any) -> None:
        sid, aid = self._ids(session_id, session_agent.agent_id)
        self._guarded_update(
            sid,
            aid,
            d.agent_exists_filter(sid, aid),
            d.update_agent_update(session_agent),
            AgentNotFoundError("agent does not exist", session_id=sid, agent_id=aid),
        )

    # ---- messages --------------------------------------------------------------------------------

    def create_message(self, session_id: str, agent_id: str, session_message: SessionMessage, **kwargs: Any) -> None:
        """Append a message; its id must be new and larger than every stored id of the agent.

        A stale writer (another manager stored this id first) gets ``MessageConflictError`` and
        nothing is written. A plain ``update_one``: unlike ``findAndModify`` it never makes the server
        keep a copy of the whole document for retryable writes.
        """
        sid, aid = self._ids(session_id, agent_id)
        d.validate_message_id(session_message.message_id, session_id=sid)
        self.append_messages(sid, aid, [session_message])

    def read_message(self, session_id: str, agent_id: str, message_id: int, **kwargs: Any) -> SessionMessage | None:
        sid, aid = self._ids(session_id, agent_id)
        message_id = d.validate_message_id(message_id, session_id=sid)
        with self._translate(sid, aid):
            pipeline = d.read_message_pipeline(sid, aid, message_id, buckets=self.buckets_name)
            docs = list(self.collection.aggregate(pipeline))
        if not docs:
            return None
        messages = list(docs[0]["messages"]) + [m for b in docs[0].get("buckets") or [] for m in b[d.MESSAGES]]
        with self._translate(sid, aid):
            messages = self.blobs.resolve(messages[:1], session_id=sid)
        return d.message_from_document(messages[0]) if messages else None

    def update_message(self, session_id: str, agent_id: str, session_message: SessionMessage, **kwargs: Any) -> None:
        """Rewrite a stored message (redaction, or a message the agent replaced after appending)."""
        sid, aid = self._ids(session_id, agent_id)
        message_id = d.validate_message_id(session_message.message_id, session_id=sid)
        update, array_filters = d.update_message_update(aid, session_message)
        self._guarded_message_update(sid, aid, message_id, update, array_filters)

    def list_messages(
        self, session_id: str, agent_id: str, limit: int | None = None, offset: int = 0, **kwargs: Any
    ) -> list[SessionMessage]:
        """Messages ordered by ``message_id``; the server slices the page."""
        return [d.message_from_document(m) for m in self._message_page(session_id, agent_id, limit, offset)]

    def list_message_documents(
        self,
        session_id: str,
        agent_id: str,
        limit: int | None = None,
        offset: int = 0,
        *,
        with_metrics: bool = False,
    ) -> list[dict[str, Any]]:
        """Stored message documents (optionally with ``event_loop_metrics``), one projected page."""
        page = self._message_page(session_id, agent_id, limit, offset, with_metrics=with_metrics)
        return [dv.from_bson(m) for m in page]

    def _message_page(
        self,
        session_id: str,
        agent_id: str,
        limit: int | None,
        offset: int,
        *,
        with_metrics: bool = False,
    ) -> list[dict[str, Any]]:
        sid, aid = self._ids(session_id, agent_id)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidInputError(f"offset must be a non-negative integer, got {offset!r}", session_id=sid)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise InvalidInputError(f"limit must be a non-negative integer, got {limit!r}", session_id=sid)
        if limit == 0:
            self._require_agent(sid, aid)
            return []
        pipeline = d.list_messages_pipeline(
            sid, aid, limit, offset, with_metrics=with_metrics, buckets=self.buckets_name
        )
        with self._translate(sid, aid):
            docs = list(self.collection.aggregate(pipeline))
        if not docs:
            raise SessionNotFoundError("session does not exist", session_id=sid)
        if not docs[0]["agent_exists"]:
            raise AgentNotFoundError("agent does not exist", session_id=sid, agent_id=aid)
        fields = (*d.MESSAGE_FIELDS, d.METRICS) if with_metrics else d.MESSAGE_FIELDS
        self._fetch_window_buckets(docs[0], fields=fields)
        with self._translate(sid, aid):
            return self.blobs.resolve(da.join_window(docs[0]), session_id=sid)

    def read_last_message(self, session_id: str, agent_id: str) -> SessionMessage | None:
        """The agent's newest stored message, fetched alone."""
        sid, aid = self._ids(session_id, agent_id)
        with self._translate(sid, aid):
            docs = list(self.collection.aggregate(d.last_message_pipeline(sid, aid, buckets=self.buckets_name)))
        messages = list(docs[0]["messages"]) if docs else []
        if docs and not messages:
            messages = [m for b in docs[0].get("buckets") or [] for m in b[d.MESSAGES]][-1:]
        with self._translate(sid, aid):
            messages = self.blobs.resolve(messages, session_id=sid)
        return d.message_from_document(messages[0]) if messages else None

    def set_message_metrics(
        self,
        session_id: str,
        agent_id: str,
        message_id: int,
        metrics: Mapping[str, Any],
        totals: Mapping[str, int] | None = None,
    ) -> None:
        """Attach ``event_loop_metrics`` to one stored message and add ``totals`` to the agent's."""
        sid, aid = self._ids(session_id, agent_id)
        message_id = d.validate_message_id(message_id, session_id=sid)
        update, array_filters = d.message_metrics_update(aid, message_id, metrics, totals)
        self._guarded_message_update(sid, aid, message_id, update, array_filters)

    def count_messages(self, session_id: str, agent_id: str | None = None) -> int:
        """Message count computed by the server (one agent, or all agents of the session)."""
        sid, aid = self._ids(session_id) if agent_id is None else self._ids(session_id, agent_id)
        with self._translate(sid, aid):
            docs = list(self.collection.aggregate(d.message_count_pipeline(sid, aid)))
        if not docs:
            raise SessionNotFoundError("session does not exist", session_id=sid)
        return int(docs[0]["count"])

    def capture_agent_config(self, session_id: str, agent_id: str, *, model: str, system_prompt: str | None) -> bool:
        """Record the agent's model and prompt where they changed; return whether anything was written."""
        sid, aid = self._ids(session_id, agent_id)
        if not isinstance(model, str) or (system_prompt is not None and not isinstance(system_prompt, str)):
            raise InvalidInputError(
                f"model must be a string and system_prompt a string or None, got {type(model).__name__} and "
                f"{type(system_prompt).__name__}",
                session_id=sid,
                agent_id=aid,
            )
        with self._translate(sid, aid):
            result = self.collection.update_one(
                d.capture_config_filter(sid, aid, model, system_prompt),
                d.capture_config_update(aid, model, system_prompt),
            )
        return result.modified_count > 0

    # ---- multi-agent (Swarm / Graph) ---------------------------------------------------------------

    def create_multi_agent(self, session_id: str, multi_agent: MultiAgentBase, **kwargs: Any) -> None:
        sid, multi_agent_id = self._ids(session_id, multi_agent.id, kind="multi-agent")
        state = multi_agent.serialize_state()
        self._guarded_update(
            sid,
            None,
            d.create_multi_agent_filter(sid, multi_agent_id),
            d.create_multi_agent_update(multi_agent_id, state),
            MultiAgentAlreadyExistsError(f"multi-agent {multi_agent_id} already exists", session_id=sid),
        )

    def read_multi_agent(self, session_id: str, multi_agent_id: str, **kwargs: Any) -> dict[str, Any] | None:
        sid, multi_agent_id = self._ids(session_id, multi_agent_id, kind="multi-agent")
        with self._translate(sid):
            doc = self.collection.find_one({d.ID: sid}, d.multi_agent_projection(multi_agent_id))
        return d.multi_agent_from_document(doc, multi_agent_id)

    def update_multi_agent(self, session_id: str, multi_agent: MultiAgentBase, **kwargs: Any) -> None:
        sid, multi_agent_id = self._ids(session_id, multi_agent.id, kind="multi-agent")
        state = multi_agent.serialize_state()
        self._guarded_update(
            sid,
            None,
            d.multi_agent_exists_filter(sid, multi_agent_id),
            d.update_multi_agent_update(multi_agent_id, state),
            MultiAgentNotFoundError(f"multi-agent {multi_agent_id} does not exist", session_id=sid),
        )

    # ---- session-level features: named methods in repository_features.SessionFeatureMethods ----------

    def ensure_metadata_indexes(self, fields: list[str]) -> None:
        with self._translate(None):
            ensure_indexes(self.collection, dx.metadata_index_fields(fields))

    # ---- internals --------------------------------------------------------------------------------

    def _guarded_update(
        self,
        sid: str,
        aid: str | None,
        query: Mapping[str, Any],
        update: Mapping[str, Any] | list[Mapping[str, Any]],
        missed: SessionStoreError,
        *,
        array_filters: list[dict[str, Any]] | None = None,
    ) -> None:
        """One atomic, conditional update; if its condition matched nothing, raise the precise reason.

        The session (and, for message writes, the agent) being absent is reported as such; otherwise
        the guard itself failed and ``missed`` says why (already exists / not found).
        """
        with self._translate(sid, aid):
            result = self.collection.update_one(dict(query), update, array_filters=array_filters)  # type: ignore[arg-type]
            if result.matched_count == 0:
                if array_filters is not None and aid is not None:
                    self._require_agent(sid, aid)
                else:
                    self._require_session(sid, aid)
                raise missed

    def _require_session(self, sid: str, aid: str | None = None) -> None:
        """After a guarded write matched nothing: say the session is missing, if it is."""
        if self.collection.count_documents({d.ID: sid}, limit=1) == 0:
            raise SessionNotFoundError("session does not exist", session_id=sid, agent_id=aid)

    def _require_agent(self, sid: str, aid: str) -> None:
        self._require_session(sid, aid)
        if self.collection.count_documents(d.agent_exists_filter(sid, aid), limit=1) == 0:
            raise AgentNotFoundError("agent does not exist", session_id=sid, agent_id=aid)

    def _check_size(self, sid: str, size: int | None) -> None:
        key = (self.collection.full_name, sid)
        if size is None or size < self.size_warning_bytes or key in _warned_sizes:
            return
        if len(_warned_sizes) > _WARNED_SIZES_LIMIT:
            _warned_sizes.clear()
        _warned_sizes.add(key)
        logger.warning(
            "session_id=<%s> | size=<%d> bytes, limit=<%d> | session document is approaching MongoDB's "
            "16 MB limit; writes past it will be refused",
            sid,
            size,
            d.MAX_BSON_SIZE,
        )

    @staticmethod
    def _ids(session_id: object, other_id: object = _NOT_GIVEN, *, kind: str = "agent") -> tuple[str, Any]:
        """Every operation's prelude: the session id (and an agent or multi-agent id) checked for use in
        field paths, so a bad id is an ``InvalidIdentifierError`` before anything reaches MongoDB."""
        sid = d.validate_id(session_id, "session")
        return sid, (None if other_id is _NOT_GIVEN else d.validate_id(other_id, kind, session_id=sid))

    @contextlib.contextmanager
    def _translate(self, session_id: str | None, agent_id: str | None = None) -> Iterator[None]:
        """Ensure indexes on first use, and turn driver errors into typed errors (see ``driver_errors``)."""
        with translate_errors(session_id, agent_id):
            if not self._indexes_ready:
                ensure_indexes(self.collection, self._metadata_index_fields)
                self._indexes_ready = True
            yield
