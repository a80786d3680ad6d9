"""The hook contract, in one place: what a metadata or feedback hook receives and must return.

A hook wraps one manager operation::

    def hook(original_func, action, session_id, **kwargs):
        ...                                   # before: inspect, rewrite or refuse (raise)
        result = original_func(kwargs["metadata"])   # the manager's own operation, exactly once
        ...                                   # after: notify, cache, measure
        return result                         # becomes the return value of the manager's method

``action`` says which operation runs and which keyword argument carries its value
(:data:`ACTION_ARGUMENT`); ``session_manager`` is always passed too, so a hook can read the session
through the manager's public methods. The manager (:func:`run_operation`), :mod:`.compose` and the
AWS hooks (:mod:`._dispatch`) all use this module, so the contract cannot drift between them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol, runtime_checkable

#: ``"update"`` / ``"get"`` / ``"delete"`` for metadata hooks, ``"add"`` for feedback hooks.
Action = Literal["update", "get", "delete", "add"]

#: Which keyword argument carries the single positional argument of ``original_func``, per action.
ACTION_ARGUMENT: dict[str, str | None] = {"update": "metadata", "delete": "keys", "add": "feedback", "get": None}

METADATA_ACTIONS: tuple[str, ...] = ("update", "get", "delete")
FEEDBACK_ACTIONS: tuple[str, ...] = ("add",)

#: The manager's own operation as handed to a hook: one argument (or none, for ``"get"``).
OriginalFunc = Callable[..., Any]


@runtime_checkable
class OperationHook(Protocol):
    """``hook(original_func, action, session_id, **kwargs) -> Any`` (a function or a callable object)."""

    def __call__(self, original_func: OriginalFunc, action: str, session_id: str, /, **kwargs: Any) -> Any: ...


def check_action(action: str) -> str | None:
    """The keyword argument of ``action``; ``ValueError`` for an action the contract does not know."""
    if action not in ACTION_ARGUMENT:
        raise ValueError(f"unknown hook action {action!r}; expected one of {sorted(ACTION_ARGUMENT)}")
    return ACTION_ARGUMENT[action]


def call_original(original_func: OriginalFunc, action: str, kwargs: Mapping[str, Any]) -> Any:
    """Call the manager's own operation the way the contract says (for hooks that only observe)."""
    argument = check_action(action)
    if argument is None:
        return original_func()
    return original_func(kwargs[argument])


def check_hook(hook: object, name: str) -> OperationHook | None:
    """Refuse a non-callable hook when the manager is built, not at the first metadata update."""
    if hook is None:
        return None
    if not callable(hook):
        raise TypeError(
            f"{name} must be a callable hook(original_func, action, session_id, **kwargs), got {hook!r:.80}"
        )
    return hook  # type: ignore[return-value]


def run_operation(
    hook: OperationHook | None,
    original_func: OriginalFunc,
    action: str,
    session_id: str,
    value: Any = None,
    **extra: Any,
) -> Any:
    """Run one manager operation, through ``hook`` when there is one.

    ``value`` is the operation's argument (metadata, keys or feedback); it reaches the hook under
    the action's keyword (``metadata=``, ``keys=``, ``feedback=``) together with ``extra``
    (``session_manager=``).
    """
    argument = check_action(action)
    if hook is None:
        return original_func() if argument is None else original_func(value)
    kwargs = dict(extra)
    if argument is not None:
        kwargs[argument] = value
    return hook(original_func, action, session_id, **kwargs)
