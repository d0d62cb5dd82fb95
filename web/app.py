"""The web application: REST API (``/api/v1``, OpenAPI at ``/api/v1/openapi.json`` and docs
at ``/api/docs``), office dashboard and student pages, built by ``create_app``.

Run it with ``recog web`` (uvicorn with ``--factory web.app:create_app``).
"""

from __future__ import annotations

import gc
import importlib.util
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from config.settings import Settings, get_settings
from web import api, pages, problems, uploads
from web.runtime import Runtime
from web.security import SecurityHeaders

STATIC = Path(__file__).with_name("static")
# Swagger UI's own files, as the swagger-ui-py package ships them (no CDN: /api/docs works
# without internet and its CSP names no other origin). Only the two the page loads are served.
SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui.css")
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Recog API</title>
<link rel="stylesheet" href="/static/swagger-ui/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/static/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/api-docs/init.js"></script>
</body>
</html>
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    from tasks.messages import check_procedure

    settings = settings or get_settings()
    check_procedure()  # a procedure naming an e-mail Recog cannot write stops the start
    runtime = Runtime.build(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        # Per event loop (uvicorn: per process): the asyncio pool of the hot reads, handed
        # to requests as ``request.state.hot_reads``.
        pool = await runtime.open_hot_reads()
        if settings.environment != "test":
            # What start-up built lives as long as the process: keep it out of the cyclic
            # garbage collector, whose full passes over it (~100k objects) would otherwise
            # stall the event loop for tens of milliseconds now and then.
            gc.collect()
            gc.freeze()
        try:
            yield {"hot_reads": pool}
        finally:
            if pool is not None:
                await pool.close()

    app = FastAPI(
        lifespan=lifespan,
        title="Recog API",
        version="1",
        summary="Recognition of achievements from partner universities",
        description="Cases, their events and documents, students, the catalogue. "
        "Authenticate with `Authorization: Bearer TOKEN` (create tokens at "
        "`POST /api/v1/tokens`). Errors are RFC 9457 problem details. POSTs "
        "accept an `Idempotency-Key`; case changes accept `If-Match` with the "
        "case version (stale: 412).",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.include_router(api.router)
    app.include_router(pages.router)

    @app.get("/static/swagger-ui/{name}", include_in_schema=False)
    def swagger_file(name: str) -> Response:
        if name not in SWAGGER_FILES:
            return Response(status_code=404)
        return FileResponse(swagger_ui_dir() / name)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    problems.install(app, error_page=pages.error_page)
    pages.install_sign_in_redirect(app)
    uploads.install(app)
    install_boundary(app, settings)

    @app.get("/api/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(DOCS_PAGE, headers={"Content-Security-Policy": DOCS_CSP})

    return app


def swagger_ui_dir() -> Path:
    """Where swagger-ui-py keeps Swagger UI's files, found without importing the package
    (its Python half serves other frameworks)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or spec.origin is None:
        raise RuntimeError("swagger-ui-py is not installed (see pyproject.toml)")
    return Path(spec.origin).with_name("static")


def install_boundary(app: FastAPI, settings: Settings) -> None:
    """What guards the edge of every request, innermost first: the Host header must be one of
    the configured host names (``Settings.trusted_hosts``); the security headers; and, only
    for connections from configured proxies (``RECOG_TRUSTED_PROXIES``), the client address
    and scheme from X-Forwarded-For and X-Forwarded-Proto. Recog's launchers start uvicorn
    without its own proxy-header handling, so this is the only place that believes them."""
    hosts = settings.trusted_hosts
    if hosts is not None:
        app.add_middleware(
            TrustedHostMiddleware,
            allowed_hosts=hosts,
            www_redirect=False,
        )
    app.add_middleware(SecurityHeaders)
    if settings.trusted_proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
