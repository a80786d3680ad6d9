"""The Session Viewer API: ``create_app(settings)``, and ``app`` for ``uvicorn main:app``.

Endpoints: ``GET /health``, ``GET /api/v1/auth/check``, ``GET /api/v1/metadata-fields``,
``GET /api/v1/sessions/search``, ``GET /api/v1/session/{session_id}`` (one timeline page;
``/api/v1/sessions/{session_id}`` is the older spelling, which cannot open a session named
``search``), ``GET /api/v1/session-export/{session_id}`` and ``POST /api/v1/session-notes/{session_id}``.
Search, field discovery and notes need ``BACKEND_PASSWORD`` (header ``X-Backend-Password``); one
session can also be opened and exported with its own viewer password (header ``X-Session-Password``).
With ``SERVE_FRONTEND`` the same app serves the frontend, so the whole viewer runs on one origin.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from bson.errors import BSONError
from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pymongo.errors import ConnectionFailure, ExecutionTimeout, PyMongoError, ServerSelectionTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from mongodb_session_manager import __version__
from mongodb_session_manager import documents as d
from mongodb_session_manager import documents_features as df
from mongodb_session_manager.errors import (
    AlreadyExistsError,
    ConcurrentModificationError,
    DatabaseError,
    DatabaseUnavailableError,
    DocumentTooLargeError,
    InvalidInputError,
    NotFoundError,
    SessionStoreError,
)
from mongodb_session_manager.export import export_session_document

from . import listing, paging, snapshot_timeline
from . import queries as q
from .access import (
    BackendPassword,
    SessionPassword,
    ViewerState,
    authorize,
    checked_session_id,
    effective_password,
    require_backend_password,
    viewer,
)
from .auth import BACKEND_PASSWORD_HEADER, DEVICE_HEADER, SESSION_PASSWORD_HEADER
from .config import Settings
from .models import (
    AuthCheckResponse,
    FeedbackEntry,
    HealthResponse,
    MetadataFieldsResponse,
    NoteRequest,
    SearchOptionsResponse,
    SearchResponse,
    SessionDetailResponse,
)
from .store import SessionStore, make_client
from .timeline import session_detail_page, timeline_row_item

logger = logging.getLogger("session_viewer")

API = "/api/v1"
HEALTH_TIMEOUT_SECONDS = 2.5
#: What the browser may do with pages this server sends: our own scripts and styles, nothing inline.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SAME_ORIGIN_CONFIG_JS = (
    'window.SESSION_VIEWER_CONFIG = Object.assign({}, window.SESSION_VIEWER_CONFIG, {apiBaseUrl: ""});\n'
)


# ---- handlers --------------------------------------------------------------------------------------


async def health(request: Request) -> JSONResponse:
    reachable = await viewer(request).store.ping(HEALTH_TIMEOUT_SECONDS)
    body = HealthResponse(
        status="ok" if reachable else "degraded",
        database="reachable" if reachable else "unreachable",
        version=__version__,
    )
    return JSONResponse(body.model_dump(), status_code=200 if reachable else 503)


async def auth_check(
    request: Request,
    session_id: Annotated[str | None, Query(max_length=d.MAX_ID_LENGTH)] = None,
    x_backend_password: BackendPassword = None,
    x_session_password: SessionPassword = None,
) -> AuthCheckResponse:
    """Tells the frontend what a password opens, so it can show search or a single session."""
    sid = checked_session_id(session_id) if session_id is not None else None
    scope = await authorize(
        request, backend_password=x_backend_password, session_password=x_session_password, session_id=sid
    )
    return AuthCheckResponse(scope="global" if scope == "global" else "session", session_id=sid)


async def metadata_fields(request: Request) -> MetadataFieldsResponse:
    fields = await viewer(request).store.describe_fields()
    return MetadataFieldsResponse.model_validate({"fields": fields})


async def search_sessions(
    request: Request,
    session_id: Annotated[str | None, Query(description="the session id or its beginning (session_id_match)")] = None,
    session_id_match: Annotated[
        str, Query(description="prefix (default, indexed), exact, or contains (slow: reads every id, time-limited)")
    ] = "prefix",
    created_from: Annotated[str | None, Query(description="ISO date or date-time, inclusive")] = None,
    created_to: Annotated[str | None, Query(description="ISO date (whole day) or date-time, exclusive")] = None,
    updated_from: Annotated[str | None, Query(description="last update, ISO date or date-time, inclusive")] = None,
    updated_to: Annotated[str | None, Query(description="last update, a whole day or date-time, exclusive")] = None,
    filters: Annotated[str | None, Query(description='JSON: {"metadata.status": "open"} or a list')] = None,
    feedback: Annotated[str | None, Query(description="up or down: has an end-user rating of that kind")] = None,
    agent_id: Annotated[str | None, Query(max_length=d.MAX_ID_LENGTH)] = None,
    model: Annotated[str | None, Query(max_length=d.MAX_ID_LENGTH, description="model id an agent used")] = None,
    application_name: Annotated[str | None, Query(max_length=d.MAX_ID_LENGTH)] = None,
    cursor: Annotated[str | None, Query(max_length=2048, description="next_cursor / prev_cursor of a response")] = None,
    page: Annotated[int, Query(description="shown page number; without a cursor, pages by skipping")] = 1,
    page_size: Annotated[int | None, Query(description="clamped to 1..MAX_PAGE_SIZE")] = None,
    sort_by: Annotated[str | None, Query(description="created (default), updated or tokens")] = None,
    sort_order: Annotated[str | None, Query(description="desc (default) or asc")] = None,
) -> SearchResponse:
    """One page of list cards. Each search walks one compound index from a cursor (see ``listing``)."""
    state = viewer(request)
    settings = state.settings
    page_spec = q.page_of(page, page_size, settings.page_size, settings.max_page_size)
    ranges = {
        name: q.parse_date_bound(value, end=name.endswith("_to"), what=name)
        for name, value in (
            ("created_from", created_from),
            ("created_to", created_to),
            ("updated_from", updated_from),
            ("updated_to", updated_to),
        )
    }
    allowed = await state.store.filterable_fields()
    conditions = q.parse_filters(filters, allowed)
    match = q.search_filter(
        session_id=session_id,
        session_id_mode=session_id_match,
        conditions=conditions,
        feedback=feedback or None,
        agent_id=agent_id,
        model=model,
        application_name=application_name,
        **ranges,
    )
    sort = q.sort_spec(sort_by, sort_order, allowed)
    decoded = paging.decode_cursor(cursor, sort) if cursor else None
    keyset = next(iter(sort)) in q.SORTS.values()
    date_fields = [
        field
        for field, start, end in (
            (d.CREATED_AT, "created_from", "created_to"),
            (d.UPDATED_AT, "updated_from", "updated_to"),
        )
        if ranges[start] or ranges[end]
    ]
    id_mode = session_id_match if session_id and session_id.strip() else "prefix"
    plan = listing.SearchPlan(
        match=match,
        sort=sort,
        size=page_spec.size,
        page=page_spec.number,
        cursor=decoded,
        skip=0 if decoded is not None else page_spec.skip,
        slow=q.slow_reasons(
            sort=sort,
            session_id_mode=id_mode,
            conditions=conditions,
            date_fields=date_fields,
            filtered=bool(match),
            keyset=keyset,
        ),
        uses_contains=id_mode == "contains" or any(c.op == "contains" for c in conditions),
    )
    body = await listing.search(state.store.collection, plan, settings, settings.model_prices)
    return SearchResponse.model_validate(body)


async def search_options(request: Request) -> SearchOptionsResponse:
    """Choices for the list filters (distinct index keys: cheap at any size) and the sorts offered."""
    state = viewer(request)
    options = await listing.filter_options(state.store.collection, state.settings)
    source = {"database": state.settings.database_name, "collection": state.settings.collection_name}
    return SearchOptionsResponse.model_validate({**options, **source})


async def get_session(
    request: Request,
    session_id: str,
    timeline_offset: Annotated[int, Query(ge=0, le=d.MAX_BSON_SIZE, description="first timeline item")] = 0,
    timeline_limit: Annotated[
        int | None, Query(ge=1, le=10_000, description="items per page, clamped to MAX_TIMELINE_PAGE_SIZE")
    ] = None,
    x_backend_password: BackendPassword = None,
    x_session_password: SessionPassword = None,
) -> SessionDetailResponse:
    """The session's header and one page of its timeline (the frontend asks for more as you scroll)."""
    sid = checked_session_id(session_id)
    await authorize(request, backend_password=x_backend_password, session_password=x_session_password, session_id=sid)
    state = viewer(request)
    store = state.store
    header = await store.header(sid)
    if header is None:
        raise HTTPException(404, "session not found")
    limit = min(timeline_limit or state.settings.timeline_page, state.settings.max_timeline_page_size)
    if not header.get(d.AGENTS):  # no message-log agents: maybe written through Strands' snapshot path
        snapshot = await snapshot_timeline.detail_page(store.collection, sid, timeline_offset, limit)
        if snapshot is not None:
            return SessionDetailResponse.model_validate(snapshot)
    rows, total = await store.timeline_page(sid, timeline_offset, limit)
    return SessionDetailResponse.model_validate(session_detail_page(header, rows, total, timeline_offset))


