"""Request bodies on a real server (uvicorn on 127.0.0.1, in this process so that its open
files can be seen): every upload route, found in the app's own routes, answers a stranger
(401, or the sign-in page) and a forbidden user (403) before it reads the body, an oversize
body with 413 while it arrives, and leaves no temporary file on any path; every other route
refuses a body past ``max_body_bytes``. And a full disk or a read-only database answers 503
with Retry-After instead of 500."""

from __future__ import annotations

import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, get_args, get_type_hints

import httpx
import pytest
from conftest import NOW
from fastapi import APIRouter, FastAPI, File, UploadFile
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import Engine, event, func
from sqlalchemy import select as sql_select
from web_harness import api_token, build_world, client, free_port, login, url_of

from models import Document, GradingTable
from models.db import session_factory
from tests.factories import MINIMAL_PDF

BOUNDARY = "recogtestboundary"
DECLARED = 60 * 1024 * 1024  # what the client announced


# --- the routes, from the app ------------------------------------------------------------------


def all_routes(app: Any) -> list[tuple[str, APIRoute]]:
    """The app's API routes and pages (those of included routers too), by their full path."""
    return [
        (context.path, context.original_route)
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
    ]


def upload_routes(app: Any) -> list[tuple[str, APIRoute]]:
    """Every route whose endpoint takes a file (an ``UploadFile`` parameter)."""
    found = []
    for path, route in all_routes(app):
        hints = get_type_hints(route.endpoint, include_extras=True)
        if any(UploadFile in (hint, *get_args(hint)) for hint in hints.values()):
            found.append((path, route))
    return found


def body_routes(app: Any) -> list[tuple[str, str]]:
    """Every other route a body can be sent to: (method, path)."""
    uploads = {id(route) for _, route in upload_routes(app)}
    return [
        (method, path)
        for path, route in all_routes(app)
        if id(route) not in uploads
        for method in sorted(route.methods & {"POST", "PUT", "PATCH", "DELETE"})
    ]


def path_of(path: str, case_id: int) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: str(case_id) if "case" in m.group(0) else "1", path)


# --- a real server and a client that sends only part of a body -------------------------------


@contextmanager
def serving(app: Any) -> Iterator[int]:
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn did not start"
        assert time.monotonic() < deadline, "uvicorn did not start in time"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The process's temporary directory (where the multipart parser spools files)."""
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    return spool


def spooled(spool: Path) -> list[str]:
    """Files under ``spool``: those in it and those this process holds open there (an
    unnamed temporary file shows as ``/spool/#123 (deleted)``)."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(spool)):
            held.append(target)
    return held + [str(p) for p in spool.rglob("*")]


def settled(spool: Path) -> list[str]:
    """``spooled`` once the request is over: the server closes an upload's spooled file
    right after it has sent the answer, so give it a moment."""
    deadline = time.monotonic() + 5
    while (held := spooled(spool)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return held


def _part_head(filename: str = "big.pdf", media: str = "application/pdf") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{filename}"\r\nContent-Type: {media}\r\n\r\n%PDF-1.4\n'
    ).encode()


def raw_post(
    port: int,
    path: str,
    headers: dict[str, str],
    *,
    declared: int | None,
    total: int,
    spool: Path,
) -> tuple[int, dict[str, str], int, list[str]]:
    """POST ``path`` with ``declared`` as Content-Length (None: chunked), sending at most
    ``total`` body bytes in 64 KiB pieces and stopping as soon as an answer arrives. Returns
    the answer's status and headers, the body bytes sent, and what ``spool`` held when the
    answer came."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
        f"Content-Length: {declared}" if declared is not None else "Transfer-Encoding: chunked",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    piece, sent = _part_head() + b"0" * (64 * 1024 - len(_part_head())), 0
    try:
        while sent < total and not select.select([sock], [], [], 0.01)[0]:
            data = piece if declared is not None else b"%x\r\n%s\r\n" % (len(piece), piece)
            sock.sendall(data)
            sent += len(piece)
            piece = b"0" * len(piece)
        ready = select.select([sock], [], [], 10)[0]
        held = spooled(spool)
        answer = b""
        while ready and b"\r\n\r\n" not in answer:
            got = sock.recv(65536)
            if not got:
                break
            answer += got
    except (BrokenPipeError, ConnectionResetError) as exc:
        raise AssertionError(f"{path}: the connection broke before an answer ({exc})") from exc
    finally:
        sock.close()
    assert answer, f"{path}: no answer within 10 s after {sent} body bytes"
    status_line, *lines = answer.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    answer_headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)
    }
    return int(status_line.split()[1]), answer_headers, sent, held


