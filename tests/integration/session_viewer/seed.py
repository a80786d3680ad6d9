"""Sessions for the viewer's tests, written by real Strands agent loops (offline ScriptedModel).

Shared by the API tests and the browser tests, so both look at what the library really stores:
several agents, calculator tool calls, metadata set through the API and by the agent's metadata
tool, feedback, per-turn metrics and agent configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pymongo import MongoClient
from strands import Agent

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.demo import calculator
from mongodb_session_manager.testing import ScriptedModel

COLLECTION = "sessions"
METADATA_FIELDS = ["status", "priority", "channel", "customer_name", "score", "vip"]
#: Payloads that set a global if they ever run (no dots: they also go into a session id).
XSS_SCRIPT = "<script>__xss = 'script'</script>"
XSS_IMG = "<img src=x onerror=\"__xss = 'img'\">"

PROMPTS = {
    "support": "You are a friendly support agent for an online shop.",
    "billing": "You are a billing specialist. Be precise with amounts.",
    "triage": "You route requests to the right team.",
}


@dataclass
class SeedSession:
    session_id: str
    metadata: dict[str, Any]
    turns: list[tuple[str, str]]
    feedback: list[dict[str, Any]] = field(default_factory=list)
    system_prompts: dict[str, str] = field(default_factory=dict)


def rich_sessions() -> list[SeedSession]:
    """Three hand-written conversations the tests look at closely."""
    return [
        SeedSession(
            "support-ada-001",
            {"status": "open", "priority": "high", "channel": "web", "customer_name": "Ada Lovelace", "score": 9},
            [
                ("support", "Hi, my order 1001 arrived damaged."),
                ("billing", "The refund is 3 items at 19.99 each, what is 3 * 19.99?"),
                ("support", "Remember that my preferred contact is email."),
            ],
            [{"rating": "up", "comment": "Quick and **clear**, thank you!"}],
        ),
        SeedSession(
            "billing-grace-002",
            {
                "status": "escalated",
                "priority": "high",
                "channel": "email",
                "customer_name": "Grace Hopper",
                "vip": True,
            },
            [
                ("triage", "I was charged twice this month."),
                ("billing", "Two charges of 49.50 minus 12.25: what is 49.50 * 2 - 12.25?"),
            ],
            [{"rating": "down", "comment": "Still waiting for the refund."}],
        ),
        SeedSession(
            "shipping-alan-003",
            {"status": "closed", "priority": "low", "channel": "mobile", "customer_name": "Alan Turing", "score": 4},
            [("support", "Where is my parcel? Tracking says in transit for 5 days.")],
        ),
    ]


def bulk_sessions(count: int) -> list[SeedSession]:
    """``count`` short conversations with cycling metadata, for pagination and enum detection."""
    statuses = ["open", "closed", "escalated"]
    priorities = ["low", "medium", "high"]
    channels = ["web", "mobile", "email"]
    return [
        SeedSession(
            f"case-{n:04d}",
            {
                "status": statuses[n % 3],
                "priority": priorities[(n // 3) % 3],
                "channel": channels[(n // 2) % 3],
                "customer_name": f"Customer {n}",
                "score": n,
            },
            [("support", f"Question {n}: how long does a return take? Compute {n} * 24.")],
            [{"rating": "up", "comment": f"Feedback {n}"}] if n % 4 == 0 else [],
        )
        for n in range(4, 4 + count)
    ]


def hostile_session() -> SeedSession:
    """Script payloads in every place a user or an agent can put text."""
    return SeedSession(
        f"xss-{XSS_IMG}",
        {"status": "open", "customer_name": XSS_SCRIPT, "channel": XSS_IMG},
        [("support", f"Please show this: {XSS_SCRIPT} and {XSS_IMG} and [link](javascript:alert(1))")],
        [{"rating": "down", "comment": f"{XSS_IMG} {XSS_SCRIPT}"}],
        {"support": f"Prompt with {XSS_IMG}"},
    )


def seed(client: MongoClient[Any], database: str, sessions: list[SeedSession]) -> dict[str, str]:
    """Run every conversation through a real agent loop; return ``{session_id: viewer_password}``."""
    passwords: dict[str, str] = {}
    for spec in sessions:
        manager = MongoDBSessionManager(
            spec.session_id,
            client=client,
            database_name=database,
            collection_name=COLLECTION,
            metadata_fields=METADATA_FIELDS,
        )
        manager.update_metadata(spec.metadata)
        agents: dict[str, Agent] = {}
        for agent_id, prompt in spec.turns:
            if agent_id not in agents:
                agents[agent_id] = Agent(
                    agent_id=agent_id,
                    model=ScriptedModel(model_id=f"scripted-{agent_id}"),
                    system_prompt=spec.system_prompts.get(agent_id, PROMPTS[agent_id]),
                    tools=[calculator, manager.get_metadata_tool()],
                    session_manager=manager,
                    callback_handler=None,
                )
            agents[agent_id](prompt)
        for entry in spec.feedback:
            manager.add_feedback(entry)
        passwords[spec.session_id] = manager.get_session_viewer_password()
    return passwords
