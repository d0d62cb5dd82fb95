"""The writes of an audit event: one path for one event (``write``), one for a batch
(``write_many``), both running the same few statements.

An event changes the case by a compare-and-swap on its version (0 rows: somebody else won),
appends its audit row, writes its outbox rows and re-plans the case's reminders (pending ones
not in the new plan are dropped; planned ones are inserted unless an identical (case, kind,
due time) exists already, pending or done: each once). Every statement after the
compare-and-swap carries its own guard, "the case now holds this event's hash": if the swap
lost, they write nothing. That lets all of an event's statements go out together.

The statements are SQLAlchemy Core, compiled once per dialect and shape and run on the
session's own DB-API cursor with the column types' conversions (``workflow.fastread``): a
transition is bound by per-statement overhead on SQLite and by round trips on PostgreSQL
(bench/transitions.py), and ``Connection.execute`` costs more than the statement itself
there. On psycopg the statements of one event travel in one pipeline (one round trip); a
batch sends each statement once per row with ``executemany`` (pipelined by psycopg, one call
into sqlite3).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Connection,
    Table,
    bindparam,
    delete,
    exists,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import ClauseElement

from models import Case, CaseEvent, Outbox, Reminder
from models.db import driver_error
from workflow import fastread

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


def _won() -> Any:
    """The guard of every statement after the compare-and-swap: the case holds the event's
    new hash (a chain head is unique: it hashes its predecessor)."""
    return exists().where(
        CASES.c.id == bindparam("case_id"), CASES.c.chain_head == bindparam("head")
    )


def _dialect_insert(dialect: str, table: Table) -> Any:
    return {"postgresql": pg_insert, "sqlite": sqlite_insert}.get(dialect, insert)(table)


def _swap(extra: tuple[str, ...]) -> ClauseElement:
    """The compare-and-swap: the case's columns, if it still has the version read."""
    return (
        update(CASES)
        .where(CASES.c.id == bindparam("case_id"), CASES.c.version == bindparam("old_version"))
        .values({c: _bind(CASES, c) for c in BASE + extra})
    )


def _guarded_insert(
    table: Table, names: tuple[str, ...], dialect: str, ignore_duplicates: bool = False
) -> Any:
    """INSERT one row of ``table`` (the columns ``names``), if the event's swap won."""
    rows = select(*(_bind(table, n) for n in names)).where(_won())
    stmt = _dialect_insert(dialect, table).from_select(list(names), rows)
    return stmt.on_conflict_do_nothing() if ignore_duplicates else stmt


def _drop_unplanned(size: int) -> ClauseElement:
    """DELETE the case's pending reminders that a plan of ``size`` items does not keep."""
    keep = [
        tuple_(_bind(REMINDERS, "kind", f"kind_{i}"), _bind(REMINDERS, "due_at", f"due_at_{i}"))
        for i in range(size)
    ]
    stmt = delete(REMINDERS).where(
        REMINDERS.c.case_id == bindparam("case_id"), REMINDERS.c.done_at.is_(None), _won()
    )
    if keep:
        stmt = stmt.where(tuple_(REMINDERS.c.kind, REMINDERS.c.due_at).not_in(keep))
    return stmt


_SWAP = fastread.Reads(_swap)
_INSERT_GUARDED = fastread.Reads(_guarded_insert)
_DROP = fastread.Reads(_drop_unplanned)


def _guarded(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], ignore: bool = False
) -> fastread.Compiled:
    """The guarded INSERT of ``rows`` (their keys but ``head`` are the columns)."""
    names = tuple(k for k in rows[0] if k != "head")
    return _INSERT_GUARDED.get(conn.dialect, table, names, conn.dialect.name, ignore)


def _extra(w: Write) -> tuple[str, ...]:
    return tuple(k for k in EXTRA if k in w.case_values)


def _swap_values(w: Write) -> dict[str, Any]:
    return {"case_id": w.case_id, "old_version": w.old_version, **w.case_values}


def _event_values(w: Write) -> dict[str, Any]:
    return {**w.event_row, "head": w.case_values["chain_head"]}


