"""Hot statements compiled once: a SQLAlchemy Core statement rendered for the engine's dialect
a single time, then run straight on a DB-API cursor (inside a ``Session``'s transaction) or on
an asyncio psycopg connection, with the column types' bind and result processing applied.
The engine's load of a case and its writes (``workflow.cases.storage``) run this way too.

What an integration polls on every request (an API token's user, a case's status) costs one
round trip and a few microseconds of Python this way, instead of the ORM's per-execution
work. The statements are still written with SQLAlchemy (and the scope with
``workflow.policy.actors.case_scope``), so there is one definition of each query and one policy.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Date, DateTime, Select, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

from models.db import driver_error

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class Compiled:
    """One statement as the driver takes it: SQL text, how to order and convert parameters,
    and how to convert each column of a row."""

    sql: str
    positional: tuple[str, ...] | None  # bind names in order (qmark style); None: named
    defaults: Mapping[str, Any]  # values fixed at build time (literals in the select)
    binds: tuple[tuple[str, Processor], ...]
    results: tuple[Processor, ...]
    # Derived once (parameters are converted on every call of a hot statement): the names
    # in the order the driver takes them, a getter of their values, and the positions of
    # those that have a processor with it.
    _names: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _get: Callable[[Mapping[str, Any]], Any] = field(init=False, repr=False, compare=False)
    _convert: tuple[tuple[int, Callable[[Any], Any]], ...] = field(
        init=False, repr=False, compare=False
    )
    # The positions of a row's columns that have a result processor, with it.
    _convert_row: tuple[tuple[int, Callable[[Any], Any]], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        procs = dict(self.binds)
        names = self.positional if self.positional is not None else tuple(procs)
        getter: Callable[[Mapping[str, Any]], Any]
        if len(names) > 1:
            getter = operator.itemgetter(*names)
        else:  # itemgetter gives a tuple only for two names or more

            def getter(values: Mapping[str, Any]) -> tuple[Any, ...]:
                return tuple(values[n] for n in names)

        convert = tuple((i, p) for i, p in enumerate(procs[n] for n in names) if p is not None)
        object.__setattr__(self, "_names", names)
        object.__setattr__(self, "_get", getter)
        object.__setattr__(self, "_convert", convert)
        convert_row = tuple((i, p) for i, p in enumerate(self.results) if p is not None)
        object.__setattr__(self, "_convert_row", convert_row)

    def params(self, values: Mapping[str, Any]) -> Any:
        if self.defaults:
            values = {**self.defaults, **values}
        done = list(self._get(values))
        for i, process in self._convert:
            done[i] = process(done[i])
        if self.positional is not None:
            return tuple(done)
        return dict(zip(self._names, done, strict=True))

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        if not self._convert_row:
            return tuple(raw)
        done = list(raw)
        for i, process in self._convert_row:
            done[i] = process(done[i])
        return tuple(done)


_INSTANTS: dict[tuple[str, str, str], Processor] = {}


def _bind_processor(type_: Any, dialect: Dialect) -> Processor:
    """The bind processor of ``type_`` on ``dialect``; for dates and instants, one per type
    and dialect that remembers what it converted (``_remembering``)."""
    process = type_.dialect_impl(dialect).bind_processor(dialect)
    base = type_.impl if isinstance(type_, TypeDecorator) else type_
    if process is None or not isinstance(base, DateTime | Date):
        return process  # type: ignore[no-any-return]
    key = (dialect.name, dialect.driver, repr(type_))
    found = _INSTANTS.get(key)
    if found is None:
        found = _INSTANTS[key] = _remembering(process)
    return found


def _remembering(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``process`` remembering its last few hundred results. An event binds its ``now`` in
    up to eight places (the case, its audit row, its outbox rows) and its deadlines twice
    (the reminder plan); converting an aware instant for SQLite costs ~6 us, about a third
    of what writing an event costs in Python (bench/peer.py, CPU per event). The key holds
    the zone and fold too: two aware instants of one zone compare equal by wall time alone,
    whatever their fold. Dates and datetimes are immutable, so a result stays right."""
    memo: dict[Any, Any] = {}

    def remembered(value: Any) -> Any:
        if value is None:
            return None
        key = (value, getattr(value, "tzinfo", None), getattr(value, "fold", 0))
        done = memo.get(key, memo)
        if done is memo:
            if len(memo) >= 256:
                memo.clear()
            done = memo[key] = process(value)
        return done

    return remembered


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
    binds = tuple((name, _bind_processor(bind.type, dialect)) for bind, name in names.items())
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


def cursor(conn: Connection, factory: Callable[[Any], Any] | None = None) -> Any:
    """A cursor on the session's own DB-API connection (same transaction, no commit), made
    once per DB-API connection (and cursor ``factory``, e.g. psycopg's ``RawCursor``) and
    kept in its pool entry's ``info``."""
    pooled = conn.connection
    raw = pooled.driver_connection
    kept = pooled.info.setdefault(_CURSOR, {})
    found = kept.get(factory)
    if found is not None and found[0] is raw:
        return found[1]
    cur = raw.cursor() if factory is None else factory(raw)  # type: ignore[union-attr]
    kept[factory] = (raw, cur)
    return cur


def _prepare(conn: Connection) -> dict[str, Any]:
    """psycopg's ``prepare`` argument: hot statements repeat on every call, so they are
    prepared at once, unless the connection was configured never to prepare
    (``prepare_threshold=None``, e.g. behind a transaction-pooling PgBouncer)."""
    if conn.dialect.driver != "psycopg":
        return {}
    threshold = conn.connection.driver_connection.prepare_threshold  # type: ignore[union-attr]
    return {"prepare": None if threshold is None else True}


def run(conn: Connection, compiled: Compiled, values: Mapping[str, Any], cur: Any = None) -> Any:
    """Run ``compiled`` on the connection's DB-API cursor (or ``cur``, one of
    ``cursor(conn, factory)``); the cursor. A driver error is raised as ``Connection.execute``
    raises it (``models.db.driver_error``)."""
    cur = cur or cursor(conn)
    params = compiled.params(values)
    try:
        cur.execute(compiled.sql, params, **_prepare(conn))
    except conn.dialect.loaded_dbapi.Error as exc:
        conn.connection.info.pop(_CURSOR, None)
        raise driver_error(conn, exc, compiled.sql, params, cur) from exc
    return cur


def run_many(
    conn: Connection, compiled: Compiled, rows: Sequence[Mapping[str, Any]], cur: Any = None
) -> int:
    """Run ``compiled`` once per item of ``rows`` (``executemany``: pipelined by psycopg,
    one call into sqlite3); the number of rows changed."""
    if not rows:
        return 0
    cur = cur or cursor(conn)
    params = [compiled.params(values) for values in rows]
    try:
        cur.executemany(compiled.sql, params)
    except conn.dialect.loaded_dbapi.Error as exc:
        conn.connection.info.pop(_CURSOR, None)
        raise driver_error(conn, exc, compiled.sql, params, cur) from exc
    return int(cur.rowcount)


def run_converted(
    conn: Connection, compiled: Compiled, params: Sequence[Any], many: bool = False
) -> int:
    """Run ``compiled`` with parameters already in the driver's order and converted by the
    statement's own processors (``Compiled.binds``; e.g. a column of many rows converted at
    once); ``many``: ``params`` is a list of such sequences (``executemany``). The number of
    rows changed."""
    cur = cursor(conn)
    try:
        if many:
            cur.executemany(compiled.sql, params)
        else:
            cur.execute(compiled.sql, params, **_prepare(conn))
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
