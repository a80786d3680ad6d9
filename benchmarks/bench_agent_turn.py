"""Benchmark 2: what persisting one agent turn costs: database round trips and latency.

A turn is ``agent("...")`` with the offline ``ScriptedModel``: the turn's lease, then one commit
that stores its messages, their metrics and the agent's state. Round trips are counted with
pymongo command monitoring (every command is one round trip), itemised by command name, in three
situations, each with its target from the "turns that never break a session" work:

* steady state: a long-lived agent, plain text turn (at most 2). The turns on which the agent passes
  the archive policy and its oldest messages move into a bucket (2 of the 150) are printed apart,
  with their own round trips: a split writes a second collection, which two round trips cannot;
* a turn where the model calls a tool (four messages: user, toolUse, toolResult, answer; at most 4);
* a stateless request: a manager from the factory and an ``Agent`` restored per turn (at most 4).

Latency is the whole ``agent()`` call with persistence, against the same agent without a session
manager (the baseline, same run). Run: uv run python benchmarks/bench_agent_turn.py
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from typing import Any

from _common import Result, Stats, Target, line, run_main, scratch_database
from pymongo import MongoClient, monitoring
from strands import Agent

from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionManagerFactory
from mongodb_session_manager.demo import calculator
from mongodb_session_manager.testing import ScriptedModel

TURNS, WARMUP = 150, 10
TOOL_TURNS = 40
STATELESS_TURNS = 60
COLLECTION = "sessions"


class RoundTrips(monitoring.CommandListener):
    """Command names and server-side durations, grouped per turn by the caller."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.micros = 0

    def reset(self) -> tuple[list[str], int]:
        names, micros = self.names, self.micros
        self.names, self.micros = [], 0
        return names, micros

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self.micros += event.duration_micros

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self.micros += event.duration_micros


def turns(
    agent: Agent, listener: RoundTrips | None, count: int, prompt: str
) -> tuple[Stats, list[Counter[str]], Stats]:
    """Run ``count`` turns; per turn: wall time, commands by name and time spent in commands."""
    latencies, per_turn, db_ms = [], [], []
    for i in range(count):
        if listener:
            listener.reset()
        start = time.perf_counter()
        agent(f"{prompt} {i}")
        latencies.append((time.perf_counter() - start) * 1000)
        if listener:
            names, micros = listener.reset()
            per_turn.append(Counter(names))
            db_ms.append(micros / 1000)
    return Stats(latencies), per_turn, Stats(db_ms or [0.0])


def splits(per_turn: list[Counter[str]]) -> tuple[list[Counter[str]], list[Counter[str]]]:
    """The turns that moved old messages into buckets (an ``insert``: the buckets) and the others."""
    moved = [c for c in per_turn if c.get("insert")]
    return [c for c in per_turn if not c.get("insert")], moved


def describe(per_turn: list[Counter[str]]) -> dict[str, Any]:
    if not per_turn:
        return {"turns": 0}
    totals = [sum(c.values()) for c in per_turn]
    typical = Counter(tuple(sorted(c.items())) for c in per_turn).most_common(1)[0][0]
    return {
        "turns": len(per_turn),
        "median": statistics.median(totals),
        "max": max(totals),
        "min": min(totals),
        "typical_by_command": dict(typical),
    }


