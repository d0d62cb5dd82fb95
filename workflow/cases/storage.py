"""The writes of one audit event, built once and sent in as few round trips as possible.

A transition is bound by round trips on PostgreSQL and by per-statement overhead on SQLite
(bench/transitions.py). So the hot path (``write``, and ``engine._load``) runs on the DB-API
cursor of the session's own connection: the same transaction, never a commit, SQL rendered
once per shape. It does what the column types (``models.base``) would do: an aware instant is
stored on SQLite as SQLAlchemy's SQLite ``DateTime`` stores it (naive UTC text,
``%Y-%m-%d %H:%M:%S.%f``) and handed back aware UTC; JSON is ``json.dumps`` text on SQLite and
a psycopg ``Jsonb`` on PostgreSQL, exactly as sqlalchemy's JSON type binds it; a driver error
becomes the SQLAlchemy exception it would have become through ``Connection.execute``.

On PostgreSQL the case update, the audit row, the outbox rows and the reminder plan travel as
ONE prepared statement of data-modifying CTEs; on SQLite as a few statements inside the
transaction that already holds the write lock (``BEGIN IMMEDIATE``). Batches (``write_many``,
cohort decisions) and drivers other than sqlite3 and psycopg use SQLAlchemy Core.

Every path keeps the same semantics: a compare-and-swap on the case version (0 rows: somebody
else won), pending reminders not in the new plan are dropped, planned ones are inserted unless
an identical (case, kind, due time) already exists (pending or done: each once).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, NoReturn, cast

from sqlalchemy import (
    JSON,
    Connection,
    Enum,
    Integer,
    String,
    Table,
    bindparam,
    delete,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from models import Case, CaseEvent, Outbox, Reminder

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
# The DB-API fast path: the drivers it knows, the column type conversions, errors

UTC = dt.UTC
# (dialect name, driver) -> the fast path's name; any other driver goes through Core.
FAST = {("sqlite", "pysqlite"): "sqlite", ("postgresql", "psycopg"): "postgresql"}


def fast_kind(conn: Connection) -> str | None:
    """ "sqlite" or "postgresql" when ``conn`` runs on a driver the fast path speaks."""
    dialect = conn.dialect
    return FAST.get((dialect.name, dialect.driver))


def _naive(value: dt.datetime) -> NoReturn:
    raise ValueError(f"naive datetime {value!r}: Recog stores aware UTC instants only")


def sqlite_instant(value: dt.datetime | None) -> str | None:
    """Bind an instant as ``UTCDateTime`` over SQLAlchemy's SQLite ``DateTime`` does: naive
    UTC, "%Y-%m-%d %H:%M:%S.%f" (always six fractional digits)."""
    if value is None:
        return None
    zone = value.tzinfo
    if zone is None:
        _naive(value)
    if zone is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def pg_instant(value: dt.datetime | None) -> dt.datetime | None:
    """Bind an instant as ``UTCDateTime`` does on PostgreSQL: aware, in UTC (timestamptz)."""
    if value is None:
        return None
    zone = value.tzinfo
    if zone is None:
        _naive(value)
    return value if zone is UTC else value.astimezone(UTC)


def sqlite_instant_result(value: str | None) -> dt.datetime | None:
    """What ``UTCDateTime`` hands back on SQLite: the stored text, read as UTC."""
    if value is None:
        return None
    parsed = dt.datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def pg_instant_result(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sqlite_date_result(value: str | None) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)


def sqlite_json(value: Any) -> str:
    """sqlalchemy's JSON on SQLite: ``json.dumps`` with its defaults (None is JSON null)."""
    return json.dumps(value)


def sqlite_json_result(value: str | None) -> Any:
    return None if value is None else json.loads(value)


@functools.cache
def _jsonb() -> Callable[[Any], Any]:
    from psycopg.types.json import Jsonb

    return Jsonb


def pg_json(value: Any) -> Any:
    """sqlalchemy's JSONB on psycopg: the value wrapped in ``psycopg.types.json.Jsonb``."""
    return _jsonb()(value)


_CURSOR = "recog_cursor"  # key in the pooled connection's info: (DB-API connection, cursor)


