"""Fixtures for the AWS hooks: fake credentials, moto's in-process AWS, a loopback API Gateway.

Every boto3 request either is answered by moto inside the process or goes to a server on
127.0.0.1; the ``_only_loopback`` guard fails a test that would open a connection anywhere else.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import botocore.endpoint
import pytest
from moto import mock_aws

from mongodb_session_manager.hooks import close_aws_hooks

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _only_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests moto does not answer reach ``Endpoint._send``: allow them only to this machine."""
    original = botocore.endpoint.Endpoint._send

    def guarded(self: Any, request: Any) -> Any:
        host = urlsplit(request.url).hostname
        if host not in ("127.0.0.1", "localhost"):
            raise RuntimeError(f"test tried to contact {host}; only moto and loopback are allowed")
        return original(self, request)

    monkeypatch.setattr(botocore.endpoint.Endpoint, "_send", guarded)


@pytest.fixture(autouse=True)
def _close_hooks() -> Iterator[None]:
    yield
    # Wait for stragglers and drop clients created under this test's moto mock.
    close_aws_hooks(timeout=30)


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield
        # Sends still queued must finish while moto answers them.
        close_aws_hooks(timeout=30)


@dataclass
class Subscription:
    """An SNS topic delivering, non-raw, into an SQS queue (the envelope carries Subject/Message)."""

    topic_arn: str
    queue_url: str

    def receive(self, expected: int) -> list[dict[str, Any]]:
        return [json.loads(m["Body"]) for m in receive_all(self.queue_url, expected)]


def receive_all(queue_url: str, expected: int) -> list[dict[str, Any]]:
    """Every message on the queue (deleted once read); stops after ``expected`` or an empty poll."""
    sqs = boto3.client("sqs", region_name=REGION)
    messages: list[dict[str, Any]] = []
    while len(messages) < expected:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        if not batch:
            break
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        messages.extend(batch)
    return messages


def make_queue(name: str) -> str:
    return boto3.client("sqs", region_name=REGION).create_queue(QueueName=name)["QueueUrl"]


@pytest.fixture
def subscribed_topic(aws: None) -> Any:
    def make(name: str) -> Subscription:
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        topic_arn = sns.create_topic(Name=name)["TopicArn"]
        queue_url = make_queue(f"{name}-inbox")
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(
            TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "false"}
        )
        return Subscription(topic_arn, queue_url)

    return make


@dataclass
class FakeApiGateway:
    """A loopback stand-in for the API Gateway Management API (``POST /<stage>/@connections/<id>``)."""

    url: str
    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)
    forbidden: set[str] = field(default_factory=set)
    #: While cleared, requests wait (to prove the caller does not).
    open_gate: threading.Event = field(default_factory=threading.Event)

    def payloads(self, connection_id: str | None = None) -> list[dict[str, Any]]:
        return [body for cid, body in self.posts if connection_id is None or cid == connection_id]


def _handler(gateway: FakeApiGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            gateway.open_gate.wait(60)
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            stage, _, connection_id = self.path.partition("/@connections/")
            connection_id = unquote(connection_id)
            if stage != "/prod" or not connection_id:
                self._answer(404, "NotFoundException")
            elif connection_id in gateway.gone:
                self._answer(410, "GoneException")
            elif connection_id in gateway.forbidden:
                self._answer(403, "ForbiddenException")
            else:
                gateway.posts.append((connection_id, json.loads(data)))
                self._answer(200, None)

        def _answer(self, status: int, error: str | None) -> None:
            body = json.dumps({"message": error} if error else {}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            if error:
                self.send_header("x-amzn-ErrorType", error)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # keep test output quiet; requests are recorded in ``gateway.posts``

    return Handler


@pytest.fixture
def api_gateway() -> Iterator[FakeApiGateway]:
    gateway = FakeApiGateway(url="")
    gateway.open_gate.set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(gateway))
    gateway.url = f"http://127.0.0.1:{server.server_address[1]}/prod"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-apigw", daemon=True
    )
    thread.start()
    try:
        yield gateway
    finally:
        gateway.open_gate.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def default_session_id() -> str:
    return "hook-session"
