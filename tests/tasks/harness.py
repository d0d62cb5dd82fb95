"""Real moving parts for the reliability tests: a Celery worker in its own process, a private
redis-server, an SMTP sink (aiosmtpd), an SMTP server that never greets, a webhook receiver,
and a way to send task messages. Every process started here leads its own process group and is
ended through its PID; every wait has a deadline.

Imported by the test modules of this folder as ``from harness import ...`` (pytest puts the
test file's directory on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email
import email.policy
import http.server
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from config.settings import Settings
from models import Outbox
from models.db import session_factory
from tests.factories import (
    HOME_MODULES,
    CaseFactory,
    OfferingFactory,
    Office,
    bound,
    home_modules,
    musterstadt,
    student_actor,
)
from workflow.cases.engine import FiredEvent, fire

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], T], *, timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def require_service(name: str, reason: str) -> None:
    """Skip (or, where services are required, fail) because ``name`` is missing."""
    import importlib

    if importlib.import_module("conftest").services_required():
        pytest.fail(f"{name} is required (CI) but {reason}")
    pytest.skip(f"{name} not available: {reason}")


# --- SMTP ------------------------------------------------------------------------------------


@dataclass
class _Recorder:
    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    delay: float = 0.0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:  # a slow mail server; other connections are served meanwhile
            await asyncio.sleep(self.delay)
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        with self.lock:
            self.messages.append(msg)
        return "250 OK"


class SmtpSink:
    """An SMTP server on 127.0.0.1 that keeps every message and counts them by Message-ID;
    with ``delay``, it takes that many seconds to accept each message."""

    def __init__(self, port: int | None = None, *, delay: float = 0.0) -> None:
        self.port = port or free_port()
        self._recorder = _Recorder(delay=delay)
        self._controller: Controller | None = None

    def start(self) -> SmtpSink:
        self._controller = Controller(
            self._recorder, hostname="127.0.0.1", port=self.port, ready_timeout=10
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        with self._recorder.lock:
            return list(self._recorder.messages)

    def by_message_id(self) -> Counter[str]:
        return Counter(str(m["Message-ID"]) for m in self.messages)

    def wait_for(self, count: int, timeout: float = 30) -> list[EmailMessage]:
        wait_until(
            lambda: len(self.messages) >= count,
            timeout=timeout,
            what=f"{count} e-mail(s) at the SMTP sink (have {len(self.messages)})",
        )
        return self.messages


class SilentSmtp:
    """A TCP listener that accepts connections and never sends the SMTP greeting: a client
    hangs in its greeting read until its timeout."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.1)
        self.port = int(self._server.getsockname()[1])
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)

    @property
    def accepted(self) -> int:
        with self._lock:
            return len(self._conns)

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=5)
        self._server.close()
        with self._lock:
            for conn in self._conns:
                conn.close()

    def __enter__(self) -> SilentSmtp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- webhooks --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Post:
    path: str
    headers: dict[str, str]
    body: bytes


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that answers 204 to every POST and keeps it."""

    def __init__(self) -> None:
        self.posts: list[Post] = []
        lock = threading.Lock()
        posts = self.posts

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with lock:
                    posts.append(Post(self.path, dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- processes -------------------------------------------------------------------------------


def _end(proc: subprocess.Popen[bytes], *, grace: float) -> None:
    """End a process started here (and its children: it leads its own process group)."""
    if proc.poll() is not None:
        return
    if grace > 0:  # ask the leader; it ends its own children
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
            return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


class RedisServer:
    """A private redis-server on a free port (never the machine's shared one), without
    persistence: a restart loses every queued message, as a crashed broker would."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            require_service("redis-server", "it is not installed")
        assert binary is not None
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        try:
            wait_until(self.ping, timeout=10, what=f"redis-server on port {self.port}")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc is not None:
            _end(self.proc, grace=5)
            self.proc = None
        wait_until(lambda: not self.ping(), timeout=10, what="redis-server to stop")

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            _end(self.proc, grace=5)
            self.proc = None


def recog_env(
    *,
    data_dir: Path,
    database_url: str,
    broker_url: str,
    **settings: object,
) -> dict[str, str]:
    """The environment of a Recog process: this one's minus any RECOG_*, plus ``settings``
    (``smtp_port=2525`` becomes ``RECOG_SMTP_PORT=2525``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOG_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(
        RECOG_ENVIRONMENT="test",
        RECOG_DATA_DIR=str(data_dir),
        RECOG_DATABASE_URL=database_url,
        RECOG_BROKER_URL=broker_url,
    )
    env.update({f"RECOG_{k.upper()}": str(v) for k, v in settings.items()})
    return env


class Worker:
    """``celery -A tasks.jobs worker`` (prefork, one child) in its own process group."""

    def __init__(self, name: str, env: dict[str, str], logdir: Path) -> None:
        self.name = name
        self.env = env
        self.log = logdir / f"worker-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def launch(self) -> Worker:
        """Start the process; ``wait_ready`` waits for it (set up other things meanwhile)."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tasks.jobs",
                "worker",
                "--concurrency",
                "1",
                "--pool",
                "prefork",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"{self.name}@%h",
            ],
            env=self.env,
            cwd=self.log.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        return self

    def wait_ready(self, timeout: float = 60) -> Worker:
        self.wait_log(r"\bready\.", timeout=timeout, what=f"worker {self.name} to be ready")
        return self

    def start(self) -> Worker:
        return self.launch().wait_ready()

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_log(
        self, pattern: str, *, count: int = 1, timeout: float = 30, what: str = ""
    ) -> None:
        def seen() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    f"worker {self.name} exited ({self.proc.returncode}):\n{self.text()[-3000:]}"
                )
            return len(re.findall(pattern, self.text())) >= count

        try:
            wait_until(seen, timeout=timeout, what=what or pattern)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- worker log ---\n{self.text()[-3000:]}") from None

    def wait_task(self, task_id: str, *, count: int = 1, timeout: float = 30) -> None:
        """Wait until the task message ``task_id`` has run to the end ``count`` times."""
        self.wait_log(
            rf"recog\.\w+\[{re.escape(task_id)}\] succeeded",
            count=count,
            timeout=timeout,
            what=f"task {task_id} to succeed {count}x",
        )

    def kill(self) -> None:
        """SIGKILL the worker and its pool child: no shutdown, no acknowledgement. Also how a
        test ends its workers: a warm shutdown takes seconds and proves nothing here."""
        if self.proc is not None:
            _end(self.proc, grace=0)
            self.proc = None

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