def dbapi_cursor(conn: Connection) -> Any:
    """A cursor on the session's own DB-API connection (same transaction, no commit), made
    once per DB-API connection and kept in its pool entry's ``info``."""
    pooled = conn.connection
    raw = pooled.driver_connection
    kept = pooled.info.get(_CURSOR)
    if kept is not None and kept[0] is raw:
        return kept[1]
    cur = raw.cursor()  # type: ignore[union-attr]
    pooled.info[_CURSOR] = (raw, cur)
    return cur


def run(conn: Connection, cur: Any, sql: str, params: Any, **kwargs: Any) -> None:
    """``cur.execute``; a driver error is handled as ``Connection.execute`` handles it (the
    same SQLAlchemy exception class, a lost connection invalidated)."""
    try:
        cur.execute(sql, params, **kwargs)
    except conn.dialect.loaded_dbapi.Error as exc:
        conn.connection.info.pop(_CURSOR, None)  # SQLAlchemy closes the cursor now
        conn._handle_dbapi_exception(exc, sql, params, cur, None)


def pg_prepare(conn: Connection) -> bool | None:
    """psycopg's ``prepare`` argument for the hot path's statements: prepared at once (they
    repeat on every transition), unless the connection was configured never to prepare
    (``prepare_threshold=None``, e.g. behind a transaction-pooling PgBouncer)."""
    threshold = conn.connection.driver_connection.prepare_threshold  # type: ignore[union-attr]
    return None if threshold is None else True


def fetch_one(conn: Connection, sql: str, params: Any, **kwargs: Any) -> Sequence[Any] | None:
    cur = dbapi_cursor(conn)
    run(conn, cur, sql, params, **kwargs)
    rows = cur.fetchall()
    return rows[0] if rows else None


# --------------------------------------------------------------------------------------------
# SQLite: a few statements through sqlite3, each rendered once per shape

_INSTANTS = ("updated_at", "due_at", "decision_due_at", "appeal_ends_at")
_JSONS = ("result", "decision")
_EVENT_COLUMNS = (
    "case_id",
    "seq",
    "event",
    "from_state",
    "to_state",
    "actor_role",
    "actor_id",
    "channel",
    "at",
    "data",
    "data_digest",
    "prev_hash",
    "hash",
)
_OUTBOX_COLUMNS = (
    "dedup_key",
    "case_id",
    "event_seq",
    "channel",
    "recipient",
    "template",
    "payload",
    "status",
    "attempts",
    "available_at",
    "created_at",
)
_REMINDER_COLUMNS = ("case_id", "kind", "due_at", "action", "recipient", "event")


def _qmarks(n: int) -> str:
    return "(" + ", ".join("?" * n) + ")"


_SQLITE_CONVERT: dict[str, Callable[[Any], Any]] = {
    **dict.fromkeys(_INSTANTS, sqlite_instant),
    **dict.fromkeys(_JSONS, sqlite_json),
}
_SQLITE_INSERT_EVENT = (
    f"INSERT INTO case_events ({', '.join(_EVENT_COLUMNS)}) VALUES {_qmarks(len(_EVENT_COLUMNS))}"
)


@functools.cache
def _sqlite_update(
    extra: tuple[str, ...],
) -> tuple[str, tuple[tuple[str, Callable[[Any], Any] | None], ...]]:
    cols = BASE + extra
    sets = ", ".join(f"{c} = ?" for c in cols)
    return (
        f"UPDATE cases SET {sets} WHERE id = ? AND version = ?",
        tuple((c, _SQLITE_CONVERT.get(c)) for c in cols),
    )


@functools.cache
def _sqlite_insert_outbox(n: int) -> str:
    rows = ", ".join([_qmarks(len(_OUTBOX_COLUMNS))] * n)
    return f"INSERT INTO outbox ({', '.join(_OUTBOX_COLUMNS)}) VALUES {rows}"


@functools.cache
def _sqlite_replan(n: int) -> tuple[str, str]:
    """DELETE of the pending reminders not in a plan of ``n`` items; INSERT of the plan."""
    drop = "DELETE FROM reminders WHERE case_id = ? AND done_at IS NULL"
    if n:
        drop += f" AND (kind, due_at) NOT IN (VALUES {', '.join(['(?, ?)'] * n)})"
    rows = ", ".join([_qmarks(len(_REMINDER_COLUMNS))] * n)
    return drop, (
        f"INSERT INTO reminders ({', '.join(_REMINDER_COLUMNS)}) VALUES {rows} "
        "ON CONFLICT DO NOTHING"
    )


