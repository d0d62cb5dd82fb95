"""The transactional outbox: claiming notifications for delivery, recording the outcome,
and what clerks see and replay.

Rows are written by ``fire`` in the transaction of the change. A relay claims them with a
lease (``available_at`` moves into the future; on PostgreSQL through ``FOR UPDATE SKIP
LOCKED``, so relays never claim the same row) and a fresh random ``lease_token``, commits,
and then works row by row: it ``renew``s the row's lease just before delivering it, and
records the outcome (``mark_sent``, ``mark_failed``) or hands unstarted rows back
(``release``). Each of these acts only while the row still carries the relay's token, so a
relay whose lease ran out (a slow mail server, a long batch) finds the row taken over and
leaves it alone instead of sending it a second time. A relay that dies mid-delivery loses
nothing: the lease runs out and another relay tries again. Failures back off exponentially;
past the maximum number of attempts a row is dead-lettered until a clerk retries it.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from config.procedure import get_procedure
from config.settings import Settings, get_settings
from models import (
    Case,
    CaseEvent,
    Institution,
    Offering,
    Outbox,
    OutboxStatus,
    Programme,
    Student,
    User,
)
from workflow.cases.guards import decision_events
from workflow.errors import NotFound, ValidationFailed
from workflow.office.zones import case_zones
from workflow.texts import format_instant


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    dedup_key: str
    case_id: int | None  # None: a message about no case (an invitation)
    event_seq: int | None
    channel: str
    recipient: str
    template: str
    payload: dict[str, Any]
    attempts: int
    # The claim's token: only its holder may renew the lease, record the outcome or release.
    lease: str = ""


def claim(
    session: Session,
    *,
    now: dt.datetime,
    settings: Settings,
    limit: int = 100,
    ids: list[int] | None = None,
) -> list[Claimed]:
    """Reserve up to ``limit`` due rows for delivery: a lease of ``outbox_lease_seconds``
    under a fresh token that the rows' ``Claimed`` carry (and a row's earlier holder lacks)."""
    due = (
        select(Outbox.id)
        .where(Outbox.status == OutboxStatus.PENDING.value, Outbox.available_at <= now)
        .order_by(Outbox.available_at, Outbox.id)
        .limit(limit)
    )
    if ids is not None:
        due = due.where(Outbox.id.in_(ids))
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    lease = now + dt.timedelta(seconds=settings.outbox_lease_seconds)
    token = secrets.token_hex(16)
    rows = session.execute(
        update(Outbox)
        .where(Outbox.id.in_(due.scalar_subquery()))
        .values(available_at=lease, attempts=Outbox.attempts + 1, lease_token=token)
        .returning(
            Outbox.id,
            Outbox.dedup_key,
            Outbox.case_id,
            Outbox.event_seq,
            Outbox.channel,
            Outbox.recipient,
            Outbox.template,
            Outbox.payload,
            Outbox.attempts,
            Outbox.lease_token,
        )
        .execution_options(synchronize_session=False)
    ).all()
    return sorted((Claimed(*r) for r in rows), key=lambda c: c.id)


def _held(item: Claimed) -> Any:
    """The row of ``item`` as long as its claim's holder still holds it (a row lock on
    PostgreSQL for the statement it is part of)."""
    return (
        (Outbox.id == item.id)
        & (Outbox.lease_token == item.lease)
        & (Outbox.status == OutboxStatus.PENDING.value)
    )


def renew(session: Session, item: Claimed, *, now: dt.datetime, settings: Settings) -> bool:
    """Extend the lease of ``item`` to a full ``outbox_lease_seconds`` from ``now``, right
    before it is delivered. False: the lease ran out and another relay claimed the row (or a
    clerk put it back in line): the caller must not deliver it."""
    lease = now + dt.timedelta(seconds=settings.outbox_lease_seconds)
    done = session.execute(update(Outbox).where(_held(item)).values(available_at=lease))
    return bool(done.rowcount)  # type: ignore[attr-defined]


def mark_sent(session: Session, item: Claimed, *, now: dt.datetime) -> bool:
    """Record ``item`` as delivered, only by the holder of its lease; False if another relay
    holds the row now (it will deliver it again, under the same Message-ID)."""
    done = session.execute(
        update(Outbox)
        .where(_held(item))
        .values(status=OutboxStatus.SENT.value, sent_at=now, last_error=None, lease_token=None)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def mark_failed(
    session: Session, item: Claimed, *, now: dt.datetime, error: str, settings: Settings
) -> str | None:
    """Record a failed attempt: back off, or dead-letter after the maximum attempts. Only by
    the holder of its lease: None (and nothing recorded) if another relay holds the row now."""
    attempts = session.scalar(select(Outbox.attempts).where(_held(item)))
    if attempts is None:
        return None
    if attempts >= settings.outbox_max_attempts:
        status, retry_at = OutboxStatus.DEAD.value, now
    else:
        status = OutboxStatus.PENDING.value
        retry_at = now + dt.timedelta(
            seconds=settings.outbox_backoff_seconds * 2 ** max(0, attempts - 1)
        )
    done = session.execute(
        update(Outbox)
        .where(_held(item))
        .values(status=status, available_at=retry_at, last_error=error[:1000], lease_token=None)
    )
    return status if done.rowcount else None  # type: ignore[attr-defined]


def release(session: Session, items: list[Claimed], *, now: dt.datetime) -> int:
    """Hand back claimed rows this relay will not start (its time is up): due again at once
    for any relay, and the claim does not count as an attempt. Rows another relay holds by
    now are left alone. Returns how many were handed back."""
    released = 0
    for lease in {item.lease for item in items}:
        done = session.execute(
            update(Outbox)
            .where(
                Outbox.id.in_([item.id for item in items if item.lease == lease]),
                Outbox.lease_token == lease,
                Outbox.status == OutboxStatus.PENDING.value,
            )
            .values(available_at=now, attempts=Outbox.attempts - 1, lease_token=None)
        )
        released += done.rowcount  # type: ignore[attr-defined]
    return released


def retry(
    session: Session, outbox_id: int, *, now: dt.datetime, settings: Settings | None = None
) -> None:
    """Put a dead-lettered (or pending) row back in line for immediate delivery."""
    row = session.get(Outbox, outbox_id)
    if row is None:
        raise NotFound(f"outbox row {outbox_id} not found")
    config = settings or get_settings()
    zone = (
        case_zones(session, [row.case_id], config).get(row.case_id)
        if row.case_id is not None
        else None
    ) or config.zone
    if row.status == OutboxStatus.SENT.value:
        sent = format_instant(row.sent_at, zone) if row.sent_at else "an unknown time"
        raise ValidationFailed(f"outbox row {outbox_id} was delivered at {sent}; nothing to retry")
    if row.lease_token is not None and row.available_at > now:
        # A relay holds it and may be sending it right now: another claim would send it twice.
        raise ValidationFailed(
            f"outbox row {outbox_id} is being delivered by a relay (its lease runs until "
            f"{format_instant(row.available_at, zone)}); retry it only if it fails"
        )
    row.status, row.available_at, row.attempts = OutboxStatus.PENDING.value, now, 0
    row.lease_token = None


def listing(
    session: Session,
    *,
    failed_only: bool = False,
    limit: int = 100,
) -> list[dict[str, Any]]:
    query = select(Outbox).order_by(Outbox.id.desc()).limit(limit)
    if failed_only:
        query = query.where(
            (Outbox.status == OutboxStatus.DEAD.value)
            | (Outbox.last_error.is_not(None) & (Outbox.status == OutboxStatus.PENDING.value))
        )
    return [
        {
            "id": r.id,
            "case_id": r.case_id,
            "channel": r.channel,
            "recipient": r.recipient,
            "template": r.template,
            "status": r.status,
            "attempts": r.attempts,
            "available_at": r.available_at,
            "sent_at": r.sent_at,
            "last_error": r.last_error,
        }
        for r in session.scalars(query)
    ]


def pending_count(session: Session) -> int:
    from sqlalchemy import func

    return (
        session.scalar(select(func.count()).where(Outbox.status == OutboxStatus.PENDING.value)) or 0
    )


@dataclass(frozen=True, slots=True)
class Moment:
    """What was true when one event of a case happened, as its notifications tell it."""

    event: str
    state: str
    at: dt.datetime
    data: dict[str, Any]
    due_at: dt.datetime | None
    due_kind: str | None
    appeal_ends_at: dt.datetime | None
    decision: dict[str, Any] | None

    @property
    def message(self) -> str | None:
        """The free text the event carries (a question, an answer, an objection, the board's
        reasons), which its messages quote; a refusal's reasons per criterion are no quote."""
        for key in ("message", "reasons"):
            value = self.data.get(key)
            if isinstance(value, str) and value.strip():
                return value
        return None


