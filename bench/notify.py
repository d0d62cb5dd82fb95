"""Notifications per second delivered to a local SMTP sink by 2 Celery worker processes,
beside sending the same messages straight from one Python loop (the floor). Printed, never
asserted.

    .venv/bin/python bench/notify.py [--messages N] [--db sqlite|postgresql]

Set-up: an aiosmtpd sink on 127.0.0.1 counting Message-IDs; a database with N pending outbox
rows (e-mails to students of demo cases); a Celery worker (prefork, 2 processes) on a private
Redis database (``redis://127.0.0.1:6379/14``). The clock starts when N/100 relay tasks are
queued and stops when the sink has N distinct messages. The floor composes the same N
messages (``tasks.delivery.compose``, templates included) and sends them over one SMTP
connection from one loop.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))

from aiosmtpd.controller import Controller  # noqa: E402
from sqlalchemy import insert, select, update  # noqa: E402

from config.settings import load_settings  # noqa: E402
from models import Case, Outbox  # noqa: E402
from models.db import make_engine, session_factory, transaction  # noqa: E402
from models.migrate import upgrade  # noqa: E402
from tasks.delivery import compose  # noqa: E402
from workflow.cases import outbox  # noqa: E402
from workflow.demo import create_case, seed_network  # noqa: E402

BROKER = "redis://127.0.0.1:6379/14"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


class Sink:
    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        text = envelope.content.decode("utf-8", "replace")
        mid = next(
            (
                line.split(":", 1)[1].strip()
                for line in text.splitlines()
                if line.lower().startswith("message-id:")
            ),
            "",
        )
        with self.lock:
            self.ids.add(mid)
        return "250 OK"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(url: str, n: int) -> list[int]:
    engine = make_engine(url)
    upgrade(engine)
    factory = session_factory(engine)
    now = dt.datetime.now(dt.UTC)
    with transaction(factory) as s:
        net = seed_network(s, today=now.date())
        cases = [
            create_case(
                s,
                net,
                target="submitted",
                term="recent",
                matriculation=f"N{i}",
                name=f"N {i}",
                email=f"n{i}@example.org",
                course=i,
            )
            for i in range(20)
        ]
        s.execute(update(Outbox).values(status="sent"))
        s.execute(
            insert(Outbox),
            [
                {
                    "dedup_key": f"bench:{i}",
                    "case_id": cases[i % len(cases)],
                    "event_seq": None,
                    "channel": "email",
                    "recipient": "student",
                    "template": "submit",
                    "payload": {"event": "submit"},
                    "status": "pending",
                    "attempts": 0,
                    "available_at": now,
                    "created_at": now,
                }
                for i in range(n)
            ],
        )
        ids = list(s.scalars(select(Outbox.id).where(Outbox.status == "pending")))
    engine.dispose()
    return ids


def floor(url: str, port: int, sink: Sink, n: int) -> float:
    settings = load_settings(
        database_url=url, smtp_host="127.0.0.1", smtp_port=port, smtp_security="none"
    )
    engine = make_engine(url)
    with session_factory(engine)() as s:
        claimed = outbox.claim(
            s, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=1), settings=settings, limit=n
        )
        prepared = [(item, *outbox.context(s, item)) for item in claimed]
        s.rollback()
    engine.dispose()
    sink.ids.clear()
    t0 = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for item, to, facts, _ in prepared:
            smtp.send_message(compose(item, to, facts, settings))
    elapsed = time.perf_counter() - t0
    assert len(sink.ids) == n, len(sink.ids)
    return n / elapsed


def workers(url: str, port: int, sink: Sink, n: int, tmp: Path) -> float:
    env = {
        **os.environ,
        "RECOG_DATABASE_URL": url,
        "RECOG_BROKER_URL": BROKER,
        "RECOG_DATA_DIR": str(tmp / "var"),
        "RECOG_SMTP_HOST": "127.0.0.1",
        "RECOG_SMTP_PORT": str(port),
        "RECOG_SMTP_SECURITY": "none",
    }
    subprocess.run(["redis-cli", "-n", "14", "FLUSHDB"], check=True, capture_output=True)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tasks.jobs",
            "worker",
            "--concurrency",
            "2",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "-n",
            "bench@%h",
        ],
        env=env,
        cwd=_BENCH.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(6)  # let both pool processes start
        sink.ids.clear()
        from celery import Celery

        app = Celery(broker=BROKER)
        t0 = time.perf_counter()
        for _ in range(max(2, n // 100)):
            app.send_task("recog.relay_outbox")
        deadline = t0 + 600
        while len(sink.ids) < n and time.perf_counter() < deadline:
            time.sleep(0.01)
        elapsed = time.perf_counter() - t0
        assert len(sink.ids) == n, f"{len(sink.ids)} of {n} delivered"
        return n / elapsed
    finally:
        worker.terminate()
        worker.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--db", default="postgresql", choices=["sqlite", "postgresql"])
    args = ap.parse_args()
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        if args.db == "sqlite":
            url = f"sqlite:///{tmp / 'notify.sqlite3'}"
        else:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute('DROP DATABASE IF EXISTS "recog_bench_notify" WITH (FORCE)')
                conn.execute('CREATE DATABASE "recog_bench_notify"')
            url = "postgresql+psycopg://postgres@127.0.0.1:5432/recog_bench_notify"
        try:
            prepare(url, args.messages)
            floor_rate = floor(url, port, sink, args.messages)
            worker_rate = workers(url, port, sink, args.messages, tmp)
        finally:
            controller.stop()
            if args.db == "postgresql":
                import psycopg

                with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                    conn.execute('DROP DATABASE IF EXISTS "recog_bench_notify" WITH (FORCE)')
    print(f"{args.messages:,} e-mails to a local SMTP sink, database {args.db}, broker Redis:")
    print(f"  floor: one Python loop, one connection   {floor_rate:8.0f} msg/s")
    print(
        f"  recog: 2 worker processes (relay tasks)  {worker_rate:8.0f} msg/s   "
        f"({worker_rate / floor_rate:.2f} of the floor)"
    )
    _ = Case


if __name__ == "__main__":
    main()
