"""Index creation, once per collection per process.

Session managers are built per request in stateless services; creating indexes each time would add
round trips to every request. The first operation on a collection ensures them and remembers it.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

from pymongo import MongoClient
from pymongo.collection import Collection

from . import documents as d

logger = logging.getLogger(__name__)

_indexes_lock = threading.Lock()
#: Indexes already ensured, per client. ``MongoClient`` compares equal for the same servers, and a
#: weak key drops the entry with the client, so a recycled ``id()`` can never skip a new server.
_indexes_done: weakref.WeakKeyDictionary[MongoClient[Any], set[tuple[str, str, str]]] = weakref.WeakKeyDictionary()


def ensure_indexes(collection: Collection[Any], extra_fields: list[str] | None = None) -> None:
    """Create the base indexes (and ``metadata.<field>`` ones) once per collection per process.

    Constructing managers per request therefore costs no index round trips after the first.
    """
    client = collection.database.client
    wanted = [(field, direction) for field, direction in d.BASE_INDEXES]
    wanted += [(field, 1) for field in extra_fields or []]
    names = (collection.database.name, collection.name)
    with _indexes_lock:
        done = _indexes_done.setdefault(client, set())
        missing = [(f, o) for f, o in wanted if (*names, f) not in done]
        if not missing:
            return
        for field, direction in missing:
            collection.create_index([(field, direction)])
            done.add((*names, field))
    logger.debug("collection=<%s> | ensured indexes %s", collection.full_name, [f for f, _ in missing])


def forget_indexes() -> None:
    """Test hook: make the next repository create its indexes again."""
    with _indexes_lock:
        _indexes_done.clear()
