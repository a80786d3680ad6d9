"""Strands' ``SessionRepository`` semantics, written once and run against every implementation.

In the style of langgraph's checkpoint-conformance tests: :class:`RepositoryContract` holds the
tests; a ``test_*.py`` module subclasses it and provides the ``repository`` fixture. Strands' own
``FileSessionManager`` runs the same suite as the reference, so every assertion here is behaviour
Strands users already rely on, and ``MongoDBSessionRepository`` passing it proves parity. Places
where MongoDB is deliberately stricter (duplicate message ids, re-creating an agent) are tested in
``tests/integration/test_mongodb_session_repository.py``, not here.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import pytest
from strands.session.session_repository import SessionRepository
from strands.types.exceptions import SessionException
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

SID = "contract-session"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))


class FakeMultiAgent:
    """The part of ``MultiAgentBase`` a repository touches: ``id`` and ``serialize_state()``."""

    def __init__(self, multi_agent_id: str, state: dict[str, Any]) -> None:
        self.id = multi_agent_id
        self.state = state

    def serialize_state(self) -> dict[str, Any]:
        return copy.deepcopy(self.state)

    def deserialize_state(self, payload: dict[str, Any]) -> None:
        self.state = copy.deepcopy(payload)


def session(session_id: str = SID) -> Session:
    return Session(session_id=session_id, session_type=SessionType.AGENT)


def agent(agent_id: str = "assistant", **state: Any) -> SessionAgent:
    return SessionAgent(
        agent_id=agent_id,
        state=state or {"topic": "billing", "nested": {"n": [1, 2, 3]}},
        conversation_manager_state={"__name__": "SlidingWindowConversationManager", "removed_message_count": 0},
        _internal_state={"interrupt_state": {"interrupts": {}, "context": {}, "activated": False}},
    )


def text_message(message_id: int, text: str | None = None, role: str = "user") -> SessionMessage:
    return SessionMessage(
        message={"role": role, "content": [{"text": text or f"message {message_id}"}]}, message_id=message_id
    )


def texts(messages: list[SessionMessage]) -> list[str]:
    return [m.message["content"][0]["text"] for m in messages]


class RepositoryContract:
    """Subclass in a ``test_*.py`` module and provide a ``repository`` fixture."""

    @pytest.fixture
    def repository(self) -> SessionRepository:  # pragma: no cover - always overridden
        raise NotImplementedError

    @pytest.fixture
    def with_agent(self, repository: SessionRepository) -> SessionRepository:
        repository.create_session(session())
        repository.create_agent(SID, agent())
        return repository

    # ---- sessions ---------------------------------------------------------------------------------

    def test_read_session_returns_none_when_absent(self, repository: SessionRepository) -> None:
        assert repository.read_session("no-such-session") is None

    def test_create_then_read_session(self, repository: SessionRepository) -> None:
        created = repository.create_session(session())
        assert created.session_id == SID
        read = repository.read_session(SID)
        assert read is not None
        assert read.session_id == SID
        assert read.session_type == SessionType.AGENT
        assert datetime.fromisoformat(read.created_at).tzinfo is not None

    def test_creating_an_existing_session_raises(self, repository: SessionRepository) -> None:
        repository.create_session(session())
        with pytest.raises(SessionException):
            repository.create_session(session())
        assert repository.read_session(SID) is not None

    def test_delete_session_removes_everything(self, with_agent: SessionRepository) -> None:
        repository = with_agent
        repository.create_message(SID, "assistant", text_message(0))
        repository.create_multi_agent(SID, FakeMultiAgent("swarm", {"status": "running"}))
        repository.create_session(session("neighbour"))
        repository.delete_session(SID)
        assert repository.read_session(SID) is None
        assert repository.read_agent(SID, "assistant") is None
        assert repository.read_message(SID, "assistant", 0) is None
        assert repository.read_multi_agent(SID, "swarm") is None
        assert repository.read_session("neighbour") is not None
        repository.create_session(session())  # the id is free again
        assert repository.read_agent(SID, "assistant") is None

    def test_deleting_a_missing_session_raises(self, repository: SessionRepository) -> None:
        with pytest.raises(SessionException):
            repository.delete_session("no-such-session")

    # ---- agents -----------------------------------------------------------------------------------

    def test_read_agent_returns_none_when_absent(self, repository: SessionRepository) -> None:
        assert repository.read_agent("no-such-session", "assistant") is None
        repository.create_session(session())
        assert repository.read_agent(SID, "assistant") is None

    def test_create_then_read_agent(self, with_agent: SessionRepository) -> None:
        read = with_agent.read_agent(SID, "assistant")
        assert read is not None
        expected = agent()
        assert read.agent_id == "assistant"
        assert read.state == expected.state
        assert read.conversation_manager_state == expected.conversation_manager_state
        assert read._internal_state == expected._internal_state
        assert datetime.fromisoformat(read.created_at).tzinfo is not None

    def test_update_agent_replaces_state_and_preserves_created_at(self, with_agent: SessionRepository) -> None:
        before = with_agent.read_agent(SID, "assistant")
        assert before is not None
        changed = agent(step=2)
        changed.conversation_manager_state = {"removed_message_count": 4}
        changed.created_at = "2000-01-01T00:00:00+00:00"  # a caller's value never overwrites the original
        with_agent.update_agent(SID, changed)
        after = with_agent.read_agent(SID, "assistant")
        assert after is not None
        assert after.state == {"step": 2}
        assert after.conversation_manager_state == {"removed_message_count": 4}
        assert after.created_at == before.created_at

    def test_updating_a_missing_agent_raises(self, repository: SessionRepository) -> None:
        repository.create_session(session())
        with pytest.raises(SessionException):
            repository.update_agent(SID, agent("ghost"))
        assert repository.read_agent(SID, "ghost") is None

    def test_agents_are_independent(self, with_agent: SessionRepository) -> None:
        with_agent.create_agent(SID, agent("reviewer", role="review"))
        with_agent.create_message(SID, "assistant", text_message(0, "for assistant"))
        with_agent.create_message(SID, "reviewer", text_message(0, "for reviewer"))
        assert texts(with_agent.list_messages(SID, "assistant")) == ["for assistant"]
        assert texts(with_agent.list_messages(SID, "reviewer")) == ["for reviewer"]
        reviewer = with_agent.read_agent(SID, "reviewer")
        assert reviewer is not None and reviewer.state == {"role": "review"}

    # ---- messages ---------------------------------------------------------------------------------

    def test_read_message_returns_none_when_absent(self, with_agent: SessionRepository) -> None:
        assert with_agent.read_message(SID, "assistant", 0) is None
        assert with_agent.read_message(SID, "ghost", 0) is None
        assert with_agent.read_message("no-such-session", "assistant", 0) is None

    def test_create_then_read_message(self, with_agent: SessionRepository) -> None:
        with_agent.create_message(SID, "assistant", text_message(0, "héllo wörld ✓ 会话"))
        read = with_agent.read_message(SID, "assistant", 0)
        assert read is not None
        assert read.message_id == 0
        assert read.message == {"role": "user", "content": [{"text": "héllo wörld ✓ 会话"}]}
        assert read.redact_message is None
        assert datetime.fromisoformat(read.created_at).tzinfo is not None

    def test_binary_content_round_trips_byte_for_byte(self, with_agent: SessionRepository) -> None:
        message = {
            "role": "user",
            "content": [
                {"text": "what is in this image?"},
                {"image": {"format": "png", "source": {"bytes": PNG}}},
                {"document": {"format": "pdf", "name": "doc", "source": {"bytes": b"%PDF-1.4\x00\xff"}}},
            ],
        }
        with_agent.create_message(SID, "assistant", SessionMessage(message=message, message_id=0))
        read = with_agent.read_message(SID, "assistant", 0)
        assert read is not None
        assert read.message == message
        listed = with_agent.list_messages(SID, "assistant")
        assert listed[0].message["content"][1]["image"]["source"]["bytes"] == PNG

    def test_update_message_stores_final_form_and_preserves_created_at(self, with_agent: SessionRepository) -> None:
        with_agent.create_message(SID, "assistant", text_message(0, "placeholder"))
        before = with_agent.read_message(SID, "assistant", 0)
        assert before is not None
        final = text_message(0, "final transcript")
        final.redact_message = {"role": "user", "content": [{"text": "[redacted]"}]}
        final.created_at = "2000-01-01T00:00:00+00:00"
        with_agent.update_message(SID, "assistant", final)
        after = with_agent.read_message(SID, "assistant", 0)
        assert after is not None
        assert texts([after]) == ["final transcript"]
        assert after.redact_message == {"role": "user", "content": [{"text": "[redacted]"}]}
        assert after.to_message() == {"role": "user", "content": [{"text": "[redacted]"}]}
        assert after.created_at == before.created_at

    def test_updating_a_missing_message_raises(self, with_agent: SessionRepository) -> None:
        with pytest.raises(SessionException):
            with_agent.update_message(SID, "assistant", text_message(5))
        with pytest.raises(SessionException):
            with_agent.update_message(SID, "ghost", text_message(0))
        assert with_agent.read_message(SID, "assistant", 5) is None

    def test_list_messages_is_ordered_by_message_id_and_paginates(self, with_agent: SessionRepository) -> None:
        for i in range(12):  # two-digit ids: the order must be numeric, not lexical
            with_agent.create_message(SID, "assistant", text_message(i))
        everything = with_agent.list_messages(SID, "assistant")
        assert [m.message_id for m in everything] == list(range(12))
        assert [m.message_id for m in with_agent.list_messages(SID, "assistant", limit=5)] == [0, 1, 2, 3, 4]
        page = with_agent.list_messages(SID, "assistant", limit=5, offset=5)
        assert [m.message_id for m in page] == [5, 6, 7, 8, 9]
        assert [m.message_id for m in with_agent.list_messages(SID, "assistant", limit=5, offset=10)] == [10, 11]
        assert [m.message_id for m in with_agent.list_messages(SID, "assistant", offset=9)] == [9, 10, 11]
        assert with_agent.list_messages(SID, "assistant", limit=5, offset=12) == []
        assert with_agent.list_messages(SID, "assistant", offset=100) == []

    def test_list_messages_of_an_agent_without_messages_is_empty(self, with_agent: SessionRepository) -> None:
        assert with_agent.list_messages(SID, "assistant") == []

    def test_list_messages_of_a_missing_agent_raises(self, with_agent: SessionRepository) -> None:
        with pytest.raises(SessionException):
            with_agent.list_messages(SID, "ghost")

    # ---- multi-agent (Swarm / Graph) ----------------------------------------------------------------

    def test_multi_agent_create_read_update(self, repository: SessionRepository) -> None:
        repository.create_session(session())
        assert repository.read_multi_agent(SID, "swarm") is None
        swarm = FakeMultiAgent("swarm", {"type": "swarm", "status": "executing", "node_history": ["a"]})
        repository.create_multi_agent(SID, swarm)
        assert repository.read_multi_agent(SID, "swarm") == swarm.state
        swarm.state = {"type": "swarm", "status": "completed", "node_history": ["a", "b"]}
        repository.update_multi_agent(SID, swarm)
        stored = repository.read_multi_agent(SID, "swarm")
        assert stored == swarm.state
        restored = FakeMultiAgent("swarm", {})
        restored.deserialize_state(stored or {})
        assert restored.state["node_history"] == ["a", "b"]

    def test_updating_a_missing_multi_agent_raises(self, repository: SessionRepository) -> None:
        repository.create_session(session())
        with pytest.raises(SessionException):
            repository.update_multi_agent(SID, FakeMultiAgent("graph", {"status": "x"}))
        assert repository.read_multi_agent(SID, "graph") is None
