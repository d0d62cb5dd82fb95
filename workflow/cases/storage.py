"""The writes of an audit event: one path for one event (``write``), one for a batch
(``write_many``), built from the same statements.

An event changes the case by a compare-and-swap on its version (0 rows: somebody else won),
appends its audit row, writes its outbox rows and re-plans the case's reminders (pending ones
not in the new plan are dropped; planned ones are inserted unless an identical (case, kind,
due time) exists already, pending or done: each once).

The statements are SQLAlchemy Core, compiled once per dialect and shape and run on the
session's own DB-API cursor with the column types' conversions (``workflow.cases.fastread``):
``Connection.execute`` costs more than the statement itself here. One event runs them one
after the other, stopping at a lost swap; on PostgreSQL, where a transition is bound by round
trips (bench/transitions.py), the same statements travel as the parts of ONE statement of
data-modifying CTEs, each written only if the swap returned its row. A batch sends each
statement once for all its rows: on PostgreSQL one statement per table whatever the size of
the batch, the rows as one array per column (``unnest``, ``= ANY``), so one shape is compiled
and one round trip made; on SQLite many rows per statement or an ``executemany`` (one call
into sqlite3, which has no round trips to save).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import chain
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Connection,
    Enum,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    any_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect

from models import Case, CaseEvent, Outbox, Reminder
from workflow.cases import fastread

CASES = cast(Table, Case.__table__)
EVENTS = cast(Table, CaseEvent.__table__)
OUTBOX = cast(Table, Outbox.__table__)
REMINDERS = cast(Table, Reminder.__table__)

# Columns every event writes (a recorded non-transition event writes their current values).
BASE = (
    "state",
    "version",
    "chain_head",
    "updated_at",
    "due_at",
    "due_kind",
    "decision_due_at",
    "decision_paused_seconds",
    "appeal_ends_at",
)
EXTRA = ("result", "decision", "examiner_id", "programme_id")


@dataclass(frozen=True, slots=True)
class Write:
    case_id: int
    old_version: int
    case_values: dict[str, Any]  # BASE columns, plus any EXTRA ones
    event_row: dict[str, Any]
    outbox_rows: list[dict[str, Any]]
    plan: list[dict[str, Any]] | None  # None: leave the reminders as they are


# --------------------------------------------------------------------------------------------
# The statements


def _bind(table: Table, name: str, key: str | None = None) -> Any:
    return bindparam(key or name, type_=table.c[name].type)


def _dialect_insert(dialect: str, table: Table) -> Any:
    return {"postgresql": pg_insert, "sqlite": sqlite_insert}.get(dialect, insert)(table)


def _swap(extra: tuple[str, ...]) -> Any:
    """The compare-and-swap: the case's columns, if it still has the version read."""
    return (
        update(CASES)
        .where(CASES.c.id == bindparam("case_id"), CASES.c.version == bindparam("old_version"))
        .values({c: _bind(CASES, c) for c in BASE + extra})
    )


def _unnest(table: Table, names: tuple[str, ...], types: Mapping[str, Any]) -> Any:
    """Rows as one array per column, ``unnest(:a, :b, ...) AS rows(a, b, ...)``
    (PostgreSQL): one statement, one shape, whatever the number of rows. Strings travel as
    text (an explicit cast to ``varchar(n)`` would cut a longer value silently; assigning
    text to the column checks its length)."""
    arrays = []
    for n in names:
        type_ = types.get(n) or table.c[n].type
        if isinstance(type_, String) and not isinstance(type_, Enum):
            type_ = Text()
        elif isinstance(type_, JSON):
            type_ = _JSONAsText(type_.none_as_null)
        arrays.append(bindparam(n, type_=postgresql.ARRAY(type_)))
    return func.unnest(*arrays).table_valued(*names).render_derived(name="rows")


class _JSONAsText(TypeDecorator[Any]):
    """A JSON value in an ``_unnest`` array, sent as its JSON text and cast to the column's
    type by the statement (``_value``): psycopg then sends one text array, where adapting
    every item as JSON cost a batch of 1,000 cases about 10-20 ms per JSON column. A
    ``JSONText`` is already that text; ``None`` is SQL NULL or JSON null as the column says."""

    impl = Text
    cache_ok = True

    def __init__(self, none_as_null: bool) -> None:
        super().__init__()
        self.none_as_null = none_as_null

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None if self.none_as_null else "null"
        return value if value.__class__ is JSONText else json.dumps(value)


def _value(rows: Any, table: Table, name: str) -> Any:
    """A column of ``_unnest`` rows as ``table``'s column takes it (JSON cast from its text)."""
    column = rows.c[name]
    return sql_cast(column, table.c[name].type) if isinstance(table.c[name].type, JSON) else column


