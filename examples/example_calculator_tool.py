"""An agent with a calculator tool whose conversation lives in MongoDB, then resumes in a new process.

Run: uv run python examples/example_calculator_tool.py
Uses MONGODB_CONNECTION_STRING when set, else starts a local mongod. Uses Bedrock when AWS
credentials are configured (or MSM_MODEL=bedrock), else the offline scripted model.
"""

from strands import Agent

from mongodb_session_manager import create_mongodb_session_manager
from mongodb_session_manager.demo import calculator
from mongodb_session_manager.embedded import local_mongodb
from mongodb_session_manager.testing import default_model


def main() -> None:
    with local_mongodb() as uri:
        manager = create_mongodb_session_manager(
            "calculator-demo", connection_string=uri, database_name="chat", collection_name="sessions"
        )
        agent = Agent(
            agent_id="calculator",
            model=default_model(),
            tools=[calculator],
            system_prompt="You are a helpful assistant with a calculator.",
            session_manager=manager,
            callback_handler=None,
        )
        for prompt in ("What is 1234 * 5678?", "And what is (17 + 25) / 6?"):
            print(f"User:  {prompt}")
            print(f"Agent: {agent(prompt)}")
        print(f"Stored messages: {manager.get_message_count()}")
        manager.close()

        # A new manager and a new agent with the same session id continue the conversation.
        resumed = create_mongodb_session_manager(
            "calculator-demo", connection_string=uri, database_name="chat", collection_name="sessions"
        )
        agent = Agent(agent_id="calculator", model=default_model(), session_manager=resumed, callback_handler=None)
        print(f"Resumed agent remembers {len(agent.messages)} messages; last: {agent.messages[-1]['content'][0]}")
        resumed.repository.delete_session("calculator-demo")  # keep the example repeatable
        resumed.close()


if __name__ == "__main__":
    main()
