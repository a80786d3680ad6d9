"""Metadata changes as events on Amazon SQS, for backend consumers (SSE relays, analytics, workflows).

Only the listed fields leave the process; updates and deletes both produce an event. By default
AWS is simulated in-process with moto and the example reads the queue back to show each event;
nothing leaves the machine. To send to a real queue instead, set MSM_SQS_QUEUE_URL (and AWS
credentials the usual boto3 way); the example then only sends.

Run: uv run python examples/example_metadata_sqs_hook.py
"""

import contextlib
import json
import os

import boto3
from moto import mock_aws

from mongodb_session_manager import (
    MongoDBSessionManager,
    close_aws_hooks,
    create_metadata_sqs_hook,
    is_metadata_sqs_hook_available,
)
from mongodb_session_manager.embedded import local_mongodb

REGION = "us-east-1"
REAL_QUEUE_URL = os.environ.get("MSM_SQS_QUEUE_URL")


def main() -> None:
    if not is_metadata_sqs_hook_available():
        print('boto3 is missing: pip install "mongodb-session-manager[aws]"')
        return
    aws = contextlib.nullcontext() if REAL_QUEUE_URL else mock_aws()
    with local_mongodb() as uri, aws:
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = REAL_QUEUE_URL or sqs.create_queue(QueueName="metadata-updates")["QueueUrl"]
        hook = create_metadata_sqs_hook(queue_url, metadata_fields=["status", "agent_state", "priority"])
        manager = MongoDBSessionManager(
            "sqs-metadata-demo",
            connection_string=uri,
            database_name="chat",
            collection_name="sessions",
            metadata_hook=hook,
        )

        manager.update_metadata({"status": "processing", "agent_state": "thinking", "internal_notes": "private"})
        manager.update_metadata({"internal_notes": "only internal fields: no event"})
        manager.update_metadata({"status": "done", "priority": "high"})
        manager.delete_metadata(["agent_state", "internal_notes"])
        print(f"Stored metadata: {manager.get_metadata()}")

        hook.flush(timeout=30)  # wait for pending sends before reading the queue / exiting
        print(f"Send outcomes: {hook.stats}")
        if not REAL_QUEUE_URL:
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            for message in messages:
                print(f"Event on the queue: {json.dumps(json.loads(message['Body']))}")

        manager.repository.delete_session("sqs-metadata-demo")
        manager.close()
        close_aws_hooks()


if __name__ == "__main__":
    main()
