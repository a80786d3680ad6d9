"""The demo's conversations show the product: realistic, varied, dated over days, no markup in comments."""

from __future__ import annotations

import re

from mongodb_session_manager.demo import lookup_order
from mongodb_session_manager.demo_data import DemoConversation, Turn, demo_conversations


def turns(conv: DemoConversation) -> list[Turn]:
    return [t if isinstance(t, Turn) else Turn(t[0], t[1]) for t in conv.turns]


def test_the_newest_sessions_are_the_multi_agent_and_tool_cases() -> None:
    conversations = sorted(demo_conversations(), key=lambda c: c.days_ago)
    assert conversations[0].session_id == "demo-order-1001"
    for conv in conversations[:2]:
        assert len({t.agent_id for t in turns(conv)}) >= 2, f"{conv.session_id} has one agent"
    assert all(re.search(r"\d\s*\*\s*\d", " ".join(t.prompt for t in turns(c))) for c in conversations[:2])


def test_sessions_are_spread_over_days_and_unique() -> None:
    conversations = demo_conversations()
    ids = [c.session_id for c in conversations]
    assert len(ids) == len(set(ids)) and len(ids) > 20, "more than one page in the viewer"
    days = sorted(c.days_ago for c in conversations)
    assert days[-1] - days[0] > 7 and len(set(days)) == len(days)


def test_no_look_alike_prompts_and_one_long_session() -> None:
    first_prompts = [turns(c)[0].prompt for c in demo_conversations()]
    assert len(set(first_prompts)) == len(first_prompts)
    assert not any(p.startswith("Question number") for p in first_prompts)
    assert max(len(c.turns) for c in demo_conversations()) >= 15


def test_feedback_has_both_ratings_and_plain_text_comments() -> None:
    feedback = [c.feedback for c in demo_conversations() if c.feedback]
    assert {"up", "down"} <= {f["rating"] for f in feedback}
    assert not [f["comment"] for f in feedback if re.search(r"<[^>]+>", f["comment"])], "no markup in comments"


def test_order_lookup_tool_answers_known_and_unknown_orders() -> None:
    assert "Stoneware mug" in lookup_order("1001")
    assert "no such order" in lookup_order("9999")
