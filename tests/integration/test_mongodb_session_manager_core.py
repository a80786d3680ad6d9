"""``MongoDBSessionManager`` lifecycle on the real mongod, driven through real Strands agents.

Resumption goes through Strands' own ``initialize()`` (so its tool-use repair applies); several
agents keep separate histories; binary content, redaction and ``MessageUpdatedEvent`` rewrites
are stored in their final form; concurrent writers never lose or duplicate a message; and the
manager splits its keyword arguments and owns (or borrows) its client correctly.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.errors import InvalidOperation
from strands import Agent
from strands.hooks import MessageUpdatedEvent
from strands.types.exceptions import SessionException
from strands.types.session import SessionMessage

from mongodb_session_manager import MongoDBSessionManager, create_mongodb_session_manager
from mongodb_session_manager.embedded import free_port
from mongodb_session_manager.errors import (
    DatabaseUnavailableError,
    InvalidIdentifierError,
    MessageConflictError,
    SessionAlreadyExistsError,
)
from mongodb_session_manager.mongodb_session_manager import split_client_kwargs
from mongodb_session_manager.mongodb_session_repository import MongoDBSessionRepository
from mongodb_session_manager.testing import ScriptedModel

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01" + bytes(range(256)) * 4


@pytest.fixture
def default_session_id() -> str:
    return "core-session"


def make_agent(manager: MongoDBSessionManager, responses: list[Any] | None = None, **kwargs: Any) -> Agent:
    kwargs.setdefault("agent_id", "assistant")
    return Agent(model=ScriptedModel(responses), session_manager=manager, callback_handler=None, **kwargs)


def conversation(messages: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """Role and content of each message (what the model sees), without Strands' tracking fields."""
    return [(m["role"], m["content"]) for m in messages]


def stored_messages(collection: Any, session_id: str, agent_id: str = "assistant") -> list[dict[str, Any]]:
    doc = collection.find_one({"_id": session_id}) or {}
    return doc.get("agents", {}).get(agent_id, {}).get("messages", [])


# ---- resumption -------------------------------------------------------------------------------------------


def test_new_manager_and_agent_restore_conversation_and_state(make_manager, collection) -> None:
    first = make_agent(make_manager("resume"), ["Nice to meet you, Ada.", "Your favourite colour is blue."])
    first("Hi, I'm Ada.")
    first.state.set("favourite_colour", "blue")
    first.state.set("visits", {"count": 2, "pages": ["home", "pricing"]})
    first("What is my favourite colour?")

    model = ScriptedModel(["Welcome back, Ada."])
    second = Agent(agent_id="assistant", model=model, session_manager=make_manager("resume"), callback_handler=None)
    assert conversation(second.messages) == conversation(first.messages)
    assert len(second.messages) == 4
    assert second.state.get("favourite_colour") == "blue"
    assert second.state.get("visits") == {"count": 2, "pages": ["home", "pricing"]}

    second("Do you remember me?")
    assert conversation(model.calls[0][:4]) == conversation(first.messages), "the model sees the restored history"
    assert [m["message_id"] for m in stored_messages(collection, "resume")] == list(range(6))