def _swap_arrays(extra: tuple[str, ...]) -> Any:
    """The compare-and-swap of a batch's cases in one statement (``UPDATE ... FROM
    unnest``, PostgreSQL), one array per column."""
    names = ("case_id", "old_version", *BASE, *extra)
    rows = _unnest(CASES, names, {"case_id": CASES.c.id.type, "old_version": CASES.c.version.type})
    return (
        update(CASES)
        .where(CASES.c.id == rows.c.case_id, CASES.c.version == rows.c.old_version)
        .values({c: _value(rows, CASES, c) for c in BASE + extra})
    )


def _insert_arrays(table: Table, names: tuple[str, ...], ignore: bool) -> Any:
    """INSERT the rows of one array per column (``INSERT ... SELECT FROM unnest``,
    PostgreSQL)."""
    rows = _unnest(table, names, {})
    stmt = pg_insert(table).from_select(
        list(names), select(*(_value(rows, table, n) for n in names)), include_defaults=False
    )
    return stmt.on_conflict_do_nothing() if ignore else stmt


def _insert(
    table: Table,
    names: tuple[str, ...],
    dialect: str,
    ignore: bool,
    rows: int = 0,
    guard: Any = None,
    prefix: str = "r",
) -> Any:
    """INSERT into ``table`` the columns ``names``: one row of parameters named after the
    columns (``rows`` 0: for one row or an ``executemany``), or ``rows`` rows whose
    parameters are named ``{prefix}{i}_{column}``, written only where ``guard`` holds.
    ``ignore``: skip rows that collide with a unique key (``ON CONFLICT DO NOTHING``)."""
    stmt = _dialect_insert(dialect, table)
    if not rows:
        # inline: no RETURNING of the new keys (nobody reads them)
        stmt = stmt.values({n: _bind(table, n) for n in names}).inline()
    elif guard is None:
        numbered = [{n: _bind(table, n, f"{prefix}{i}_{n}") for n in names} for i in range(rows)]
        stmt = stmt.values(numbered).inline()
    else:
        each = [
            select(*(_bind(table, n, f"{prefix}{i}_{n}") for n in names)).where(guard)
            for i in range(rows)
        ]
        stmt = stmt.from_select(
            list(names), each[0] if rows == 1 else union_all(*each), include_defaults=False
        )
    return stmt.on_conflict_do_nothing() if ignore else stmt


def _drop_unplanned(size: int, guard: Any = None) -> Any:
    """DELETE the case's pending reminders that a plan of ``size`` items does not keep."""
    keep = [
        tuple_(_bind(REMINDERS, "kind", f"kind_{i}"), _bind(REMINDERS, "due_at", f"due_at_{i}"))
        for i in range(size)
    ]
    stmt = delete(REMINDERS).where(
        REMINDERS.c.case_id == bindparam("case_id"), REMINDERS.c.done_at.is_(None)
    )
    if guard is not None:
        stmt = stmt.where(guard)
    if keep:
        stmt = stmt.where(tuple_(REMINDERS.c.kind, REMINDERS.c.due_at).not_in(keep))
    return stmt


def _drop_unplanned_arrays() -> Any:
    """DELETE the pending reminders of a batch's cases that their plans do not keep, in ONE
    statement whatever the batch (PostgreSQL): the cases and the plans travel as arrays
    (``= ANY(:case_ids)``, ``unnest`` of the plans' columns)."""
    planned = (
        func.unnest(
            bindparam("plan_case_ids", type_=postgresql.ARRAY(Integer())),
            bindparam("plan_kinds", type_=postgresql.ARRAY(Text())),
            bindparam("plan_due_at", type_=postgresql.ARRAY(REMINDERS.c.due_at.type)),
        )
        .table_valued("case_id", "kind", "due_at")
        .render_derived(name="planned")
    )
    return delete(REMINDERS).where(
        REMINDERS.c.case_id == any_(bindparam("case_ids", type_=postgresql.ARRAY(Integer()))),
        REMINDERS.c.done_at.is_(None),
        ~exists().where(
            planned.c.case_id == REMINDERS.c.case_id,
            planned.c.kind == REMINDERS.c.kind,
            planned.c.due_at == REMINDERS.c.due_at,
        ),
    )


