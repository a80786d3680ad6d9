"""Agent configuration persistence: the model and system prompt of every agent are recorded.

Run: uv run python examples/example_agent_config.py
"""

from strands import Agent

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.embedded import local_mongodb
from mongodb_session_manager.testing import default_model


def main() -> None:
    with local_mongodb() as uri:
        manager = MongoDBSessionManager(
            "agent-config-demo", connection_string=uri, database_name="chat", collection_name="sessions"
        )
        for agent_id, prompt in (
            ("support", "You are a friendly support agent."),
            ("billing", "You are a precise billing specialist."),
        ):
            Agent(
                agent_id=agent_id,
                model=default_model(),
                system_prompt=prompt,
                session_manager=manager,
                callback_handler=None,
            )("Hello!")
        print("Captured configuration:")
        for info in manager.list_agents():
            print(
                f"  {info['agent_id']}: model={info['model']!r} prompt={info['system_prompt']!r} "
                f"messages={info['message_count']}"
            )
        manager.update_agent_config("support", system_prompt="You are a friendly and concise support agent.")
        print(f"After update_agent_config: {manager.get_agent_config('support')['system_prompt']!r}")
        manager.repository.delete_session("agent-config-demo")
        manager.close()


if __name__ == "__main__":
    main()
