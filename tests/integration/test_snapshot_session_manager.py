"""The snapshot path on the real mongod: Strands' own SnapshotSessionManager over MongoDBStorage, and
MongoDBSnapshotSessionManager's session features (metadata, feedback, metrics, config, counts, password)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pymongo import MongoClient
from strands import Agent
from strands.bidi import BidiAgent
from strands.bidi.models.model import BidiModel
from strands.multiagent import GraphBuilder
from strands.session import SnapshotSessionManager

from mongodb_session_manager import MongoDBSessionManagerFactory, MongoDBSnapshotSessionManager, MongoDBStorage
from mongodb_session_manager.errors import AgentNotFoundError, InvalidInputError
from mongodb_session_manager.testing import ScriptedModel

SID = "snap-session"


@pytest.fixture
def storage(mongo_client: MongoClient[Any], db_name: str) -> Iterator[MongoDBStorage]:
    storage = MongoDBStorage(database_name=db_name, collection_name="sessions", client=mongo_client)
    yield storage
    storage.close()


@pytest.fixture
def doc(mongo_client: MongoClient[Any], db_name: str) -> Callable[[str], dict[str, Any]]:
    return lambda sid=SID: mongo_client[db_name]["sessions"].find_one({"_id": sid})


def agent(manager: Any, replies: list[Any] | None = None, **kwargs: Any) -> Agent:
    return Agent(model=ScriptedModel(replies or []), session_manager=manager, callback_handler=None, **kwargs)


def texts(a: Agent) -> list[str]:
    return [b["text"] for m in a.messages for b in m["content"] if "text" in b]


# ---- Strands' own SnapshotSessionManager over MongoDBStorage ------------------------------------------


def test_turns_are_saved_and_restored_by_a_new_manager(storage: MongoDBStorage, doc: Any) -> None:
    first = agent(SnapshotSessionManager(SID, storage=storage), ["one", "two"], system_prompt="Be brief.")
    first("hi")
    first("again")
    restored = agent(SnapshotSessionManager(SID, storage=storage))
    assert texts(restored) == ["hi", "one", "again", "two"]
    assert restored.system_prompt == "Be brief."
    assert doc()["snapshots"]["agent"]["default"]["message_count"] == 4


def test_state_and_async_invocation(storage: MongoDBStorage) -> None:
    async def app() -> None:
        a = agent(SnapshotSessionManager(SID, storage=storage), ["async reply"])
        a.state.set("plan", {"step": 2})
        await a.invoke_async("from an async app")

    asyncio.run(app())
    restored = agent(SnapshotSessionManager(SID, storage=storage))
    assert restored.state.get("plan") == {"step": 2} and texts(restored)[-1] == "async reply"


def test_redaction_flushes_the_stored_snapshot(storage: MongoDBStorage, doc: Any) -> None:
    manager = SnapshotSessionManager(SID, storage=storage, save_latest_on="message")
    a = agent(manager, ["ok"])
    a("my card is 4111-1111")
    assert "4111" in str(doc()["snapshots"])
    # What the Agent does on a guardrail redaction: replace the content, then tell the manager.
    redacted = {"role": "user", "content": [{"text": "[User input redacted.]"}]}
    a.messages[0]["content"] = redacted["content"]
    manager.redact_latest_message(redacted, a)  # type: ignore[arg-type]
    stored = doc()
    assert "4111" not in str(stored["snapshots"]) and "4111" not in stored["snapshot_tokens"]
    assert texts(agent(SnapshotSessionManager(SID, storage=storage)))[0] == "[User input redacted.]"


def test_immutable_checkpoints_and_time_travel(storage: MongoDBStorage, mongo_client: Any, db_name: str) -> None:
    manager = SnapshotSessionManager(SID, storage=storage, snapshot_trigger=lambda **_: True)
    a = agent(manager, ["first", "second"])
    a("one")
    a("two")
    ids = asyncio.run(manager.list_snapshot_ids(a))
    assert len(ids) == 2 and ids == sorted(ids)
    assert mongo_client[db_name]["sessions_snapshot_history"].count_documents({"session_id": SID}) == 2
    assert asyncio.run(manager.restore_snapshot(a, snapshot_id=ids[0]))
    assert texts(a) == ["one", "first"]


def test_graph_resumes_from_its_latest_state(storage: MongoDBStorage, doc: Any) -> None:
    key = "session/snap-session/scopes/multiAgent/pipeline/snapshots/snapshot_latest.json"
    written: list[bytes] = []

    class Recording(MongoDBStorage):
        async def write(self, k: str, data: bytes) -> None:
            if k == key:
                written.append(data)
            await super().write(k, data)

    recording = Recording(database_name=storage.database_name, collection_name="sessions", client=storage.sync_client)

    def build(research_model: ScriptedModel) -> Any:
        builder = GraphBuilder()
        builder.add_node(Agent(model=research_model, callback_handler=None, name="r"), "research")
        builder.add_node(Agent(model=ScriptedModel(["summary done"]), callback_handler=None, name="s"), "summary")
        builder.add_edge("research", "summary")
        builder.set_graph_id("pipeline")
        builder.set_execution_timeout(60)
        builder.set_session_manager(SnapshotSessionManager(SID, storage=recording))
        return builder.build()

    result = build(ScriptedModel(["research done"]))("go")
    assert str(result.status).lower().endswith("completed")
    entry = doc()["snapshots"]["multiAgent"]["pipeline"]
    assert entry["data"]["scope"] == "multiAgent" and entry["key"] == key
    # Simulate a crash right after the first node: its latest snapshot is what the store holds.
    after_research = next(w for w in written if b'"next_nodes_to_execute": ["summary"]' in w)
    asyncio.run(storage.write(key, after_research))
    research_again = ScriptedModel(["must not run"])
    resumed = build(research_again)("go")
    assert str(resumed.status).lower().endswith("completed")
    assert research_again.calls == []  # resumed at "summary": the finished node was not re-run


# ---- MongoDBSnapshotSessionManager's features ---------------------------------------------------------


@pytest.fixture
def make(storage: MongoDBStorage) -> Callable[..., MongoDBSnapshotSessionManager]:
    return lambda sid=SID, **kw: MongoDBSnapshotSessionManager(sid, storage=storage, **kw)


def test_metadata_feedback_and_password_before_any_turn(make: Any, doc: Any) -> None:
    m = make()
    m.update_metadata({"user": "ana", "tier": "gold"})
    m.delete_metadata(["tier"])
    m.add_feedback({"rating": "up", "comment": "great"})
    assert m.get_metadata() == {"user": "ana"}
    assert [(f["rating"], f["comment"]) for f in m.get_feedbacks()] == [("up", "great")]
    password = m.get_session_viewer_password()
    assert len(password) == 32 and m.get_session_viewer_password() == password
    # The first snapshot keeps what was set before it.
    agent(m, ["hello"])("hi")
    stored = doc()
    assert stored["metadata"] == {"user": "ana"} and stored["session_viewer_password"] == password


def test_hooks_intercept_metadata_and_feedback(make: Any) -> None:
    calls: list[tuple[str, str]] = []

    def hook(original: Callable[..., Any], action: str, session_id: str, **kwargs: Any) -> Any:
        calls.append((action, session_id))
        if action == "update":
            return original({**kwargs["metadata"], "audited": True})
        if action == "add":
            return original(kwargs["feedback"])
        return original(kwargs["keys"]) if action == "delete" else original()

    m = make(metadata_hook=hook, feedbackHook=hook)
    m.update_metadata({"a": 1})
    m.add_feedback({"rating": "down", "comment": "slow"})
    assert m.get_metadata() == {"a": 1, "audited": True}
    assert calls == [("update", SID), ("add", SID), ("get", SID)]


def test_metadata_tool_works_on_a_snapshot_session(make: Any) -> None:
    m = make()
    a = agent(m, tools=[m.get_metadata_tool()])
    a("please remember that my city is Lisbon")
    assert m.get_metadata() == {"city": "Lisbon"}


def test_per_turn_metrics_totals_config_and_counts(make: Any, doc: Any) -> None:
    m = make()
    a = agent(m, ["first answer", "second answer"], system_prompt="You are terse.")
    a("q1")
    a("q2")
    turns = m.get_turn_metrics("default")
    assert [t["message_index"] for t in turns] == [1, 3]
    assert all(t["turn_usage"]["totalTokens"] > 0 and t["turn_metrics"]["latencyMs"] == 42 for t in turns)
    assert a.messages[turns[1]["message_index"]]["role"] == "assistant"
    [row] = m.list_agents()
    assert row["agent_id"] == "default" and row["message_count"] == 4
    assert row["model"] == "scripted-offline-model" and row["system_prompt"] == "You are terse."
    assert row["totals"]["turns"] == 2
    assert row["totals"]["usage"]["totalTokens"] == sum(t["turn_usage"]["totalTokens"] for t in turns)
    assert m.get_message_count() == 4 and m.get_message_count("default") == 4
    with pytest.raises(AgentNotFoundError):  # as on the message-log path, not a silent 0
        m.get_message_count("x")
    assert doc()["totals"]["usage"]["totalTokens"] == row["totals"]["usage"]["totalTokens"]


def test_agent_config_override_is_kept_until_the_agent_changes(make: Any) -> None:
    m = make()
    a = agent(m, ["a", "b", "c"], system_prompt="v1")
    a("one")
    m.update_agent_config("default", model="override-model")
    agent(make(), ["b"])("two")  # restored with the same config: the override stays
    assert m.get_agent_config("default")["model"] == "override-model"
    changed = agent(make(), ["c"])
    changed.system_prompt = "v2"  # after the restore, which brings back the snapshot's prompt
    changed("three")
    config = m.get_agent_config("default")
    assert config["model"] == "scripted-offline-model" and config["system_prompt"] == "v2"


def test_agent_config_of_an_unknown_agent_or_of_the_wrong_type_is_a_typed_error(make: Any) -> None:
    m = make()
    agent(m, ["a"])("one")
    with pytest.raises(AgentNotFoundError):
        m.update_agent_config("nope", model="m")
    with pytest.raises(InvalidInputError, match="model must be a string"):
        m.update_agent_config("default", model=5)  # type: ignore[arg-type]
    assert [a["agent_id"] for a in m.list_agents()] == ["default"]
    assert m.get_agent_config("default")["model"] == "scripted-offline-model"


def test_delete_session_removes_everything(make: Any, doc: Any, mongo_client: Any, db_name: str) -> None:
    m = make(snapshot_trigger=lambda **_: True)
    agent(m, ["x"])("hi")
    m.update_metadata({"k": "v"})
    asyncio.run(m.delete_session())
    assert doc() is None
    assert mongo_client[db_name]["sessions_snapshot_history"].count_documents({}) == 0


def test_factory_shares_one_storage(mongo_uri: str, db_name: str) -> None:
    factory = MongoDBSessionManagerFactory(mongo_uri, database_name=db_name, collection_name="sessions")
    try:
        first = factory.create_snapshot_session_manager("f1")
        second = asyncio.run(factory.acreate_snapshot_session_manager("f2", save_latest_on="message"))
        assert first.mongodb_storage is second.mongodb_storage
        assert first.mongodb_storage.sync_client is factory.client
        agent(second, ["ok"])("hi")
        assert agent(factory.create_snapshot_session_manager("f2")).messages[-1]["role"] == "assistant"
        with pytest.raises(ValueError):
            factory.create_snapshot_session_manager("f3", client=object())
    finally:
        factory.close()


def test_turn_metrics_keep_pointing_at_their_message_after_trimming(make: Any, doc: Any) -> None:
    from strands.agent.conversation_manager import SlidingWindowConversationManager

    from session_viewer.backend.snapshot_timeline import detail_from_document

    m = make()
    a = agent(
        m, [f"answer {i}" for i in range(5)], conversation_manager=SlidingWindowConversationManager(window_size=4)
    )
    for i in range(5):
        a(f"question {i}")
    removed = a.conversation_manager.removed_message_count
    assert removed == 6 and len(a.messages) == 4
    turns = m.get_turn_metrics("default")
    assert [t["message_index"] for t in turns] == [1, 3, 5, 7, 9]  # positions in the whole conversation
    assert turns[-1]["message_index"] - removed == len(a.messages) - 1
    body = detail_from_document(doc(), 0, 100)
    shown = [i for i in body["timeline"] if i["type"] == "message"]
    with_metrics = [i["content"][0]["text"] for i in shown if i["metrics"]]
    assert [i["content"][0]["text"] for i in shown] == ["question 3", "answer 3", "question 4", "answer 4"]
    assert with_metrics == ["answer 3", "answer 4"]


def test_factory_defaults_and_application_name(mongo_uri: str, db_name: str, doc: Any) -> None:
    factory = MongoDBSessionManagerFactory(
        mongo_uri, database_name=db_name, collection_name="sessions", application_name="support-bot"
    )
    try:
        manager = factory.create_snapshot_session_manager(SID)
        agent(manager, ["hi"])("hello")  # the storage creates the document; the turn fills the name in
        assert doc()["application_name"] == "support-bot"
        other = factory.create_snapshot_session_manager("s-2", application_name="other")
        other.update_metadata({"a": 1})  # created by a feature write, before any snapshot
        assert doc("s-2")["application_name"] == "other"
    finally:
        factory.close()


def test_context_manager_stash_lives_in_the_key_value_collection(
    storage: MongoDBStorage, mongo_client: Any, db_name: str, make: Any
) -> None:
    from strands._context_manager.stash import Stash

    stash = Stash(storage, SID, "default")
    key = asyncio.run(stash.store("tool-1", 0, b'{"text": "a long tool result"}'))
    assert asyncio.run(stash.retrieve(key)) == {"text": "a long tool result"}
    stored = mongo_client[db_name]["sessions_storage"].find_one({"_id": f"context/{SID}/scopes/agent/default/{key}"})
    assert stored is not None and stored["data"] == {"text": "a long tool result"}
    asyncio.run(stash.clear_session())  # Strands' own cleanup: list("context/<sid>/") then delete
    assert asyncio.run(storage.list("context/")) == []
    asyncio.run(stash.store("tool-2", 0, b'{"x": 1}'))
    m = make()
    agent(m, ["ok"])("hi")
    asyncio.run(m.delete_session())  # a manager never attached to the stash still removes it
    assert asyncio.run(storage.list("")) == []


class FakeBidiModel(BidiModel):
    """A bidirectional model that accepts input and never answers (enough for persistence)."""

    def __init__(self) -> None:
        self.started_with: list[Any] = []
        self._stopped = asyncio.Event()

    def update_config(self, **model_config: Any) -> None:
        pass

    def get_config(self) -> dict[str, Any]:
        return {"model_id": "fake-bidi"}

    async def start(self, system_prompt: Any = None, tools: Any = None, messages: Any = None, **kwargs: Any) -> None:
        self.started_with = list(messages or [])
        self._stopped = asyncio.Event()

    async def stop(self) -> None:
        self._stopped.set()

    async def receive(self) -> Any:  # an async generator that ends when stopped
        await self._stopped.wait()
        for _ in ():
            yield _

    async def send(self, content: Any) -> None:
        pass


def test_bidi_agent_is_saved_per_message_and_restored(storage: MongoDBStorage, make: Any) -> None:
    async def conversation() -> tuple[list[Any], list[Any]]:
        first = BidiAgent(model=FakeBidiModel(), session_manager=make())
        await first.start()
        await first.send("hello over the stream")
        await first.stop()
        model = FakeBidiModel()
        second = BidiAgent(model=model, session_manager=SnapshotSessionManager(SID, storage=storage))
        await second.start()
        await second.stop()
        return second.messages, model.started_with

    restored, sent_to_model = asyncio.run(conversation())
    assert texts(Agent(messages=restored, model=ScriptedModel(), callback_handler=None)) == ["hello over the stream"]
    assert sent_to_model == restored  # the model connection starts with the restored history
    assert make().get_message_count() == 1
