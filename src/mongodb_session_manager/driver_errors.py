"""Driver errors become this library's typed errors, with the session id and the original cause.

Callers of a session store need to know *what kind* of failure happened: their input was refused
(fix it), the document hit MongoDB's 16 MB limit (start a new session), or the database is
unreachable (retry, page someone). A bare ``PyMongoError`` says none of that.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from bson.errors import InvalidDocument
from pymongo.errors import (
    ConnectionFailure,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WriteError,
)
from pymongo.errors import DocumentTooLarge as ClientDocumentTooLarge

from .errors import (
    DatabaseError,
    DatabaseUnavailableError,
    DocumentTooLargeError,
    InvalidInputError,
    SessionStoreError,
)

#: Server error codes meaning "the resulting document would exceed 16 MB".
TOO_LARGE_CODES = frozenset({10334, 17419, 17420, 13548, 10054})


@contextlib.contextmanager
def translate_errors(session_id: str | None, agent_id: str | None = None) -> Iterator[None]:
    """Re-raise driver and encoding errors from the block as typed ``SessionStoreError`` subclasses."""
    try:
        yield
    except SessionStoreError:
        raise
    except ClientDocumentTooLarge as exc:
        raise DocumentTooLargeError(
            f"write refused: it exceeds MongoDB's 16 MB document limit ({exc})",
            session_id=session_id,
            agent_id=agent_id,
        ) from exc
    except (WriteError, OperationFailure) as exc:
        if exc.code in TOO_LARGE_CODES or "too large" in str(exc).lower():
            raise DocumentTooLargeError(
                "write refused: the session document would exceed MongoDB's 16 MB limit; "
                "nothing was written and the stored session is unchanged",
                session_id=session_id,
                agent_id=agent_id,
            ) from exc
        raise DatabaseError(f"MongoDB refused the operation: {exc}", session_id=session_id, agent_id=agent_id) from exc
    except (ServerSelectionTimeoutError, ConnectionFailure) as exc:
        raise DatabaseUnavailableError(
            f"MongoDB is unreachable: {type(exc).__name__}", session_id=session_id, agent_id=agent_id
        ) from exc
    except PyMongoError as exc:
        raise DatabaseError(f"MongoDB error: {exc}", session_id=session_id, agent_id=agent_id) from exc
    except InvalidDocument as exc:
        raise InvalidInputError(
            f"value cannot be stored in MongoDB: {exc}", session_id=session_id, agent_id=agent_id
        ) from exc
    except UnicodeEncodeError as exc:
        # A str BSON cannot encode as UTF-8 (a lone surrogate, e.g. from json.loads('"\\ud800"')).
        raise InvalidInputError(
            f"value cannot be stored in MongoDB: a string is not valid UTF-8 ({exc.reason} at position {exc.start})",
            session_id=session_id,
            agent_id=agent_id,
        ) from exc
    except OverflowError as exc:
        # bson refuses integers past 64 bits while encoding the command; nothing was sent.
        raise InvalidInputError(
            f"value cannot be stored in MongoDB: {exc}", session_id=session_id, agent_id=agent_id
        ) from exc