def write_sqlite(conn: Connection, w: Write) -> bool:
    """False if the compare-and-swap found another version (nothing written then)."""
    cur = dbapi_cursor(conn)
    values = w.case_values
    sql, columns = _sqlite_update(tuple(k for k in EXTRA if k in values))
    e = w.event_row
    at = e["at"]
    at_text = sqlite_instant(at)  # the event's time; usually also updated_at and the outbox's
    params = [
        at_text if values[c] is at else values[c] if convert is None else convert(values[c])
        for c, convert in columns
    ]
    params.append(w.case_id)
    params.append(w.old_version)
    run(conn, cur, sql, params)
    if cur.rowcount != 1:
        return False
    run(
        conn,
        cur,
        _SQLITE_INSERT_EVENT,
        (
            e["case_id"],
            e["seq"],
            e["event"],
            e["from_state"],
            e["to_state"],
            e["actor_role"],
            e["actor_id"],
            e["channel"],
            at_text,
            sqlite_json(e["data"]),
            e["data_digest"],
            e["prev_hash"],
            e["hash"],
        ),
    )
    if w.plan is not None:
        drop, add = _sqlite_replan(len(w.plan))
        due = [sqlite_instant(p["due_at"]) for p in w.plan]
        params = [w.case_id]
        for p, p_due in zip(w.plan, due, strict=True):
            params += (p["kind"], p_due)
        run(conn, cur, drop, params)
        if w.plan:
            params = []
            for p, p_due in zip(w.plan, due, strict=True):
                params += (p["case_id"], p["kind"], p_due, p["action"], p["recipient"], p["event"])
            run(conn, cur, add, params)
    if w.outbox_rows:
        params = []
        for o in w.outbox_rows:
            available, created = o["available_at"], o["created_at"]
            params += (
                o["dedup_key"],
                o["case_id"],
                o["event_seq"],
                o["channel"],
                o["recipient"],
                o["template"],
                sqlite_json(o["payload"]),
                o["status"],
                o["attempts"],
                at_text if available is at else sqlite_instant(available),
                at_text if created is at else sqlite_instant(created),
            )
        run(conn, cur, _sqlite_insert_outbox(len(w.outbox_rows)), params)
    return True


# --------------------------------------------------------------------------------------------
# PostgreSQL: one prepared statement of data-modifying CTEs through psycopg

_PG_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
_PG_CASTS = {
    "result": "jsonb",
    "decision": "jsonb",
    "due_at": "timestamptz",
    "decision_due_at": "timestamptz",
    "appeal_ends_at": "timestamptz",
    "updated_at": "timestamptz",
    "decision_paused_seconds": "integer",
    "examiner_id": "integer",
    "programme_id": "integer",
    "due_kind": "varchar",
}
_PG_CONVERT: dict[str, Callable[[Any], Any]] = {
    **dict.fromkeys(_INSTANTS, pg_instant),
    **dict.fromkeys(_JSONS, pg_json),
}


