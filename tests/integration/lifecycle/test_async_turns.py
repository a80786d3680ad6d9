"""``async def`` services: creation, restore and every turn's writes happen off the event loop.

Each MongoDB command is recorded with the thread that sent it; none may come from the thread that
runs the event loop (that would block every other request of the service while it waits).
"""

from __future__ import annotations

import asyncio
import copy
import threading
from typing import Any

import pytest
from pymongo import MongoClient, monitoring
from strands import Agent
from strands.types.session import SessionMessage

from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionManagerFactory
from mongodb_session_manager.errors import SessionBusyError
from mongodb_session_manager.redaction import PIIRedactor
from mongodb_session_manager.testing import ScriptedModel

from ..test_manager_features import GuardrailModel
from ._turn_worker import SlowModel
from .test_failed_turns import FailingModel, Throttled


class ThreadRecorder(monitoring.CommandListener):
    # The test's own client.close() sends endSessions; ping is the stats call the factory test checks.
    IGNORED = frozenset({"hello", "ismaster", "isMaster", "endSessions", "ping"})

    def __init__(self, ignored: frozenset[str] = IGNORED) -> None:
        self.calls: list[tuple[str, int]] = []
        self.ignored = ignored

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in self.ignored:
            self.calls.append((event.command_name, threading.get_ident()))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
def recorded(mongo_uri: str, db_name: str) -> Any:
    recorder = ThreadRecorder()
    client: MongoClient[Any] = MongoClient(mongo_uri, event_listeners=[recorder])
    yield recorder, {"client": client, "database_name": db_name, "collection_name": "sessions"}
    client.close()


def test_an_async_request_never_touches_mongodb_from_the_event_loop(recorded) -> None:
    recorder, options = recorded

    async def request(prompt: str) -> tuple[str, int]:
        manager = await MongoDBSessionManager.acreate("async-1", **options)
        agent = Agent(agent_id="assistant", model=ScriptedModel(), session_manager=manager, callback_handler=None)
        reply = str(await agent.invoke_async(prompt))
        await manager.aupdate_metadata({"last": prompt})
        return reply, threading.get_ident()

    async def main() -> list[tuple[str, int]]:
        first = await request("first")  # creates the session and the agent
        return [first, await request("second")]  # a stateless request restoring it

    results = asyncio.run(main())
    loop_thread = results[0][1]
    assert recorder.calls, "the requests did talk to MongoDB"
    assert all(thread != loop_thread for _, thread in recorder.calls), recorder.calls
    assert "**second**" in results[1][0]
    names = [name for name, _ in recorder.calls]
    assert names.count("find") >= 1 and "findAndModify" not in names


def test_a_restored_agent_gets_its_history_from_the_async_read(recorded) -> None:
    recorder, options = recorded

    async def main() -> list[str]:
        first = await MongoDBSessionManager.acreate("async-restore", **options)
        agent = Agent(agent_id="a", model=ScriptedModel(["one"]), session_manager=first, callback_handler=None)
        await agent.invoke_async("hello")
        second = await MongoDBSessionManager.acreate("async-restore", **options)
        recorder.calls.clear()
        restored = Agent(agent_id="a", model=ScriptedModel(), session_manager=second, callback_handler=None)
        assert recorder.calls == [], "Agent() does no I/O: the restore was read by acreate"
        return [m["content"][0]["text"] for m in restored.messages]

    assert asyncio.run(main()) == ["hello", "one"]


def test_a_failed_async_turn_is_rolled_back_and_the_next_one_works(recorded, collection) -> None:
    _, options = recorded

    async def main() -> None:
        manager = await MongoDBSessionManager.acreate("async-fail", **options)
        agent = Agent(
            agent_id="a",
            model=FailingModel(["ok", "fine"], fail_on={1}),
            session_manager=manager,
            callback_handler=None,
        )
        await agent.invoke_async("one")
        with pytest.raises(Throttled):
            await agent.invoke_async("two")
        async for _ in agent.stream_async("three"):
            pass

    asyncio.run(main())
    texts = [
        m["message"]["content"][0]["text"]
        for m in collection.find_one({"_id": "async-fail"})["agents"]["a"]["messages"]
    ]
    assert texts == ["one", "ok", "three", "fine"]


