"""Hot reads compiled once: a SQLAlchemy ``select`` rendered for the engine's dialect a single
time, then run straight on a DB-API cursor (inside a ``Session``'s transaction) or on an
asyncio psycopg connection, with the column types' bind and result processing applied.

What an integration polls on every request (an API token's user, a case's status) costs one
round trip and a few microseconds of Python this way, instead of the ORM's per-execution
work. The statements are still written with SQLAlchemy (and the scope with
``workflow.policy.actors.case_scope``), so there is one definition of each query and one policy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

from workflow.cases.storage import dbapi_cursor, pg_prepare, run

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


def _run(session: Session, compiled: Compiled, values: Mapping[str, Any]) -> Any:
    conn = session.connection()
    cur = dbapi_cursor(conn)
    kwargs = {}
    if conn.dialect.name == "postgresql":
        kwargs["prepare"] = pg_prepare(conn)
    run(conn, cur, compiled.sql, compiled.params(values), **kwargs)
    return cur


def fetch(
    session: Session,
    compiled: Compiled,
    values: Mapping[str, Any],
) -> list[tuple[Any, ...]]:
    """Run ``compiled`` in the session's transaction; the converted rows."""
    return [compiled.row(r) for r in _run(session, compiled, values).fetchall()]


def execute(session: Session, compiled: Compiled, values: Mapping[str, Any]) -> None:
    """Run a compiled write (no rows) in the session's transaction."""
    _run(session, compiled, values)


async def afetch(
    conn: Any,
    compiled: Compiled,
    values: Mapping[str, Any],
) -> list[tuple[Any, ...]]:
    """Run ``compiled`` on an asyncio psycopg connection (prepared: hot reads repeat; not
    where the connection was configured never to prepare, as ``writes.pg_prepare``)."""
    prepare = None if conn.prepare_threshold is None else True
    async with conn.cursor() as cur:
        await cur.execute(compiled.sql, compiled.params(values), prepare=prepare)
        return [compiled.row(r) for r in await cur.fetchall()]


async def aexecute(conn: Any, compiled: Compiled, values: Mapping[str, Any]) -> None:
    async with conn.cursor() as cur:
        await cur.execute(compiled.sql, compiled.params(values))