def _row_values(w: Write, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    head = w.case_values["chain_head"]
    return [{**row, "head": head} for row in rows]


def _drop_values(w: Write) -> dict[str, Any]:
    values: dict[str, Any] = {"case_id": w.case_id, "head": w.case_values["chain_head"]}
    for i, p in enumerate(w.plan or ()):
        values[f"kind_{i}"] = p["kind"]
        values[f"due_at_{i}"] = p["due_at"]
    return values


@contextmanager
def _together(conn: Connection) -> Iterator[None]:
    """On psycopg, the statements inside go out in one pipeline (one round trip); elsewhere
    they run one after the other."""
    if conn.dialect.driver != "psycopg":
        yield
        return
    try:
        with conn.connection.driver_connection.pipeline():  # type: ignore[union-attr]
            yield
    except conn.dialect.loaded_dbapi.Error as exc:  # reported when the pipeline syncs
        raise driver_error(conn, exc, "(pipeline of an event's writes)", None) from exc


# --------------------------------------------------------------------------------------------
# One event, a batch


def write(conn: Connection, w: Write) -> bool:
    """Write one audit event on ``conn`` (the session's connection); False if the
    compare-and-swap on the case version failed (nothing was written then)."""
    dialect = conn.dialect
    event = _event_values(w)
    with _together(conn):
        # Its own cursor: the swap's row count is read after the other statements ran.
        swap = fastread.run(conn, _SWAP.get(dialect, _extra(w)), _swap_values(w), slot=1)
        fastread.run(conn, _guarded(conn, EVENTS, [event]), event)
        if w.plan is not None:
            fastread.run(conn, _DROP.get(dialect, len(w.plan)), _drop_values(w))
            if w.plan:
                plan = _row_values(w, w.plan)
                fastread.run_many(conn, _guarded(conn, REMINDERS, plan, True), plan)
        if w.outbox_rows:
            outbox = _row_values(w, w.outbox_rows)
            fastread.run_many(conn, _guarded(conn, OUTBOX, outbox), outbox)
    return bool(swap.rowcount == 1)


def write_many(conn: Connection, batch: list[Write]) -> list[int]:
    """Write many events with the statements of ``write``, each sent once for all rows;
    returns the ids of cases whose compare-and-swap failed (the caller aborts the whole
    transaction then; the other statements are not sent)."""
    if not batch:
        return []
    dialect = conn.dialect
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for w in batch:
        by_shape.setdefault(_extra(w), []).append(_swap_values(w))
    changed = sum(
        fastread.run_many(conn, _SWAP.get(dialect, extra), rows) for extra, rows in by_shape.items()
    )
    if changed != len(batch):
        return _lost(conn, batch)
    events = [_event_values(w) for w in batch]
    fastread.run_many(conn, _guarded(conn, EVENTS, events), events)
    replanned = [w for w in batch if w.plan is not None]
    by_size: dict[int, list[dict[str, Any]]] = {}
    for w in replanned:
        by_size.setdefault(len(w.plan or ()), []).append(_drop_values(w))
    for size, rows in by_size.items():
        fastread.run_many(conn, _DROP.get(dialect, size), rows)
    plans = [row for w in replanned for row in _row_values(w, w.plan or ())]
    if plans:
        fastread.run_many(conn, _guarded(conn, REMINDERS, plans, True), plans)
    outbox = [row for w in batch for row in _row_values(w, w.outbox_rows)]
    if outbox:
        fastread.run_many(conn, _guarded(conn, OUTBOX, outbox), outbox)
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


def _insert(table: Table, names: tuple[str, ...], dialect: str, ignore: bool) -> Any:
    # inline: no RETURNING of the new keys (nobody reads them)
    stmt = _dialect_insert(dialect, table).values({n: _bind(table, n) for n in names}).inline()
    return stmt.on_conflict_do_nothing() if ignore else stmt


def _keeping_text(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: value if value.__class__ is JSONText else process(value)


def _insert_keeping_text(
    table: Table, names: tuple[str, ...], dialect: Dialect, ignore: bool
) -> fastread.Compiled:
    """The INSERT of ``names``, its JSON columns binding JSONText values as they are."""
    compiled = fastread.compile_statement(_insert(table, names, dialect.name, ignore), dialect)
    json_columns = {n for n in names if isinstance(table.c[n].type, JSON)}
    return replace(
        compiled,
        binds=tuple(
            (name, _keeping_text(process) if name in json_columns and process else process)
            for name, process in compiled.binds
        ),
    )


_INSERTS: dict[tuple[Any, ...], fastread.Compiled] = {}


def insert_rows(
    conn: Connection,
    table: Any,
    rows: Sequence[Any],
    *,
    columns: tuple[str, ...] | None = None,
    ignore_duplicates: bool = False,
) -> None:
    """INSERT ``rows`` (dicts with the same keys, or tuples of the values of ``columns`` in
    that order) as Core would store them, in one ``executemany``. ``ignore_duplicates``:
    rows that collide with a unique key are skipped (``ON CONFLICT DO NOTHING``)."""
    if not rows:
        return
    names = tuple(rows[0]) if columns is None else columns
    dialect = conn.dialect
    key = (dialect.name, dialect.driver, table, names, ignore_duplicates)
    compiled = _INSERTS.get(key)
    if compiled is None:
        compiled = _INSERTS[key] = _insert_keeping_text(table, names, dialect, ignore_duplicates)
    values: Sequence[Mapping[str, Any]] = (
        rows if columns is None else [dict(zip(columns, row, strict=True)) for row in rows]
    )
    fastread.run_many(conn, compiled, values)


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
