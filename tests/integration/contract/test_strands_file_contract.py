"""The repository contract against Strands' own ``FileSessionManager``: the reference behaviour."""

from __future__ import annotations

from pathlib import Path

import pytest
from strands.session.file_session_manager import FileSessionManager

from .suite import RepositoryContract


class TestStrandsFileSessionManager(RepositoryContract):
    @pytest.fixture
    def repository(self, tmp_path: Path) -> FileSessionManager:
        # FileSessionManager is its own SessionRepository; constructing it creates a bootstrap session.
        return FileSessionManager(session_id="bootstrap", storage_dir=str(tmp_path))
