"""The Session Viewer: a FastAPI backend (``session_viewer.backend``) and a static vanilla-JS frontend."""
