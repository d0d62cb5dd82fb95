"""``recog web``: serve the API, the office dashboard and the student pages with uvicorn."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer


def web_server_argv(port: int, *, workers: int = 1, extra: Sequence[str] = ()) -> list[str]:
    """The command that serves Recog's app as `recog web` does, on 127.0.0.1: `recog up`'s
    web server, and the one the tests and benchmarks start. uvicorn's own forwarded-header
    handling is off: the app believes them from RECOG_TRUSTED_PROXIES only
    (web.app.install_boundary); uvicorn's would trust 127.0.0.1."""
    argv = [sys.executable, "-m", "uvicorn", "--factory", "web.app:create_app"]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    if workers != 1:
        argv += ["--workers", str(workers)]
    return [*argv, "--no-access-log", "--no-proxy-headers", *extra]


def web(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Serve Recog's web interface (API under /api/v1, docs at /api/docs)."""
    import uvicorn

    from cli import context as ctx

    ctx.require_schema()
    ctx.console.print(f"Recog web on http://{host}:{port}/ (API docs: /api/docs)")
    # The factory runs in each worker process: every worker has its own engine and pool.
    uvicorn.run(
        "web.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        # Forwarded headers are believed by the app, from RECOG_TRUSTED_PROXIES only
        # (web.app.install_boundary); uvicorn's own handling would trust 127.0.0.1.
        proxy_headers=False,
    )