def run(uri: str) -> Result:
    result = Result("agent_turn")
    listener = RoundTrips()
    client: MongoClient[Any] = MongoClient(uri, event_listeners=[listener])
    print("Benchmark 2: persistence cost of one agent turn")
    with scratch_database(uri, "turn") as db:
        options = {"client": client, "database_name": db, "collection_name": COLLECTION}

        # Baseline: the same agent loop, nothing persisted.
        bare = Agent(agent_id="assistant", model=ScriptedModel(), callback_handler=None)
        turns(bare, None, WARMUP, "hello")
        baseline, _, _ = turns(bare, None, TURNS, "hello")

        manager = MongoDBSessionManager("steady", **options)
        agent = Agent(agent_id="assistant", model=ScriptedModel(), session_manager=manager, callback_handler=None)
        turns(agent, listener, WARMUP, "hello")
        steady, steady_trips, steady_db = turns(agent, listener, TURNS, "hello")

        # Same turn with w=1: shows what the default majority write concern (a journal flush per write
        # on a replica set) costs. Informative only; majority is the durable default and stays so.
        w1_client: MongoClient[Any] = MongoClient(uri, w=1)
        w1_manager = MongoDBSessionManager("steady-w1", client=w1_client, database_name=db, collection_name=COLLECTION)
        w1_agent = Agent(agent_id="assistant", model=ScriptedModel(), session_manager=w1_manager, callback_handler=None)
        turns(w1_agent, None, WARMUP, "hello")
        steady_w1, _, _ = turns(w1_agent, None, TURNS, "hello")
        w1_client.close()

        tool_manager = MongoDBSessionManager("tools", **options)
        tool_agent = Agent(
            agent_id="assistant",
            model=ScriptedModel(),
            tools=[calculator],
            session_manager=tool_manager,
            callback_handler=None,
        )
        turns(tool_agent, listener, 3, "What is 6 * 7? Turn")
        tool, tool_trips, tool_db = turns(tool_agent, listener, TOOL_TURNS, "What is 6 * 7? Turn")

        factory = MongoDBSessionManagerFactory(client=client, database_name=db, collection_name=COLLECTION)
        stateless_latency, stateless_trips, stateless_db = [], [], []
        for i in range(WARMUP + STATELESS_TURNS):
            listener.reset()
            start = time.perf_counter()
            request_manager = factory.create_session_manager("stateless")
            request_agent = Agent(
                agent_id="assistant", model=ScriptedModel(), session_manager=request_manager, callback_handler=None
            )
            request_agent(f"request {i}")
            elapsed = (time.perf_counter() - start) * 1000
            names, micros = listener.reset()
            if i >= WARMUP:
                stateless_latency.append(elapsed)
                stateless_trips.append(Counter(names))
                stateless_db.append(micros / 1000)
        stateless = Stats(stateless_latency)
    client.close()

    plain_trips, split_trips = splits(steady_trips)
    steady_rt, tool_rt, stateless_rt = describe(plain_trips), describe(tool_trips), describe(stateless_trips)
    split_rt = describe(split_trips)
    print(line("no session manager (baseline)", baseline))
    print(line("steady-state turn, persisted", steady, baseline))
    print(f"    persistence adds {steady.median - baseline.median:.3f} ms per turn (median); "
          f"time inside MongoDB commands median {steady_db.median:.3f} ms")  # fmt: skip
    print(f"    round trips per turn: median {steady_rt['median']}, max {steady_rt['max']}: "
          f"{steady_rt['typical_by_command']}")  # fmt: skip
    if split_trips:
        print(f"    the {split_rt['turns']} of {len(steady_trips)} turns that passed the archive policy and moved "
              f"the oldest messages into buckets: max {split_rt['max']} round trips: "
              f"{dict(max(split_trips, key=lambda c: sum(c.values())))}")  # fmt: skip
    print(line("steady-state turn, persisted with w=1", steady_w1, baseline))
    print(line("tool-calling turn, persisted", tool))
    print(
        f"    round trips per turn: median {tool_rt['median']}, max {tool_rt['max']}: {tool_rt['typical_by_command']}"
    )
    print(line("stateless request (manager + restore + turn)", stateless))
    print(f"    round trips per request: median {stateless_rt['median']}, max {stateless_rt['max']}: "
          f"{stateless_rt['typical_by_command']}")  # fmt: skip

    result.figures = {
        "baseline_no_persistence": baseline.summary(),
        "steady_turn": steady.summary(),
        "steady_turn_db_time": steady_db.summary(),
        "steady_turn_round_trips": steady_rt,
        "split_turn_round_trips": split_rt,
        "steady_turn_w1": steady_w1.summary(),
        "tool_turn": tool.summary(),
        "tool_turn_db_time": tool_db.summary(),
        "tool_turn_round_trips": tool_rt,
        "stateless_request": stateless.summary(),
        "stateless_request_db_time": Stats(stateless_db).summary(),
        "stateless_request_round_trips": stateless_rt,
        "persistence_overhead_median_ms": round(steady.median - baseline.median, 3),
    }
    result.targets = [
        Target(
            name,
            f"<= {limit}",
            f"median {rt['median']}, max {rt['max']} ({rt['typical_by_command']})",
            rt["max"] <= limit,
        )
        for name, rt, limit in (
            ("round trips per steady-state turn (turns that split: printed above)", steady_rt, 2),
            ("round trips per tool-calling turn", tool_rt, 4),
            ("round trips per stateless request (manager + restore + turn)", stateless_rt, 4),
        )
    ]
    result.notes.append(
        f"a tool-calling turn stores 4 messages and takes {tool_rt['median']} round trips; a stateless request "
        f"adds the restore reads: {stateless_rt['median']} round trips"
    )
    return result


def main() -> None:
    run_main(run, __doc__ or "")


if __name__ == "__main__":
    main()
