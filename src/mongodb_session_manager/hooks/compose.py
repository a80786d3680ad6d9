"""Run several hooks on one manager: the manager accepts one metadata hook and one feedback hook.

``compose_metadata_hooks(websocket_hook, sqs_hook)`` nests the hooks like decorators: the first one
is outermost, each receives an ``original_func`` that runs the next one, and the manager's real
operation runs exactly once, innermost. A hook that rewrites the metadata (or keys, or feedback)
before calling ``original_func`` therefore passes the rewritten value to the hooks after it, and a
hook that refuses an operation (raises) stops it before anything is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .contract import OperationHook, OriginalFunc, check_action

#: Kept for code written against 0.3: the contract's type lives in :mod:`.contract`.
Hook = OperationHook


class ComposedHook:
    """A hook made of hooks; ``flush``/``close`` reach every member that has them."""

    def __init__(self, hooks: tuple[Hook, ...]) -> None:
        if not hooks:
            raise ValueError("compose at least one hook")
        for hook in hooks:
            if not callable(hook):
                raise TypeError(f"hooks must be callables, got {type(hook).__name__}")
        self.hooks = hooks

    def __call__(self, original_func: OriginalFunc, action: str, session_id: str, /, **kwargs: Any) -> Any:
        argument = check_action(action)
        call = original_func
        for hook in reversed(self.hooks):
            call = _link(hook, call, action, session_id, argument, kwargs)
        return call() if argument is None else call(kwargs[argument])

    def flush(self, timeout: float | None = None) -> bool:
        """Wait for every member's pending sends (``timeout`` applies to each member)."""
        results = [hook.flush(timeout) for hook in self.hooks if callable(getattr(hook, "flush", None))]
        return all(results)

    def close(self, timeout: float | None = None) -> bool:
        results = [hook.close(timeout) for hook in self.hooks if callable(getattr(hook, "close", None))]
        return all(results)


def _link(
    hook: Hook,
    inner: Callable[..., Any],
    action: str,
    session_id: str,
    argument: str | None,
    kwargs: dict[str, Any],
) -> Callable[..., Any]:
    """``inner`` wrapped so that calling it runs ``hook`` around it with the value it was called with."""

    def call(*args: Any) -> Any:
        hook_kwargs = dict(kwargs)
        if argument is not None:
            if len(args) != 1:
                raise TypeError(f"original_func for {action!r} takes exactly one argument ({argument})")
            hook_kwargs[argument] = args[0]
        elif args:
            raise TypeError(f"original_func for {action!r} takes no argument")
        return hook(inner, action, session_id, **hook_kwargs)

    return call


def compose_hooks(*hooks: Hook) -> ComposedHook:
    """Chain hooks of the ``hook(original_func, action, session_id, **kwargs)`` contract."""
    return ComposedHook(hooks)


def compose_metadata_hooks(*hooks: Hook) -> ComposedHook:
    """Chain metadata hooks, e.g. WebSocket push for the UI and SQS events for the backend."""
    return ComposedHook(hooks)


def compose_feedback_hooks(*hooks: Hook) -> ComposedHook:
    """Chain feedback hooks, e.g. your own validation in front of the SNS notification."""
    return ComposedHook(hooks)
