"""Who may do what: the viewer's shared state, the effective password and every request's authorization.

Separate from :mod:`.main` (the routes) so the rules sit in one short module: which password opens
what, how failed attempts are counted (per client key or device token, see :mod:`.auth`, stored by
:mod:`.lockout`), and which session ids can exist at all.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

from fastapi import Header, HTTPException, Request

from mongodb_session_manager import documents as d
from mongodb_session_manager.errors import InvalidIdentifierError

from . import queries as q
from .auth import (
    BACKEND_PASSWORD_HEADER,
    DEVICE_HEADER,
    SESSION_PASSWORD_HEADER,
    client_key,
    device_key,
    generate_password,
    new_device_token,
    password_problem,
    passwords_match,
    verify_device_token,
)
from .config import Settings
from .store import SessionStore

logger = logging.getLogger("session_viewer")


class WeakPasswordError(ValueError):
    """``BACKEND_PASSWORD`` is too weak to protect every transcript (set ``ALLOW_WEAK_PASSWORD`` for a demo)."""


class ViewerState:
    """What the request handlers share: settings, the effective password, the store (and its lockout)."""

    def __init__(self, settings: Settings, password: str) -> None:
        self.settings = settings
        self.password = password
        self.trusted_proxies = settings.trusted_proxies
        self.device_key = device_key(password)
        self._store: SessionStore | None = None

    @property
    def store(self) -> SessionStore:
        if self._store is None:  # only before start-up / after shutdown
            raise HTTPException(503, "the viewer is not started")
        return self._store


def effective_password(settings: Settings) -> str:
    """The configured password, or a generated one announced once on the console.

    There is deliberately no fixed default: a viewer started without ``BACKEND_PASSWORD`` is
    protected by a random password only the operator who started it can see.
    """
    configured = settings.backend_password.get_secret_value()
    if configured:
        problem = password_problem(configured)
        if problem and not settings.allow_weak_password:
            raise WeakPasswordError(
                f"BACKEND_PASSWORD {problem}; choose at least 12 characters that are not a common password "
                "(or set ALLOW_WEAK_PASSWORD=true for a local demo)"
            )
        return configured
    generated = generate_password()
    logger.warning("BACKEND_PASSWORD is not set; generated a random password for this run")
    print(f"Session Viewer password (generated, set BACKEND_PASSWORD to choose one): {generated}", file=sys.stderr)
    sys.stderr.flush()
    return generated


def client_address(request: Request) -> str:
    """The lockout key of this request's client (forwarded headers only from TRUSTED_PROXIES_STR)."""
    peer = request.client.host if request.client else None
    return client_key(peer, request.headers.get("x-forwarded-for"), viewer(request).trusted_proxies)


def viewer(request: Request) -> ViewerState:
    state: ViewerState = request.app.state.viewer
    return state


async def authorize(
    request: Request,
    *,
    backend_password: str | None,
    session_password: str | None = None,
    session_id: str | None = None,
) -> str:
    """Return the scope the credentials grant (``global`` or ``session``), else raise 401/429.

    One request counts as at most one failure, whichever headers it carried. A session password
    is only ever compared with the password of ``session_id``, so it unlocks that session alone;
    a missing session and a wrong password look the same to the caller.

    Failures count per client address; a browser with a valid device token (handed out on a
    successful login, header ``X-Viewer-Device``) is judged by its own failures only, which are
    also counted on its address. So a guesser sharing an address with reviewers locks out only
    token-less clients there, and cannot mint fresh tokens to keep guessing once it is locked.
    """
    state = viewer(request)
    address = client_address(request)
    device = verify_device_token(state.device_key, request.headers.get(DEVICE_HEADER))
    client = f"device:{device}" if device else address
    lockout = state.store.lockout
    wait = await lockout.retry_after(client)
    if wait is not None:
        raise HTTPException(429, "too many failed password attempts; try again later", {"Retry-After": str(wait)})
    usable_session_password = session_password if session_id is not None else None
    if not backend_password and not usable_session_password:
        raise HTTPException(401, "a password is required")
    scope: str | None = None
    if passwords_match(backend_password, state.password):
        scope = "global"
    elif usable_session_password and session_id is not None:
        stored = await state.store.viewer_password(session_id)
        if passwords_match(usable_session_password, stored):
            scope = "session"
    if scope is not None:
        if device is None:
            request.state.new_device_token = new_device_token(state.device_key)
        return scope
    await lockout.record_failure(*([client, address] if device else [client]))
    logger.warning("client=<%s> | failed password attempt", client)
    raise HTTPException(401, "invalid password")


BackendPassword = Annotated[str | None, Header(alias=BACKEND_PASSWORD_HEADER)]
SessionPassword = Annotated[str | None, Header(alias=SESSION_PASSWORD_HEADER)]


async def require_backend_password(request: Request, x_backend_password: BackendPassword = None) -> None:
    await authorize(request, backend_password=x_backend_password)


def checked_session_id(session_id: str) -> str:
    try:
        return d.validate_id(session_id, "session")
    except InvalidIdentifierError as exc:
        raise q.ViewerInputError("invalid session id") from exc
