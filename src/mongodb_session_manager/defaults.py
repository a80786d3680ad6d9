"""Where the local tools keep sessions, so they all meet in one place.

The quick start, the examples, the playground, ``mongodb-session-manager demo|viewer`` and the
Session Viewer's own settings use this database and collection (overridable with
``DATABASE_NAME`` / ``COLLECTION_NAME``), so a session written by any of them shows up in the
viewer. The library's constructors keep their original defaults (``"database_name"`` /
``"collection_name"``) for compatibility with existing deployments; pass these names explicitly.
"""

from __future__ import annotations

DATABASE_NAME = "chat"
COLLECTION_NAME = "sessions"
