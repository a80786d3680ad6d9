"""Calling the metadata tool directly, as application code (no model involved).

Run: uv run python examples/example_metadata_tool_direct.py
"""

from mongodb_session_manager import create_mongodb_session_manager
from mongodb_session_manager.embedded import local_mongodb


def main() -> None:
    with local_mongodb() as uri:
        manager = create_mongodb_session_manager(
            "metadata-direct", connection_string=uri, database_name="chat", collection_name="sessions"
        )
        metadata_tool = manager.get_metadata_tool()
        print(metadata_tool(action="set", metadata={"customer": "ACME", "priority": "high"}))
        print(metadata_tool(action="update", metadata='{"priority": "low"}'))  # JSON strings work too
        print(metadata_tool(action="get"))
        print(metadata_tool(action="get", keys=["priority"]))
        print(metadata_tool(action="delete", keys=["priority"]))
        print(metadata_tool(action="get"))
        print(metadata_tool(action="set", metadata={"$where": "1"}))  # refused with a readable message
        manager.repository.delete_session("metadata-direct")
        manager.close()


if __name__ == "__main__":
    main()