class GatedModel(ScriptedModel):
    """Answers only once ``gate`` is set: the turn is mid-call when the caller gives up."""

    def __init__(self, gate: asyncio.Event) -> None:
        super().__init__()
        self.gate = gate

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        await self.gate.wait()
        async for event in super().stream(*args, **kwargs):
            yield event


@pytest.mark.parametrize("abandon", ["task cancelled", "wait_for timeout"])
def test_an_abandoned_async_turn_is_rolled_back_and_frees_the_agent_at_once(recorded, collection, abandon: str) -> None:
    """A cancelled request task (the server's reaction to a client that went away) or a request
    timeout ends the turn in the middle of the model call: nothing of it is stored, the lease is
    released there and then (the next request, which waits for no one, is served), and the same agent
    object can go on. A stream closed mid-answer: ``test_abandoned_streams.py``."""
    _, options = recorded

    async def main() -> tuple[list[str], Any, list[str]]:
        first = await MongoDBSessionManager.acreate("async-abandoned", **options)
        agent = Agent(agent_id="a", model=ScriptedModel(), session_manager=first, callback_handler=None)
        await agent.invoke_async("kept")
        manager = await MongoDBSessionManager.acreate("async-abandoned", **options)
        gate = asyncio.Event()
        abandoned = Agent(agent_id="a", model=GatedModel(gate), session_manager=manager, callback_handler=None)
        if abandon == "task cancelled":
            task = asyncio.create_task(abandoned.invoke_async("dropped"))
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        else:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(abandoned.invoke_async("dropped"), 0.2)
        in_memory = [m["content"][0]["text"][:5] for m in abandoned.messages]
        lease = collection.find_one({"_id": "async-abandoned"})["agents"]["a"].get("lease")
        nobody_waits = await MongoDBSessionManager.acreate("async-abandoned", busy_timeout=0.0, **options)
        after = Agent(agent_id="a", model=ScriptedModel(), session_manager=nobody_waits, callback_handler=None)
        await after.invoke_async("next")  # SessionBusyError if the abandoned turn still held the lease
        abandoned.model = ScriptedModel()
        await abandoned.invoke_async("again")  # stale after "next": reloaded, then answered after it
        return in_memory, lease, [m["content"][0]["text"][:5] for m in abandoned.messages]

    in_memory, lease, history = asyncio.run(main())
    assert in_memory == ["kept", "Thank"], "the abandoned turn is gone from the agent too"
    assert lease is None, "released when the turn was abandoned, not left to expire"
    stored = collection.find_one({"_id": "async-abandoned"})["agents"]["a"]["messages"]
    assert [m["message"]["content"][0]["text"][:5] for m in stored] == [
        "kept",
        "Thank",
        "next",
        "Thank",
        "again",
        "Thank",
    ]
    assert history == ["kept", "Thank", "next", "Thank", "again", "Thank"]


def test_concurrent_async_turns_on_one_agent_take_turns_or_are_refused(recorded, collection) -> None:
    _, options = recorded

    async def invoke(prompt: str, busy_timeout: float) -> str:
        manager = await MongoDBSessionManager.acreate("async-race", busy_timeout=busy_timeout, **options)
        agent = Agent(agent_id="a", model=SlowModel(0.2), session_manager=manager, callback_handler=None)
        try:
            await agent.invoke_async(prompt)
        except SessionBusyError:
            return "busy"
        return "done"

    async def main() -> list[str]:
        await invoke("setup", 5)
        patient = await asyncio.gather(invoke("p1", 10), invoke("p2", 10), invoke("p3", 10))
        running = asyncio.create_task(invoke("i1", 10))
        await asyncio.sleep(0.1)  # i1 holds the lease now (its model takes 0.2 s)
        impatient = await invoke("i2", 0.0)
        return [*patient, await running, impatient]

    outcome = asyncio.run(main())
    assert outcome[:3] == ["done"] * 3, "waiting invocations get their turn, one after the other"
    assert outcome[3:] == ["done", "busy"]
    messages = collection.find_one({"_id": "async-race"})["agents"]["a"]["messages"]
    assert [m["message"]["role"] for m in messages] == ["user", "assistant"] * 5


