"""How the viewer answers the library's typed errors (``store_error_response``, a pure function)."""

from __future__ import annotations

import pytest
from pymongo.errors import OperationFailure

from mongodb_session_manager import errors as e
from session_viewer.backend.main import STORE_ERROR_STATUS, store_error_response

CASES: list[tuple[e.SessionStoreError, int]] = [
    (e.SessionNotFoundError("session does not exist", session_id="s"), 404),
    (e.AgentNotFoundError("agent does not exist", session_id="s", agent_id="a"), 404),
    (e.MessageNotFoundError("message 3 does not exist", session_id="s", agent_id="a"), 404),
    (e.InvalidIdentifierError("bad id"), 422),
    (e.InvalidMetadataError("bad key", session_id="s"), 422),
    (e.SessionAlreadyExistsError("exists", session_id="s"), 409),
    (e.ConcurrentModificationError("blocks were deleted while the session was read", session_id="s"), 409),
    (e.SessionBusyError("another turn holds the lease", session_id="s", agent_id="a"), 409),
    (e.TurnLeaseLostError("lease lost", session_id="s", agent_id="a"), 409),
    (e.MessageConflictError("id taken", session_id="s", agent_id="a"), 409),
    (e.DocumentTooLargeError("over 16 MB", session_id="s"), 413),
    (e.DatabaseUnavailableError("MongoDB is unreachable: ServerSelectionTimeoutError", session_id="s"), 503),
    (e.MissingBlobError("1 out-of-line content block(s) ... are missing", session_id="s"), 500),
    (e.SessionStoreError("something else", session_id="s"), 500),
]


@pytest.mark.parametrize(("exc", "status"), CASES, ids=lambda v: type(v).__name__ if isinstance(v, Exception) else "")
def test_each_kind_has_its_status_and_a_body_that_names_it(exc: e.SessionStoreError, status: int) -> None:
    got, body = store_error_response(exc)
    assert got == status
    assert body["error"] == type(exc).__name__
    assert set(body) == {"error", "detail"} and isinstance(body["detail"], str)


def test_the_library_message_is_the_detail_with_its_ids() -> None:
    _, body = store_error_response(e.MissingBlobError("gone from GridFS", session_id="case-17"))
    assert body == {"error": "MissingBlobError", "detail": "session_id=<case-17> | gone from GridFS"}


def test_a_database_error_never_shows_the_driver_message() -> None:
    driver = OperationFailure("not authorized on secretdb to execute command { find: 'sessions' } @ db.internal:27017")
    failed = e.DatabaseError(f"MongoDB refused the operation: {driver}", session_id="s")
    failed.__cause__ = driver
    status, body = store_error_response(failed)
    assert (status, body) == (500, {"error": "DatabaseError", "detail": "internal error"})
    status, body = store_error_response(e.StorageBackendError("MongoDB error: host db.internal", session_id="s"))
    assert status == 500 and body["detail"] == "internal error" and "db.internal" not in str(body)
    status, body = store_error_response(e.DatabaseUnavailableError("MongoDB is unreachable: host db.internal"))
    assert (status, body["detail"]) == (503, "the database is unavailable")


def test_subclasses_come_before_their_bases() -> None:
    """The first match wins, so no entry may be shadowed by an earlier, broader one."""
    classes = [cls for cls, _ in STORE_ERROR_STATUS]
    for i, later in enumerate(classes):
        assert not any(issubclass(later, earlier) for earlier in classes[:i]), later
