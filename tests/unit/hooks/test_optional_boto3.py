"""boto3 is an optional extra: without it the hooks package imports, says so, and explains the fix."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

import mongodb_session_manager
from mongodb_session_manager import hooks

# Every module of the hooks package, the package last (it re-exports from the others).
HOOK_MODULES = [
    "mongodb_session_manager.hooks._aws",
    "mongodb_session_manager.hooks._events",
    "mongodb_session_manager.hooks.compose",
    "mongodb_session_manager.hooks.feedback_sns_hook",
    "mongodb_session_manager.hooks.metadata_sqs_hook",
    "mongodb_session_manager.hooks.metadata_websocket_hook",
    "mongodb_session_manager.hooks",
]


def _reload_all() -> ModuleType:
    for name in HOOK_MODULES:
        importlib.reload(sys.modules[name])
    return sys.modules["mongodb_session_manager.hooks"]


@pytest.fixture
def without_boto3(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """``import boto3`` / ``import botocore`` fail as if the extra were not installed."""
    for name in list(sys.modules):
        if name.split(".")[0] in ("boto3", "botocore"):
            monkeypatch.setitem(sys.modules, name, None)
    # Reloading proves no hook module imports boto3 when it is imported.
    yield _reload_all()
    monkeypatch.undo()
    _reload_all()


def test_with_boto3_every_hook_is_available() -> None:
    assert hooks.is_feedback_sns_hook_available()
    assert hooks.is_metadata_sqs_hook_available()
    assert hooks.is_metadata_websocket_hook_available()


def test_without_boto3_the_helpers_say_so(without_boto3: ModuleType) -> None:
    assert without_boto3.is_feedback_sns_hook_available() is False
    assert without_boto3.is_metadata_sqs_hook_available() is False
    assert without_boto3.is_metadata_websocket_hook_available() is False


@pytest.mark.parametrize(
    ("factory", "args"),
    [
        ("create_feedback_sns_hook", ("arn:aws:sns:us-east-1:123456789012:bad",)),
        ("create_metadata_sqs_hook", ("https://sqs.us-east-1.amazonaws.com/123456789012/q",)),
        ("create_metadata_websocket_hook", ("https://abc.execute-api.us-east-1.amazonaws.com/prod",)),
    ],
)
def test_without_boto3_create_names_the_extra_to_install(
    without_boto3: ModuleType, factory: str, args: tuple[str, ...]
) -> None:
    with pytest.raises(ImportError, match=r'pip install "mongodb-session-manager\[aws\]"'):
        getattr(without_boto3, factory)(*args)


def test_the_package_root_exports_the_hooks() -> None:
    for name in (
        "FeedbackSNSHook",
        "MetadataSQSHook",
        "MetadataWebSocketHook",
        "create_feedback_sns_hook",
        "create_metadata_sqs_hook",
        "create_metadata_websocket_hook",
        "is_feedback_sns_hook_available",
        "is_metadata_sqs_hook_available",
        "is_metadata_websocket_hook_available",
        "compose_metadata_hooks",
        "flush_aws_hooks",
        "close_aws_hooks",
    ):
        assert name in mongodb_session_manager.__all__
        assert getattr(mongodb_session_manager, name) is not None