def test_restore_sets_aside_a_turn_that_never_finished(make_manager, repo, collection) -> None:
    """A toolUse never answered, then a prompt (what older versions stored after a crash mid-turn).

    Sent as it is, the history breaks Converse's rules (Strands' own repair would put two user
    messages in a row), so the restore moves the unfinished turn to ``abandoned_messages`` and
    the agent continues from the last complete answer; the strict model checks the next request.
    """
    manager = make_manager("repair")
    make_agent(manager)  # creates the agent
    history = [
        {"role": "user", "content": [{"text": "what is 2+2?"}]},
        {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t-1", "name": "calculator", "input": {}}}]},
        {"role": "user", "content": [{"text": "hello again"}]},
    ]
    for i, message in enumerate(history):
        repo.create_message("repair", "assistant", SessionMessage(message=message, message_id=i))

    restored = make_agent(make_manager("repair"), ["Hello!"])
    assert restored.messages == []
    agent_doc = collection.find_one({"_id": "repair"})["agents"]["assistant"]
    assert [m["message_id"] for m in agent_doc["abandoned_messages"]] == [0, 1, 2]
    assert agent_doc["messages"] == [] and agent_doc["next_message_id"] == 3

    restored("hello again")  # the strict model refuses an invalid history
    stored = repo.list_messages("repair", "assistant")
    assert [(m.message_id, m.message["role"]) for m in stored] == [(3, "user"), (4, "assistant")]


def test_each_agent_keeps_its_own_history_across_managers(make_manager) -> None:
    manager = make_manager("two-agents")
    planner = make_agent(manager, ["Plan: step one."], agent_id="planner")
    writer = make_agent(manager, ["Draft: once upon a time."], agent_id="writer")
    planner("Make a plan.")
    writer("Write a story.")
    writer.state.set("genre", "fairy tale")
    writer("Longer please.")

    resumed = make_manager("two-agents")
    planner2 = make_agent(resumed, agent_id="planner")
    writer2 = make_agent(resumed, agent_id="writer")
    assert conversation(planner2.messages) == conversation(planner.messages)
    assert conversation(writer2.messages) == conversation(writer.messages)
    assert len(planner2.messages) == 2 and len(writer2.messages) == 4
    assert writer2.state.get("genre") == "fairy tale" and planner2.state.get("genre") is None
    assert resumed.get_message_count("planner") == 2 and resumed.get_message_count() == 6


def test_the_same_agent_id_twice_in_one_manager_is_refused(make_manager) -> None:
    manager = make_manager("dup-agent")
    make_agent(manager)
    with pytest.raises(SessionException):
        make_agent(manager)


# ---- binary content, redaction, rewritten messages ---------------------------------------------------------


def test_image_bytes_survive_the_round_trip_byte_for_byte(make_manager, collection) -> None:
    agent = make_agent(make_manager("image"), ["A small PNG."])
    agent([{"text": "What is in this picture?"}, {"image": {"format": "png", "source": {"bytes": PNG}}}])
    assert (
        collection.count_documents(
            {"_id": "image", "agents.assistant.messages.message.content.image.source.bytes": {"$type": "binData"}}
        )
        == 1
    )
    restored = make_agent(make_manager("image"))
    image = restored.messages[0]["content"][1]["image"]
    assert image["format"] == "png"
    assert image["source"]["bytes"] == PNG and isinstance(image["source"]["bytes"], bytes)


def test_redaction_stores_the_final_form(make_manager, collection) -> None:
    manager = make_manager("redact")
    agent = make_agent(manager, ["Your card 4111 1111 1111 1111 is noted."])
    agent("My card is 4111 1111 1111 1111.")
    redacted = {"role": "assistant", "content": [{"text": "[REDACTED]"}]}
    manager.redact_latest_message(redacted, agent)

    last = stored_messages(collection, "redact")[-1]
    assert last["redact_message"] == redacted
    assert "4111" in last["message"]["content"][0]["text"], "the original stays for audit"
    restored = make_agent(make_manager("redact"))
    assert restored.messages[-1]["content"] == [{"text": "[REDACTED]"}]


def test_message_updated_event_rewrites_the_stored_placeholder(make_manager, collection) -> None:
    manager = make_manager("bidi")
    agent = make_agent(manager, ["(transcribing...)"])
    agent("Hello?")
    placeholder = agent.messages[-1]
    tracking_id = placeholder["tracking_id"]
    stored_before = stored_messages(collection, "bidi")[-1]
    assert stored_before["message"]["tracking_id"] == tracking_id

    final = {"role": "assistant", "content": [{"text": "Hello! How can I help?"}], "tracking_id": tracking_id}
    asyncio.run(
        agent.hooks.invoke_callbacks_async(MessageUpdatedEvent(agent=agent, tracking_id=tracking_id, message=final))
    )

    stored_after = stored_messages(collection, "bidi")
    assert len(stored_after) == 2, "rewritten in place, not appended"
    assert stored_after[-1]["message"]["content"] == [{"text": "Hello! How can I help?"}]
    assert stored_after[-1]["created_at"] == stored_before["created_at"]
    restored = make_agent(make_manager("bidi"))
    assert restored.messages[-1]["content"] == [{"text": "Hello! How can I help?"}]


def test_message_updated_event_for_an_unknown_message_writes_nothing(
    make_manager, collection, caplog: pytest.LogCaptureFixture
) -> None:
    agent = make_agent(make_manager("bidi-unknown"), ["hi"])
    agent("Hello?")
    before = collection.find_one({"_id": "bidi-unknown"})
    caplog.set_level(logging.WARNING)
    event = MessageUpdatedEvent(agent=agent, tracking_id="never-seen", message={"role": "assistant", "content": []})
    asyncio.run(agent.hooks.invoke_callbacks_async(event))
    assert collection.find_one({"_id": "bidi-unknown"}) == before
    assert any("never-seen" in r.getMessage() for r in caplog.records)


# ---- concurrency --------------------------------------------------------------------------------------------


def test_two_managers_appending_concurrently_lose_and_duplicate_nothing(make_manager, collection) -> None:
    seed = make_agent(make_manager("race"), ["ready"], agent_id="shared")
    seed("start")
    writers = [(make_manager("race"), name) for name in ("A", "B")]
    agents = [make_agent(manager, agent_id="shared") for manager, _ in writers]
    attempts = 30
    barrier = threading.Barrier(2)
    acknowledged: list[str] = []
    conflicts: list[MessageConflictError] = []
    unexpected: list[BaseException] = []
    lock = threading.Lock()

    def write(manager: MongoDBSessionManager, agent: Agent, name: str) -> None:
        barrier.wait()
        for i in range(attempts):
            text = f"{name}-{i}"
            try:
                manager.append_message({"role": "user", "content": [{"text": text}]}, agent)
            except MessageConflictError as exc:
                with lock:
                    conflicts.append(exc)
            except BaseException as exc:  # handed to the assertion below
                with lock:
                    unexpected.append(exc)
            else:
                with lock:
                    acknowledged.append(text)

    threads = [threading.Thread(target=write, args=(m, a, n)) for (m, n), a in zip(writers, agents, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert unexpected == []
    assert len(acknowledged) + len(conflicts) == 2 * attempts
    assert conflicts, "both writers start at the same id, so one of them must lose at least once"
    assert all(c.session_id == "race" and c.agent_id == "shared" for c in conflicts)
    stored = stored_messages(collection, "race", "shared")
    ids = [m["message_id"] for m in stored]
    assert ids == sorted(set(ids)), "unique and ordered"
    texts = [m["message"]["content"][0]["text"] for m in stored[2:]]
    assert sorted(texts) == sorted(acknowledged), "every acknowledged append is stored exactly once"
    for name in ("A", "B"):
        own = [int(t.split("-")[1]) for t in texts if t.startswith(name)]
        assert own == sorted(own)


def _construct_together(count: int, construct: Callable[[], MongoDBSessionManager]) -> list[Any]:
    """Run ``construct`` in ``count`` threads released together; return each manager or exception."""
    barrier = threading.Barrier(count)
    outcomes: list[Any] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        try:
            result: Any = construct()
        except BaseException as exc:  # handed to the caller's assertions
            result = exc
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_two_managers_creating_the_same_session_concurrently_both_succeed(
    mongo_client: MongoClient[Any], db_name: str, collection
) -> None:
    for n in range(5):
        session_id = f"created-together-{n}"
        outcomes = _construct_together(
            2,
            lambda sid=session_id: MongoDBSessionManager(
                sid, client=mongo_client, database_name=db_name, collection_name="sessions"
            ),
        )
        assert all(isinstance(o, MongoDBSessionManager) for o in outcomes), outcomes
        assert collection.count_documents({"_id": session_id}) == 1


@pytest.mark.parametrize("read", ["read_session", "restore_session"])
def test_a_lost_creation_race_resumes_the_existing_session(
    mongo_client: MongoClient[Any], db_name: str, read: str
) -> None:
    """Deterministic version of the race: our read saw no session, but another manager inserted it.

    ``restore_session`` is the one read a manager makes under an archive policy; a repository that
    overrides ``read_session`` gets Strands' own read instead.
    """

    class ReadBeforeTheOtherInsert(MongoDBSessionRepository):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.first_read = True
            self.create_refused = False

        def missed(self) -> bool:
            first, self.first_read = self.first_read, False
            return first

        def create_session(self, session: Any, **kwargs: Any) -> Any:
            try:
                return super().create_session(session, **kwargs)
            except SessionAlreadyExistsError:
                self.create_refused = True
                raise

    class MissesReadSession(ReadBeforeTheOtherInsert):
        def read_session(self, session_id: str, **kwargs: Any) -> Any:
            return None if self.missed() else super().read_session(session_id, **kwargs)

    class MissesRestoreSession(ReadBeforeTheOtherInsert):
        def restore_session(self, session_id: str) -> Any:
            return (None, {}) if self.missed() else super().restore_session(session_id)

    options = {"client": mongo_client, "database_name": db_name, "collection_name": "sessions"}
    winner = MongoDBSessionManager("raced", **options)
    make_agent(winner, ["first answer"])("first question")

    repository = (MissesReadSession if read == "read_session" else MissesRestoreSession)(**options)
    loser = MongoDBSessionManager("raced", repository=repository)
    assert repository.create_refused
    restored = make_agent(loser)
    assert [m["content"][0]["text"] for m in restored.messages] == ["first question", "first answer"]


# ---- construction, kwargs, close ------------------------------------------------------------------------------


def test_client_options_go_to_the_client_and_unknown_names_are_refused(mongo_uri: str, db_name: str) -> None:
    with pytest.raises(TypeError, match="some_future_strands_option"):
        MongoDBSessionManager("kwargs", connection_string=mongo_uri, some_future_strands_option=True)
    manager = MongoDBSessionManager(
        "kwargs",
        connection_string=mongo_uri,
        database_name=db_name,
        collection_name="sessions",
        maxPoolSize=7,
        serverselectiontimeoutms=4_321,
        appname="core-tests",
    )
    try:
        options = manager.repository.client.options
        assert options.pool_options.max_pool_size == 7
        assert options.server_selection_timeout == pytest.approx(4.321)
        assert manager.repository.client.options.pool_options.metadata["application"] == {"name": "core-tests"}
        assert manager.repository.owns_client
    finally:
        manager.close()


def test_split_client_kwargs() -> None:
    client, rest = split_client_kwargs(
        {"maxPoolSize": 5, "MAXIDLETIMEMS": 10, "tz_aware": True, "w": "majority", "conversation_limit": 3}
    )
    assert client == {"maxPoolSize": 5, "MAXIDLETIMEMS": 10, "tz_aware": True, "w": "majority"}
    assert rest == {"conversation_limit": 3}


def test_manager_with_its_own_client_closes_it(mongo_uri: str, db_name: str) -> None:
    with MongoDBSessionManager("owned", connection_string=mongo_uri, database_name=db_name) as manager:
        client = manager.repository.client
        assert client.admin.command("ping")["ok"] == 1
    with pytest.raises(InvalidOperation):
        client.admin.command("ping")


def test_manager_never_closes_a_borrowed_client_or_repository(mongo_client, db_name: str) -> None:
    manager = MongoDBSessionManager("borrowed", client=mongo_client, database_name=db_name)
    manager.close()
    assert mongo_client.admin.command("ping")["ok"] == 1

    repository = MongoDBSessionRepository(connection_string=None, client=mongo_client, database_name=db_name)
    with MongoDBSessionManager("borrowed", repository=repository) as shared:
        assert shared.repository is repository
    assert repository.read_session("borrowed") is not None, "the caller's repository stays usable"


def test_package_helper_creates_a_working_manager(mongo_uri: str, db_name: str) -> None:
    manager = create_mongodb_session_manager("helper", connection_string=mongo_uri, database_name=db_name)
    try:
        make_agent(manager, ["ok"])("hi")
        assert manager.get_message_count() == 2
    finally:
        manager.close()


def test_invalid_session_id_is_refused_before_connecting() -> None:
    unreachable = f"mongodb://127.0.0.1:{free_port()}/?directConnection=true&serverSelectionTimeoutMS=200"
    for bad in ("", "a.b", "$x", "nul\x00"):
        with pytest.raises(InvalidIdentifierError):
            MongoDBSessionManager(bad, connection_string=unreachable)


def test_unreachable_server_fails_construction_with_a_typed_error_naming_the_session() -> None:
    unreachable = f"mongodb://127.0.0.1:{free_port()}/?directConnection=true"
    with pytest.raises(DatabaseUnavailableError) as info:
        MongoDBSessionManager("offline-session", connection_string=unreachable, serverSelectionTimeoutMS=300)
    assert info.value.session_id == "offline-session"
    assert isinstance(info.value, SessionException)
