"""What every request shares: settings, the database, the document store, the clock, the
login throttle, and the unit of work (one transaction per request, committed before the
response is sent; the outbox relay is kicked only after that commit)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from models.db import make_engine, session_factory, transaction
from workflow import DocumentStore, FileStore


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    store: DocumentStore
    throttle: Any  # web.throttle.Throttle
    clock: Any = field(default=utcnow)
    reader: sessionmaker[Session] | None = None

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        from web.throttle import make_throttle

        engine = make_engine(settings.db_url, **_pool(settings.db_url))
        reader = None
        if engine.dialect.name == "postgresql":
            reader = session_factory(engine.execution_options(isolation_level="AUTOCOMMIT"))
        return cls(
            settings=settings,
            engine=engine,
            factory=session_factory(engine),
            store=FileStore(settings.documents_dir),
            throttle=make_throttle(settings),
            reader=reader,
        )

    def now(self) -> dt.datetime:
        now: dt.datetime = self.clock()
        return now

    @contextmanager
    def read_only(self) -> Iterator[Session]:
        """A read (GET): on PostgreSQL without BEGIN/COMMIT round trips (autocommit; the
        few bookkeeping writes of a read, such as a token's last use, stand alone); on
        SQLite the ordinary unit of work."""
        if self.reader is None:
            with self.unit_of_work() as session:
                yield session
            return
        with self.reader() as session:
            yield session

    async def open_hot_reads(self) -> Any:
        """On PostgreSQL, a small asyncio connection pool (autocommit) for the reads that
        integrations poll (``GET /api/v1/cases/{id}/status``), served on the event loop
        without a thread hop; None elsewhere. One per event loop: the app's lifespan opens
        it and closes it again."""
        if self.engine.dialect.name != "postgresql":
            return None
        from psycopg_pool import AsyncConnectionPool

        conninfo = self.engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        pool = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=HOT_READ_CONNECTIONS,
            kwargs={"autocommit": True},
            open=False,
            name="recog-hot-reads",
            timeout=30,
        )
        await pool.open()
        return pool

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One request, one transaction; committed at the end of the block."""
        with transaction(self.factory) as session:
            yield session
        from tasks.kick import relay_soon, wrote_outbox

        if wrote_outbox(session):
            relay_soon()


HOT_READ_CONNECTIONS = 6  # per server process, beside the thread pool's connections


def _pool(url: str) -> dict[str, Any]:
    # Requests run in a thread pool (40 threads by default); a burst waits for one of a
    # fixed set of connections instead of failing. No overflow: overflow connections are
    # opened and closed again under sustained load (a new server process each time), which
    # costs more than the wait. No pre-ping round trip per checkout; connections are
    # recycled instead.
    if url.startswith("sqlite"):
        return {}
    return {
        "pool_size": 12,
        "max_overflow": 0,
        "pool_timeout": 30,
        "pool_pre_ping": False,
        "pool_recycle": 1800,
    }


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt
