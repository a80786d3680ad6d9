"""An agent that manages its own session metadata through the manage_metadata tool.

Run: uv run python examples/example_metadata_tool.py
"""

from strands import Agent

from mongodb_session_manager import create_mongodb_session_manager
from mongodb_session_manager.embedded import local_mongodb
from mongodb_session_manager.testing import default_model


def main() -> None:
    with local_mongodb() as uri:
        manager = create_mongodb_session_manager(
            "metadata-tool-demo", connection_string=uri, database_name="chat", collection_name="sessions"
        )
        agent = Agent(
            agent_id="assistant",
            model=default_model(),
            tools=[manager.get_metadata_tool()],
            system_prompt="Store facts the user tells you in the session metadata with manage_metadata.",
            session_manager=manager,
            callback_handler=None,
        )
        for prompt in ("Remember that my favourite language is Python.", "What do you remember about me?"):
            print(f"User:  {prompt}")
            print(f"Agent: {agent(prompt)}")
        print(f"Metadata now stored in MongoDB: {manager.get_metadata()}")
        manager.repository.delete_session("metadata-tool-demo")
        manager.close()


if __name__ == "__main__":
    main()
