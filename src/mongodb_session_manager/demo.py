"""Realistic demo sessions, created by real Strands agent loops (offline model unless Bedrock is set).

Used by ``mongodb-session-manager demo`` and the browser tests: several agents per session, tool
calls, metadata (through the API and through the agent's metadata tool), feedback and metrics,
spread over two weeks (newest: the multi-agent and tool cases), with enough variety for the
viewer's filters and pagination. The conversations themselves are in :mod:`.demo_data`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import MongoClient
from strands import Agent, tool

from . import defaults
from .demo_clock import DemoClock, virtual_time
from .demo_data import DemoConversation, Turn, demo_conversations
from .mongodb_session_manager import MongoDBSessionManager
from .testing import ScriptedModel, default_model

logger = logging.getLogger(__name__)

__all__ = ["DEMO_METADATA_FIELDS", "DemoConversation", "Turn", "calculator", "demo_conversations", "lookup_order"]
__all__ += ["seed_demo_sessions"]

DEMO_METADATA_FIELDS = ["status", "priority", "channel", "customer_name", "case_type"]


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression with + - * / ( ) and ** (no names, no calls).

    Args:
        expression: The expression, for example "12 * (3 + 4)".
    """
    import ast
    import operator

    ops: dict[type, Any] = {
        ast.Add: operator.add,
        ast.Sub: operator.sub,
        ast.Mult: operator.mul,
        ast.Div: operator.truediv,
        ast.Pow: operator.pow,
        ast.USub: operator.neg,
        ast.UAdd: operator.pos,
    }

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return ops[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in ops:
            return ops[type(node.op)](walk(node.operand))
        raise ValueError(f"unsupported expression: {expression!r}")

    value = walk(ast.parse(expression.replace("^", "**"), mode="eval").body)
    if float(value).is_integer():
        return f"Result: {int(value)}"
    return f"Result: {round(value, 10)}"


_PROMPTS = {
    "support": "You are a friendly customer support agent for an online shop.",
    "billing": "You are a billing specialist. Be precise with amounts.",
    "triage": "You route customer requests to the right team.",
}

#: Latency reported by the offline model per agent, so the viewer's per-message figures differ.
_LATENCY_MS = {"triage": 380, "support": 910, "billing": 1240}

_ORDERS = {
    "1001": "Order 1001: 3 x Stoneware mug at 19.99, delivered yesterday, carrier reports a damaged box.",
    "3003": "Order 3003: 1 x Desk lamp, shipped Monday from Leeds, with the courier, due tomorrow.",
}


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order's items and delivery status (demo data).

    Args:
        order_id: The order number, for example "1001".
    """
    return _ORDERS.get(order_id.strip(), f"Order {order_id}: no such order.")


def _turn(item: tuple[str, str] | Turn) -> Turn:
    return item if isinstance(item, Turn) else Turn(item[0], item[1])


def seed_demo_sessions(
    connection_string: str | None = None,
    *,
    client: MongoClient[Any] | None = None,
    database_name: str = defaults.DATABASE_NAME,
    collection_name: str = defaults.COLLECTION_NAME,
    conversations: list[DemoConversation] | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Create the demo sessions that do not exist yet; return the ids created now.

    Each conversation runs through real Strands agent loops on :func:`default_model` (the offline
    model unless Bedrock is configured) under a virtual clock, so it is dated ``days_ago`` before
    ``now`` with realistic pauses between turns instead of all sharing the seeding second.
    """
    own_client = client is None
    client = client or MongoClient(connection_string)
    created: list[str] = []
    now = now or datetime.now(UTC)
    clock = DemoClock(now)
    try:
        existing = set(client[database_name][collection_name].distinct("_id"))
        with virtual_time(clock):
            for conv in conversations or demo_conversations():
                if conv.session_id in existing:
                    continue
                clock.set(now - timedelta(days=conv.days_ago))
                _play(conv, client, database_name, collection_name, clock)
                created.append(conv.session_id)
                logger.info("session_id=<%s> | demo session created", conv.session_id)
    finally:
        if own_client:
            client.close()
    return created


def _play(
    conv: DemoConversation, client: MongoClient[Any], database_name: str, collection_name: str, clock: DemoClock
) -> None:
    """One conversation: metadata, every turn through its agent's real loop, then the feedback."""
    manager = MongoDBSessionManager(
        conv.session_id,
        client=client,
        database_name=database_name,
        collection_name=collection_name,
        metadata_fields=DEMO_METADATA_FIELDS,
    )
    manager.update_metadata(conv.metadata)
    agents: dict[str, Agent] = {}
    for item in conv.turns:
        turn = _turn(item)
        agent = agents.get(turn.agent_id)
        if agent is None:
            agent = agents[turn.agent_id] = Agent(
                agent_id=turn.agent_id,
                name=turn.agent_id,
                model=default_model(latency_ms=_LATENCY_MS.get(turn.agent_id, 700)),
                system_prompt=conv.system_prompts.get(turn.agent_id, _PROMPTS.get(turn.agent_id)),
                tools=[calculator, lookup_order, manager.get_metadata_tool()],
                session_manager=manager,
                callback_handler=None,
            )
        if isinstance(agent.model, ScriptedModel):  # a real model (Bedrock) answers on its own
            agent.model.responses.extend(turn.replies)
        agent(turn.prompt)
        clock.advance(conv.turn_gap_seconds)
    if conv.feedback:
        manager.add_feedback(conv.feedback)
