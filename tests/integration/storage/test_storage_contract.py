"""The storage contract on MongoDBStorage and on Strands' InMemoryStorage / LocalFileStorage, with identical results."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from strands.storage import InMemoryStorage, LocalFileStorage

from mongodb_session_manager.storage import MongoDBStorage

from .suite import StorageContract, transcript


@pytest_asyncio.fixture(loop_scope="function")
async def mongodb_storage(mongo_uri: str, db_name: str) -> AsyncIterator[MongoDBStorage]:
    storage = MongoDBStorage(mongo_uri, db_name, "sessions")
    yield storage
    await storage.aclose()  # on the test's loop, where its async client lives


class TestMongoDBStorageContract(StorageContract):
    @pytest.fixture
    def storage(self, mongodb_storage: MongoDBStorage) -> MongoDBStorage:
        return mongodb_storage


class TestInMemoryStorageContract(StorageContract):
    @pytest.fixture
    def storage(self) -> InMemoryStorage:
        return InMemoryStorage()


class TestLocalFileStorageContract(StorageContract):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> LocalFileStorage:
        return LocalFileStorage(str(tmp_path / "strands"))


async def test_every_backend_gives_the_same_results(mongodb_storage: MongoDBStorage, tmp_path: Path) -> None:
    reference = await transcript(InMemoryStorage())
    assert await transcript(LocalFileStorage(str(tmp_path / uuid.uuid4().hex))) == reference
    assert await transcript(mongodb_storage) == reference