def _one_statement(
    extra: tuple[str, ...],
    event: tuple[str, ...],
    outbox: tuple[str, ...],
    outbox_rows: int,
    plan: tuple[str, ...],
    plan_size: int | None,
) -> Any:
    """All of one event's writes as ONE statement of data-modifying CTEs (PostgreSQL): the
    swap, then the other statements, each written only if the swap returned its row; it
    returns how many rows the swap changed."""
    swap = _swap(extra).returning(CASES.c.id).cte("swap")
    won = exists(swap.select())
    parts = [_insert(EVENTS, event, "postgresql", False, 1, won, "e").cte("event")]
    if plan_size is not None:
        parts.append(_drop_unplanned(plan_size, won).cte("dropped"))
        if plan_size:
            plan_rows = _insert(REMINDERS, plan, "postgresql", True, plan_size, won, "r")
            parts.append(plan_rows.cte("plan"))
    if outbox_rows:
        outbox_rows_ = _insert(OUTBOX, outbox, "postgresql", False, outbox_rows, won, "o")
        parts.append(outbox_rows_.cte("outbox"))
    return select(func.count()).select_from(swap).add_cte(*parts)


@functools.cache
def _native_psycopg() -> Dialect:
    """psycopg with PostgreSQL's own placeholders ($1, $2, ...), run on a ``RawCursor``:
    psycopg then sends the statement as it is. With ``%(name)s`` placeholders it converts
    the text on every call once a statement has more than 50 parameters (an event with two
    outbox rows and a reminder has about 55), which cost more than the rest of the write."""
    return postgresql.psycopg.dialect(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]


def _binary_arrays(raw: Any) -> Any:
    """A ``RawCursor`` (see ``_native_psycopg``) that sends lists as binary arrays: as text,
    psycopg escapes every item of an array of strings or JSON with a regular expression
    (a batch of 1,000 cases: about 1 s of the batch's 1.3 s)."""
    from psycopg import RawCursor
    from psycopg.types.array import ListBinaryDumper

    cur = RawCursor(raw)
    cur.adapters.register_dumper(list, ListBinaryDumper)
    return cur


def _run_arrays(conn: Connection, reads: fastread.Reads, values: Any, *shape: Any) -> Any:
    """Run a statement of ``_unnest`` arrays (psycopg), its lists sent as binary arrays."""
    cur = fastread.cursor(conn, _binary_arrays)
    return fastread.run(conn, reads.get(_native_psycopg(), *shape), values, cur)


_SWAP = fastread.Reads(_swap)
_SWAP_ARRAYS = fastread.Reads(_swap_arrays)
_DROP = fastread.Reads(_drop_unplanned)
_DROP_ARRAYS = fastread.Reads(_drop_unplanned_arrays)
_ONE = fastread.Reads(_one_statement)


def _extra(w: Write) -> tuple[str, ...]:
    return tuple(k for k in EXTRA if k in w.case_values)


def _swap_values(w: Write) -> dict[str, Any]:
    return {"case_id": w.case_id, "old_version": w.old_version, **w.case_values}


def _drop_values(w: Write) -> dict[str, Any]:
    values: dict[str, Any] = {"case_id": w.case_id}
    for i, p in enumerate(w.plan or ()):
        values[f"kind_{i}"] = p["kind"]
        values[f"due_at_{i}"] = p["due_at"]
    return values