def _when(value: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else None


def moment(
    session: Session, case_id: int, seq: int, *, payload: dict[str, Any] | None = None
) -> Moment | None:
    """The facts of event ``seq`` of case ``case_id`` at its own moment: its state and data
    from the audit event, the clocks it left from its outbox rows (``fire`` writes them
    there; ``payload``: one of those rows' payload, if the caller has it), and the decision
    standing then, kept by the latest event up to it that decided.

    None when the event's outbox rows carry no clocks (queued by a Recog before messages
    carried their moment, or an event that notified nobody): the caller then tells the case
    as it stands, as that Recog did.
    """
    event = session.execute(
        select(CaseEvent.event, CaseEvent.to_state, CaseEvent.at, CaseEvent.data).where(
            CaseEvent.case_id == case_id, CaseEvent.seq == seq
        )
    ).one_or_none()
    if event is None:
        raise NotFound(f"case {case_id} has no event {seq}; its outbox row points nowhere")
    if payload is None:
        payload = session.scalar(
            select(Outbox.payload)
            .where(Outbox.case_id == case_id, Outbox.event_seq == seq)
            .order_by(Outbox.id)
            .limit(1)
        )
    if not isinstance(payload, dict) or "due_kind" not in payload:
        return None
    data = event.data or {}
    return Moment(
        event=event.event,
        state=event.to_state,
        at=event.at,
        data=data,
        due_at=_when(payload.get("due_at")),
        due_kind=payload.get("due_kind"),
        appeal_ends_at=_when(payload.get("appeal_ends_at")),
        decision=data["decision"] if "decision" in data else _standing(session, case_id, seq),
    )


def _standing(session: Session, case_id: int, seq: int) -> dict[str, Any] | None:
    """The decision standing before event ``seq``: the one the latest deciding event kept."""
    # Newest first, stopping at the first decision: usually the event just before.
    earlier = session.execute(
        select(CaseEvent.event, CaseEvent.data)
        .where(CaseEvent.case_id == case_id, CaseEvent.seq < seq)
        .order_by(CaseEvent.seq.desc())
    )
    deciding = decision_events(get_procedure())
    for name, data in earlier:
        if data and "decision" in data:
            return dict(data["decision"])
        if name in deciding:
            # Decided before events kept their decision (an older Recog, a case in its
            # appeal window at the upgrade): the case's decision is the best there is.
            return session.scalar(select(Case.decision).where(Case.id == case_id))
    return None


@dataclass(frozen=True, slots=True)
class Addressee:
    email: str | None
    name: str
    language: str


def context(session: Session, item: Claimed) -> tuple[Addressee, dict[str, Any], str | None]:
    """Who receives ``item``, the facts its message is rendered from, and the institution's
    code (for webhooks). The addressee and the names are read at delivery time; what an
    event's message says happened (state, deadline, decision, quoted text) is that event's
    ``moment``. A reminder (no event) tells the case as it is when it is sent."""
    row = session.execute(
        select(Case, Student, Offering, Institution.name.label("partner_name"))
        .join(Student, Student.id == Case.student_id)
        .join(Offering, Offering.id == Case.offering_id)
        .join(Institution, Institution.id == Offering.institution_id)
        .where(Case.id == item.case_id)
    ).one()
    case, student, offering = row.Case, row.Student, row.Offering
    home = session.get(Institution, case.institution_id)
    assert home is not None
    if item.recipient == "student":
        to = Addressee(student.email, student.name, student.preferred_language)
    elif item.recipient == "examiner" and case.examiner_id is not None:
        user = session.get(User, case.examiner_id)
        assert user is not None
        to = Addressee(user.email, user.display_name, user.preferred_language)
    elif item.recipient == "board":
        board = session.execute(
            select(User)
            .where(
                User.institution_id == home.id,
                User.role == "board",
                User.active.is_(True),
                User.email.is_not(None),
            )
            .limit(1)
        ).scalar()
        to = (
            Addressee(board.email, board.display_name, board.preferred_language)
            if board
            else Addressee(home.office_email, home.name, "de")
        )
    else:
        to = Addressee(home.office_email, home.name, "de")
    programme = session.get(Programme, case.programme_id) if case.programme_id else None
    facts = {
        "case_id": case.id,
        "state": case.state,
        "student_name": student.name,
        "student_id": student.id,
        "course_title": offering.title,
        "course_code": offering.code,
        "term": offering.term,
        "partner_name": row.partner_name,
        "due_kind": case.due_kind,
        "due_at": case.due_at,
        "appeal_ends_at": case.appeal_ends_at,
        "decision": case.decision,
        "office_name": home.name,
        "office_email": home.office_email,
        "programme": programme.title if programme else None,
        "event": item.payload.get("event"),
        "seq": item.event_seq,
        "timezone": home.timezone,
    }
    then = (
        None
        if item.event_seq is None
        else moment(session, case.id, item.event_seq, payload=item.payload)
    )
    if then is not None:
        facts.update(
            state=then.state,
            due_kind=then.due_kind,
            due_at=then.due_at,
            appeal_ends_at=then.appeal_ends_at,
            decision=then.decision,
            message=then.message,
            moment=then.at,
        )
    return to, facts, home.code
