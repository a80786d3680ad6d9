"""The viewer's app fixture, for the test that opens a large session in the viewer."""

from tests.integration.session_viewer.conftest import make_api  # noqa: F401