@functools.cache
def _pg_statement(
    extra: tuple[str, ...],
    n_outbox: int,
    plan_size: int | None,
) -> tuple[str, tuple[tuple[str, Callable[[Any], Any] | None], ...]]:
    """One statement: CAS update, audit insert, outbox inserts, reminder re-plan; with the
    case columns it sets and their conversions."""
    cols = BASE + extra
    sets = ", ".join(
        f"{c} = CAST(%({c})s AS {_PG_CASTS[c]})" if c in _PG_CASTS else f"{c} = %({c})s"
        for c in cols
    )
    parts = [
        f"upd AS (UPDATE cases SET {sets} WHERE id = %(b_id)s AND version = %(b_version)s "
        "RETURNING id)",
        "ev AS (INSERT INTO case_events (case_id, seq, event, from_state, to_state, "
        "actor_role, actor_id, channel, at, data, data_digest, prev_hash, hash) "
        "SELECT id, CAST(%(e_seq)s AS integer), %(e_event)s, CAST(%(e_from)s AS varchar), "
        "%(e_to)s, %(e_role)s, CAST(%(e_actor)s AS integer), %(e_channel)s, "
        "CAST(%(e_at)s AS timestamptz), CAST(%(e_data)s AS jsonb), %(e_digest)s, %(e_prev)s, "
        "%(e_hash)s FROM upd RETURNING case_id)",
    ]
    if n_outbox:
        rows = ", ".join(
            f"(%(o{i}_key)s, %(o{i}_channel)s, %(o{i}_recipient)s, CAST(%(o{i}_payload)s AS jsonb))"
            for i in range(n_outbox)
        )
        parts.append(
            "ob AS (INSERT INTO outbox (dedup_key, case_id, event_seq, channel, recipient, "
            "template, payload, status, attempts, available_at, created_at) "
            "SELECT v.k, ev.case_id, CAST(%(e_seq)s AS integer), v.c, v.r, %(e_event)s, v.p, "
            "'pending', 0, CAST(%(e_at)s AS timestamptz), CAST(%(e_at)s AS timestamptz) "
            f"FROM ev CROSS JOIN (VALUES {rows}) AS v(k, c, r, p))"
        )
    if plan_size is not None:
        keep = ", ".join(
            f"(%(r{i}_kind)s, CAST(%(r{i}_due)s AS timestamptz))" for i in range(plan_size)
        )
        not_in = f" AND (kind, due_at) NOT IN (VALUES {keep})" if plan_size else ""
        parts.append(
            "del AS (DELETE FROM reminders WHERE case_id = (SELECT id FROM upd) "
            f"AND done_at IS NULL{not_in})"
        )
        if plan_size:
            rows = ", ".join(
                f"(%(r{i}_kind)s, CAST(%(r{i}_due)s AS timestamptz), "
                f"%(r{i}_action)s, CAST(%(r{i}_recipient)s AS varchar), "
                f"CAST(%(r{i}_event)s AS varchar))"
                for i in range(plan_size)
            )
            parts.append(
                "rem AS (INSERT INTO reminders (case_id, kind, due_at, action, recipient, "
                "event) SELECT upd.id, v.k, v.d, v.a, v.r, v.e FROM upd CROSS JOIN (VALUES "
                f"{rows}) AS v(k, d, a, r, e) ON CONFLICT DO NOTHING)"
            )
    sql = "WITH " + ", ".join(parts) + " SELECT count(*) FROM upd"
    return sql, tuple((c, _PG_CONVERT.get(c)) for c in cols)


def write_postgresql(conn: Connection, w: Write) -> bool:
    values = w.case_values
    sql, columns = _pg_statement(
        tuple(k for k in EXTRA if k in values),
        len(w.outbox_rows),
        None if w.plan is None else len(w.plan),
    )
    params: dict[str, Any] = {
        c: values[c] if convert is None else convert(values[c]) for c, convert in columns
    }
    e = w.event_row
    params.update(
        b_id=w.case_id,
        b_version=w.old_version,
        e_seq=e["seq"],
        e_event=e["event"],
        e_from=e["from_state"],
        e_to=e["to_state"],
        e_role=e["actor_role"],
        e_actor=e["actor_id"],
        e_channel=e["channel"],
        e_at=pg_instant(e["at"]),
        e_data=pg_json(e["data"]),
        e_digest=e["data_digest"],
        e_prev=e["prev_hash"],
        e_hash=e["hash"],
    )
    for i, o in enumerate(w.outbox_rows):
        params[f"o{i}_key"] = o["dedup_key"]
        params[f"o{i}_channel"] = o["channel"]
        params[f"o{i}_recipient"] = o["recipient"]
        params[f"o{i}_payload"] = pg_json(o["payload"])
    for i, p in enumerate(w.plan or ()):
        params[f"r{i}_kind"] = p["kind"]
        params[f"r{i}_due"] = pg_instant(p["due_at"])
        params[f"r{i}_action"] = p["action"]
        params[f"r{i}_recipient"] = p["recipient"]
        params[f"r{i}_event"] = p["event"]
    changed = fetch_one(conn, sql, params, prepare=pg_prepare(conn))
    return changed is not None and changed[0] == 1


