"""The writes of one audit event, built once and sent in as few round trips as possible.

A transition is bound by round trips on PostgreSQL and by statement overhead on SQLite
(bench/transitions.py). So the statements are built once per shape and executed on the
session's connection, never rebuilt per call; on PostgreSQL the case update, the audit row,
the outbox rows and the reminder plan travel as ONE statement of data-modifying CTEs, on
SQLite as a few prebuilt statements inside the transaction that already holds the write lock.

Both paths keep the same semantics: a compare-and-swap on the case version (0 rows: somebody
else won), pending reminders not in the new plan are dropped, planned ones are inserted unless
an identical (case, kind, due time) already exists (pending or done: each once).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Table,
    bindparam,
    delete,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from models import Case, CaseEvent, Outbox, Reminder

CASES = cast(Table, Case.__table__)
EVENTS = cast(Table, CaseEvent.__table__)
OUTBOX = cast(Table, Outbox.__table__)
REMINDERS = cast(Table, Reminder.__table__)

# Columns every event writes (a recorded non-transition event writes their current values).
BASE = ("state", "version", "chain_head", "updated_at", "due_at", "due_kind", "decision_due_at",
        "decision_paused_seconds", "appeal_ends_at")
EXTRA = ("result", "decision", "examiner_id", "programme_id")


@dataclass(frozen=True, slots=True)
class Write:
    case_id: int
    old_version: int
    case_values: dict[str, Any]  # BASE columns, plus any EXTRA ones
    event_row: dict[str, Any]
    outbox_rows: list[dict[str, Any]]
    plan: list[dict[str, Any]] | None  # None: leave the reminders as they are


@functools.cache
def _update_stmt(extra: tuple[str, ...]) -> Any:
    cols = BASE + extra
    return (update(CASES)
            .where(CASES.c.id == bindparam("b_id"), CASES.c.version == bindparam("b_version"))
            .values({c: bindparam(c, type_=CASES.c[c].type) for c in cols}))


_INSERT_EVENT = insert(EVENTS)
_INSERT_OUTBOX = insert(OUTBOX)
_INSERT_REMINDERS = sqlite_insert(REMINDERS).on_conflict_do_nothing()
_DELETE_ALL_PENDING = delete(REMINDERS).where(REMINDERS.c.case_id == bindparam("case_id"),
                                              REMINDERS.c.done_at.is_(None))


def write_sqlite(conn: Connection, w: Write) -> bool:
    """Prebuilt statements; False if the compare-and-swap found another version."""
    extra = tuple(k for k in EXTRA if k in w.case_values)
    changed = conn.execute(_update_stmt(extra),
                           {"b_id": w.case_id, "b_version": w.old_version, **w.case_values})
    if changed.rowcount != 1:
        return False
    conn.execute(_INSERT_EVENT, w.event_row)
    if w.plan is not None:
        keep = [(p["kind"], p["due_at"]) for p in w.plan]
        drop = _DELETE_ALL_PENDING
        if keep:
            drop = drop.where(tuple_(REMINDERS.c.kind, REMINDERS.c.due_at).not_in(keep))
        conn.execute(drop, {"case_id": w.case_id})
        if w.plan:
            conn.execute(_INSERT_REMINDERS, w.plan)
    if w.outbox_rows:
        conn.execute(_INSERT_OUTBOX, w.outbox_rows)
    return True


def _pg_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


@functools.cache
def _pg_statement(extra: tuple[str, ...], n_outbox: int, plan_size: int | None) -> Any:
    """One statement: CAS update, audit insert, outbox inserts, reminder re-plan."""
    casts = {"result": "jsonb", "decision": "jsonb", "due_at": "timestamptz",
             "decision_due_at": "timestamptz", "appeal_ends_at": "timestamptz",
             "updated_at": "timestamptz", "decision_paused_seconds": "integer",
             "examiner_id": "integer", "programme_id": "integer", "due_kind": "varchar"}
    sets = ", ".join(f"{c} = CAST(:{c} AS {casts[c]})" if c in casts else f"{c} = :{c}"
                     for c in BASE + extra)
    parts = [
        f"upd AS (UPDATE cases SET {sets} WHERE id = :b_id AND version = :b_version "
        "RETURNING id)",
        "ev AS (INSERT INTO case_events (case_id, seq, event, from_state, to_state, "
        "actor_role, actor_id, channel, at, data, data_digest, prev_hash, hash) "
        "SELECT id, CAST(:e_seq AS integer), :e_event, CAST(:e_from AS varchar), :e_to, "
        ":e_role, CAST(:e_actor AS integer), :e_channel, CAST(:e_at AS timestamptz), "
        "CAST(:e_data AS jsonb), :e_digest, :e_prev, :e_hash FROM upd RETURNING case_id)",
    ]
    if n_outbox:
        rows = ", ".join(f"(:o{i}_key, :o{i}_channel, :o{i}_recipient, "
                         f"CAST(:o{i}_payload AS jsonb))" for i in range(n_outbox))
        parts.append(
            "ob AS (INSERT INTO outbox (dedup_key, case_id, event_seq, channel, recipient, "
            "template, payload, status, attempts, available_at, created_at) "
            "SELECT v.k, ev.case_id, CAST(:e_seq AS integer), v.c, v.r, :e_event, v.p, "
            "'pending', 0, CAST(:e_at AS timestamptz), CAST(:e_at AS timestamptz) "
            f"FROM ev CROSS JOIN (VALUES {rows}) AS v(k, c, r, p))")
    if plan_size is not None:
        keep = ", ".join(f"(:r{i}_kind, CAST(:r{i}_due AS timestamptz))"
                         for i in range(plan_size))
        not_in = f" AND (kind, due_at) NOT IN (VALUES {keep})" if plan_size else ""
        parts.append("del AS (DELETE FROM reminders WHERE case_id = (SELECT id FROM upd) "
                     f"AND done_at IS NULL{not_in})")
        if plan_size:
            rows = ", ".join(f"(:r{i}_kind, CAST(:r{i}_due AS timestamptz), :r{i}_action, "
                             f"CAST(:r{i}_recipient AS varchar), CAST(:r{i}_event AS varchar))"
                             for i in range(plan_size))
            parts.append(
                "rem AS (INSERT INTO reminders (case_id, kind, due_at, action, recipient, "
                "event) SELECT upd.id, v.k, v.d, v.a, v.r, v.e FROM upd CROSS JOIN (VALUES "
                f"{rows}) AS v(k, d, a, r, e) ON CONFLICT DO NOTHING)")
    return text("WITH " + ", ".join(parts) + " SELECT count(*) FROM upd")


def write_postgresql(conn: Connection, w: Write) -> bool:
    extra = tuple(k for k in EXTRA if k in w.case_values)
    params: dict[str, Any] = {"b_id": w.case_id, "b_version": w.old_version}
    for key, value in w.case_values.items():
        params[key] = _pg_json(value) if key in ("result", "decision") and value is not None \
            else value
    e = w.event_row
    params.update(e_seq=e["seq"], e_event=e["event"], e_from=e["from_state"],
                  e_to=e["to_state"], e_role=e["actor_role"], e_actor=e["actor_id"],
                  e_channel=e["channel"], e_at=e["at"], e_data=_pg_json(e["data"]),
                  e_digest=e["data_digest"], e_prev=e["prev_hash"], e_hash=e["hash"])
    for i, row in enumerate(w.outbox_rows):
        params.update({f"o{i}_key": row["dedup_key"], f"o{i}_channel": row["channel"],
                       f"o{i}_recipient": row["recipient"],
                       f"o{i}_payload": _pg_json(row["payload"])})
    for i, p in enumerate(w.plan or []):
        params.update({f"r{i}_kind": p["kind"], f"r{i}_due": p["due_at"],
                       f"r{i}_action": p["action"], f"r{i}_recipient": p["recipient"],
                       f"r{i}_event": p["event"]})
    stmt = _pg_statement(extra, len(w.outbox_rows),
                         None if w.plan is None else len(w.plan))
    return bool(conn.execute(stmt, params).scalar() == 1)


def write(conn: Connection, w: Write) -> bool:
    if conn.dialect.name == "postgresql":
        return write_postgresql(conn, w)
    return write_sqlite(conn, w)


def write_many(conn: Connection, batch: list[Write]) -> list[int]:
    """Write many events set-based (one executemany per statement kind); returns the ids of
    cases whose compare-and-swap failed (the caller aborts the whole transaction then)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for w in batch:
        extra = tuple(k for k in EXTRA if k in w.case_values)
        groups.setdefault(extra, []).append(
            {"b_id": w.case_id, "b_version": w.old_version, **w.case_values})
    changed = sum(conn.execute(_update_stmt(extra), params).rowcount
                  for extra, params in groups.items())
    if changed != len(batch):
        expected = {w.case_id: w.case_values["version"] for w in batch}
        now_at = dict(conn.execute(select(CASES.c.id, CASES.c.version)
                                   .where(CASES.c.id.in_(list(expected)))).all())
        return [cid for cid, version in expected.items() if now_at.get(cid) != version]
    conn.execute(_INSERT_EVENT, [w.event_row for w in batch])
    outbox = [row for w in batch for row in w.outbox_rows]
    if outbox:
        conn.execute(_INSERT_OUTBOX, outbox)
    replanned = [w for w in batch if w.plan is not None]
    if replanned:
        conn.execute(delete(REMINDERS).where(
            REMINDERS.c.case_id.in_([w.case_id for w in replanned]),
            REMINDERS.c.done_at.is_(None)))
        insert_ignoring_duplicates(conn, REMINDERS, [p for w in replanned for p in w.plan or []])
    return []


def insert_ignoring_duplicates(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """INSERT rows, skipping those that collide with a unique key (both dialects)."""
    if rows:
        dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        conn.execute(dialect_insert(table).on_conflict_do_nothing(), rows)


__all__ = ["BASE", "EXTRA", "Write", "insert_ignoring_duplicates", "write", "write_many"]
_ = dt  # datetimes pass through as aware values on both drivers