# --- sending task messages -------------------------------------------------------------------


def send_task(
    broker_url: str, name: str, *, kwargs: dict[str, Any] | None = None, task_id: str | None = None
) -> str:
    """Publish one task message through a Celery app configured exactly as Recog's."""
    from celery import Celery

    from config.celery import celery_config
    from config.settings import load_settings

    app = Celery("recog-test-sender", set_as_current=False)
    app.conf.update(celery_config(load_settings(broker_url=broker_url)))
    try:
        return str(app.send_task(name, kwargs=kwargs or {}, task_id=task_id).id)
    finally:
        app.close()


@contextlib.contextmanager
def jobs_on(monkeypatch: pytest.MonkeyPatch, broker_url: str) -> Iterator[ModuleType]:
    """``tasks.jobs`` imported anew with ``RECOG_BROKER_URL=broker_url``, so that the
    after-commit kick (``tasks.kick.relay_soon``) of this process talks to that broker. The
    module, the settings and the Celery app cached before are put back afterwards."""
    import importlib

    import tasks
    from config.celery import celery_app
    from config.settings import get_settings

    old_module = sys.modules.pop("tasks.jobs", None)
    old_attr = tasks.__dict__.pop("jobs", None)
    monkeypatch.setenv("RECOG_BROKER_URL", broker_url)
    get_settings.cache_clear()
    celery_app.cache_clear()
    module = importlib.import_module("tasks.jobs")
    try:
        assert module.app.conf.broker_url == broker_url
        yield module
    finally:
        module.app.close()
        celery_app.cache_clear()
        get_settings.cache_clear()
        monkeypatch.delenv("RECOG_BROKER_URL")
        sys.modules.pop("tasks.jobs", None)
        tasks.__dict__.pop("jobs", None)
        if old_module is not None:
            sys.modules["tasks.jobs"] = old_module
        if old_attr is not None:
            tasks.jobs = old_attr  # type: ignore[attr-defined]


# --- the database ----------------------------------------------------------------------------

STUDENT_NAME = "Zoë Quellmann"


def sqlite_database(template: Path, path: Path) -> str:
    """A private copy of the migrated SQLite template at ``path``; its URL."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(template, path)
    return f"sqlite:///{path}"


def seed(
    engine: Engine,
    *,
    today: dt.date,
    cases: Sequence[tuple[str, str]],
) -> tuple[Office, list[int]]:
    """A home office and one case per (state, term of its course: ``OfferingFactory``'s
    ``when``), committed; the notifications of their invented history are dropped."""
    with session_factory(engine)() as s, s.begin(), bound(s):
        net = musterstadt()
        ids = [
            CaseFactory(
                state=target,
                offering=OfferingFactory(when=term, today=today),
                student__matriculation_number=f"M{4200 + i}",
                student__name=f"{STUDENT_NAME} {i}",
                student__email=f"zoe.{i}@student.example.org",
                targets=home_modules(HOME_MODULES[i % 4][0]),
            ).id
            for i, (target, term) in enumerate(cases)
        ]
        s.execute(delete(Outbox))
    return net, ids


def submit(
    session: Session,
    case_id: int,
    *,
    now: dt.datetime | None = None,
    settings: Settings | None = None,
) -> FiredEvent:
    """The student asks for recognition: e-mails to the student and the office."""
    return fire(
        session,
        case_id,
        "submit",
        actor=student_actor(session, case_id),
        now=now or dt.datetime.now(dt.UTC),
        channel="api",
        settings=settings,
    )


def outbox_rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(Outbox.__table__).order_by(Outbox.id)))


def count(engine: Engine, query: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def expected_ids(rows: Sequence[Any], settings: Settings) -> Counter[str]:
    """The Message-ID each e-mail row of the outbox is sent with, once each."""
    from tasks.delivery import message_id
    from workflow.cases.outbox import Claimed

    return Counter(
        message_id(
            Claimed(
                r.id,
                r.dedup_key,
                r.case_id,
                r.event_seq,
                r.channel,
                r.recipient,
                r.template,
                r.payload,
                r.attempts,
            ),
            settings,
        )
        for r in rows
        if r.channel == "email"
    )