# --------------------------------------------------------------------------------------------
# Core: batches, and drivers the fast path does not speak


@functools.cache
def _update_stmt(extra: tuple[str, ...]) -> Any:
    cols = BASE + extra
    return (
        update(CASES)
        .where(CASES.c.id == bindparam("b_id"), CASES.c.version == bindparam("b_version"))
        .values({c: bindparam(c, type_=CASES.c[c].type) for c in cols})
    )


_INSERT_EVENT = insert(EVENTS)
_INSERT_OUTBOX = insert(OUTBOX)
_DELETE_ALL_PENDING = delete(REMINDERS).where(
    REMINDERS.c.case_id == bindparam("case_id"), REMINDERS.c.done_at.is_(None)
)


def write_core(conn: Connection, w: Write) -> bool:
    """The same writes through SQLAlchemy Core (any driver); False on a lost CAS."""
    extra = tuple(k for k in EXTRA if k in w.case_values)
    changed = conn.execute(
        _update_stmt(extra), {"b_id": w.case_id, "b_version": w.old_version, **w.case_values}
    )
    if changed.rowcount != 1:
        return False
    conn.execute(_INSERT_EVENT, w.event_row)
    if w.plan is not None:
        keep = [(p["kind"], p["due_at"]) for p in w.plan]
        drop = _DELETE_ALL_PENDING
        if keep:
            drop = drop.where(tuple_(REMINDERS.c.kind, REMINDERS.c.due_at).not_in(keep))
        conn.execute(drop, {"case_id": w.case_id})
        insert_ignoring_duplicates(conn, REMINDERS, w.plan)
    if w.outbox_rows:
        conn.execute(_INSERT_OUTBOX, w.outbox_rows)
    return True


def write(conn: Connection, w: Write) -> bool:
    """Write one audit event on ``conn`` (the session's connection); False if the
    compare-and-swap on the case version failed (nothing was written then)."""
    kind = fast_kind(conn)
    if kind == "sqlite":
        return write_sqlite(conn, w)
    if kind == "postgresql":
        return write_postgresql(conn, w)
    return write_core(conn, w)


def write_many(conn: Connection, batch: list[Write]) -> list[int]:
    """Write many events set-based; returns the ids of cases whose compare-and-swap failed
    (the caller aborts the whole transaction then; the inserts are not made).

    On the fast path's drivers: one ``UPDATE ... FROM unnest(arrays)`` and one
    ``INSERT ... SELECT FROM unnest(arrays)`` per table on PostgreSQL (a statement per table,
    whatever the size of the batch); one ``executemany`` per statement on the sqlite3 cursor
    (SQLite has no round trips to save). Same rows, same bytes, same reminder re-plan as
    ``write`` of each one. Other drivers: Core ``executemany``."""
    if not batch:
        return []
    kind = fast_kind(conn)
    if kind is None:
        return _write_many_core(conn, batch)
    groups: dict[tuple[str, ...], list[Write]] = {}
    for w in batch:
        groups.setdefault(tuple(k for k in EXTRA if k in w.case_values), []).append(w)
    update_many = _update_many_sqlite if kind == "sqlite" else _update_many_pg
    changed = sum(update_many(conn, extra, group) for extra, group in groups.items())
    if changed != len(batch):
        return _lost(conn, batch)
    insert_rows(conn, EVENTS, [w.event_row for w in batch])
    insert_rows(conn, OUTBOX, [row for w in batch for row in w.outbox_rows])
    replanned = [w for w in batch if w.plan is not None]
    if replanned:
        if kind == "sqlite":
            _drop_unplanned_sqlite(conn, replanned)
        else:
            _drop_unplanned_pg(conn, replanned)
        insert_rows(
            conn, REMINDERS, [p for w in replanned for p in w.plan or ()], ignore_duplicates=True
        )
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


