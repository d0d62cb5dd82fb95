"""Engines and sessions: the one place that knows how SQLite and PostgreSQL are tuned.

SQLite (the embedded default) runs in WAL mode with a busy timeout, and every transaction
starts with ``BEGIN IMMEDIATE`` so a writer holds the write lock from its first statement:
SQLite ignores ``SELECT ... FOR UPDATE``, and a deferred transaction that later upgrades to a
writer is what produces "database is locked" under concurrency.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, String, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import GenericFunction

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN IMMEDIATE is ours.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA journal_size_limit={SQLITE_JOURNAL_SIZE_LIMIT}")
        cur.close()
        dbapi_conn.create_function(_SQLITE_FOLD, 1, _fold, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Straight on the driver: this runs once per unit of work, and SQLAlchemy's statement
        # machinery (exec_driver_sql) costs more than the BEGIN itself (bench/transitions.py).
        # A driver error is still raised as SQLAlchemy's exception (e.g. OperationalError).
        try:
            conn.connection.driver_connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise driver_error(conn, exc, "BEGIN IMMEDIATE", ()) from exc


_SQLITE_FOLD = "recog_fold"


def _fold(value: object) -> str | None:
    return None if value is None else str(value).lower()


class fold(GenericFunction[str]):
    """``lower()`` of a text for case-insensitive search, umlauts included: SQLite's own
    ``lower()`` folds ASCII only, so there it is Python's ``str.lower`` registered on each
    connection; PostgreSQL's ``lower()`` follows the database's (UTF-8) character type."""

    type = String()
    inherit_cache = True


@compiles(fold, "sqlite")
def _fold_sqlite(element: fold, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{_SQLITE_FOLD}({compiler.process(element.clauses, **kw)})"


@compiles(fold)
def _fold_default(element: fold, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


def driver_error(
    conn: Connection, exc: BaseException, statement: str, params: Any, cursor: Any = None
) -> BaseException:
    """The SQLAlchemy exception ``Connection.execute`` raises for the driver error ``exc``
    (``IntegrityError``, ``OperationalError``, ...), for a statement sent straight to the
    DB-API connection; a connection the error shows lost is invalidated first, as
    ``Connection.execute`` does, so the pool does not hand it out again."""
    lost = conn.dialect.is_disconnect(exc, conn.connection.dbapi_connection, cursor)  # type: ignore[arg-type]
    if lost:
        conn.invalidate(exc)
    return DBAPIError.instance(
        statement,
        params,
        exc,
        conn.dialect.loaded_dbapi.Error,
        connection_invalidated=lost,
        dialect=conn.dialect,
    )


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with Recog's per-dialect tuning applied."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {}).setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        engine = create_engine(url, **kwargs)
        _tune_sqlite(engine)
        return engine
    # No pre-ping: it costs a round trip per checkout, and a transition on PostgreSQL is
    # round-trip bound. A connection lost to a server restart fails one unit of work
    # (SQLAlchemy then invalidates the pool); tasks retry and people try again.
    kwargs.setdefault("pool_recycle", 1800)
    return create_engine(url, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """The unit of work of one boundary (a CLI command, a request, a task run): commit on
    success, roll back on any error. Workflow functions never commit; this does."""
    with factory() as session, session.begin():
        yield session
