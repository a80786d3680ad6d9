"""The repository contract against ``MongoDBSessionRepository`` on the real mongod."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient

from mongodb_session_manager.mongodb_session_repository import MongoDBSessionRepository

from .suite import RepositoryContract


class TestMongoDBSessionRepository(RepositoryContract):
    @pytest.fixture
    def repository(self, mongo_client: MongoClient[Any], db_name: str) -> Iterator[MongoDBSessionRepository]:
        repo = MongoDBSessionRepository(client=mongo_client, database_name=db_name, collection_name="sessions")
        yield repo
        repo.close()