# --- the tests ---------------------------------------------------------------------------------


@pytest.fixture
def people(app: Any, engine: Engine, world: Any) -> dict[str, dict[str, str]]:
    """Request headers of a stranger, a forbidden user and the clerk, for the API and the
    pages (an API token; a session cookie signed in through the login form)."""

    def cookie(label: str) -> dict[str, str]:
        with client(app) as c:
            login(c, world.users[label])
            return {"Cookie": f"recog_session={c.cookies.get('recog_session')}"}

    examiner, clerk = world.users["examiner"], world.users["clerk"]
    return {
        "api-stranger": {},
        "api-forbidden": {"Authorization": f"Bearer {api_token(engine, examiner, NOW)}"},
        "api-clerk": {"Authorization": f"Bearer {api_token(engine, clerk, NOW)}"},
        "page-stranger": {},
        "page-forbidden": cookie("examiner"),
        "page-clerk": cookie("clerk"),
    }


def test_every_upload_route_answers_before_reading_the_body(
    app: Any, world: Any, people: dict[str, dict[str, str]], spool: Path
) -> None:
    routes = upload_routes(app)
    # documents, transcripts and both imports in the API; documents and transcripts pages
    assert len(routes) >= 6, [path for path, _ in routes]
    case_id = world.cases["course_passed"]
    with serving(app) as port:
        for template, _route in routes:
            side = "api" if template.startswith("/api/") else "page"
            path = path_of(template, case_id)
            for who, expected in (("stranger", {401, 303}), ("forbidden", {403})):
                status, headers, sent, held = raw_post(
                    port,
                    path,
                    people[f"{side}-{who}"],
                    declared=DECLARED,
                    total=64 * 1024,
                    spool=spool,
                )
                assert status in expected, (path, who, status)
                if status == 303:
                    assert headers["location"] == "/login"
                assert sent <= 64 * 1024, (path, who)  # answered without the other 60 MB
                assert held == [], (path, who, held)
            # The clerk may upload, but not 60 MB: refused on the declared length alone.
            status, _, sent, held = raw_post(
                port, path, people[f"{side}-clerk"], declared=DECLARED, total=64 * 1024, spool=spool
            )
            assert status == 413, (path, status)
            assert held == [], (path, held)
    assert spooled(spool) == []


def test_an_oversize_upload_is_refused_while_it_arrives(
    app: Any, world: Any, people: dict[str, dict[str, str]], spool: Path
) -> None:
    """Chunked, so no length is declared: the server counts what arrives and answers 413
    when the body passes the route's limit, long before the client has sent it all."""
    rt = app.state.runtime
    small = 2 * 1024 * 1024  # past the parser's 1 MB in memory: the file is spooled to disk
    rt.settings = rt.settings.model_copy(
        update={
            "max_document_bytes": small,
            "max_transcript_bytes": small,
            "max_import_bytes": small,
        }
    )
    total = 96 * 1024 * 1024
    case_id = world.cases["course_passed"]
    with serving(app) as port:
        for template, _route in upload_routes(app):
            side = "api" if template.startswith("/api/") else "page"
            path = path_of(template, case_id)
            status, _, sent, _held = raw_post(
                port, path, people[f"{side}-clerk"], declared=None, total=total, spool=spool
            )
            assert status == 413, (path, status)
            assert sent < total / 3, (path, sent)  # refused while the body was still coming
            assert settled(spool) == [], path  # the spooled part is gone again


def test_temporary_files_are_removed_after_an_upload_succeeds_or_is_refused(
    app: Any, world: Any, people: dict[str, dict[str, str]], spool: Path, engine: Engine
) -> None:
    big_pdf = MINIMAL_PDF + b"0" * (3 * 1024 * 1024)  # spooled to a file by the parser
    case_id = world.cases["course_passed"]
    with serving(app) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
        clerk = people["api-clerk"]
        ok = c.post(
            f"/api/v1/cases/{case_id}/documents",
            headers=clerk,
            data={"kind": "evidence"},
            files={"file": ("big.pdf", big_pdf, "application/pdf")},
        )
        assert ok.status_code == 201, ok.text
        assert settled(spool) == []
        for path, media, status in (
            ("/api/v1/transcripts", "application/pdf", 415),  # refused after it was read
            (f"/api/v1/cases/{case_id}/documents", "application/x-msdownload", 415),
            ("/api/v1/catalogue/import", "text/csv", 422),
        ):
            r = c.post(path, headers=clerk, files={"file": ("big.csv", big_pdf, media)})
            assert r.status_code == status, (path, r.text)
            assert settled(spool) == [], path


