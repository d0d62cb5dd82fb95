"""Hot statements compiled once: a SQLAlchemy Core statement rendered for the engine's dialect
a single time, then run straight on a DB-API cursor (inside a ``Session``'s transaction) or on
an asyncio psycopg connection, with the column types' bind and result processing applied.
The engine's load of a case and its writes (``workflow.writes``) run this way too.

What an integration polls on every request (an API token's user, a case's status) costs one
round trip and a few microseconds of Python this way, instead of the ORM's per-execution
work. The statements are still written with SQLAlchemy (and the scope with
``workflow.actors.case_scope``), so there is one definition of each query and one policy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

from models.db import driver_error

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class Compiled:
    """One select as the driver takes it: SQL text, how to order and convert parameters,
    and how to convert each column of a row."""

    sql: str
    positional: tuple[str, ...] | None  # bind names in order (qmark style); None: named
    defaults: Mapping[str, Any]  # values fixed at build time (literals in the select)
    binds: tuple[tuple[str, Processor], ...]
    results: tuple[Processor, ...]

    def params(self, values: Mapping[str, Any]) -> Any:
        merged = {**self.defaults, **values}
        done = {
            name: merged[name] if proc is None else proc(merged[name]) for name, proc in self.binds
        }
        return done if self.positional is None else tuple(done[n] for n in self.positional)

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(v if p is None else p(v) for v, p in zip(raw, self.results, strict=True))


def compile_statement(stmt: ClauseElement, dialect: Dialect) -> Compiled:
    compiled: SQLCompiler = stmt.compile(dialect=dialect)  # type: ignore[assignment]
    required = {name for bind, name in compiled.bind_names.items() if bind.required}
    if "POSTCOMPILE" in compiled.string:
        # An expanding parameter (an empty IN list) is rendered into the text now; the other
        # parameters stay placeholders (given dummies only so that rendering may proceed).
        filled = stmt.params({bind.key: None for bind in compiled.bind_names if bind.required})
        compiled = filled.compile(  # type: ignore[assignment]
            dialect=dialect, compile_kwargs={"render_postcompile": True}
        )
    names = compiled.bind_names  # each parameter and the name it has in the SQL text
    binds = tuple(
        (name, bind.type.dialect_impl(dialect).bind_processor(dialect))
        for bind, name in names.items()
    )
    columns = stmt.selected_columns if isinstance(stmt, Select) else ()
    results = tuple(
        col.type.dialect_impl(dialect).result_processor(dialect, None) for col in columns
    )
    return Compiled(
        sql=compiled.string,
        positional=tuple(compiled.positiontup or ()) if compiled.positional else None,
        defaults={
            name: bind.effective_value for bind, name in names.items() if name not in required
        },
        binds=binds,
        results=results,
    )


class Reads:
    """Compiled statements per dialect and shape, built on first use."""

    def __init__(self, build: Callable[..., ClauseElement]) -> None:
        self._build = build
        self._cache: dict[tuple[Any, ...], Compiled] = {}

    def get(self, dialect: Dialect, *shape: Any) -> Compiled:
        key = (dialect.name, dialect.driver, dialect.paramstyle, *shape)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = compile_statement(self._build(*shape), dialect)
        return found


_CURSOR = "recog_cursor"  # key in the pooled connection's info: (DB-API connection, cursor)


def cursor(conn: Connection, slot: int = 0) -> Any:
    """A cursor on the session's own DB-API connection (same transaction, no commit), made
    once per DB-API connection and ``slot`` and kept in its pool entry's ``info``. A second
    slot keeps one statement's row count while others run (``writes.write``)."""
    pooled = conn.connection
    raw = pooled.driver_connection
    kept = pooled.info.setdefault(_CURSOR, {})
    found = kept.get(slot)
    if found is not None and found[0] is raw:
        return found[1]
    cur = raw.cursor()  # type: ignore[union-attr]
    kept[slot] = (raw, cur)
    return cur


def _prepare(conn: Connection) -> dict[str, Any]:
    """psycopg's ``prepare`` argument: hot statements repeat on every call, so they are
    prepared at once, unless the connection was configured never to prepare
    (``prepare_threshold=None``, e.g. behind a transaction-pooling PgBouncer)."""
    if conn.dialect.driver != "psycopg":
        return {}
    threshold = conn.connection.driver_connection.prepare_threshold  # type: ignore[union-attr]
    return {"prepare": None if threshold is None else True}


def run(conn: Connection, compiled: Compiled, values: Mapping[str, Any], slot: int = 0) -> Any:
    """Run ``compiled`` on the connection's DB-API cursor; the cursor. A driver error is
    raised as ``Connection.execute`` raises it (``models.db.driver_error``)."""
    cur = cursor(conn, slot)
    params = compiled.params(values)
    try:
        cur.execute(compiled.sql, params, **_prepare(conn))
    except conn.dialect.loaded_dbapi.Error as exc:
        conn.connection.info.pop(_CURSOR, None)
        raise driver_error(conn, exc, compiled.sql, params, cur) from exc
    return cur


def run_many(conn: Connection, compiled: Compiled, rows: Sequence[Mapping[str, Any]]) -> int:
    """Run ``compiled`` once per item of ``rows`` (``executemany``: pipelined by psycopg,
    one call into sqlite3); the number of rows changed."""
    if not rows:
        return 0
    cur = cursor(conn)
    params = [compiled.params(values) for values in rows]
    try:
        cur.executemany(compiled.sql, params)
    except conn.dialect.loaded_dbapi.Error as exc:
        conn.connection.info.pop(_CURSOR, None)
        raise driver_error(conn, exc, compiled.sql, params, cur) from exc
    return int(cur.rowcount)


def fetch_on(
    conn: Connection, compiled: Compiled, values: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """Run ``compiled`` on ``conn`` (a session's connection); the converted rows."""
    return [compiled.row(r) for r in run(conn, compiled, values).fetchall()]


def fetch(
    session: Session,
    compiled: Compiled,
    values: Mapping[str, Any],
) -> list[tuple[Any, ...]]:
    """Run ``compiled`` in the session's transaction; the converted rows."""
    return fetch_on(session.connection(), compiled, values)


def execute(session: Session, compiled: Compiled, values: Mapping[str, Any]) -> None:
    """Run a compiled write (no rows) in the session's transaction."""
    run(session.connection(), compiled, values)


async def afetch(
    conn: Any,
    compiled: Compiled,
    values: Mapping[str, Any],
) -> list[tuple[Any, ...]]:
    """Run ``compiled`` on an asyncio psycopg connection (prepared: hot reads repeat; not
    where the connection was configured never to prepare, as ``_prepare``)."""
    prepare = None if conn.prepare_threshold is None else True
    async with conn.cursor() as cur:
        await cur.execute(compiled.sql, compiled.params(values), prepare=prepare)
        return [compiled.row(r) for r in await cur.fetchall()]


async def aexecute(conn: Any, compiled: Compiled, values: Mapping[str, Any]) -> None:
    async with conn.cursor() as cur:
        await cur.execute(compiled.sql, compiled.params(values))
