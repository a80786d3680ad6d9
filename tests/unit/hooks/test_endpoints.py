"""Configuration checks of the SQS and WebSocket hooks: URLs, regions, 410 detection (no AWS calls)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from mongodb_session_manager.hooks import create_metadata_sqs_hook, create_metadata_websocket_hook
from mongodb_session_manager.hooks.metadata_websocket_hook import is_gone, management_endpoint


def test_websocket_urls_become_management_endpoints() -> None:
    url = "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod/"
    assert management_endpoint(url) == "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
    assert management_endpoint("ws://127.0.0.1:9000/dev") == "http://127.0.0.1:9000/dev"


@pytest.mark.parametrize("bad", ["", "abc123", "ftp://host/prod", "https://", 42])
def test_a_bad_api_gateway_endpoint_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="api_gateway_endpoint"):
        create_metadata_websocket_hook(bad)  # type: ignore[arg-type]


def test_websocket_region_comes_from_the_host_unless_given() -> None:
    url = "https://abc123.execute-api.ap-south-1.amazonaws.com/prod"
    assert create_metadata_websocket_hook(url).region == "ap-south-1"
    assert create_metadata_websocket_hook(url, region="us-east-2").region == "us-east-2"
    assert create_metadata_websocket_hook("http://127.0.0.1:1/prod").region == "us-east-1"  # AWS_DEFAULT_REGION


def _client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PostToConnection")


def test_gone_means_code_gone_or_status_410() -> None:
    assert is_gone(_client_error("GoneException", 410))
    assert is_gone(_client_error("410", 410))
    assert not is_gone(_client_error("ForbiddenException", 403))
    assert not is_gone(RuntimeError("boom"))


def test_sqs_queue_url_region_and_fifo_are_read_from_the_url() -> None:
    hook = create_metadata_sqs_hook("https://sqs.eu-central-1.amazonaws.com/123456789012/events.fifo", ["status"])
    assert hook.region == "eu-central-1" and hook.fifo and hook.metadata_fields == frozenset({"status"})
    legacy = create_metadata_sqs_hook("https://ap-southeast-2.queue.amazonaws.com/123456789012/events")
    assert legacy.region == "ap-southeast-2" and not legacy.fifo and legacy.metadata_fields is None


@pytest.mark.parametrize("bad", ["", "events", None])
def test_a_bad_queue_url_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="queue_url"):
        create_metadata_sqs_hook(bad)  # type: ignore[arg-type]


def test_metadata_fields_given_as_a_string_is_refused() -> None:
    with pytest.raises(TypeError, match="metadata_fields"):
        create_metadata_sqs_hook("https://sqs.us-east-1.amazonaws.com/1/q", "status")  # type: ignore[arg-type]
