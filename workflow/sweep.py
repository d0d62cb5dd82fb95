"""The deadline sweep: carry out every reminder, escalation and timer event that is due.

Set-based, so its cost follows the number of due items, not the number of cases: one
statement claims the due reminders through the partial index on ``due_at`` (PostgreSQL:
``FOR UPDATE SKIP LOCKED``, so two sweeps never take the same row; SQLite: the write lock),
one statement writes the outbox rows for all notifications among them, and the few timer
events (lapse, close) go through ``fire`` as the actor ``timer``. The unique key
(case, kind, due time) means each happens once, however many sweeps run.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    bindparam,
    cast,
    func,
    literal,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from config.settings import Settings
from models import Outbox, Reminder, Role
from workflow.actors import Actor
from workflow.engine import fire
from workflow.errors import DomainError
from workflow.writes import REMINDERS


def _id_set(session: Session, ids: list[int]) -> Any:
    """The claimed ids as ONE bound parameter (a JSON array on SQLite, an array on
    PostgreSQL): ten thousand separate parameters would cost more to compile than to run."""
    if session.get_bind().dialect.name == "postgresql":
        return select(func.unnest(bindparam("ids", ids, type_=ARRAY(Integer)))).scalar_subquery()
    return select(literal_column("value")).select_from(
        func.json_each(bindparam("ids", json.dumps(ids))))


@dataclass
class SweepResult:
    claimed: int = 0
    notifications: int = 0
    fired: list[tuple[int, str]] = field(default_factory=list)
    refused: list[tuple[int, str, str]] = field(default_factory=list)


def sweep(session: Session, *, now: dt.datetime, settings: Settings,
          limit: int | None = None) -> SweepResult:
    """Claim and carry out what is due at ``now``; never commits."""
    result = SweepResult()
    r = REMINDERS.c
    due = (select(r.id).where(r.done_at.is_(None), r.due_at <= now)
           .order_by(r.due_at, r.id).limit(limit or settings.sweep_batch))
    returning = (r.id, r.case_id, r.kind, r.action, r.event, r.recipient, r.due_at)
    if session.get_bind().dialect.name == "postgresql":
        # UPDATE ... FROM (the locked due ids): the planner joins on the primary key instead
        # of hashing the whole table, so the cost stays with the due rows.
        locked = due.with_for_update(skip_locked=True).cte("due")
        claim = (update(REMINDERS).where(r.id == locked.c.id).values(done_at=now)
                 .returning(*returning))
    else:
        claim = (update(REMINDERS).where(r.id.in_(due.scalar_subquery())).values(done_at=now)
                 .returning(*returning))
    # Core, not ORM: ten thousand returned rows need no identity map.
    claimed = session.connection().execute(claim).all()
    result.claimed = len(claimed)
    if not claimed:
        return result
    # Of several reminders of one deadline to one person that fell due together (a sweep that
    # did not run for a while), only the latest is sent: one "80 %" mail, not "50 %" and "80 %".
    latest: dict[tuple[int, str, str | None], Any] = {}
    for item in claimed:
        if item.action == "notify":
            family = (item.case_id, item.kind.partition(".")[0], item.recipient)
            if family not in latest or item.due_at > latest[family].due_at:
                latest[family] = item
    keep = {item.id for item in latest.values()}
    superseded = [c.id for c in claimed if c.action == "notify" and c.id not in keep]
    if superseded:
        session.execute(update(Reminder).where(Reminder.id.in_(superseded))
                        .values(outcome="superseded by a later reminder"))
    # All notifications of this sweep in one statement; the dedup key keeps them unique.
    key = (literal("reminder:") + cast(Reminder.id, String) + literal(":email:")
           + Reminder.recipient)
    notify = select(
        key, Reminder.case_id, literal(None, Integer), literal("email"), Reminder.recipient,
        Reminder.kind, literal_column("'{}'"), literal("pending"), literal(0),
        bindparam("now_a", now, type_=Outbox.__table__.c.available_at.type),
        bindparam("now_c", now, type_=Outbox.__table__.c.created_at.type),
    ).where(Reminder.id.in_(_id_set(session, [c.id for c in claimed])),
            Reminder.action == "notify", Reminder.outcome.is_(None))
    dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    written = session.execute(dialect_insert(Outbox).from_select(
        ["dedup_key", "case_id", "event_seq", "channel", "recipient", "template", "payload",
         "status", "attempts", "available_at", "created_at"], notify)
        .on_conflict_do_nothing().returning(Outbox.id))
    result.notifications = len(written.all())
    timer = Actor.system(Role.TIMER)
    for item in claimed:
        if item.action != "fire" or item.event is None:
            continue
        savepoint = session.begin_nested()
        try:
            fire(session, item.case_id, item.event, actor=timer, now=now, channel="task",
                 settings=settings)
        except DomainError as exc:
            savepoint.rollback()
            result.refused.append((item.case_id, item.event, str(exc)))
            session.execute(update(Reminder).where(Reminder.id == item.id)
                            .values(outcome=f"refused: {exc}"[:300]))
        else:
            savepoint.commit()
            result.fired.append((item.case_id, item.event))
    return result