def _rows(
    conn: Connection,
    table: Table,
    rows: Sequence[Any],
    ignore: bool = False,
    names: tuple[str, ...] | None = None,
) -> None:
    """INSERT rows (dicts with the same keys, or tuples of the values of ``names``) of one
    event, a batch or an import, many per statement, converted a column at a time by the
    statement's own processors. psycopg: ONE statement of one array per column
    (``_insert_arrays``), whatever the number of rows (statements of 64 rows of parameters
    cost a cohort of 1,000 cases about 100 round trips and 16 compilations of 10-30 ms in its
    first run). SQLite, which spends about half of a one-row INSERT on running the
    statement: full statements of ``_ROWS_PER_STATEMENT`` rows, the rest row by row with
    the one-row INSERT an event uses, each in one ``executemany``; so two shapes per table
    (compiled once per process; the cost of compiling grows with the parameters: 64 rows
    cost 5-10 ms per table, about 0.1 s in the first cohort decision of a process, for no
    measurable gain over 16 rows when warm; powers of two for the rest made six more)."""
    if not rows:
        return
    if names is None:
        names = tuple(rows[0])
        columns: list[Sequence[Any]] = [[row[n] for row in rows] for n in names]
    else:
        columns = list(zip(*rows, strict=True))
    dialect = conn.dialect
    if dialect.driver == "psycopg":  # one statement of one array per column
        compiled = _insert_arrays_keeping_text(_native_psycopg(), table, names, ignore)
        values = dict(zip(names, columns, strict=True))
        fastread.run(conn, compiled, values, fastread.cursor(conn, _binary_arrays))
        return
    per = max(1, min(_ROWS_PER_STATEMENT, 999 // len(names)))  # SQLite's oldest limit
    one = _insert_keeping_text(dialect, table, names, ignore, 1)  # an event's own INSERT
    processors = dict(one.binds)
    converted = [
        column if process is None else [process(v) for v in column]
        for column, process in zip(columns, (processors[f"r0_{n}"] for n in names), strict=True)
    ]
    flat = list(chain.from_iterable(zip(*converted, strict=True)))
    width, full = len(names), len(rows) // per
    step = per * width
    if full:  # the full statements in one call
        chunks = [flat[i * step : (i + 1) * step] for i in range(full)]
        compiled = _insert_keeping_text(dialect, table, names, ignore, per)
        fastread.run_converted(conn, compiled, chunks, many=True)
    rest = [flat[i : i + width] for i in range(full * step, len(flat), width)]
    if len(rest) == 1:
        fastread.run_converted(conn, one, rest[0])
    elif rest:  # the rest row by row in one call: no other shape to compile
        fastread.run_converted(conn, one, rest, many=True)


def _columns(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Rows (dicts with the same keys) as one list per key (the arrays of ``_unnest``)."""
    return {name: [row[name] for row in rows] for name in rows[0]}


def _numbered(values: dict[str, Any], prefix: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Add the values of ``rows`` under the names ``_insert`` gives them (``rows`` > 0)."""
    for i, row in enumerate(rows):
        values.update({f"{prefix}{i}_{k}": v for k, v in row.items()})


# --------------------------------------------------------------------------------------------
# One event, a batch


def write(conn: Connection, w: Write) -> bool:
    """Write one audit event on ``conn`` (the session's connection); False if the
    compare-and-swap on the case version failed (nothing was written then).

    On PostgreSQL (psycopg), where an event is bound by round trips, the statements go out
    as one (``_one_statement``); elsewhere one after the other, stopping at a lost swap."""
    dialect = conn.dialect
    if dialect.driver == "psycopg":
        plan = w.plan or ()
        compiled = _ONE.get(
            _native_psycopg(),
            _extra(w),
            tuple(w.event_row),
            tuple(w.outbox_rows[0]) if w.outbox_rows else (),
            len(w.outbox_rows),
            tuple(plan[0]) if plan else (),
            None if w.plan is None else len(plan),
        )
        values = _swap_values(w)
        _numbered(values, "e", [w.event_row])
        _numbered(values, "o", w.outbox_rows)
        if w.plan is not None:
            values.update(_drop_values(w))
            _numbered(values, "r", w.plan)
        from psycopg import RawCursor

        cur = fastread.cursor(conn, RawCursor)
        return bool(fastread.run(conn, compiled, values, cur).fetchall()[0][0] == 1)
    swap = fastread.run(conn, _SWAP.get(dialect, _extra(w)), _swap_values(w))
    if swap.rowcount != 1:
        return False
    _rows(conn, EVENTS, [w.event_row])
    if w.plan is not None:
        fastread.run(conn, _DROP.get(dialect, len(w.plan)), _drop_values(w))
        _rows(conn, REMINDERS, w.plan, ignore=True)
    _rows(conn, OUTBOX, w.outbox_rows)
    return True


def write_many(conn: Connection, batch: list[Write]) -> list[int]:
    """Write many events with the statements ``write`` runs one after the other, each sent
    once for all rows (``executemany``); returns the ids of cases whose compare-and-swap
    failed (the caller aborts the whole transaction then; nothing else is sent)."""
    if not batch:
        return []
    dialect = conn.dialect
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for w in batch:
        by_shape.setdefault(_extra(w), []).append(_swap_values(w))
    if dialect.driver == "psycopg":  # one statement for the batch, not one per case
        changed = sum(
            _run_arrays(conn, _SWAP_ARRAYS, _columns(rows), extra).rowcount
            for extra, rows in by_shape.items()
        )
    else:
        changed = sum(
            fastread.run_many(conn, _SWAP.get(dialect, extra), rows)
            for extra, rows in by_shape.items()
        )
    if changed != len(batch):
        return _lost(conn, batch)
    _rows(conn, EVENTS, [w.event_row for w in batch])
    replanned = [w for w in batch if w.plan is not None]
    if replanned and dialect.driver == "psycopg":  # one statement, not one per case
        plan = [p for w in replanned for p in w.plan or ()]
        values = {
            "case_ids": [w.case_id for w in replanned],
            "plan_case_ids": [w.case_id for w in replanned for _ in w.plan or ()],
            "plan_kinds": [p["kind"] for p in plan],
            "plan_due_at": [p["due_at"] for p in plan],
        }
        _run_arrays(conn, _DROP_ARRAYS, values)
    else:  # SQLite: one executemany per plan length (one call into sqlite3)
        by_size: dict[int, list[dict[str, Any]]] = {}
        for w in replanned:
            by_size.setdefault(len(w.plan or ()), []).append(_drop_values(w))
        for size, rows in by_size.items():
            fastread.run_many(conn, _DROP.get(dialect, size), rows)
    _rows(conn, REMINDERS, [p for w in replanned for p in w.plan or ()], ignore=True)
    _rows(conn, OUTBOX, [o for w in batch for o in w.outbox_rows])
    return []


def _lost(conn: Connection, batch: list[Write]) -> list[int]:
    """The cases of a batch whose compare-and-swap failed: their chain head is not the one
    the batch wrote (a version number alone cannot tell: somebody else's change reaches the
    same version). Never empty."""
    expected = {w.case_id: w.case_values["chain_head"] for w in batch}
    now_at = dict(
        conn.execute(
            select(CASES.c.id, CASES.c.chain_head).where(CASES.c.id.in_(list(expected)))
        ).all()
    )
    lost = [cid for cid, head in expected.items() if now_at.get(cid) != head]
    return lost or list(expected)


# --------------------------------------------------------------------------------------------
# Rows of other tables, many at once (imports, precedents)


class JSONText(str):
    """A value for a JSON column that is already ``json.dumps`` text (say, one encoding shared
    by many rows): ``insert_rows`` binds it as it is, where it would encode any other value."""

    __slots__ = ()


def _keeping_text(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: value if value.__class__ is JSONText else process(value)


_ROWS_PER_STATEMENT = 16
_INSERTS: dict[tuple[Any, ...], fastread.Compiled] = {}


def _insert_keeping_text(
    dialect: Dialect, table: Table, names: tuple[str, ...], ignore: bool, rows: int
) -> fastread.Compiled:
    """The INSERT of ``rows`` rows of ``names`` (``_insert``), compiled once, its JSON
    columns binding JSONText values as they are."""
    key = (dialect.name, dialect.driver, dialect.paramstyle, table, names, ignore, rows)
    found = _INSERTS.get(key)
    if found is not None:
        return found
    compiled = fastread.compile_statement(
        _insert(table, names, dialect.name, ignore, rows), dialect
    )
    # _rows binds the values row after row, column after column, as they are numbered
    order = tuple(f"r{i}_{n}" for i in range(rows) for n in names)
    if compiled.positional != order or compiled.defaults:
        raise AssertionError(f"{compiled.sql}: parameters not in row order")
    json_columns = {n for n in names if isinstance(table.c[n].type, JSON)}
    found = _INSERTS[key] = replace(
        compiled,
        binds=tuple(
            (
                name,
                _keeping_text(process)
                if process and name.split("_", 1)[1] in json_columns
                else process,
            )
            for name, process in compiled.binds
        ),
    )
    return found


def _insert_arrays_keeping_text(
    dialect: Dialect, table: Table, names: tuple[str, ...], ignore: bool
) -> fastread.Compiled:
    """The INSERT of rows as arrays (``_insert_arrays``, psycopg), compiled once (its JSON
    columns travel as text, JSONText values as the text they are: ``_JSONAsText``)."""
    key = ("arrays", dialect.name, dialect.driver, dialect.paramstyle, table, names, ignore)
    found = _INSERTS.get(key)
    if found is None:
        found = _INSERTS[key] = fastread.compile_statement(
            _insert_arrays(table, names, ignore), dialect
        )
    return found


def insert_rows(
    conn: Connection,
    table: Any,
    rows: Sequence[Any],
    *,
    columns: tuple[str, ...] | None = None,
    ignore_duplicates: bool = False,
) -> None:
    """INSERT ``rows`` (dicts with the same keys, or tuples of the values of ``columns`` in
    that order) as Core would store them, many per statement (``_rows``). ``ignore_duplicates``:
    rows that collide with a unique key are skipped (``ON CONFLICT DO NOTHING``)."""
    _rows(conn, table, rows, ignore_duplicates, columns)


def insert_ignoring_duplicates(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """INSERT rows, skipping those that collide with a unique key (both dialects)."""
    insert_rows(conn, table, rows, ignore_duplicates=True)


__all__ = [
    "BASE",
    "EXTRA",
    "JSONText",
    "Write",
    "insert_ignoring_duplicates",
    "insert_rows",
    "write",
    "write_many",
]