async def export_session(
    request: Request,
    session_id: str,
    x_backend_password: BackendPassword = None,
    x_session_password: SessionPassword = None,
) -> JSONResponse:
    """The whole session as JSON, as a download: the library's one export format.

    The same document ``MongoDBSessionManager.export_session()`` and ``mongodb-session-manager export``
    produce (``export_session_document`` over the same projection), so a download can be loaded back
    with ``import_session()`` or ``mongodb-session-manager import``.
    """
    sid = checked_session_id(session_id)
    await authorize(request, backend_password=x_backend_password, session_password=x_session_password, session_id=sid)
    doc = await viewer(request).store.session(sid)
    if doc is None:
        raise HTTPException(404, "session not found")
    logger.info("session_id=<%s> | session exported", sid)
    safe_name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in sid)[:80] or "session"
    return JSONResponse(
        export_session_document(doc),
        headers={"Content-Disposition": f'attachment; filename="session-{safe_name}.json"'},
    )


async def add_note(
    request: Request,
    session_id: str,
    note: Annotated[NoteRequest, Body()],
) -> FeedbackEntry:
    """Store a reviewer's note as a feedback entry marked ``source: "reviewer"`` (global password only)."""
    sid = checked_session_id(session_id)
    state = viewer(request)
    comment = note.comment.strip()
    if not comment:
        raise q.ViewerInputError("a note needs some text")
    if len(comment) > state.settings.max_note_length:
        raise q.ViewerInputError(f"a note is at most {state.settings.max_note_length} characters")
    stored = df.reviewer_note(comment, note.rating)
    if not await state.store.add_note(sid, stored):
        raise HTTPException(404, "session not found")
    logger.info("session_id=<%s> | reviewer note added", sid)
    total = len((await state.store.header(sid) or {}).get(d.FEEDBACKS) or [])
    return FeedbackEntry.model_validate(timeline_row_item({"kind": 1, "index": max(0, total - 1), "item": stored}))