def _write_many_core(conn: Connection, batch: list[Write]) -> list[int]:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for w in batch:
        extra = tuple(k for k in EXTRA if k in w.case_values)
        groups.setdefault(extra, []).append(
            {"b_id": w.case_id, "b_version": w.old_version, **w.case_values}
        )
    changed = sum(
        conn.execute(_update_stmt(extra), params).rowcount for extra, params in groups.items()
    )
    if changed != len(batch):
        return _lost(conn, batch)
    conn.execute(_INSERT_EVENT, [w.event_row for w in batch])
    outbox = [row for w in batch for row in w.outbox_rows]
    if outbox:
        conn.execute(_INSERT_OUTBOX, outbox)
    replanned = [w for w in batch if w.plan is not None]
    if replanned:
        conn.execute(
            delete(REMINDERS).where(
                REMINDERS.c.case_id.in_([w.case_id for w in replanned]),
                REMINDERS.c.done_at.is_(None),
            )
        )
        insert_ignoring_duplicates(conn, REMINDERS, [p for w in replanned for p in w.plan or []])
    return []


def run_many(conn: Connection, cur: Any, sql: str, params: list[Any]) -> None:
    """``cur.executemany`` with the error handling of ``run``."""
    try:
        cur.executemany(sql, params)
    except conn.dialect.loaded_dbapi.Error as exc:
        conn.connection.info.pop(_CURSOR, None)
        conn._handle_dbapi_exception(exc, sql, params, cur, None)


class JSONText(str):
    """A value for a JSON column that is already ``json.dumps`` text (say, one encoding shared
    by many rows): ``insert_rows`` binds it as it is, where it would encode any other value."""

    __slots__ = ()


def _column(values: list[Any], kind: str, convert: Callable[[Any], Any] | None) -> list[Any]:
    """One column of a batch as bound: instants converted once per distinct value (most of
    a batch's instants are the same ``now``), JSON encoded per row unless it is JSONText
    already, the rest as it is."""
    if convert is None:
        return values
    if kind == "instant":
        bound = {value: convert(value) for value in set(values)}
        return [bound[value] for value in values]
    if kind == "json":
        return [
            value if value.__class__ is JSONText else "null" if value is None else convert(value)
            for value in values
        ]
    return [convert(value) for value in values]


@functools.cache
def _sqlite_update_many(extra: tuple[str, ...], rows: int) -> str:
    """``UPDATE cases ... FROM (VALUES ...)`` of ``rows`` cases: id, old version, then the
    columns of ``_sqlite_update(extra)`` per row."""
    cols = BASE + extra
    sets = ", ".join(f"{c} = v.column{i + 3}" for i, c in enumerate(cols))
    values = ", ".join([_qmarks(len(cols) + 2)] * rows)
    return (
        f"UPDATE cases SET {sets} FROM (VALUES {values}) AS v "
        "WHERE cases.id = v.column1 AND cases.version = v.column2"
    )


