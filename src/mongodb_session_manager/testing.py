"""A deterministic, offline Strands ``Model`` for tests, examples and the demo.

It runs through Strands' real agent loop: it streams text in deltas, emits tool calls that the
agent really executes (calculator, ``manage_metadata``, any tool), and reports usage and latency
metrics, so everything this library persists is exercised without a network or credentials.

Replies come from a script (strings, :class:`ToolCall` objects, or callables) and, when the
script runs out, from a small rule-based responder that answers arithmetic with the calculator
tool and "remember ..." requests with the metadata tool when those tools are available.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel
from strands.models.model import Model
from strands.types.content import Messages
from strands.types.streaming import StreamEvent
from strands.types.tools import ToolSpec

T = TypeVar("T", bound=BaseModel)


@dataclass
class ToolCall:
    """Ask the agent to run tool ``name`` with ``input``."""

    name: str
    input: dict[str, Any] = field(default_factory=dict)
    tool_use_id: str | None = None


@dataclass
class Reply:
    """Text, optionally followed by tool calls, in one assistant message."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)


Scripted = str | ToolCall | Reply | Callable[[Messages, list[ToolSpec]], "str | ToolCall | Reply"]


def _text_of(message: dict[str, Any]) -> str:
    return " ".join(b["text"] for b in message.get("content", []) if isinstance(b, dict) and "text" in b)


def _tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


class ScriptedModel(Model):
    """Offline model with scripted, reproducible answers and realistic streaming events.

    Args:
        responses: Replies used in order; afterwards :meth:`default_reply` answers.
        model_id: Reported by ``get_config()["model_id"]`` (what the manager records).
        chunk_size: Characters per streamed text delta.
        latency_ms: Latency reported in the metrics of every call.
        cache_read_tokens: If set, reported as ``cacheReadInputTokens`` (to test cache metrics).
        strict: Check every request by Bedrock Converse's rules (:func:`converse_violation`) and
            raise the error Bedrock raises, so a history a real provider would refuse fails here
            too. On by default; ``strict=False`` accepts anything.
    """

    def __init__(
        self,
        responses: Iterable[Scripted] | None = None,
        *,
        model_id: str = "scripted-offline-model",
        chunk_size: int = 12,
        latency_ms: int = 42,
        cache_read_tokens: int | None = None,
        strict: bool = True,
    ) -> None:
        self.strict = strict
        self.responses: deque[Scripted] = deque(responses or [])
        self.config: dict[str, Any] = {"model_id": model_id}
        self.chunk_size = max(1, chunk_size)
        self.latency_ms = latency_ms
        self.cache_read_tokens = cache_read_tokens
        self.calls: list[Messages] = []

    # ---- Model interface ------------------------------------------------------------------------

    def update_config(self, **model_config: Any) -> None:
        self.config.update(model_config)

    def get_config(self) -> dict[str, Any]:
        return dict(self.config)

    async def structured_output(
        self, output_model: type[T], prompt: Messages, system_prompt: str | None = None, **kwargs: Any
    ) -> AsyncGenerator[dict[str, T | Any], None]:
        raise NotImplementedError("ScriptedModel does not produce structured output")
        yield {}  # pragma: no cover

    async def stream(
        self,
        messages: Messages,
        tool_specs: list[ToolSpec] | None = None,
        system_prompt: str | None = None,
        **kwargs: Any,
    ) -> AsyncIterable[StreamEvent]:
        self.calls.append(list(messages))
        if self.strict:
            problem = converse_violation(messages)
            if problem is not None:
                raise converse_validation_error(problem)
        reply = self._next_reply(messages, tool_specs or [])
        prompt_text = (system_prompt or "") + json.dumps([_text_of(m) for m in messages])
        yield {"messageStart": {"role": "assistant"}}
        if reply.text:
            for start in range(0, len(reply.text), self.chunk_size):
                yield {"contentBlockDelta": {"delta": {"text": reply.text[start : start + self.chunk_size]}}}
            yield {"contentBlockStop": {}}
        for call in reply.tool_calls:
            tool_use_id = call.tool_use_id or f"tooluse_{uuid.uuid4().hex[:12]}"
            yield {"contentBlockStart": {"start": {"toolUse": {"name": call.name, "toolUseId": tool_use_id}}}}
            yield {"contentBlockDelta": {"delta": {"toolUse": {"input": json.dumps(call.input)}}}}
            yield {"contentBlockStop": {}}
        yield {"messageStop": {"stopReason": "tool_use" if reply.tool_calls else "end_turn"}}
        input_tokens = _tokens(prompt_text)
        output_tokens = _tokens(reply.text + "".join(json.dumps(c.input) for c in reply.tool_calls))
        usage: dict[str, int] = {
            "inputTokens": input_tokens,
            "outputTokens": output_tokens,
            "totalTokens": input_tokens + output_tokens,
        }
        if self.cache_read_tokens:
            usage["cacheReadInputTokens"] = self.cache_read_tokens
        yield {"metadata": {"usage": usage, "metrics": {"latencyMs": self.latency_ms}}}  # type: ignore[typeddict-item]

    # ---- replies ---------------------------------------------------------------------------------

    def _next_reply(self, messages: Messages, tool_specs: list[ToolSpec]) -> Reply:
        item: Any = self.responses.popleft() if self.responses else self.default_reply
        if callable(item) and not isinstance(item, ToolCall | Reply):
            item = item(messages, tool_specs)
        if isinstance(item, str):
            return Reply(text=item)
        if isinstance(item, ToolCall):
            return Reply(tool_calls=[item])
        return item

    def default_reply(self, messages: Messages, tool_specs: list[ToolSpec]) -> Reply:
        """A small rule-based assistant, enough for a realistic offline demo."""
        last = messages[-1] if messages else {"role": "user", "content": []}
        tools = {spec["name"] for spec in tool_specs}
        results = [b["toolResult"] for b in last.get("content", []) if isinstance(b, dict) and "toolResult" in b]
        if results:
            texts = [c.get("text", "") for r in results for c in r.get("content", []) if isinstance(c, dict)]
            return Reply(text="Done. " + " ".join(t for t in texts if t).strip())
        text = _text_of(last)
        expressions = [e for e in re.findall(r"[\d(][\d\s.+\-*/()^]*[\d)]", text) if re.search(r"[+\-*/^]", e)]
        if "calculator" in tools and expressions:
            return Reply(
                text="Let me calculate that.",
                tool_calls=[ToolCall("calculator", {"expression": expressions[-1].strip()})],
            )
        remember = re.search(r"remember (?:that )?(?:my )?([\w ]+?) (?:is|=) ([^.?!]+)", text, re.IGNORECASE)
        if "manage_metadata" in tools and remember:
            key = remember.group(1).strip().replace(" ", "_").lower()
            return Reply(
                text="I'll remember that.",
                tool_calls=[
                    ToolCall("manage_metadata", {"action": "set", "metadata": {key: remember.group(2).strip()}})
                ],
            )
        if "manage_metadata" in tools and re.search(r"what do you (?:know|remember)", text, re.IGNORECASE):
            return Reply(tool_calls=[ToolCall("manage_metadata", {"action": "get"})])
        turn = sum(1 for m in messages if m.get("role") == "user" and _text_of(m))
        return Reply(
            text=f"Thanks, I understand: **{text[:200]}**\n\nI'm the offline demo model (turn {turn}); "
            "a real model answers here when Bedrock is configured."
        )