def test_an_async_created_manager_serves_a_sync_agent_call_and_the_async_feature_methods(recorded) -> None:
    _, options = recorded
    manager = asyncio.run(MongoDBSessionManager.acreate("async-then-sync", **options))
    agent = Agent(agent_id="a", model=ScriptedModel(["sync answer"]), session_manager=manager, callback_handler=None)
    assert str(agent("a sync call")).strip() == "sync answer"

    async def features() -> dict[str, Any]:
        await manager.aupdate_metadata({"status": "open", "tmp": 1})
        await manager.adelete_metadata(["tmp"])
        await manager.aadd_feedback({"rating": "up", "comment": "good"})
        await manager.aupdate_agent_config("a", model="override")
        return {
            "metadata": await manager.aget_metadata(),
            "feedbacks": [f["rating"] for f in await manager.aget_feedbacks()],
            "count": await manager.aget_message_count("a"),
            "agents": [a["agent_id"] for a in await manager.alist_agents()],
            "model": (await manager.aget_agent_config("a") or {})["model"],
            "password": len(await manager.aget_session_viewer_password()),
        }

    assert asyncio.run(features()) == {
        "metadata": {"status": "open"},
        "feedbacks": ["up"],
        "count": 2,
        "agents": ["a"],
        "model": "override",
        "password": 32,
    }


def test_the_factory_creates_managers_off_the_loop(mongo_uri: str, db_name: str) -> None:
    factory = MongoDBSessionManagerFactory(mongo_uri, database_name=db_name, collection_name="sessions")
    try:

        async def main() -> str:
            manager = await factory.acreate_session_manager("factory-async")
            agent = Agent(agent_id="a", model=ScriptedModel(["hi"]), session_manager=manager, callback_handler=None)
            return str(await agent.invoke_async("hello"))

        assert asyncio.run(main()).strip() == "hi"
    finally:
        factory.close()


class PlainSubclass(MongoDBSessionManager):
    """A user's subclass whose constructor does not pass extra keywords on."""

    def __init__(self, session_id: str, client: Any, database_name: str, collection_name: str) -> None:
        super().__init__(session_id, client=client, database_name=database_name, collection_name=collection_name)


@pytest.mark.parametrize("create", ["factory", "classmethod", "subclass"])
def test_an_async_stateless_request_is_one_read_the_lease_and_the_commit(recorded, create: str) -> None:
    recorder, options = recorded
    factory = MongoDBSessionManagerFactory(client=options["client"], database_name=options["database_name"])

    async def request(prompt: str) -> list[str]:
        if create == "factory":
            manager = await factory.acreate_session_manager(f"rt-{create}", collection_name="sessions")
        elif create == "classmethod":
            manager = await MongoDBSessionManager.acreate(f"rt-{create}", **options)
        else:
            manager = await PlainSubclass.acreate(f"rt-{create}", **options)
        agent = Agent(agent_id="assistant", model=ScriptedModel(), session_manager=manager, callback_handler=None)
        await agent.invoke_async(prompt)
        return [m["content"][0]["text"] for m in agent.messages]

    async def main() -> list[str]:
        await request("first")  # creates the session and the agent
        recorder.calls.clear()
        return await request("second")

    texts = asyncio.run(main())
    names = [name for name, _ in recorder.calls]
    if create == "subclass":  # it cannot be handed the flag: the session read, then the agents
        assert names == ["find", "find", "update", "update"]
    else:
        assert names == ["find", "update", "update"], "session and agents in one read, lease, commit"
    assert texts[0] == "first" and texts[2] == "second", "the restore came from that one read"
    factory.close()


