"""Durable, multi-agent conversation memory for Strands Agents in MongoDB.

One MongoDB document per session holds every agent's messages and state, the session metadata,
user feedback and per-turn metrics. See ``docs/README.md`` for the guides.
"""

from __future__ import annotations

from .documents_archive import ArchivePolicy
from .errors import (
    ConcurrentModificationError,
    DatabaseError,
    DatabaseUnavailableError,
    DocumentTooLargeError,
    InvalidExportError,
    InvalidIdentifierError,
    InvalidInputError,
    InvalidMetadataError,
    MissingBlobError,
    SessionStoreError,
    StorageBackendError,
    StorageKeyError,
    UnsupportedSchemaVersionError,
)
from .hooks import (
    FeedbackSNSHook,
    MetadataSQSHook,
    MetadataWebSocketHook,
    close_aws_hooks,
    compose_feedback_hooks,
    compose_metadata_hooks,
    create_feedback_sns_hook,
    create_metadata_sqs_hook,
    create_metadata_websocket_hook,
    flush_aws_hooks,
    is_feedback_sns_hook_available,
    is_metadata_sqs_hook_available,
    is_metadata_websocket_hook_available,
)
from .mongodb_connection_pool import MongoDBConnectionPool
from .mongodb_session_factory import (
    MongoDBSessionManagerFactory,
    close_global_factory,
    get_global_factory,
    initialize_global_factory,
)
from .mongodb_session_manager import MongoDBSessionManager, create_mongodb_session_manager
from .mongodb_session_repository import MongoDBSessionRepository
from .redaction import PIIRedactor, Redacted
from .snapshot_session_manager import MongoDBSnapshotSessionManager
from .storage import MongoDBStorage

__version__ = "0.3.0"


__all__ = [
    "ArchivePolicy",
    "ConcurrentModificationError",
    "DatabaseError",
    "DatabaseUnavailableError",
    "DocumentTooLargeError",
    "FeedbackSNSHook",
    "InvalidExportError",
    "InvalidIdentifierError",
    "InvalidInputError",
    "InvalidMetadataError",
    "MetadataSQSHook",
    "MetadataWebSocketHook",
    "MissingBlobError",
    "MongoDBConnectionPool",
    "MongoDBSessionManager",
    "MongoDBSessionManagerFactory",
    "MongoDBSessionRepository",
    "MongoDBSnapshotSessionManager",
    "MongoDBStorage",
    "PIIRedactor",
    "Redacted",
    "SessionStoreError",
    "StorageBackendError",
    "StorageKeyError",
    "UnsupportedSchemaVersionError",
    "__version__",
    "close_aws_hooks",
    "close_global_factory",
    "compose_feedback_hooks",
    "compose_metadata_hooks",
    "create_feedback_sns_hook",
    "create_metadata_sqs_hook",
    "create_metadata_websocket_hook",
    "create_mongodb_session_manager",
    "flush_aws_hooks",
    "get_global_factory",
    "initialize_global_factory",
    "is_feedback_sns_hook_available",
    "is_metadata_sqs_hook_available",
    "is_metadata_websocket_hook_available",
]
