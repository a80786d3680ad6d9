"""Session Viewer API: ``create_app(settings)`` in :mod:`session_viewer.backend.main`."""
