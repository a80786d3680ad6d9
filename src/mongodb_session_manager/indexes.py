"""Index creation, once per collection per process.

Session managers are built per request in stateless services; creating indexes each time would add
round trips to every request. The first operation on a collection ensures them and remembers it.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

from pymongo import IndexModel, MongoClient
from pymongo.collection import Collection

from . import documents as d

logger = logging.getLogger(__name__)

_indexes_lock = threading.Lock()
#: Indexes already ensured, per client. ``MongoClient`` compares equal for the same servers, and a
#: weak key drops the entry with the client, so a recycled ``id()`` can never skip a new server.
_indexes_done: weakref.WeakKeyDictionary[MongoClient[Any], set[tuple[str, str, str]]] = weakref.WeakKeyDictionary()


def index_name(key: d.IndexKey) -> str:
    """The server's default name for ``key`` (``created_at_-1__id_1``), used as the bookkeeping key."""
    return "_".join(f"{field}_{direction}" for field, direction in key)


def ensure_indexes(collection: Collection[Any], extra_fields: list[str] | None = None) -> None:
    """Create the base indexes (and the compound pair of each ``metadata.<field>``) once per collection per process.

    Constructing managers per request therefore costs no index round trips after the first, and the
    missing ones go in one ``createIndexes`` command. Indexes created by earlier versions (single-field
    ``created_at`` / ``updated_at``) are left alone: they are prefixes of the new ones and can be dropped.
    """
    client = collection.database.client
    names = (collection.database.name, collection.name)
    with _indexes_lock:
        done = _indexes_done.setdefault(client, set())
        missing = [key for key in d.index_keys(extra_fields) if (*names, index_name(key)) not in done]
        if not missing:
            return
        collection.create_indexes([IndexModel(list(key)) for key in missing])
        done.update((*names, index_name(key)) for key in missing)
    logger.debug("collection=<%s> | ensured indexes %s", collection.full_name, [index_name(k) for k in missing])


def forget_indexes() -> None:
    """Test hook: make the next repository create its indexes again."""
    with _indexes_lock:
        _indexes_done.clear()