def test_without_a_policy_the_async_read_computes_the_windows_on_the_server(recorded) -> None:
    # Without an archive policy a document's arrays may be of any length: the one read is the
    # aggregation that cuts every agent's window on the server, not the whole document.
    recorder, options = recorded
    options = {**options, "archive_policy": None}

    async def request(prompt: str) -> list[str]:
        manager = await MongoDBSessionManager.acreate("rt-no-policy", **options)
        agent = Agent(agent_id="assistant", model=ScriptedModel(), session_manager=manager, callback_handler=None)
        await agent.invoke_async(prompt)
        return [m["content"][0]["text"] for m in agent.messages]

    async def main() -> list[str]:
        await request("first")
        recorder.calls.clear()
        return await request("second")

    texts = asyncio.run(main())
    assert [name for name, _ in recorder.calls] == ["aggregate", "update", "update"]
    assert texts[0] == "first" and texts[2] == "second"


def test_an_async_created_new_session_is_read_once_and_created_once(recorded) -> None:
    recorder, options = recorded

    async def main() -> MongoDBSessionManager:
        return await MongoDBSessionManager.acreate("brand-new", **options)

    manager = asyncio.run(main())
    assert [name for name, _ in recorder.calls if name != "createIndexes"] == ["find", "insert"]
    assert manager.session.session_id == "brand-new"
    stored = options["client"][options["database_name"]]["sessions"].find_one({"_id": "brand-new"})
    assert stored is not None and stored["session_id"] == "brand-new"


def _off_the_loop(recorder: ThreadRecorder, loop_thread: int) -> list[str]:
    """The commands sent so far, after checking none came from the event loop's thread."""
    on_loop = [name for name, thread in recorder.calls if thread == loop_thread]
    assert not on_loop, f"sent from the event loop: {on_loop}"
    return [name for name, _ in recorder.calls]


def test_a_guardrail_redaction_in_an_async_turn_is_stored_and_audited_off_the_loop(recorded, collection) -> None:
    recorder, options = recorded

    async def request() -> tuple[int, list[dict[str, Any]]]:
        manager = await MongoDBSessionManager.acreate("async-guard", **options)
        agent = Agent(agent_id="guarded", model=GuardrailModel(), session_manager=manager, callback_handler=None)
        await agent.invoke_async("tell me something forbidden")
        return threading.get_ident(), await manager.aget_guardrail_events()

    loop_thread, events = asyncio.run(request())
    names = _off_the_loop(recorder, loop_thread)
    # The prompt was redacted while the turn held it: stored redacted by the commit, audited right after
    # (no attempt to rewrite a message that is not stored yet, which cost an update and three reads).
    assert "aggregate" not in names, names
    user = collection.find_one({"_id": "async-guard"})["agents"]["guarded"]["messages"][0]
    assert user["redact_message"]["content"][0]["text"] == "[blocked by guardrail]"
    assert user["guardrail_event"]["action"] == "BLOCKED"
    assert [(e["agent_id"], e["message_id"]) for e in events] == [("guarded", user["message_id"])]


def test_an_agent_built_with_a_redacted_history_sends_nothing_until_its_first_turn(recorded, collection) -> None:
    recorder, options = recorded
    history = [
        {"role": "user", "content": [{"text": "mail me at bob@example.com"}]},
        {"role": "assistant", "content": [{"text": "noted"}]},
    ]

    async def request(session_id: str, invoke: bool) -> int:
        manager = await MongoDBSessionManager.acreate(session_id, redactor=PIIRedactor(), **options)
        before = len(recorder.calls)
        agent = Agent(
            agent_id="a",
            model=ScriptedModel(["ok"]),
            messages=copy.deepcopy(history),  # the redactor rewrites the agent's messages in place
            session_manager=manager,
            callback_handler=None,
        )
        assert len(recorder.calls) == before, "building the Agent sent commands"
        if invoke:
            await agent.invoke_async("thanks")
        await manager.aclose()  # without a turn, close records the counts
        return threading.get_ident()

    loop_thread = asyncio.run(request("async-redacted-history", invoke=True))
    asyncio.run(request("async-redacted-no-turn", invoke=False))
    _off_the_loop(recorder, loop_thread)
    stored = collection.find_one({"_id": "async-redacted-history"})
    assert "bob@example.com" not in str(stored["agents"]["a"]["messages"])
    assert stored["redactions"] and collection.find_one({"_id": "async-redacted-no-turn"})["redactions"]