def _update_many_sqlite(conn: Connection, extra: tuple[str, ...], group: list[Write]) -> int:
    _, columns = _sqlite_update(extra)
    kinds = _column_kinds(CASES, tuple(c for c, _ in columns))
    assert kinds is not None
    cols = [[w.case_id for w in group], [w.old_version for w in group]]
    cols += [
        _column([w.case_values[c] for w in group], kind, convert)
        for (c, convert), kind in zip(columns, kinds, strict=True)
    ]
    cur = dbapi_cursor(conn)
    changed = 0
    for chunk in _sqlite_chunks(cols):
        run(conn, cur, _sqlite_update_many(extra, len(chunk) // len(cols)), chunk)
        changed += cur.rowcount
    return changed


def _drop_unplanned_sqlite(conn: Connection, replanned: list[Write]) -> None:
    """Each case's pending reminders that are not in its new plan (as ``write_sqlite``): one
    ``executemany`` per plan length."""
    plan = [p for w in replanned for p in w.plan or ()]
    due = iter(_column([p["due_at"] for p in plan], "instant", sqlite_instant))
    by_size: dict[int, list[list[Any]]] = {}
    for w in replanned:
        params: list[Any] = [w.case_id]
        for p in w.plan or ():
            params += (p["kind"], next(due))
        by_size.setdefault(len(w.plan or ()), []).append(params)
    cur = dbapi_cursor(conn)
    for size, params_list in by_size.items():
        run_many(conn, cur, _sqlite_replan(size)[0], params_list)


# PostgreSQL: whole columns as arrays, one statement per table


def _pg_array(column: Any, kind: str) -> str:
    """The array type a column's values travel in: JSON as text (cast to jsonb in the
    statement); strings as text, so that the column's own length check applies on assignment
    (an explicit cast to varchar(n) would silently cut a longer value)."""
    if kind == "json" or isinstance(column.type, String):
        return "text[]"
    if kind == "instant":
        return "timestamptz[]"
    return f"{column.type.compile(dialect=_PG_DIALECT)}[]"


@functools.cache
def _pg_update_many(extra: tuple[str, ...]) -> tuple[str, tuple[tuple[str, Any], ...]]:
    cols = BASE + extra
    kinds = _column_kinds(CASES, cols)
    assert kinds is not None
    sets = ", ".join(
        f"{c} = CAST(u.{c} AS jsonb)" if kind == "json" else f"{c} = u.{c}"
        for c, kind in zip(cols, kinds, strict=True)
    )
    arrays = ", ".join(
        ["CAST(%b AS integer[])"] * 2
        + [
            f"CAST(%b AS {_pg_array(CASES.c[c], kind)})"
            for c, kind in zip(cols, kinds, strict=True)
        ]
    )
    sql = (
        f"UPDATE cases SET {sets} FROM unnest({arrays}) AS u(b_id, b_version, "
        f"{', '.join(cols)}) WHERE cases.id = u.b_id AND cases.version = u.b_version"
    )
    return sql, tuple(zip(cols, (_PG_ARRAY_CONVERT[k] for k in kinds), strict=True))


def _update_many_pg(conn: Connection, extra: tuple[str, ...], group: list[Write]) -> int:
    sql, columns = _pg_update_many(extra)
    params: list[Any] = [[w.case_id for w in group], [w.old_version for w in group]]
    kinds = _column_kinds(CASES, tuple(c for c, _ in columns))
    assert kinds is not None
    for (c, convert), kind in zip(columns, kinds, strict=True):
        params.append(_column([w.case_values[c] for w in group], kind, convert))
    cur = dbapi_cursor(conn)
    run(conn, cur, sql, params, prepare=pg_prepare(conn))
    return int(cur.rowcount)


_PG_DROP_UNPLANNED = (
    "DELETE FROM reminders r WHERE r.case_id = ANY(CAST(%b AS integer[])) "
    "AND r.done_at IS NULL AND NOT EXISTS (SELECT FROM unnest(CAST(%b AS integer[]), "
    "CAST(%b AS text[]), CAST(%b AS timestamptz[])) AS p(case_id, kind, due_at) "
    "WHERE p.case_id = r.case_id AND p.kind = r.kind AND p.due_at = r.due_at)"
)


def _drop_unplanned_pg(conn: Connection, replanned: list[Write]) -> None:
    """Each case's pending reminders that are not in its new plan (as ``write_postgresql``)."""
    plan = [p for w in replanned for p in w.plan or ()]
    run(
        conn,
        dbapi_cursor(conn),
        _PG_DROP_UNPLANNED,
        [
            [w.case_id for w in replanned],
            [p["case_id"] for p in plan],
            [p["kind"] for p in plan],
            [pg_instant(p["due_at"]) for p in plan],
        ],
        prepare=pg_prepare(conn),
    )


# Inserts of many rows: the column types' conversions, on the fast path's drivers


@functools.cache
def _column_kinds(table: Table, names: tuple[str, ...]) -> tuple[str, ...] | None:
    """Per column, what its type does to a bound value: "instant" (``UTCDateTime``), "json",
    or "plain" (integers and strings: bound as they are); None if a column has another type
    (then rows go through Core)."""
    from models.base import UTCDateTime

    kinds = []
    for name in names:
        column = table.c.get(name)
        if column is None:
            return None
        type_ = column.type
        if isinstance(type_, UTCDateTime):
            kinds.append("instant")
        elif isinstance(type_, JSON):
            kinds.append("json")
        elif isinstance(type_, Integer | String) and not isinstance(type_, Enum):
            kinds.append("plain")
        else:
            return None
    return tuple(kinds)


_SQLITE_ARRAY_CONVERT: dict[str, Callable[[Any], Any] | None] = {
    "instant": sqlite_instant,
    "json": sqlite_json,
    "plain": None,
}
_PG_ARRAY_CONVERT: dict[str, Callable[[Any], Any] | None] = {
    "instant": pg_instant,
    "json": json.dumps,
    "plain": None,
}  # JSON as text, cast to jsonb


_SQLITE_ROWS_PER_INSERT = 64


def _sqlite_chunks(cols: list[list[Any]]) -> list[list[Any]]:
    """Rows given as columns, as the flat parameters of statements of up to
    ``_SQLITE_ROWS_PER_INSERT`` rows each (all full but the last). Many rows per statement:
    SQLite spends about half of a one-row statement on running it, not on the row (within
    the oldest limit of 999 parameters a statement)."""
    per = max(1, min(_SQLITE_ROWS_PER_INSERT, 999 // len(cols)))
    return [
        list(chain.from_iterable(zip(*(c[i : i + per] for c in cols), strict=True)))
        for i in range(0, len(cols[0]), per)
    ]


@functools.cache
def _insert_sql(
    kind: str,
    table: Table,
    names: tuple[str, ...],
    kinds: tuple[str, ...],
    ignore: bool,
    rows: int = 1,
) -> str:
    """The INSERT of a batch: ``rows`` rows of VALUES on SQLite; arrays on PostgreSQL."""
    cols = ", ".join(names)
    tail = " ON CONFLICT DO NOTHING" if ignore else ""
    if kind == "sqlite":
        values = ", ".join([_qmarks(len(names))] * rows)
        return f"INSERT INTO {table.name} ({cols}) VALUES {values}{tail}"
    arrays = ", ".join(
        f"CAST(%b AS {_pg_array(table.c[n], k)})" for n, k in zip(names, kinds, strict=True)
    )
    picks = ", ".join(
        f"CAST(u.{n} AS jsonb)" if k == "json" else f"u.{n}"
        for n, k in zip(names, kinds, strict=True)
    )
    return (
        f"INSERT INTO {table.name} ({cols}) SELECT {picks} FROM unnest({arrays}) AS u({cols}){tail}"
    )


def insert_rows(
    conn: Connection,
    table: Any,
    rows: Sequence[Any],
    *,
    columns: tuple[str, ...] | None = None,
    ignore_duplicates: bool = False,
) -> None:
    """INSERT ``rows`` as Core would store them: dicts with the same keys, or tuples of the
    values of ``columns`` in that order. sqlite3 ``executemany``; on PostgreSQL one
    ``INSERT ... SELECT FROM unnest`` of one array per column; Core for other drivers and
    column types. ``ignore_duplicates``: rows that collide with a unique key are skipped
    (``ON CONFLICT DO NOTHING``)."""
    if not rows:
        return
    kind = fast_kind(conn)
    names = tuple(rows[0]) if columns is None else columns
    kinds = None if kind is None else _column_kinds(table, names)
    if kind is None or kinds is None:
        dicts = [
            dict(row) if columns is None else dict(zip(columns, row, strict=True)) for row in rows
        ]
        for row in dicts:  # Core encodes JSON itself
            for key, value in row.items():
                if value.__class__ is JSONText:
                    row[key] = json.loads(value)
        if ignore_duplicates:
            dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            conn.execute(dialect_insert(table).on_conflict_do_nothing(), dicts)
        else:
            conn.execute(insert(table), dicts)
        return
    converts = _SQLITE_ARRAY_CONVERT if kind == "sqlite" else _PG_ARRAY_CONVERT
    keys = names if columns is None else range(len(columns))
    cols = [
        _column([row[key] for row in rows], k, converts[k])
        for key, k in zip(keys, kinds, strict=True)
    ]
    cur = dbapi_cursor(conn)
    if kind != "sqlite":
        run(
            conn,
            cur,
            _insert_sql(kind, table, names, kinds, ignore_duplicates),
            cols,
            prepare=pg_prepare(conn),
        )
        return
    chunks = _sqlite_chunks(cols)
    per = len(chunks[0]) // len(names)
    full, rest = divmod(len(rows), per)
    if full:
        run_many(
            conn, cur, _insert_sql(kind, table, names, kinds, ignore_duplicates, per), chunks[:full]
        )
    if rest:
        run(
            conn, cur, _insert_sql(kind, table, names, kinds, ignore_duplicates, rest), chunks[full]
        )


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