def test_every_other_route_refuses_a_body_past_its_limit(
    app: Any, world: Any, people: dict[str, dict[str, str]], spool: Path
) -> None:
    routes = body_routes(app)
    assert len(routes) >= 15
    limit = app.state.runtime.settings.max_body_bytes
    with serving(app) as port:
        for method, template in routes:
            path = path_of(template, world.cases["in_review"])
            head = (
                f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {limit + 1}\r\n\r\n"
            )
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(head.encode() + b"a=" + b"x" * 1000)
                answer = sock.recv(4096)
            assert answer.split()[1] == b"413", (method, path, answer[:200])
        # and one that says nothing of its length is cut off while it arrives
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"POST /api/v1/cases HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Authorization: " + people["api-clerk"]["Authorization"].encode() + b"\r\n"
                b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            sent = 0
            while sent <= 8 * limit and not select.select([sock], [], [], 0.01)[0]:
                sock.sendall(b"10000\r\n" + b" " * 0x10000 + b"\r\n")
                sent += 0x10000
            assert select.select([sock], [], [], 10)[0]
            assert sock.recv(4096).split()[1] == b"413"
            assert sent < 8 * limit


# --- out of room -------------------------------------------------------------------------------


def test_a_read_only_database_answers_503_with_retry_after(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """The database opened read-only (SQLite's own ``mode=ro``: the tests run as root, whom
    ``chmod`` does not stop), so every write fails with sqlite3's real "attempt to write a
    readonly database". Sign-in, a page and the API answer 503 with Retry-After."""
    from config.settings import load_settings
    from web.app import create_app

    data_dir = tmp_path / "var"
    world = build_world(sqlite_engine, data_dir, NOW, states=("course_passed",))
    token = api_token(sqlite_engine, world.users["clerk"], NOW)
    sqlite_engine.dispose()
    path = sqlite_engine.url.database
    ro = load_settings(
        database_url=f"sqlite:///file:{path}?mode=ro&uri=true",
        data_dir=data_dir,
        environment="test",
    )
    app = create_app(ro)
    app.state.runtime.clock = lambda: NOW
    try:
        with client(app) as c:
            page = c.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf
            r = c.post(
                "/login",
                data={"username": "clerk", "password": "wrong-password", "csrf": csrf.group(1)},
                headers={"Accept-Language": "de"},
            )
            assert r.status_code == 503, r.text[:500]
            assert r.headers["retry-after"] == "120"
            assert "Vorübergehend nicht verfügbar" in r.text
            api = c.post(
                f"/api/v1/cases/{world.cases['course_passed']}/documents",
                headers={"Authorization": f"Bearer {token}"},
                files={"file": ("tor.pdf", MINIMAL_PDF, "application/pdf")},
            )
            assert api.status_code == 503, api.text
            assert api.headers["retry-after"] == "120"
            assert api.json()["type"].endswith("/unavailable")
    finally:
        app.state.runtime.engine.dispose()


def test_a_full_or_read_only_database_answers_503_and_imports_nothing(
    app: Any, engine: Engine, world: Any, clerk_api: Any
) -> None:
    """SQLite's ``max_page_count`` holds the database at its size: a write that needs a new
    page fails with sqlite3's real "database or disk is full". PostgreSQL: the server's own
    read-only transactions (SQLSTATE 25006), as on a standby or a full disk's emergency."""
    rt = app.state.runtime
    rt.engine.dispose()
    limit = (
        "PRAGMA max_page_count = 1"  # i.e. the database's current size
        if engine.dialect.name == "sqlite"
        else "SET default_transaction_read_only = on"
    )

    @event.listens_for(rt.engine, "connect")
    def _full(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(limit)
        dbapi_connection.commit()  # psycopg began a transaction for the SET

    rows = ["kind,institution,scheme,isced,course,term,programme,module,reference_year,grade,count"]
    for year in range(1900, 2300):
        rows += [
            f"home,uni-musterstadt.de,,,,,INF-BSC,,{year},{g},{n}"
            for g, n in (("1.0", 10), ("2.0", 40), ("3.0", 40), ("4.0", 10))
        ]
    r = clerk_api.post(
        "/api/v1/grading-tables/import",
        files={"file": ("tables.csv", "\n".join(rows).encode(), "text/csv")},
    )
    assert r.status_code == 503, r.text[:500]
    assert r.headers["retry-after"] == "120"
    event.remove(rt.engine, "connect", _full)
    rt.engine.dispose()
    with session_factory(engine)() as s:
        assert s.scalar(sql_select(func.count()).select_from(GradingTable)) == 0


STORE_SCRIPT = """
import resource, signal, sys
from pathlib import Path
from workflow import FileStore
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
try:
    FileStore(Path(sys.argv[1])).put(b"x" * 300_000)
except OSError as exc:
    print(exc.errno)
"""

WEB_SCRIPT = """
import resource, signal, sys, datetime as dt
from fastapi.testclient import TestClient
from web.app import create_app
app = create_app()
app.state.runtime.clock = lambda: dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
auth = {"Authorization": "Bearer " + sys.argv[1]}
with TestClient(app, base_url="https://testserver") as c:
    c.get("/api/v1/cases", headers=auth)
    resource.setrlimit(resource.RLIMIT_FSIZE, (500_000, 500_000))
    # 900 kB stays in memory until the store writes it; 2 MB is spooled to a file first.
    for size in (900_000, 2_000_000):
        r = c.post(
            "/api/v1/cases/" + sys.argv[2] + "/documents",
            headers=auth,
            files={"file": ("tor.pdf", b"%PDF-1.4\\n" + b"0" * size, "application/pdf")},
        )
        print(r.status_code, r.headers.get("retry-after"), r.json().get("type"))
"""


def test_the_document_store_leaves_no_temporary_file_when_the_disk_is_full(
    tmp_path: Path,
) -> None:
    """A real file-size limit (RLIMIT_FSIZE, in a subprocess): the write fails half-way."""
    root = tmp_path / "documents"
    out = subprocess.run(
        [sys.executable, "-c", STORE_SCRIPT, str(root)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip() == "27", out  # EFBIG: the write was cut off
    assert [p for p in root.rglob("*") if p.is_file()] == []


def test_a_full_disk_under_an_upload_answers_503_and_stores_nothing(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    data_dir = tmp_path / "var"
    world = build_world(sqlite_engine, data_dir, NOW, states=("course_passed",))
    token = api_token(sqlite_engine, world.users["clerk"], NOW)
    documents = data_dir / "documents"
    before = {p for p in documents.rglob("*") if p.is_file()}
    with session_factory(sqlite_engine)() as s:
        count = s.scalar(sql_select(func.count()).select_from(Document))
    out = subprocess.run(
        [sys.executable, "-c", WEB_SCRIPT, token, str(world.cases["course_passed"])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
        env={
            **os.environ,
            "RECOG_DATABASE_URL": url_of(sqlite_engine),
            "RECOG_DATA_DIR": str(data_dir),
            "RECOG_ENVIRONMENT": "test",
        },
    )
    unavailable = ["503", "120", "https://recog.invalid/problems/unavailable"]
    assert out.stdout.split() == unavailable * 2, (out.stdout, out.stderr[-2000:])
    assert {p for p in documents.rglob("*") if p.is_file()} == before
    with session_factory(sqlite_engine)() as s:
        assert s.scalar(sql_select(func.count()).select_from(Document)) == count


def take(file: Annotated[UploadFile, File()]) -> None:
    """An upload endpoint without its ``@upload`` declaration."""


def test_an_unguarded_or_undeclared_upload_route_stops_the_start() -> None:
    """A route added later cannot slip past the guard: ``install`` names it."""
    from web import uploads

    for route_class, words in ((APIRoute, "is not guarded"), (uploads.GuardedRoute, "no limit")):
        router = APIRouter(route_class=route_class)
        router.post("/take")(take)
        app = FastAPI()
        app.include_router(router)
        with pytest.raises(RuntimeError, match=words):
            uploads.install(app)


def test_an_oversize_page_upload_says_so_in_the_page_language(app: Any, clerk: Any) -> None:
    rt = app.state.runtime
    rt.settings = rt.settings.model_copy(update={"max_transcript_bytes": 2048})
    for language, words in (("de", "Datei zu groß"), ("en", "File too large")):
        r = clerk.post(
            "/transcripts",
            data={"csrf": clerk.csrf},
            files={"file": ("tor.xml", b"<x>" + b" " * 100_000 + b"</x>", "text/xml")},
            headers={"Accept-Language": language},
        )
        assert r.status_code == 413
        assert words in r.text
