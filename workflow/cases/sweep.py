"""The deadline sweep: carry out every reminder, escalation and timer event that is due.

Set-based, and inside the database: its cost follows the number of due items, not the number
of cases, and no due item makes a round trip to Python except the few timer events.

* PostgreSQL, ONE statement: lock the due reminders through the partial index on ``due_at``
  (``FOR UPDATE SKIP LOCKED``, so two sweeps never take the same row), mark them done, and
  insert the outbox row of every notification among them straight from the claimed rows;
  it returns two counts and the timer events.
* SQLite (the write lock is held from ``BEGIN IMMEDIATE``, so nothing changes between the
  statements): read the timer events and the superseded reminders of the due batch, insert
  the outbox rows from the batch, mark the batch done.

An outbox row holds ids, the recipient's role and the template (the reminder's kind); the
relay renders the message at delivery time. The timer events (lapse, close) go through
``fire`` as the actor ``timer``, with their audit rows. The unique keys (a reminder per case,
kind and due time; an outbox row per reminder and recipient) mean each happens once,
however many sweeps run.

A reminder planned *before* a deadline that has already passed when the sweep claims it is
never sent with its own words: ``_overtaken`` turns it into the deadline's own message first.

Of several reminders of one deadline to one person that are due together (a sweep that did
not run for a while), only the latest is sent: one "80 %" mail, not "50 %" and "80 %"; the
earlier is marked done with the outcome "superseded by a later reminder". Only the kinds the
schedule plans before another one to the same person (``deadlines.superseded_kinds``) are
checked for a later one.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, String, bindparam, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from config.settings import Settings
from models import Case, Outbox, Reminder, Role
from models.base import UTCDateTime
from workflow.cases.deadlines import overtaken_kinds, superseded_kinds
from workflow.cases.engine import fire
from workflow.cases.storage import insert_ignoring_duplicates
from workflow.errors import DomainError
from workflow.policy.actors import Actor

SUPERSEDED = "superseded by a later reminder"
OVERTAKEN = "overtaken by its deadline"

# The SQL is literal on purpose (no fragments pasted together). Shared by both engines:
# * a due, pending notification ``r`` of a kind that can be superseded is, if a later one of
#   the same deadline (the kind's part before the dot) to the same recipient is due and
#   pending too;
# * a reminder's outbox row: ids, the recipient's role and the kind as the template, rendered
#   by the relay at delivery; its key makes it unique (``\:`` is a literal colon in ``text``).

_PG_SWEEP = text(
    "WITH due AS ("
    " SELECT id, case_id, kind, due_at, action, recipient, event FROM reminders"
    " WHERE done_at IS NULL AND due_at <= :now ORDER BY due_at, id LIMIT :n"
    " FOR UPDATE SKIP LOCKED), "
    "superseded AS ("
    " SELECT r.id FROM due r WHERE r.action = 'notify' AND r.kind = ANY(:candidates)"
    " AND EXISTS (SELECT 1 FROM reminders l WHERE l.case_id = r.case_id"
    " AND l.done_at IS NULL AND l.due_at <= :now AND l.action = 'notify'"
    " AND l.recipient = r.recipient"
    " AND split_part(l.kind, '.', 1) = split_part(r.kind, '.', 1)"
    " AND (l.due_at > r.due_at OR (l.due_at = r.due_at AND l.id > r.id)))), "
    # Through the primary key: a join with the locked rows could read the whole table.
    "claimed AS ("
    " UPDATE reminders SET done_at = :now, outcome = CASE WHEN reminders.id IN"
    " (SELECT id FROM superseded) THEN :outcome END"
    " WHERE reminders.id = ANY(ARRAY(SELECT id FROM due))"
    " RETURNING id, case_id, due_at, kind, action, recipient, event, outcome), "
    "queued AS ("
    " INSERT INTO outbox (dedup_key, case_id, event_seq, channel, recipient, template,"
    " payload, status, attempts, available_at, created_at)"
    r" SELECT 'reminder\:' || c.id || '\:email\:' || c.recipient, c.case_id, NULL, 'email',"
    " c.recipient, c.kind, CAST('{}' AS jsonb), 'pending', 0, :now, :now"
    " FROM claimed c WHERE c.action = 'notify' AND c.outcome IS NULL"
    " ON CONFLICT DO NOTHING RETURNING 1) "
    "SELECT n.claimed, n.queued, f.id, f.case_id, f.event FROM"
    " (SELECT (SELECT count(*) FROM claimed) AS claimed,"
    " (SELECT count(*) FROM queued) AS queued) n"
    " LEFT JOIN (SELECT id, case_id, event, due_at FROM claimed"
    " WHERE action = 'fire' AND event IS NOT NULL) f ON true"
    " ORDER BY f.due_at, f.id"
).bindparams(bindparam("now", type_=UTCDateTime()), bindparam("candidates", type_=ARRAY(String())))

# SQLite: each statement reads the batch through the same subquery (index order, a limit).
_SQLITE_FIND = text(
    "SELECT r.id, r.case_id, r.action, r.event FROM reminders r WHERE r.id IN ("
    " SELECT id FROM reminders WHERE done_at IS NULL AND due_at <= :now"
    " ORDER BY due_at, id LIMIT :n)"
    " AND ((r.action = 'fire' AND r.event IS NOT NULL)"
    " OR (r.action = 'notify' AND r.kind IN (SELECT value FROM json_each(:candidates))"
    " AND EXISTS (SELECT 1 FROM reminders l WHERE l.case_id = r.case_id"
    " AND l.done_at IS NULL AND l.due_at <= :now AND l.action = 'notify'"
    " AND l.recipient = r.recipient"
    " AND substr(l.kind, 1, instr(l.kind || '.', '.'))"
    " = substr(r.kind, 1, instr(r.kind || '.', '.'))"
    " AND (l.due_at > r.due_at OR (l.due_at = r.due_at AND l.id > r.id)))))"
    " ORDER BY r.due_at, r.id"
).bindparams(bindparam("now", type_=UTCDateTime()))
_SQLITE_QUEUE = text(
    "INSERT INTO outbox (dedup_key, case_id, event_seq, channel, recipient, template,"
    " payload, status, attempts, available_at, created_at)"
    r" SELECT 'reminder\:' || r.id || '\:email\:' || r.recipient, r.case_id, NULL, 'email',"
    " r.recipient, r.kind, '{}', 'pending', 0, :now, :now"
    " FROM reminders r WHERE r.id IN ("
    " SELECT id FROM reminders WHERE done_at IS NULL AND due_at <= :now"
    " ORDER BY due_at, id LIMIT :n)"
    " AND r.action = 'notify' AND r.id NOT IN (SELECT value FROM json_each(:superseded_ids))"
    " ON CONFLICT DO NOTHING"
).bindparams(bindparam("now", type_=UTCDateTime()))
_SQLITE_CLAIM = text(
    "UPDATE reminders SET done_at = :now WHERE id IN ("
    " SELECT id FROM reminders WHERE done_at IS NULL AND due_at <= :now"
    " ORDER BY due_at, id LIMIT :n)"
).bindparams(bindparam("now", type_=UTCDateTime()))


@dataclass
class SweepResult:
    claimed: int = 0
    notifications: int = 0
    fired: list[tuple[int, str]] = field(default_factory=list)
    refused: list[tuple[int, str, str]] = field(default_factory=list)


def _claim_postgresql(
    conn: Connection,
    params: dict[str, Any],
) -> tuple[int, int, list[tuple[int, int, str]]]:
    # One row per timer event, or one row of NULLs: the counts are on every row.
    rows = conn.execute(_PG_SWEEP, {**params, "outcome": SUPERSEDED}).all()
    return (
        rows[0].claimed,
        rows[0].queued,
        [(r.id, r.case_id, r.event) for r in rows if r.id is not None],
    )


def _claim_sqlite(
    conn: Connection,
    params: dict[str, Any],
) -> tuple[int, int, list[tuple[int, int, str]]]:
    found = conn.execute(_SQLITE_FIND, params).all()
    superseded = [r.id for r in found if r.action == "notify"]
    queued = conn.execute(_SQLITE_QUEUE, {**params, "superseded_ids": json.dumps(superseded)})
    claimed = conn.execute(_SQLITE_CLAIM, params)
    if superseded:
        conn.execute(update(Reminder).where(Reminder.id.in_(superseded)).values(outcome=SUPERSEDED))
    return (
        claimed.rowcount,
        queued.rowcount,
        [(r.id, r.case_id, r.event) for r in found if r.action == "fire"],
    )


def _overtaken(
    conn: Connection, *, now: dt.datetime, limit: int, settings: Settings
) -> tuple[int, int]:
    """The reminders *before* a deadline that is already past (the sweep did not run for a
    while): none is sent with its own words ("3 days left" would be untrue). Each becomes
    the deadline's own message to the same person ("the answer is overdue",
    ``deadlines.overtaken_kinds``), once per person and message (the latest stands for the
    others), or, where the deadline has none (its lapse tells), is not sent; its outcome
    says which. Rare, so a few plain statements; on PostgreSQL locked like the main claim.
    Returns how many were claimed and how many messages queued."""
    kinds = overtaken_kinds(settings)
    if not kinds:
        return 0, 0
    query = (
        select(Reminder.id, Reminder.case_id, Reminder.kind, Reminder.recipient)
        .join(Case, Case.id == Reminder.case_id)
        .where(
            Reminder.done_at.is_(None),
            Reminder.due_at <= now,
            Reminder.action == "notify",
            Reminder.kind.in_(sorted(kinds)),
            Case.due_at <= now,
        )
        .order_by(Reminder.due_at, Reminder.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(of=Reminder, skip_locked=True)
    rows = conn.execute(query).all()
    if not rows:
        return 0, 0
    latest = {(r.case_id, r.recipient, kinds[r.kind] or r.kind): r.id for r in rows}
    kept = set(latest.values())
    outcomes: dict[str, list[int]] = {}
    queued: list[dict[str, Any]] = []
    for r in rows:
        late = kinds[r.kind]
        if r.id not in kept:
            outcome = SUPERSEDED
        elif late is None:
            outcome = f"{OVERTAKEN}; not sent"
        else:
            outcome = f"{OVERTAKEN}; sent as {late}"
            queued.append(
                {
                    "dedup_key": f"reminder:{r.id}:email:{r.recipient}",
                    "case_id": r.case_id,
                    "event_seq": None,
                    "channel": "email",
                    "recipient": r.recipient,
                    "template": late,
                    "payload": {},
                    "status": "pending",
                    "attempts": 0,
                    "available_at": now,
                    "created_at": now,
                }
            )
        outcomes.setdefault(outcome, []).append(r.id)
    insert_ignoring_duplicates(conn, Outbox.__table__, queued)
    for outcome, ids in outcomes.items():
        conn.execute(
            update(Reminder).where(Reminder.id.in_(ids)).values(done_at=now, outcome=outcome)
        )
    return len(rows), len(queued)


def sweep(
    session: Session, *, now: dt.datetime, settings: Settings, limit: int | None = None
) -> SweepResult:
    """Claim and carry out what is due at ``now``; never commits."""
    result = SweepResult()
    conn = session.connection()
    overtaken, sent = _overtaken(
        conn, now=now, limit=limit or settings.sweep_batch, settings=settings
    )
    candidates = sorted(superseded_kinds(settings))
    params: dict[str, Any] = {"now": now, "n": limit or settings.sweep_batch}
    if conn.dialect.name == "postgresql":
        result.claimed, result.notifications, timers = _claim_postgresql(
            conn, {**params, "candidates": candidates}
        )
    else:
        result.claimed, result.notifications, timers = _claim_sqlite(
            conn, {**params, "candidates": json.dumps(candidates)}
        )
    result.claimed += overtaken
    result.notifications += sent
    timer = Actor.system(Role.TIMER)
    for reminder_id, case_id, event in timers:
        savepoint = session.begin_nested()
        try:
            fire(session, case_id, event, actor=timer, now=now, channel="task", settings=settings)
        except DomainError as exc:
            savepoint.rollback()
            result.refused.append((case_id, event, str(exc)))
            session.execute(
                update(Reminder)
                .where(Reminder.id == reminder_id)
                .values(outcome=f"refused: {exc}"[:300])
            )
        else:
            savepoint.commit()
            result.fired.append((case_id, event))
    return result
