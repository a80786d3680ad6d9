"""The ready PII redactor and the redactor contract (pure logic)."""

from __future__ import annotations

from typing import Any

import pytest

from mongodb_session_manager.redaction import MESSAGE, PIIRedactor, Redacted, apply_redactor, luhn_valid


@pytest.mark.parametrize(
    ("text", "expected", "fired"),
    [
        ("write to a.b+c@mail.example.org now", "write to [REDACTED:email] now", {"email": 1}),
        ("card 4111-1111-1111-1111 ok", "card [REDACTED:card_number] ok", {"card_number": 1}),
        ("card 5500 0000 0000 0004", "card [REDACTED:card_number]", {"card_number": 1}),
        ("call +34 612 345 678 or (555) 123-4567", "call [REDACTED:phone] or [REDACTED:phone]", {"phone": 2}),
        ("call +14155552671", "call [REDACTED:phone]", {"phone": 1}),
    ],
)
def test_each_rule_replaces_its_kind(text: str, expected: str, fired: dict[str, int]) -> None:
    assert PIIRedactor().redact_text(text) == (expected, fired)


@pytest.mark.parametrize(
    "text",
    [
        "on 2026-12-01 at 10:30",  # dates and times are not phone numbers
        "order 4111 1111 1111 1112",  # fails the Luhn check: not a card
        "invoice 123456789",  # a bare number without separators
        "version 1.2.3 and 3.14159",
        "user@localhost",  # no domain suffix
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert PIIRedactor().redact_text(text) == (text, {})


def test_luhn() -> None:
    assert luhn_valid("4111111111111111") and luhn_valid("79927398713")
    assert not luhn_valid("4111111111111112")


def test_messages_are_walked_but_structure_is_not_touched() -> None:
    message: dict[str, Any] = {
        "role": "user",
        "content": [
            {"text": "me@x.io"},
            {"toolUse": {"toolUseId": "me@x.io", "name": "send", "input": {"to": ["me@x.io"]}}},
            {"image": {"format": "png", "source": {"bytes": b"me@x.io"}}},
        ],
    }
    result = PIIRedactor()(message, MESSAGE)
    assert isinstance(result, Redacted) and result.rules == {"email": 2}
    content = result.value["content"]
    assert content[0]["text"] == "[REDACTED:email]"
    assert content[1]["toolUse"]["toolUseId"] == "me@x.io" and content[1]["toolUse"]["input"] == {
        "to": ["[REDACTED:email]"]
    }
    assert content[2]["image"]["source"]["bytes"] == b"me@x.io", "bytes are not text"
    assert message["content"][0]["text"] == "me@x.io", "the caller's value is not changed"


def test_rules_can_be_chosen_and_extended() -> None:
    redactor = PIIRedactor(("email",), extra_rules={"employee_id": r"EMP-\d{5}"}, replacement="<{rule}>")
    assert redactor.redact_text("EMP-12345 me@x.io +34 612 345 678") == (
        "<employee_id> <email> +34 612 345 678",
        {"email": 1, "employee_id": 1},
    )
    with pytest.raises(ValueError, match="unknown redaction rules"):
        PIIRedactor(("ssn",))


def test_apply_redactor_copies_and_normalises() -> None:
    def in_place(value: Any, kind: str) -> Any:
        value["x"] = "changed"
        return value

    original = {"x": "kept"}
    assert apply_redactor(in_place, original, MESSAGE) == ({"x": "changed"}, {})
    assert original == {"x": "kept"}
    assert apply_redactor(lambda v, k: Redacted(v, {"a": 2, "b": 0}), "t", MESSAGE) == ("t", {"a": 2})
    with pytest.raises(ValueError):
        apply_redactor(lambda v, k: Redacted(v, {"a": -1}), "t", MESSAGE)
