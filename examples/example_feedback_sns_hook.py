"""Feedback alerts on Amazon SNS: one topic per rating, with the Session Viewer password in the body.

By default AWS is simulated in-process with moto (each topic feeds an SQS queue, so the example
can print exactly what a subscriber receives); nothing leaves the machine. To publish to real
topics instead, set one or more of MSM_SNS_TOPIC_ARN_GOOD / _BAD / _NEUTRAL (and AWS credentials
the usual boto3 way).

Run: uv run python examples/example_feedback_sns_hook.py
"""

import contextlib
import json
import os

import boto3
from moto import mock_aws

from mongodb_session_manager import (
    MongoDBSessionManager,
    close_aws_hooks,
    create_feedback_sns_hook,
    is_feedback_sns_hook_available,
)
from mongodb_session_manager.embedded import local_mongodb

REGION = "us-east-1"
REAL_TOPICS = {r: os.environ.get(f"MSM_SNS_TOPIC_ARN_{r.upper()}") for r in ("good", "bad", "neutral")}
USE_REAL_AWS = any(REAL_TOPICS.values())


def simulated_topics() -> dict[str, tuple[str, str]]:
    """rating route -> (topic ARN, URL of an SQS queue subscribed to it), inside moto."""
    sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
    topics = {}
    for route in ("good", "bad", "neutral"):
        arn = sns.create_topic(Name=f"feedback-{route}")["TopicArn"]
        queue_url = sqs.create_queue(QueueName=f"feedback-{route}-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "false"})
        topics[route] = (arn, queue_url)
    return topics


def print_received(route: str, queue_url: str) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        envelope = json.loads(message["Body"])
        print(f"--- topic feedback-{route} received ---")
        print(f"Subject: {envelope['Subject']}")
        print(envelope["Message"])


def main() -> None:
    if not is_feedback_sns_hook_available():
        print('boto3 is missing: pip install "mongodb-session-manager[aws]"')
        return
    aws = contextlib.nullcontext() if USE_REAL_AWS else mock_aws()
    with local_mongodb() as uri, aws:
        topics = {r: (arn, None) for r, arn in REAL_TOPICS.items()} if USE_REAL_AWS else simulated_topics()
        hook = create_feedback_sns_hook(
            topic_arn_good=topics["good"][0],
            topic_arn_bad=topics["bad"][0],
            topic_arn_neutral=topics["neutral"][0],
            subject_prefix_good="[DEMO] ",
            subject_prefix_bad="[DEMO] URGENT: ",
            body_prefix_bad="NEGATIVE FEEDBACK ALERT\nSession: {session_id}\nTimestamp: {timestamp}\n---\n",
            body_prefix_good="Rated {rating} at {timestamp}\n",
        )
        manager = MongoDBSessionManager(
            "sns-feedback-demo",
            connection_string=uri,
            database_name="chat",
            collection_name="sessions",
            feedback_hook=hook,
        )
        manager.add_feedback({"rating": "down", "comment": "Response was incomplete"})
        manager.add_feedback({"rating": "up", "comment": "Great answer!"})
        manager.add_feedback({"rating": None, "comment": "Just a note."})
        print(f"Stored {len(manager.get_feedbacks())} feedbacks; the request never waited for SNS.")

        hook.flush(timeout=30)  # a script or Lambda waits for pending notifications before it exits
        print(f"Notification outcomes: {hook.stats}")
        if not USE_REAL_AWS:
            for route, (_, queue_url) in topics.items():
                print_received(route, queue_url)

        manager.repository.delete_session("sns-feedback-demo")
        manager.close()
        close_aws_hooks()


if __name__ == "__main__":
    main()