# ---- errors ----------------------------------------------------------------------------------------


def _error(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return _error(exc.status_code, exc.detail, dict(exc.headers or {}))


async def on_viewer_input(request: Request, exc: Exception) -> JSONResponse:
    return _error(422, str(exc))


async def on_malformed_input(request: Request, exc: Exception) -> JSONResponse:
    """Input no validator foresaw but Python or BSON could not take: nesting too deep, integers past
    64 bits, lone surrogates, dates out of range. A clear 422, never a 500 (and never the input)."""
    logger.info("path=<%s> | malformed input: %s", request.url.path, type(exc).__name__)
    return _error(422, f"malformed input ({type(exc).__name__})")


async def on_validation(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 without echoing the input back: location and message only."""
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "invalid"))} for e in exc.errors()]
    return _error(422, errors)


async def on_database_error(request: Request, exc: Exception) -> JSONResponse:
    """Never show a driver message to a client (it names hosts, databases, sometimes queries)."""
    unreachable = isinstance(exc, ServerSelectionTimeoutError) or (
        isinstance(exc, ConnectionFailure) and not getattr(exc, "timeout", False)
    )
    if unreachable:
        logger.warning("path=<%s> | database unavailable: %s", request.url.path, type(exc).__name__)
        return _error(503, "the database is unavailable")
    if isinstance(exc, ExecutionTimeout) or getattr(exc, "timeout", False):
        logger.warning("path=<%s> | query exceeded QUERY_MAX_TIME_MS: %s", request.url.path, type(exc).__name__)
        return _error(504, "the query took too long (QUERY_MAX_TIME_MS)")
    logger.error("path=<%s> | database error", request.url.path, exc_info=exc)
    return _error(500, "internal error")


#: The library's typed errors as HTTP statuses: the first match wins (subclasses before their bases).
STORE_ERROR_STATUS: tuple[tuple[type[SessionStoreError], int], ...] = (
    (NotFoundError, 404),
    (InvalidInputError, 422),  # like every other input the viewer refuses
    (AlreadyExistsError, 409),
    (ConcurrentModificationError, 409),  # the session changed while it was read: read it again
    (DocumentTooLargeError, 413),
    (DatabaseUnavailableError, 503),
)


def store_error_response(exc: SessionStoreError) -> tuple[int, dict[str, str]]:
    """The status and the JSON body for one of the library's typed errors.

    The body names the error (``{"error": "<class>", "detail": "<message>"}``). Its message is the
    library's own (ids, what happened, what to do; never a credential), except for ``DatabaseError``,
    whose message carries the driver's (it can name hosts and queries): that gets the same detail as
    the driver-error handler. Anything not listed (``MissingBlobError``: stored content lost outside
    the library) is a 500 that still says what it is.
    """
    status = next((code for cls, code in STORE_ERROR_STATUS if isinstance(exc, cls)), 500)
    if isinstance(exc, DatabaseUnavailableError):
        detail = "the database is unavailable"
    elif isinstance(exc, DatabaseError):
        detail = "internal error"
    else:
        detail = str(exc)
    return status, {"error": type(exc).__name__, "detail": detail}


async def on_store_error(request: Request, exc: Exception) -> JSONResponse:
    """The library's typed errors (a block missing from GridFS, a read that raced a purge...): never a bare 500."""
    assert isinstance(exc, SessionStoreError)
    status, body = store_error_response(exc)
    line = "session_id=<%s> | path=<%s>, status=<%d> | %s"
    context = (exc.session_id, request.url.path, status, type(exc).__name__)
    if status < 500:  # the name only: a refused input's message may quote the input
        logger.info(line, *context)
    elif status == 503:
        logger.warning(line, *context)
    elif isinstance(exc, DatabaseError):  # the driver's message stays in the server's log
        logger.error(line, *context, exc_info=exc)
    else:
        logger.error(line + ": %s", *context, exc)
    return JSONResponse(body, status_code=status)


# ---- the app ---------------------------------------------------------------------------------------


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API (and, with ``serve_frontend``, the static frontend) for ``settings``."""
    settings = settings or Settings()
    logger.setLevel(settings.log_level)
    state = ViewerState(settings, effective_password(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = make_client(settings)
        state._store = SessionStore(client, settings)
        logger.info(
            "database=<%s> | collection=<%s> | session viewer started", settings.database_name, settings.collection_name
        )
        try:
            yield
        finally:
            state._store = None
            await client.close()

    app = FastAPI(
        title="Session Viewer API",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # Swagger UI would load scripts from a CDN; the schema stays at openapi_url
        redoc_url=None,
        openapi_url=f"{API}/openapi.json",
    )
    app.state.viewer = state
    guarded = [Depends(require_backend_password)]
    app.add_api_route("/health", health, methods=["GET"], response_model=HealthResponse, tags=["health"])
    app.add_api_route(f"{API}/auth/check", auth_check, methods=["GET"], tags=["auth"])
    app.add_api_route(f"{API}/metadata-fields", metadata_fields, methods=["GET"], dependencies=guarded)
    app.add_api_route(f"{API}/sessions/search", search_sessions, methods=["GET"], dependencies=guarded)
    app.add_api_route(f"{API}/search-options", search_options, methods=["GET"], dependencies=guarded)
    app.add_api_route(f"{API}/session/{{session_id:path}}", get_session, methods=["GET"])
    app.add_api_route(f"{API}/session-export/{{session_id:path}}", export_session, methods=["GET"])
    app.add_api_route(
        f"{API}/session-notes/{{session_id:path}}", add_note, methods=["POST"], dependencies=guarded, status_code=201
    )
    app.add_api_route(f"{API}/sessions/{{session_id:path}}", get_session, methods=["GET"], include_in_schema=False)

    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(q.ViewerInputError, on_viewer_input)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(PyMongoError, on_database_error)
    app.add_exception_handler(SessionStoreError, on_store_error)
    for malformed in (RecursionError, OverflowError, UnicodeError, BSONError):
        app.add_exception_handler(malformed, on_malformed_input)

    # Settings refuse "*" (credential headers are always in use), so only listed origins get CORS.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.allowed_origins,
        allow_methods=["GET", "POST"],
        allow_headers=[BACKEND_PASSWORD_HEADER, SESSION_PASSWORD_HEADER, DEVICE_HEADER, "Content-Type"],
        expose_headers=["Retry-After", DEVICE_HEADER],
        max_age=600,
    )

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        token = getattr(request.state, "new_device_token", None)
        if token:
            response.headers[DEVICE_HEADER] = token
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if request.url.path.startswith(API) or request.url.path == "/health":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    if settings.serve_frontend:
        mount_frontend(app, settings)
    return app


def mount_frontend(app: FastAPI, settings: Settings) -> None:
    """Serve the frontend at ``/`` with a ``config.js`` that points it at this same origin."""
    directory = settings.frontend_dir
    if not (directory / "index.html").is_file():
        raise RuntimeError(f"SERVE_FRONTEND is set but {directory} has no index.html")

    async def same_origin_config() -> Response:
        return Response(SAME_ORIGIN_CONFIG_JS, media_type="text/javascript")

    app.add_api_route("/config.js", same_origin_config, methods=["GET"], include_in_schema=False)
    app.mount("/", StaticFiles(directory=directory, html=True), name="frontend")


def __getattr__(name: str) -> Any:
    """``main.app`` is built on first access (``uvicorn main:app``), not when tests import the module."""
    if name == "app":
        if not logging.getLogger().handlers:
            logging.basicConfig(level=Settings().log_level, format="%(levelname)s %(name)s: %(message)s")
        built = create_app()
        globals()["app"] = built
        return built
    raise AttributeError(name)
