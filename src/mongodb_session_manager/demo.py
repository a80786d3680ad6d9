"""Realistic demo sessions, created by real Strands agent loops (offline model unless Bedrock is set).

Used by ``mongodb-session-manager demo`` and the browser tests: several agents per session, tool
calls, metadata (through the API and through the agent's metadata tool), feedback and metrics,
with enough variety for the viewer's filters and pagination.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pymongo import MongoClient
from strands import Agent, tool

from .mongodb_session_manager import MongoDBSessionManager
from .testing import default_model

logger = logging.getLogger(__name__)

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


@dataclass
class DemoConversation:
    session_id: str
    metadata: dict[str, Any]
    turns: list[tuple[str, str]]  # (agent_id, prompt)
    feedback: dict[str, Any] | None = None
    system_prompts: dict[str, str] = field(default_factory=dict)


_PROMPTS = {
    "support": "You are a friendly customer support agent for an online shop.",
    "billing": "You are a billing specialist. Be precise with amounts.",
    "triage": "You route customer requests to the right team.",
}

_CUSTOMERS = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Katherine Johnson", "Linus Torvalds", "Margaret Hamilton"]


def demo_conversations() -> list[DemoConversation]:
    """The fixed set of demo conversations (deterministic, so repeated demos look the same)."""
    conversations = [
        DemoConversation(
            "demo-order-1001",
            {
                "status": "open",
                "priority": "high",
                "channel": "web",
                "customer_name": "Ada Lovelace",
                "case_type": "refund",
            },
            [
                ("support", "Hi, my order 1001 arrived damaged."),
                ("billing", "The refund should be 3 items at 19.99 each, what is 3 * 19.99?"),
                ("support", "Remember that my preferred contact is email."),
            ],
            {"rating": "up", "comment": "Quick and clear, thank you!"},
        ),
        DemoConversation(
            "demo-billing-2002",
            {
                "status": "escalated",
                "priority": "high",
                "channel": "email",
                "customer_name": "Grace Hopper",
                "case_type": "billing",
            },
            [
                ("triage", "I was charged twice this month."),
                ("billing", "Two charges of 49.50 and one refund of 12.25: what is 49.50 * 2 - 12.25?"),
                ("billing", "What do you remember about me?"),
            ],
            {"rating": "down", "comment": "Still waiting for the second charge to be reversed. <b>bold?</b>"},
        ),
        DemoConversation(
            "demo-shipping-3003",
            {
                "status": "closed",
                "priority": "low",
                "channel": "mobile",
                "customer_name": "Alan Turing",
                "case_type": "shipping",
            },
            [
                ("support", "Where is my parcel? Tracking says 'in transit' for 5 days."),
                ("support", "Remember that my delivery window is after 6pm."),
            ],
            {"rating": None, "comment": "It arrived in the end."},
        ),
    ]
    statuses = ["open", "closed", "escalated"]
    priorities = ["low", "medium", "high"]
    channels = ["web", "mobile", "email"]
    for n in range(4, 25):
        conversations.append(
            DemoConversation(
                f"demo-case-{n:04d}",
                {
                    "status": statuses[n % 3],
                    "priority": priorities[(n // 3) % 3],
                    "channel": channels[(n // 2) % 3],
                    "customer_name": _CUSTOMERS[n % len(_CUSTOMERS)],
                    "case_type": ["general", "refund", "billing"][n % 3],
                },
                [
                    ("support", f"Question number {n}: how long does a return take?"),
                    ("support", f"And what is {n} * 12 days in hours? Compute {n} * 12 * 24."),
                ],
                {"rating": "up" if n % 4 else "down", "comment": f"Feedback for case {n}"} if n % 2 == 0 else None,
            )
        )
    return conversations


def seed_demo_sessions(
    connection_string: str | None = None,
    *,
    client: MongoClient[Any] | None = None,
    database_name: str = "session_viewer_demo",
    collection_name: str = "sessions",
    conversations: list[DemoConversation] | None = None,
) -> list[str]:
    """Create the demo sessions that do not exist yet; return the ids created now."""
    own_client = client is None
    client = client or MongoClient(connection_string)
    created: list[str] = []
    try:
        existing = set(client[database_name][collection_name].distinct("_id"))
        for conv in conversations or demo_conversations():
            if conv.session_id in existing:
                continue
            manager = MongoDBSessionManager(
                conv.session_id,
                client=client,
                database_name=database_name,
                collection_name=collection_name,
                metadata_fields=DEMO_METADATA_FIELDS,
            )
            manager.update_metadata(conv.metadata)
            agents: dict[str, Agent] = {}
            for agent_id, prompt in conv.turns:
                if agent_id not in agents:
                    agents[agent_id] = Agent(
                        agent_id=agent_id,
                        name=agent_id,
                        model=default_model(),
                        system_prompt=conv.system_prompts.get(agent_id, _PROMPTS.get(agent_id)),
                        tools=[calculator, manager.get_metadata_tool()],
                        session_manager=manager,
                        callback_handler=None,
                    )
                agents[agent_id](prompt)
            if conv.feedback:
                manager.add_feedback(conv.feedback)
            created.append(conv.session_id)
            logger.info("session_id=<%s> | demo session created", conv.session_id)
    finally:
        if own_client:
            client.close()
    return created
