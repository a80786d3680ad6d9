"""Redaction at write time: personal data replaced before a message, metadata value or comment is stored.

A *redactor* is any callable ``redactor(value, kind) -> value``: it sees each message (a Strands
``Message`` dict), each metadata value and each feedback comment before it is stored, ``kind``
saying which (:data:`MESSAGE`, :data:`METADATA`, :data:`FEEDBACK_COMMENT`), and returns what to
store. To have what fired recorded, it returns :class:`Redacted` (the value plus ``{rule: count}``);
the session keeps those counts in ``redactions`` (see :mod:`.documents_lifecycle`), never the text.

:class:`PIIRedactor` is a ready one for e-mail addresses, phone numbers and payment card numbers
(Luhn-checked, so order numbers and timestamps are left alone). It is deliberately conservative:
pattern matching finds the common forms, not every way a person can write personal data; add your
own rules (``PIIRedactor(extra_rules={...})``) or wrap a dedicated service for more.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

MESSAGE = "message"
METADATA = "metadata"
FEEDBACK_COMMENT = "feedback_comment"

#: What a redactor is: ``(value, kind) -> value to store`` (or :class:`Redacted`).
Redactor = Callable[[Any, str], Any]

#: Message keys whose string values are structure, not text a person wrote (never redacted).
STRUCTURAL_KEYS = frozenset(
    {"role", "toolUseId", "name", "status", "format", "type", "tracking_id", "signature", "stopReason", "uri"}
)


@dataclass(frozen=True)
class Redacted:
    """A redactor's answer: the value to store and how many times each rule fired."""

    value: Any
    rules: Mapping[str, int] = field(default_factory=dict)


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies (and most other long numbers do not)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


EMAIL_PATTERN = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
CARD_PATTERN = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
#: An international number (+ and 8-14 digits), or digit groups joined by spaces, dots, dashes or
#: brackets; the match must hold 9 to 15 digits, so dates ("2026-12-01") and times are not phones.
PHONE_PATTERN = re.compile(
    r"(?<![\w+])(?:\+\d{8,14}|(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4})(?![\w])"
)


def _card(match: re.Match[str]) -> bool:
    digits = re.sub(r"\D", "", match.group())
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _phone(match: re.Match[str]) -> bool:
    return 9 <= len(re.sub(r"\D", "", match.group())) <= 15


#: Rule name -> (pattern, extra check on a match). Order matters: cards before phones.
DEFAULT_RULES: dict[str, tuple[re.Pattern[str], Callable[[re.Match[str]], bool] | None]] = {
    "email": (EMAIL_PATTERN, None),
    "card_number": (CARD_PATTERN, _card),
    "phone": (PHONE_PATTERN, _phone),
}


class PIIRedactor:
    """Replace e-mail addresses, phone numbers and Luhn-valid card numbers with ``[REDACTED:<rule>]``.

    Args:
        rules: Which of :data:`DEFAULT_RULES` to apply (all by default).
        extra_rules: More rules, ``{name: regex}`` (or ``{name: (regex, check)}``), applied after.
        replacement: The text put in place of a match; ``{rule}`` is replaced by the rule's name.
    """

    def __init__(
        self,
        rules: tuple[str, ...] | None = None,
        *,
        extra_rules: Mapping[str, Any] | None = None,
        replacement: str = "[REDACTED:{rule}]",
    ) -> None:
        names = tuple(DEFAULT_RULES) if rules is None else rules
        unknown = [name for name in names if name not in DEFAULT_RULES]
        if unknown:
            raise ValueError(f"unknown redaction rules {unknown}; known: {sorted(DEFAULT_RULES)}")
        self.rules: dict[str, tuple[re.Pattern[str], Callable[[re.Match[str]], bool] | None]] = {
            name: DEFAULT_RULES[name] for name in names
        }
        for name, rule in (extra_rules or {}).items():
            pattern, check = rule if isinstance(rule, tuple) else (rule, None)
            self.rules[name] = (re.compile(pattern) if isinstance(pattern, str) else pattern, check)
        self.replacement = replacement

    def redact_text(self, text: str) -> tuple[str, Counter[str]]:
        """``text`` with every match replaced, and how many matches each rule replaced."""
        fired: Counter[str] = Counter()
        for name, (pattern, check) in self.rules.items():
            marker = self.replacement.format(rule=name)

            def replace(match: re.Match[str], name: str = name, check: Any = check, marker: str = marker) -> str:
                if check is not None and not check(match):
                    return match.group()
                fired[name] += 1
                return marker

            text = pattern.sub(replace, text)
        return text, fired

    def __call__(self, value: Any, kind: str) -> Redacted:
        fired: Counter[str] = Counter()

        def walk(item: Any, key: str | None = None) -> Any:
            if isinstance(item, str):
                if key in STRUCTURAL_KEYS:
                    return item
                redacted, counts = self.redact_text(item)
                fired.update(counts)
                return redacted
            if isinstance(item, Mapping):
                return {k: walk(v, k) for k, v in item.items()}
            if isinstance(item, list | tuple):
                return [walk(v, key) for v in item]
            return item  # bytes (images, documents), numbers, dates: not text

        return Redacted(walk(value), dict(fired))


def apply_redactor(redactor: Redactor, value: Any, kind: str) -> tuple[Any, dict[str, int]]:
    """Run ``redactor`` on a copy of ``value``: ``(value to store, {rule: count})``.

    The redactor gets a deep copy, so one that edits in place cannot change the caller's object
    behind its back. A plain return value records nothing; counts must be non-negative integers.
    """
    result = redactor(copy.deepcopy(value), kind)
    if isinstance(result, Redacted):
        counts = {str(rule): int(count) for rule, count in result.rules.items() if count}
        if any(count < 0 for count in counts.values()):
            raise ValueError(f"redaction counts must not be negative, got {counts}")
        return result.value, counts
    return result, {}