def test_a_restored_unfinished_turn_is_set_aside_by_the_first_async_turn(recorded, collection) -> None:
    recorder, options = recorded
    first = MongoDBSessionManager("async-tail", **options)
    Agent(agent_id="a", model=ScriptedModel(["one"]), session_manager=first, callback_handler=None)("first")
    # Another process died mid-turn: its prompt is stored, no answer.
    first.session_repository.append_messages(
        "async-tail", "a", [SessionMessage.from_message({"role": "user", "content": [{"text": "dangling"}]}, 2)]
    )
    recorder.calls.clear()

    async def request() -> tuple[int, int, list[str]]:
        manager = await MongoDBSessionManager.acreate("async-tail", **options)
        before = len(recorder.calls)
        agent = Agent(agent_id="a", model=ScriptedModel(["two"]), session_manager=manager, callback_handler=None)
        built = len(recorder.calls) - before
        seen = [block["text"] for m in agent.messages for block in m["content"]]
        await agent.invoke_async("second")
        return threading.get_ident(), built, seen

    loop_thread, built, seen = asyncio.run(request())
    _off_the_loop(recorder, loop_thread)
    assert built == 0 and "dangling" not in seen
    agent_doc = collection.find_one({"_id": "async-tail"})["agents"]["a"]
    assert [m["message"]["content"][0]["text"] for m in agent_doc["abandoned_messages"]] == ["dangling"]
    texts = [m["message"]["content"][0]["text"].strip() for m in agent_doc["messages"]]
    assert texts[0] == "first" and texts[2:] == ["second", "two"], texts


def test_a_graph_stores_its_progress_off_the_loop(recorded, collection) -> None:
    from strands.multiagent import GraphBuilder

    recorder, options = recorded

    async def request() -> int:
        manager = await MongoDBSessionManager.acreate("async-graph", **options)
        builder = GraphBuilder()
        builder.add_node(Agent(name="n1", model=ScriptedModel(["n1 out"]), callback_handler=None), "n1")
        builder.add_node(Agent(name="n2", model=ScriptedModel(["n2 out"]), callback_handler=None), "n2")
        builder.add_edge("n1", "n2")
        builder.set_max_node_executions(4)  # bounded, as a service's graph should be
        builder.set_session_manager(manager)
        graph = await asyncio.to_thread(builder.build)  # Strands creates its state inside the constructor
        recorder.calls.clear()
        await graph.invoke_async("go")
        return threading.get_ident()

    loop_thread = asyncio.run(request())
    assert _off_the_loop(recorder, loop_thread).count("update") >= 2
    assert collection.find_one({"_id": "async-graph"})["multi_agents"]


def test_the_factorys_async_twins_ping_and_close_off_the_loop(mongo_uri: str, db_name: str) -> None:
    recorder = ThreadRecorder(ignored=frozenset({"hello", "ismaster", "isMaster"}))
    client: MongoClient[Any] = MongoClient(mongo_uri, event_listeners=[recorder])
    factory = MongoDBSessionManagerFactory(client=client, database_name=db_name, collection_name="sessions")
    try:

        async def main() -> tuple[int, dict[str, Any]]:
            await factory.aensure_indexes()
            stats = await factory.aget_connection_stats()
            await factory.aclose()
            return threading.get_ident(), stats

        loop_thread, stats = asyncio.run(main())
        names = _off_the_loop(recorder, loop_thread)
        assert "ping" in names and "createIndexes" in names
        assert stats["borrowed_client"] is True and stats["collection_name"] == "sessions"
    finally:
        factory.close()
        client.close()
