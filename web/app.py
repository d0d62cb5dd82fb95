"""The web application: REST API (``/api/v1``, OpenAPI at ``/api/v1/openapi.json`` and docs
at ``/api/docs``), office dashboard and student pages, built by ``create_app``.

Run it with ``recog web`` (uvicorn with ``--factory web.app:create_app``).
"""

from __future__ import annotations

import base64
import gc
import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from config.settings import Settings, get_settings
from web import api, pages, problems, uploads
from web.runtime import Runtime
from web.security import SecurityHeaders

STATIC = Path(__file__).with_name("static")


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
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    problems.install(app, error_page=pages.error_page)
    pages.install_sign_in_redirect(app)
    uploads.install(app)
    app.add_middleware(SecurityHeaders)

    @app.get("/api/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        html = get_swagger_ui_html(openapi_url="/api/v1/openapi.json", title="Recog API")
        body = bytes(html.body).decode()
        # Allow exactly the inline scripts of this page by their hashes (no 'unsafe-inline').
        hashes = " ".join(
            "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
            for script in re.findall(r"<script>(.*?)</script>", body, flags=re.S)
        )
        csp = (
            f"default-src 'none'; script-src https://cdn.jsdelivr.net {hashes}; "
            "style-src https://cdn.jsdelivr.net; img-src https://fastapi.tiangolo.com data:; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
        return HTMLResponse(body, headers={"Content-Security-Policy": csp})

    return app
