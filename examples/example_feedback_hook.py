"""Feedback and feedback hooks: audit, validation and a notification stand-in.

A feedback hook is called as hook(original_func, "add", session_id, feedback=...).

Run: uv run python examples/example_feedback_hook.py
"""

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.embedded import local_mongodb

NOTIFICATIONS: list[str] = []


def feedback_hook(original_func, action, session_id, **kwargs):
    feedback = kwargs["feedback"]
    if len(feedback.get("comment", "")) > 500:
        raise ValueError("comment too long (max 500 characters)")  # validation: nothing is stored
    result = original_func(feedback)  # store first, then side effects
    print(f"[audit] {action} on {session_id}: rating={feedback.get('rating')!r}")
    if feedback.get("rating") == "down":
        NOTIFICATIONS.append(f"Negative feedback on {session_id}: {feedback.get('comment')}")
    return result


def main() -> None:
    with local_mongodb() as uri:
        manager = MongoDBSessionManager(
            "feedback-demo",
            connection_string=uri,
            database_name="chat",
            collection_name="sessions",
            feedback_hook=feedback_hook,
        )
        manager.add_feedback({"rating": "up", "comment": "Great answer!"})
        manager.add_feedback({"rating": "down", "comment": "The refund amount was wrong."})
        manager.add_feedback({"rating": None, "comment": "Just a note."})
        try:
            manager.add_feedback({"rating": "down", "comment": "x" * 600})
        except ValueError as exc:
            print(f"Refused: {exc}")
        try:
            manager.add_feedback({"rating": "excellent"})
        except ValueError as exc:
            print(f"Refused: {exc}")
        for feedback in manager.get_feedbacks():
            print(f"Stored: {feedback['rating']!r:8} {feedback['comment']!r} at {feedback['created_at']:%H:%M:%S}")
        print(f"Notifications: {NOTIFICATIONS}")
        manager.repository.delete_session("feedback-demo")
        manager.close()


if __name__ == "__main__":
    main()
