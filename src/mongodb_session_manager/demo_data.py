"""The demo's conversations: what a support team's Session Viewer looks like after a couple of weeks.

Pure data (no database, no agents): :mod:`mongodb_session_manager.demo` plays each conversation
through real Strands agent loops. The newest sessions are the ones worth opening first: several
agents handing a case over, tool calls (calculator, order lookup, the metadata tool), feedback of
both kinds, and one long conversation. Comments are plain text, as people type them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .testing import Reply, Scripted, ToolCall


@dataclass
class Turn:
    """One user prompt to one agent. ``replies`` script the offline model for this turn (one per
    model call; a :class:`~mongodb_session_manager.testing.Reply` with tool calls makes the agent
    run them); empty means the offline model's own rules (arithmetic -> calculator, "remember ..."
    -> metadata tool)."""

    agent_id: str
    prompt: str
    replies: list[Scripted] = field(default_factory=list)


@dataclass
class DemoConversation:
    session_id: str
    metadata: dict[str, Any]
    turns: list[tuple[str, str] | Turn]  # (agent_id, prompt) or a scripted Turn
    feedback: dict[str, Any] | None = None
    system_prompts: dict[str, str] = field(default_factory=dict)
    #: When the conversation started, in days before seeding (fractions give the time of day).
    days_ago: float = 0.0
    #: Pause between the turns, as a person reads and types.
    turn_gap_seconds: float = 75.0


def _lookup(order: str, text: str) -> list[Scripted]:
    """A tool turn: look the order up, then answer from what the tool returned."""
    return [Reply("Let me look that order up.", [ToolCall("lookup_order", {"order_id": order})]), text]


def _showcase() -> list[DemoConversation]:
    return [
        DemoConversation(
            "demo-order-1001",
            {"status": "open", "priority": "high", "channel": "web", "customer_name": "Ada Lovelace"}
            | {"case_type": "refund"},
            [
                Turn(
                    "triage", "Hi, my order 1001 arrived damaged.", ["Sorry to hear that! I'm passing you to support."]
                ),
                Turn(
                    "support",
                    "The box was crushed and two mugs are broken.",
                    _lookup(
                        "1001",
                        "I can see order **1001**: 3 x *Stoneware mug* at 19.99 each, delivered yesterday.\n\n"
                        "I've opened a damage report. Our billing team will work out the refund.",
                    ),
                ),
                Turn("billing", "The refund should be 3 items at 19.99 each, what is 3 * 19.99?"),
                Turn("support", "Remember that my preferred contact is email."),
                Turn(
                    "support",
                    "Thanks! How long until the refund shows up?",
                    ["Refunds reach your card in **3 to 5 business days**. We'll email you when it's issued."],
                ),
            ],
            {"rating": "up", "comment": "Quick and clear, thank you!"},
            days_ago=0.08,
        ),
        DemoConversation(
            "demo-billing-2002",
            {"status": "escalated", "priority": "high", "channel": "email", "customer_name": "Grace Hopper"}
            | {"case_type": "billing"},
            [
                Turn("triage", "I was charged twice this month.", ["That's one for billing, one moment."]),
                Turn("billing", "Two charges of 49.50 and one refund of 12.25: what is 49.50 * 2 - 12.25?"),
                Turn(
                    "billing",
                    "So you owe me 49.50. When will the duplicate be reversed?",
                    [
                        "Yes: the duplicate charge of **49.50** is being reversed. Because it was already settled, "
                        "this takes up to 10 days; I've escalated it to our payments team."
                    ],
                ),
                Turn("billing", "What do you remember about me?"),
            ],
            {"rating": "down", "comment": "Still waiting for the second charge to be reversed."},
            days_ago=0.3,
        ),
        DemoConversation(
            "demo-shipping-3003",
            {"status": "closed", "priority": "low", "channel": "mobile", "customer_name": "Alan Turing"}
            | {"case_type": "shipping"},
            [
                Turn(
                    "support",
                    "Where is my parcel? Tracking says 'in transit' for 5 days.",
                    _lookup(
                        "3003",
                        "Your parcel left our Leeds depot on Monday and is with the courier. It should "
                        "arrive **tomorrow**.",
                    ),
                ),
                Turn("support", "Remember that my delivery window is after 6pm."),
                Turn("support", "It arrived, thanks.", ["Great, enjoy! I'll close this case."]),
            ],
            {"rating": None, "comment": "It arrived in the end."},
            days_ago=0.9,
        ),
        _long_onboarding(),
    ]


def _long_onboarding() -> DemoConversation:
    """One long session (a small team setting up an account), to show scrolling and session totals."""
    steps = [
        (
            "We're a team of 6 moving from spreadsheets. Where do we start?",
            "Start with **Settings → Team** and invite everyone; roles can be changed later.",
        ),
        ("Can two people share one login?", "Each person needs their own seat, so the history shows who did what."),
        ("What does it cost for 6 seats at 12 per seat per month? Compute 6 * 12.", None),
        ("And for a year with the 15% discount: 6 * 12 * 12 * 0.85?", None),
        ("Remember that my plan is annual.", None),
        ("How do we import the spreadsheet?", "Use **Import → CSV**. The first row must hold the column names."),
        ("Our dates are day/month/year.", "Pick *DD/MM/YYYY* in the import dialog before you upload."),
        ("The import says row 214 failed.", "Row 214 has an empty *email*; fill it in or skip the row."),
        ("Can we undo an import?", "Yes, for 24 hours: **Import history → Undo**."),
        ("Remember that my team admin is Dorothy.", None),
        ("How do we set working hours?", "**Settings → Schedule**; each team member can override their own."),
        ("Do reminders go out by SMS?", "Email by default; SMS is an add-on at 0.04 per message."),
        ("How much would 1500 SMS cost? 1500 * 0.04", None),
        ("Fine, enable SMS for the admin only.", "Done in principle: an admin enables it under **Add-ons**."),
        ("Is there an API?", "Yes, a REST API with per-user tokens; see *Developer → Tokens*."),
        ("Can we export everything if we leave?", "Any time: **Export → Full archive** (CSV and JSON)."),
        ("What do you remember about our account?", None),
        ("Great, that's all for today. Thanks!", "You're welcome, good luck with the move!"),
    ]
    turns: list[tuple[str, str] | Turn] = [
        Turn("support", prompt, [answer] if answer else []) for prompt, answer in steps
    ]
    return DemoConversation(
        "demo-onboarding-4004",
        {"status": "closed", "priority": "medium", "channel": "web", "customer_name": "Dorothy Vaughan"}
        | {"case_type": "onboarding"},
        turns,
        {"rating": "up", "comment": "Very patient, we got everything set up in one go."},
        days_ago=1.4,
        turn_gap_seconds=140,
    )


# (case_type, channel, customer, first prompt, first answer, follow-up prompt, follow-up answer)
_EVERYDAY = [
    (
        "account",
        "web",
        "Katherine Johnson",
        "I can't log in, the reset email never arrives.",
        "I've re-sent it from a different server. Please also check the **spam** folder.",
        "Found it, thanks.",
        "Glad it worked. The link is valid for one hour.",
    ),
    (
        "returns",
        "mobile",
        "Linus Torvalds",
        "How do I return a keyboard I bought 20 days ago?",
        "Returns are free within **30 days**: print the label from *Orders → Return*.",
        "Do I need the box?",
        "The original box is preferred but not required.",
    ),
    (
        "warranty",
        "email",
        "Margaret Hamilton",
        "My kettle stopped working after 8 months.",
        "It's covered by the 2-year warranty. Can you send the order number?",
        "It's order 5120.",
        "Thanks. A replacement is on its way; no need to send the old one back.",
    ),
    (
        "billing",
        "web",
        "Edsger Dijkstra",
        "Can I get a VAT invoice for last month?",
        "Sure, it's under **Account → Invoices**; I've also emailed you a copy.",
        "The company name is wrong.",
        "Corrected, and a new invoice is in your inbox.",
    ),
    (
        "shipping",
        "mobile",
        "Barbara Liskov",
        "Can I change the delivery address of order 6230?",
        "It hasn't shipped yet, so yes: what is the new address?",
        "12 Harbour Street, Bristol.",
        "Updated. Delivery is still expected on Thursday.",
    ),
    (
        "general",
        "web",
        "Donald Knuth",
        "Do you ship to Norway?",
        "Yes, in 4 to 6 working days. Duties are included at checkout.",
        "And to Iceland?",
        "Iceland too, but duties are paid on delivery there.",
    ),
    (
        "refund",
        "email",
        "Frances Allen",
        "I cancelled within an hour but was still charged.",
        "The charge is a pre-authorisation; it disappears within **3 days** without any action.",
        "OK, I'll wait.",
        "Thanks for your patience. Write back if it's still there on Friday.",
    ),
    (
        "account",
        "mobile",
        "John Backus",
        "How do I delete my account?",
        "Under **Settings → Privacy → Delete account**. It's final after 14 days.",
        "Will my orders be kept?",
        "Invoices are kept for 7 years, as the law requires; everything else is deleted.",
    ),
    (
        "billing",
        "web",
        "Hedy Lamarr",
        "What's 3 months of the 24.90 plan? 3 * 24.90",
        None,
        "Is there a discount for paying yearly?",
        "Yes, two months free when you pay for a year.",
    ),
    (
        "general",
        "web",
        "Claude Shannon",
        "Is the blue backpack waterproof?",
        "It's water-*resistant*: fine in rain, not for submersion.",
        "Does it fit a 16 inch laptop?",
        "Yes, the padded sleeve fits up to 16 inches.",
    ),
    (
        "shipping",
        "email",
        "Radia Perlman",
        "The courier left my parcel with a neighbour I don't know.",
        "Sorry about that. The driver's note says *house 14*. Could you check there?",
        "Got it, thanks.",
        "Great. I've flagged the delivery so the courier follows your instructions next time.",
    ),
    (
        "returns",
        "web",
        "Tim Berners-Lee",
        "I received the wrong size of shoes.",
        "Apologies! I've created a free exchange; the right size ships today.",
        "Do I send the others back first?",
        "No, keep them until the new pair arrives, then use the enclosed label.",
    ),
    (
        "refund",
        "mobile",
        "Ken Thompson",
        "Half my grocery order was missing: 4 items at 3.25. What is 4 * 3.25?",
        None,
        "Please refund it to my card.",
        "Done: the refund is on its way to your card.",
    ),
    (
        "general",
        "web",
        "Joan Clarke",
        "Can I pick up my order in store?",
        "Yes, choose *Click & collect* at checkout; it's ready in 2 hours.",
        "Which stores?",
        "All 14 stores; the checkout lists the ones near you.",
    ),
    (
        "account",
        "email",
        "Ivan Sutherland",
        "Remember that my name is Ivan.",
        None,
        "Also, please switch my newsletter off.",
        "Done: you won't get the newsletter any more.",
    ),
    (
        "warranty",
        "web",
        "Adele Goldberg",
        "The zip on my jacket broke after two weeks.",
        "That's a manufacturing fault. Would you like a repair or a replacement?",
        "A replacement please.",
        "A replacement is on its way; a return label is in the parcel.",
    ),
    (
        "billing",
        "mobile",
        "Bjarne Stroustrup",
        "Why did my subscription go up?",
        "Prices changed on the 1st, as we emailed in advance: 9.90 became 10.90.",
        "Can I switch to monthly?",
        "Yes, from your next renewal: **Settings → Plan**.",
    ),
    (
        "shipping",
        "web",
        "Sophie Wilson",
        "Is express delivery possible to Cork?",
        "Yes, next working day if you order before 2pm.",
        "How much?",
        "Express to Ireland is 7.50.",
    ),
]

_FEEDBACK = [
    {"rating": "up", "comment": "Solved in two minutes."},
    {"rating": "up", "comment": ""},
    None,
    {"rating": "down", "comment": "The answer was correct but I had to ask twice."},
    {"rating": "up", "comment": "Friendly and helpful."},
    None,
    {"rating": "down", "comment": "Not what I hoped for, the policy seems unfair."},
    {"rating": None, "comment": "OK"},
]


def _everyday() -> list[DemoConversation]:
    conversations = []
    for n, (case_type, channel, customer, ask, answer, follow, follow_answer) in enumerate(_EVERYDAY):
        conversations.append(
            DemoConversation(
                f"demo-{case_type}-{5000 + n * 7}",
                {
                    "status": ["closed", "open", "closed", "escalated"][n % 4],
                    "priority": ["low", "medium", "low", "high", "medium"][n % 5],
                    "channel": channel,
                    "customer_name": customer,
                    "case_type": case_type,
                },
                [Turn("support", ask, [answer] if answer else []), Turn("support", follow, [follow_answer])],
                _FEEDBACK[n % len(_FEEDBACK)],
                days_ago=2.1 + n * 0.73,  # spread over the two weeks before the showcase cases
                turn_gap_seconds=45 + (n * 37) % 200,
            )
        )
    return conversations


def demo_conversations() -> list[DemoConversation]:
    """The fixed set of demo conversations, newest first (deterministic, so repeated demos look alike)."""
    return _showcase() + _everyday()