# ---- Bedrock Converse's rules for a request ----------------------------------------------------------


_MUST_START_WITH_USER = (
    "A conversation must start with a user message. Try again with a conversation that starts with a user message."
)


def converse_violation(messages: Messages) -> str | None:
    """The message Bedrock's Converse API gives for a history it refuses, or None if it accepts it.

    The rules: the conversation starts with a user message, roles alternate, every ``toolUse`` is
    answered by exactly its ``toolResult`` blocks in the next message, no ``toolResult`` answers a
    tool that was not called, no text block is blank, and the request ends with a user message.
    """
    if not messages or messages[0].get("role") != "user":
        return _MUST_START_WITH_USER
    for index, message in enumerate(messages):
        content = message.get("content") or []
        if not content:
            return (
                f"The content field in the Message object at messages.{index} is empty. "
                "Add a ContentBlock object to the content field and try again."
            )
        for block_index, block in enumerate(content):
            if isinstance(block, dict) and "text" in block and not str(block["text"]).strip():
                return (
                    f"The text field in the ContentBlock object at messages.{index}.content.{block_index} is blank. "
                    "Add text to the text field, and try again."
                )
        if index and message.get("role") == messages[index - 1].get("role"):
            return (
                "A conversation must alternate between user and assistant roles. Make sure the conversation "
                "alternates between user and assistant roles and try again."
            )
        expected = [
            b["toolUse"]["toolUseId"]
            for b in (messages[index - 1].get("content", []) if index else [])
            if "toolUse" in b
        ]
        results = [b["toolResult"]["toolUseId"] for b in content if isinstance(b, dict) and "toolResult" in b]
        if expected and sorted(results) != sorted(expected):
            missing = [t for t in expected if t not in results]
            if missing:
                ids = ", ".join(missing)
                return f"Expected toolResult blocks at messages.{index}.content for the following Ids: {ids}"
            return (
                f"The number of toolResult blocks at messages.{index}.content exceeds the number of toolUse blocks "
                "of previous turn."
            )
        if results and not expected:
            return (
                f"The number of toolResult blocks at messages.{index}.content exceeds the number of toolUse blocks "
                "of previous turn."
            )
    if messages[-1].get("role") != "user":
        return (
            "A conversation must end with a user message. Try again with a conversation that ends with a user message."
        )
    return None


def converse_validation_error(problem: str) -> Exception:
    """The exception Strands' Bedrock model lets through for a refused request (botocore's ClientError)."""
    from botocore.exceptions import ClientError

    return ClientError(
        {"Error": {"Code": "ValidationException", "Message": problem}, "ResponseMetadata": {"HTTPStatusCode": 400}},
        "ConverseStream",
    )


# ---- model selection for examples and the demo ----------------------------------------------------

BEDROCK_DEFAULT_MODEL_ID = "eu.anthropic.claude-sonnet-4-20250514-v1:0"


def real_model_configured() -> bool:
    """True when the environment selects Bedrock: ``MSM_MODEL=bedrock``, or AWS credentials in env.

    Only environment variables are consulted (never the instance-metadata endpoint), and
    ``MSM_MODEL=offline`` always forces the scripted model, which tests rely on.
    """
    import os

    choice = os.environ.get("MSM_MODEL", "").strip().lower()
    if choice in ("offline", "scripted"):
        return False
    if choice == "bedrock":
        return True
    return any(os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_BEARER_TOKEN_BEDROCK"))


def default_model(responses: Iterable[Scripted] | None = None, **kwargs: Any) -> Model:
    """Bedrock when configured (as the design document's examples use), else :class:`ScriptedModel`."""
    import os

    if real_model_configured():
        from strands.models.bedrock import BedrockModel

        return BedrockModel(model_id=os.environ.get("BEDROCK_MODEL_ID", BEDROCK_DEFAULT_MODEL_ID))
    return ScriptedModel(responses, **kwargs)
