"""Fire an event on a case: the one function through which every change of a case goes.

``fire`` locks the case row, checks who acts and whether the event may happen now, moves the
state through the procedure's static machine, appends a hash-chained audit event, recomputes
the case's clocks and writes the notification intents into the outbox, all inside the
caller's transaction. It never commits: the boundary (request, task run, CLI command) does.

The hot path (``_load`` of one case and ``writes.write``) runs Core statements compiled once
on the DB-API cursor of the session's own connection (``workflow.cases.fastread``): one read (with
``FOR UPDATE`` on PostgreSQL; SQLite transactions already hold the write lock via ``BEGIN
IMMEDIATE``) and a compare-and-swap ``UPDATE ... WHERE version = :old`` followed by the
inserts; on PostgreSQL the writes travel in one pipeline, because a transition there is bound
by round trips (see bench/transitions.py). Batches (``fire_many``) check each case in Python as
``fire`` does and write with the same statements (``writes.write_many``: each statement sent
once for all rows).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, column, func, select
from sqlalchemy.orm import Session

from config.procedure import EventDef, Procedure, get_procedure
from config.settings import Settings, get_settings
from models import Case, Institution, Offering
from workflow.cases import audit, fastread
from workflow.cases import storage as writes
from workflow.cases.deadlines import Clocks, Scheduled, next_clocks, schedule
from workflow.cases.guards import GUARDS, GuardContext, checked, decides
from workflow.decisions import precedents
from workflow.errors import Conflict, IllegalTransition, NotFound, ValidationFailed
from workflow.policy.actors import Actor, acting_role, check_may_fire, may_see
from workflow.policy.permissions import Action, require

# The most an audit event's data may hold, as canonical JSON: the procedure bounds each field
# (config/procedure.py), a decision adds its conversion; the trail is append-only, so what
# enters it must stay readable (served, exported, verified) for ever.
MAX_EVENT_DATA = 256 * 1024


class StaleVersion(Conflict):
    """The caller acted on an older version of the case (HTTP If-Match, CLI --version)."""


@dataclass(frozen=True, slots=True)
class FiredEvent:
    """What one call of ``fire`` (or ``record``) wrote: the audit event and the new clocks."""

    case_id: int
    seq: int
    event: str
    from_state: str | None
    to_state: str
    actor_role: str
    actor_id: int | None
    at: dt.datetime
    data: dict[str, Any]
    hash: str
    due_at: dt.datetime | None
    due_kind: str | None
    outbox: tuple[str, ...]


class _Subject:
    """The stand-in the static machine moves for the duration of one call: the ORM row stays
    plain data and nothing but this module ever assigns a state."""

    __slots__ = ("state",)

    def __init__(self, state: str) -> None:
        self.state = state


_CASE_COLUMNS = (
    Case.id,
    Case.institution_id,
    Case.student_id,
    Case.programme_id,
    Case.examiner_id,
    Case.state,
    Case.version,
    Case.chain_head,
    Case.due_at,
    Case.due_kind,
    Case.decision_due_at,
    Case.decision_paused_seconds,
    Case.appeal_ends_at,
    Case.result,
    Offering.start_date.label("offering_start"),
    Offering.end_date.label("offering_end"),
    Offering.exam_date.label("offering_exam"),
    Offering.status.label("offering_status"),
    Offering.code.label("offering_code"),
    Offering.term.label("offering_term"),
    Institution.timezone.label("timezone"),
)


_LOAD_BASE = (
    select(*_CASE_COLUMNS)
    .join(Offering, Offering.id == Case.offering_id)
    .join(Institution, Institution.id == Case.institution_id)
)
_LOAD = _LOAD_BASE.where(Case.id == bindparam("case_id"))
_LOAD_LOCKED = _LOAD.with_for_update(of=Case)


class CaseRow(NamedTuple):
    """One loaded case (the columns of ``_LOAD``), as the fast path hands it back."""

    id: int
    institution_id: int
    student_id: int
    programme_id: int | None
    examiner_id: int | None
    state: str
    version: int
    chain_head: str
    due_at: dt.datetime | None
    due_kind: str | None
    decision_due_at: dt.datetime | None
    decision_paused_seconds: int | None
    appeal_ends_at: dt.datetime | None
    result: dict[str, Any] | None
    offering_start: dt.date
    offering_end: dt.date
    offering_exam: dt.date | None
    offering_status: str
    offering_code: str
    offering_term: str
    timezone: str | None


if CaseRow._fields != tuple(_LOAD.selected_columns.keys()):  # pragma: no cover
    raise RuntimeError("CaseRow must list the columns of _LOAD, in order")
# The columns every event writes that a loaded row carries (all but updated_at, always new).
_ROW_BASE = tuple(c for c in writes.BASE if c in CaseRow._fields)
_row_base = operator.attrgetter(*_ROW_BASE)


def _load_statement(dialect: str) -> Any:
    """One case, locked (``FOR UPDATE`` on PostgreSQL; SQLite transactions hold the write
    lock already)."""
    return _LOAD_LOCKED if dialect == "postgresql" else _LOAD


def _load_many_statement(dialect: str) -> Any:
    """Many cases by id, in id order (locked on PostgreSQL): the ids as one JSON array on
    SQLite, one integer array on PostgreSQL, so that one compiled statement serves any
    number of them."""
    if dialect == "sqlite":
        ids: Any = select(column("value")).select_from(func.json_each(bindparam("ids")))
        return _LOAD_BASE.where(Case.id.in_(ids)).order_by(Case.id)
    query = _LOAD_BASE.where(Case.id == func.any(bindparam("ids"))).order_by(Case.id)
    return query.with_for_update(of=Case)


_LOAD_ONE = fastread.Reads(_load_statement)
_LOAD_MANY = fastread.Reads(_load_many_statement)


def _load(session: Session, case_id: int) -> Any:
    """The case row with its offering's dates and its institution's zone, locked; None if
    there is no such case."""
    return _load_on(session.connection(), case_id)


def _load_on(conn: Connection, case_id: int) -> Any:
    """``_load`` on the session's connection (compiled once, run on its DB-API cursor)."""
    compiled = _LOAD_ONE.get(conn.dialect, conn.dialect.name)
    rows = fastread.fetch_on(conn, compiled, {"case_id": case_id})
    return CaseRow._make(rows[0]) if rows else None


