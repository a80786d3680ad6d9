"""Index creation, once per collection per process.

Session managers are built per request in stateless services; creating indexes each time would add
round trips to every request. The first operation on a collection ensures them and remembers it.
"""

from __future__ import annotations

import logging
import sys
import threading
import weakref
from typing import Any

from pymongo import IndexModel, MongoClient
from pymongo.collection import Collection
from pymongo.errors import OperationFailure

from . import documents_indexes as dx
from .documents_lifecycle import TTL_INDEX_KEY, TTL_INDEX_OPTIONS
from .fork_safety import renew_in_child

logger = logging.getLogger(__name__)

_indexes_lock = threading.Lock()
#: Indexes already ensured, per client. ``MongoClient`` compares equal for the same servers, and a
#: weak key drops the entry with the client, so a recycled ``id()`` can never skip a new server.
_indexes_done: weakref.WeakKeyDictionary[MongoClient[Any], set[tuple[str, str, str]]] = weakref.WeakKeyDictionary()


renew_in_child(sys.modules[__name__], "_indexes_lock", threading.Lock)


def index_name(key: dx.IndexKey) -> str:
    """The server's default name for ``key`` (``created_at_-1__id_1``), used as the bookkeeping key."""
    return "_".join(f"{field}_{direction}" for field, direction in key)


def ensure_indexes(collection: Collection[Any], extra_fields: list[str] | None = None) -> None:
    """Create the base indexes (and the compound pair of each ``metadata.<field>``) once per collection per process.

    Constructing managers per request therefore costs no index round trips after the first, and the
    missing ones go in one ``createIndexes`` command. Indexes created by earlier versions (single-field
    ``created_at`` / ``updated_at``) are left alone: they are prefixes of the new ones and can be dropped.
    The TTL index on ``expires_at`` (see :mod:`.documents_lifecycle`) is part of the same command.
    """
    client = collection.database.client
    names = (collection.database.name, collection.name)
    with _indexes_lock:
        done = _indexes_done.setdefault(client, set())
        keys = [*dx.index_keys(extra_fields), TTL_INDEX_KEY]
        missing = [key for key in keys if (*names, index_name(key)) not in done]
        if not missing:
            return
        try:
            _create(collection, missing)
        except OperationFailure as exc:
            # An index on expires_at already exists under another name or with other options (created
            # by hand): found by its key, it is kept and the others are created without it.
            if exc.code not in _INDEX_CONFLICT_CODES or TTL_INDEX_KEY not in missing:
                raise
            if not _has_index_on(collection, TTL_INDEX_KEY):
                raise
            _create(collection, [key for key in missing if key != TTL_INDEX_KEY])
        done.update((*names, index_name(key)) for key in missing)
    logger.debug("collection=<%s> | ensured indexes %s", collection.full_name, [index_name(k) for k in missing])


#: IndexOptionsConflict, IndexKeySpecsConflict.
_INDEX_CONFLICT_CODES = frozenset({85, 86})


def _create(collection: Collection[Any], keys: list[dx.IndexKey]) -> None:
    if keys:
        collection.create_indexes(
            [IndexModel(list(key), **(TTL_INDEX_OPTIONS if key == TTL_INDEX_KEY else {})) for key in keys]
        )


def _has_index_on(collection: Collection[Any], key: dx.IndexKey) -> bool:
    """Whether an index with exactly this key exists, whatever its name (found by key, not by counting).

    The TTL index is the one whose options matter: creating it again with other options, or under
    another name, would fail the first operation of the process. An existing one without
    ``expireAfterSeconds`` is kept and reported, since expiry then never happens.
    """
    for name, spec in collection.index_information().items():
        if tuple((field, int(direction)) for field, direction in spec.get("key", [])) == key:
            if "expireAfterSeconds" not in spec:
                logger.warning(
                    "collection=<%s> | index=<%s> | has no expireAfterSeconds: expired sessions are not deleted",
                    collection.full_name,
                    name,
                )
            return True
    return False


def forget_indexes() -> None:
    """Test hook: make the next repository create its indexes again."""
    with _indexes_lock:
        _indexes_done.clear()


def ensure_bucket_indexes(buckets: Collection[Any]) -> None:
    """The archived-message collection's one index, ``(session_id, agent_id, start)``, once per process.

    It serves a session's deletion, the orphan clean-up of a split and the viewer's timeline; reads
    of listed buckets go by ``_id``. Created when the first bucket is written, so deployments whose
    sessions never split never get the collection.
    """
    from .documents_archive import BUCKET_INDEX_KEY

    client = buckets.database.client
    marker = (buckets.database.name, buckets.name, index_name(BUCKET_INDEX_KEY))
    with _indexes_lock:
        done = _indexes_done.setdefault(client, set())
        if marker in done:
            return
        buckets.create_indexes([IndexModel(list(BUCKET_INDEX_KEY))])
        done.add(marker)
