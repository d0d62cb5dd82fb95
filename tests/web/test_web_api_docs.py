"""The API documentation at /api/docs is served by Recog itself: Swagger UI's files come
from the swagger-ui-py package under Recog's own /static path, the page's CSP allows 'self'
only, and in real Chromium, with every request to another host blocked, it shows the
operations of /api/v1/openapi.json."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import chromium_or_skip
from web_harness import uvicorn_server


def test_the_docs_page_names_only_its_own_origin(anon: Any) -> None:
    page = anon.get("/api/docs")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp
    assert "style-src 'self';" in csp
    assert "http" not in csp  # no CDN, no other origin
    assert "unsafe-inline" not in csp
    assert "<script>" not in page.text  # no inline script: the CSP would refuse it
    assert "cdn" not in page.text.lower()
    for asset in ("/static/swagger-ui/swagger-ui-bundle.js", "/static/swagger-ui/swagger-ui.css"):
        assert asset in page.text
        served = anon.get(asset)
        assert served.status_code == 200
        assert len(served.content) > 10_000
        assert served.headers["cache-control"] == "public, max-age=3600"
    assert anon.get("/static/api-docs/init.js").status_code == 200
    # Only the files the page needs: the package's other files are not served.
    assert anon.get("/static/swagger-ui/swagger-editor-bundle.js").status_code == 404
    assert anon.get("/static/swagger-ui/..%2F__init__.py").status_code == 404
    assert anon.get("/api/v1/openapi.json").json()["info"]["title"] == "Recog API"


@pytest.fixture
def server(sqlite_template: Path, tmp_path: Path) -> Any:
    chromium_or_skip()
    db = tmp_path / "recog.sqlite3"
    shutil.copy(sqlite_template, db)
    env = {
        "RECOG_DATABASE_URL": f"sqlite:///{db}",
        "RECOG_DATA_DIR": str(tmp_path / "var"),
        "RECOG_ENVIRONMENT": "test",
    }
    with uvicorn_server(env, log=tmp_path / "server.log") as base:
        yield base


@pytest.mark.slow
def test_the_docs_render_the_operations_without_network(
    server: str, browser: Any, artifacts: Path
) -> None:
    own = urlsplit(server).netloc
    elsewhere: list[str] = []
    violations: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()

    def route(r: Any) -> None:
        if urlsplit(r.request.url).netloc == own or r.request.url.startswith("data:"):
            r.continue_()
        else:  # the machine may have no internet: the page must not need any
            elsewhere.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto(f"{server}/api/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".opblock").count() >= 20
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any(p.startswith("/api/v1/cases") for p in paths)
    assert page.locator(".information-container .title").inner_text().startswith("Recog API")
    page.screenshot(path=str(artifacts / "api-docs.png"), full_page=False)
    assert elsewhere == []
    assert violations == []
    context.close()