def _load_many(session: Session, case_ids: list[int]) -> list[CaseRow]:
    """The rows of many cases, in id order (locked on PostgreSQL)."""
    conn = session.connection()
    ids: Any = json.dumps(case_ids) if conn.dialect.name == "sqlite" else case_ids
    compiled = _LOAD_MANY.get(conn.dialect, conn.dialect.name)
    return [CaseRow._make(r) for r in fastread.fetch_on(conn, compiled, {"ids": ids})]


@functools.cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def case_ref(case_id: int) -> str:
    return f"case {case_id}"


def _instant(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _notifications(
    proc_notify: tuple[str, ...],
    case_id: int,
    seq: int,
    event: str,
    case_values: dict[str, Any],
    has_examiner: bool,
    now: dt.datetime,
    webhooks: bool,
) -> list[dict[str, Any]]:
    targets = [("email", r) for r in proc_notify if r != "examiner" or has_examiner]
    if webhooks and proc_notify:
        targets.append(("webhook", "campus"))
    if not targets:
        return []
    # The clocks as this event left them: a message delivered late (the broker was down)
    # still names the deadline of its own moment, not whatever the case has run into since.
    # The audit event has no place for them; they are ids and instants, no personal data.
    payload = {
        "case_id": case_id,
        "seq": seq,
        "event": event,
        "state": case_values["state"],
        "due_at": _instant(case_values["due_at"]),
        "due_kind": case_values["due_kind"],
        "appeal_ends_at": _instant(case_values["appeal_ends_at"]),
    }
    return [
        {
            "dedup_key": f"case:{case_id}:{seq}:{channel}:{recipient}",
            "case_id": case_id,
            "event_seq": seq,
            "channel": channel,
            "recipient": recipient,
            "template": event,
            "payload": payload,
            "status": "pending",
            "attempts": 0,
            "available_at": now,
            "created_at": now,
        }
        for channel, recipient in targets
    ]


def _build(
    row: Any,
    *,
    event: str,
    to_state: str,
    actor: Actor,
    role: str,
    channel: str,
    now: dt.datetime,
    data: dict[str, Any],
    updates: dict[str, Any],
    notify: tuple[str, ...],
    plan: list[Scheduled] | None = None,
    webhooks: bool = False,
) -> tuple[writes.Write, FiredEvent]:
    """Everything one audit event writes (case update, audit row, outbox rows, reminder
    plan), computed in Python; nothing is sent to the database here."""
    seq = row.version + 1
    # The fields are bounded by the procedure (``_checked_data``); this is the last line
    # before the append-only trail, for what the guards and ``record`` add.
    try:
        text = audit.canonical(data)
    except (RecursionError, ValueError):
        text = None
    if text is None or len(text) > MAX_EVENT_DATA:
        raise ValidationFailed(
            f"cannot {event} {case_ref(row.id)}: its data is too large or too deeply nested "
            f"for the audit trail (at most {MAX_EVENT_DATA} characters)"
        )
    data_digest = hashlib.sha256(text.encode()).hexdigest()
    new_hash = audit.chain_hash(
        row.chain_head,
        case_id=row.id,
        seq=seq,
        event=event,
        from_state=row.state,
        to_state=to_state,
        actor_role=role,
        actor_id=actor.id,
        channel=channel,
        at=now,
        data_digest=data_digest,
    )
    if isinstance(row, CaseRow):  # updated_at is set below
        values = dict(zip(_ROW_BASE, _row_base(row), strict=True))
    else:  # a stand-in (a case being opened) may lack columns
        values = {col: getattr(row, col, None) for col in writes.BASE}
    values.update(updates, state=to_state, version=seq, chain_head=new_hash, updated_at=now)
    examiner = updates.get("examiner_id", row.examiner_id)
    outbox = _notifications(notify, row.id, seq, event, values, examiner is not None, now, webhooks)
    if plan is not None and (values["due_at"], values["due_kind"]) == (
        getattr(row, "due_at", None),
        getattr(row, "due_kind", None),
    ):
        plan = None  # the deadline did not move: its reminders stand as planned
    w = writes.Write(
        case_id=row.id,
        old_version=row.version,
        case_values=values,
        event_row={
            "case_id": row.id,
            "seq": seq,
            "event": event,
            "from_state": row.state,
            "to_state": to_state,
            "actor_role": role,
            "actor_id": actor.id,
            "channel": channel,
            "at": now,
            "data": data,
            "data_digest": data_digest,
            "prev_hash": row.chain_head,
            "hash": new_hash,
        },
        outbox_rows=outbox,
        plan=None
        if plan is None
        else [
            {
                "case_id": row.id,
                "kind": p.kind,
                "due_at": p.due_at,
                "action": p.action,
                "recipient": p.recipient,
                "event": p.event,
            }
            for p in plan
        ],
    )
    fired = FiredEvent(
        case_id=row.id,
        seq=seq,
        event=event,
        from_state=row.state,
        to_state=to_state,
        actor_role=role,
        actor_id=actor.id,
        at=now,
        data=data,
        hash=new_hash,
        due_at=values["due_at"],
        due_kind=values["due_kind"],
        outbox=tuple(r["dedup_key"] for r in outbox),
    )
    return w, fired


def _conflict(session: Session, case_id: int, event: str) -> Conflict:
    current = session.execute(select(Case.state).where(Case.id == case_id)).scalar()
    return Conflict(
        f"cannot {event} {case_ref(case_id)}: it was changed by someone else "
        f"meanwhile and is now {current}; reload it and try again"
    )


def _append(session: Session, row: Any, **kwargs: Any) -> FiredEvent:
    """Build and write one audit event after a compare-and-swap on the case version."""
    w, fired = _build(row, **kwargs)
    if not writes.write(session.connection(), w):
        raise _conflict(session, row.id, fired.event)
    if w.outbox_rows:
        # Read by the boundary after commit to ask a worker to deliver at once.
        session.info["recog_outbox_written"] = True
    return fired


def _check_now(now: dt.datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")


def _event_def(proc: Procedure, event: str) -> EventDef:
    ev = proc.events.get(event)
    if ev is None:
        raise ValidationFailed(f"unknown event {event!r}; events are: {', '.join(proc.events)}")
    return ev


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value in ([], {})


def _checked_data(ev: EventDef, role: str, data: dict[str, Any] | None, ref: str) -> dict[str, Any]:
    """The event data, checked against the fields the procedure declares for ``ev``: a field
    it does not take, one the acting role may not give, one of the wrong type or a missing
    required one is refused before anything is written (event data ends up in the audit
    trail, so nobody may smuggle keys into it). Text fields keep numbers as their text."""
    checked = dict(data or {})
    fields = ev.fields
    for key, value in checked.items():
        spec = fields.get(key)
        if spec is None:
            raise ValidationFailed(
                f"cannot {ev.name} {ref}: it takes no field {key!r}; {ev.name} takes {ev.takes}"
            )
        if role not in spec.by:
            raise ValidationFailed(
                f"cannot {ev.name} {ref}: {key} is given by the {' or '.join(spec.by)}, "
                f"not by the {role}"
            )
        try:
            checked[key] = spec.bounded(value)
        except ValueError as exc:
            raise ValidationFailed(f"cannot {ev.name} {ref}: {key} {exc}") from None
    for spec in ev.required:
        if role in spec.by and _missing(checked.get(spec.name)):
            raise ValidationFailed(
                f"cannot {ev.name} {ref}: {spec.name} is required; {ev.name} takes {ev.takes}"
            )
    return checked


def _transition(
    session: Session,
    row: Any,
    ev: EventDef,
    *,
    actor: Actor,
    now: dt.datetime,
    data: dict[str, Any] | None,
    channel: str,
    proc: Procedure,
    settings: Settings,
    cache: dict[Any, Any] | None = None,
) -> tuple[writes.Write, FiredEvent]:
    """Check and compute one transition of a loaded (and locked) case row."""
    ref = case_ref(row.id)
    if row.state not in ev.sources:
        raise IllegalTransition(proc.explain_illegal(ref, ev.name, row.state))
    role = acting_role(actor, ev)
    if role is None:
        check_may_fire(actor, ev, ref)  # raises, naming who may
    assert role is not None
    # Declared fields only (config/procedure.toml): no event declares ``decision``, which
    # the guards below record from the decision's own fields, so none can be smuggled in.
    data = _checked_data(ev, role, data, ref)
    updates: dict[str, Any]
    if ev.guards:
        ctx = GuardContext(
            session,
            row,
            actor,
            now,
            data,
            settings,
            ev.name,
            ref,
            cache=cache if cache is not None else {},
        )
        for guard in ev.guards:
            GUARDS[guard](ctx)
        fired_data, updates = ctx.data, ctx.updates
        if "decision" in updates:
            # The event keeps the decision it makes, whole: the case's decision is replaced by
            # a later one (an appeal granted) and modules change in place (title, credits,
            # regulation version), yet this event's notice and messages must say what was
            # decided at its moment, however late they go out. Inside ``data`` the decision
            # is covered by the hash chain (through the data digest) like everything else.
            fired_data["decision"] = updates["decision"]
    else:
        fired_data, updates = data, {}

    # In a batch, the machine moves each source state once (its transitions carry no
    # conditions: the same event from the same state always ends in the same state).
    moved = None if cache is None else cache.get(("machine", ev.name, row.state))
    if moved is None:
        subject = _Subject(row.state)
        proc.machine.events[ev.name].trigger(subject)
        moved = subject.state
        if cache is not None:
            cache[("machine", ev.name, row.state)] = moved
    result = updates.get("result", row.result) or {}
    result_date = dt.date.fromisoformat(result["date"]) if result.get("date") else None
    zone = _zone(row.timezone or settings.timezone)
    clocks = next_clocks(
        proc.states[moved].deadline,
        before=Clocks(
            row.due_at,
            row.due_kind,
            row.decision_due_at,
            row.decision_paused_seconds,
            row.appeal_ends_at,
        ),
        now=now,
        zone=zone,
        settings=settings,
        start_date=row.offering_start,
        course_end=row.offering_exam or row.offering_end,
        result_date=result_date,
    )
    plan = schedule(clocks, now=now, zone=zone, settings=settings)
    updates.update(
        due_at=clocks.due_at,
        due_kind=clocks.due_kind,
        decision_due_at=clocks.decision_due_at,
        decision_paused_seconds=clocks.decision_paused_seconds,
        appeal_ends_at=clocks.appeal_ends_at,
    )
    return _build(
        row,
        event=ev.name,
        to_state=moved,
        actor=actor,
        role=role,
        channel=channel,
        now=now,
        data=fired_data,
        updates=updates,
        notify=ev.notify,
        plan=plan,
        webhooks=bool(settings.webhooks),
    )


def fire(
    session: Session,
    case_id: int,
    event: str,
    *,
    actor: Actor,
    now: dt.datetime,
    data: dict[str, Any] | None = None,
    channel: str = "api",
    expected_version: int | None = None,
    procedure: Procedure | None = None,
    settings: Settings | None = None,
) -> FiredEvent:
    """Fire ``event`` on case ``case_id`` as ``actor`` at ``now``; never commits.

    Raises ``NotFound`` (no such case, or not visible to the actor), ``ValidationFailed``
    (unknown event; a field the event does not take, of the wrong type, or missing when
    required: see the procedure's ``fields``), ``IllegalTransition`` (not possible in the
    current state; the message says what must happen first), ``Forbidden`` (wrong role or
    not theirs), ``GuardFailed`` (a precondition is missing) and ``Conflict``/``StaleVersion``
    (changed concurrently).
    """
    _check_now(now)
    proc = checked(procedure or get_procedure())
    settings = settings or get_settings()
    ev = _event_def(proc, event)
    conn = session.connection()
    row = _load_on(conn, case_id)
    if row is None or not may_see(actor, row):
        raise NotFound(f"{case_ref(case_id)} not found")
    if expected_version is not None and row.version != expected_version:
        raise StaleVersion(
            f"cannot {event} {case_ref(case_id)}: you saw version "
            f"{expected_version}, but it is now at version {row.version} "
            f"({row.state}); reload it"
        )
    w, fired = _transition(
        session,
        row,
        ev,
        actor=actor,
        now=now,
        data=data,
        channel=channel,
        proc=proc,
        settings=settings,
    )
    if not writes.write(conn, w):
        raise _conflict(session, case_id, event)
    if w.outbox_rows:
        session.info["recog_outbox_written"] = True
    if decides(ev):
        precedents.record(session, [fired], settings=settings)
    return fired


def fire_many(
    session: Session,
    case_ids: list[int],
    event: str,
    *,
    actor: Actor,
    now: dt.datetime,
    data_for: Callable[[Any], dict[str, Any]],
    channel: str = "api",
    settings: Settings | None = None,
) -> list[FiredEvent]:
    """Fire ``event`` on many cases at once, all or none: each case is checked exactly as
    ``fire`` checks it (the first refusal aborts the whole batch, naming its case), and the
    writes go out set-based (a handful of statements, not a handful per case).
    ``data_for(row)`` gives each case its own data (e.g. its student's converted grade)."""
    _check_now(now)
    proc = checked(get_procedure())
    settings = settings or get_settings()
    ev = _event_def(proc, event)
    ids = sorted(set(case_ids))  # a fixed lock order: two batches never deadlock
    rows = {r.id: r for r in _load_many(session, ids)}
    prepared = []
    cache: dict[Any, Any] = {}
    for case_id in ids:
        row = rows.get(case_id)
        if row is None or not may_see(actor, row):
            raise NotFound(f"{case_ref(case_id)} not found")
        prepared.append(
            _transition(
                session,
                row,
                ev,
                actor=actor,
                now=now,
                data=data_for(row),
                channel=channel,
                proc=proc,
                settings=settings,
                cache=cache,
            )
        )
    fired = [f for _, f in prepared]
    # Inside a savepoint: a lost compare-and-swap leaves nothing of the batch behind, even
    # for a caller that catches the Conflict and carries on.
    savepoint = session.begin_nested()
    try:
        conflicts = writes.write_many(session.connection(), [w for w, _ in prepared])
        if not conflicts and decides(ev):
            precedents.record(
                session,
                fired,
                settings=settings,
                decisions={
                    w.case_id: w.case_values["decision"]
                    for w, _ in prepared
                    if "decision" in w.case_values
                },
            )
    except BaseException:
        savepoint.rollback()
        raise
    if conflicts:
        savepoint.rollback()
        raise _conflict(session, conflicts[0], event)
    savepoint.commit()
    if any(w.outbox_rows for w, _ in prepared):
        session.info["recog_outbox_written"] = True
    return fired


def record(
    session: Session,
    case_id: int,
    event: str,
    *,
    actor: Actor,
    now: dt.datetime,
    data: dict[str, Any],
    channel: str,
    updates: dict[str, Any] | None = None,
    action: Action,
) -> FiredEvent:
    """Append an audit event that does not change the state (assigning an examiner,
    attaching a document, setting targets), under the same lock, chain and version rules;
    ``action`` names the row of the permission table that says who may."""
    _check_now(now)
    row = _load(session, case_id)
    if row is None:
        raise NotFound(f"{case_ref(case_id)} not found")
    require(actor, action, row)
    return _append(
        session,
        row,
        event=event,
        to_state=row.state,
        actor=actor,
        role=actor.role.value,
        channel=channel,
        now=now,
        data=data,
        updates=updates or {},
        notify=(),
    )
