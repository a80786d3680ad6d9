"""The typed error hierarchy: what callers catch, and the context every error carries."""

from __future__ import annotations

import pickle

import pytest
from strands.types.exceptions import SessionException

import mongodb_session_manager
from mongodb_session_manager import errors as e

#: (error, the classes a caller may catch it as)
HIERARCHY: list[tuple[type[Exception], tuple[type[BaseException], ...]]] = [
    (e.InvalidIdentifierError, (e.InvalidInputError, ValueError, SessionException)),
    (e.InvalidMetadataError, (e.InvalidInputError, ValueError, SessionException)),
    (e.InvalidFeedbackError, (e.InvalidInputError, ValueError, SessionException)),
    (e.SessionNotFoundError, (e.NotFoundError, SessionException)),
    (e.AgentNotFoundError, (e.NotFoundError, SessionException)),
    (e.MessageNotFoundError, (e.NotFoundError, SessionException)),
    (e.MultiAgentNotFoundError, (e.NotFoundError, SessionException)),
    (e.SessionAlreadyExistsError, (e.AlreadyExistsError, SessionException)),
    (e.AgentAlreadyExistsError, (e.AlreadyExistsError, SessionException)),
    (e.MultiAgentAlreadyExistsError, (e.AlreadyExistsError, SessionException)),
    (e.MessageConflictError, (e.ConcurrentModificationError, SessionException)),
    (e.DocumentTooLargeError, (e.SessionStoreError, SessionException)),
    (e.DatabaseUnavailableError, (e.DatabaseError, SessionException)),
]


@pytest.mark.parametrize(("error", "bases"), HIERARCHY, ids=lambda v: getattr(v, "__name__", ""))
def test_every_error_is_a_strands_session_exception(error: type[Exception], bases: tuple[type, ...]) -> None:
    assert issubclass(error, e.SessionStoreError)
    for base in bases:
        assert issubclass(error, base)


def test_only_refused_input_is_a_value_error() -> None:
    for error in (e.NotFoundError, e.AlreadyExistsError, e.ConcurrentModificationError, e.DatabaseError):
        assert not issubclass(error, ValueError)
    assert not issubclass(e.DocumentTooLargeError, ValueError)


def test_message_names_session_and_agent_and_attributes_keep_them() -> None:
    exc = e.MessageConflictError("message id 3 already stored", session_id="chat-1", agent_id="helper")
    assert str(exc) == "session_id=<chat-1> | agent_id=<helper> | message id 3 already stored"
    assert exc.session_id == "chat-1" and exc.agent_id == "helper"
    only_session = e.SessionNotFoundError("gone", session_id="chat-1")
    assert str(only_session) == "session_id=<chat-1> | gone" and only_session.agent_id is None
    assert str(e.DatabaseError("plain")) == "plain"


def test_errors_survive_pickling_with_their_context() -> None:
    """Errors cross process boundaries (worker pools) without losing the ids or doubling the prefix."""
    exc = e.MessageConflictError("boom", session_id="s", agent_id="a")
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is e.MessageConflictError
    assert str(again) == str(exc)
    assert again.session_id == "s" and again.agent_id == "a"


def test_factory_not_initialized_is_a_runtime_error() -> None:
    assert issubclass(e.FactoryNotInitializedError, RuntimeError)


def test_exports() -> None:
    for name in e.__all__:
        assert hasattr(e, name), name
    for name in ("SessionStoreError", "DatabaseUnavailableError", "DocumentTooLargeError", "InvalidIdentifierError"):
        assert getattr(mongodb_session_manager, name) is getattr(e, name)
