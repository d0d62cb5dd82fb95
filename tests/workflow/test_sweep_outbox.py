"""The deadline sweep and the outbox relay in-process, on both engines: what is due is done
once, what is not due is untouched, failures back off and dead-letter, nothing is lost."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from config.settings import load_settings
from models import Case, Outbox, Reminder
from models.db import session_factory
from tasks.delivery import DeliveryError, MemoryTransport, Transports, relay
from tests.factories import CaseFactory, OfferingFactory, Office, bound, home_modules, student_actor
from workflow.cases import outbox
from workflow.cases.deadlines import superseded_kinds
from workflow.cases.engine import fire
from workflow.cases.sweep import sweep

SETTINGS = load_settings(outbox_backoff_seconds=10, outbox_max_attempts=3)


def reminders(session: Session, case_id: int) -> list[tuple[str, dt.datetime, bool]]:
    rows = session.execute(
        select(Reminder.kind, Reminder.due_at, Reminder.done_at)
        .where(Reminder.case_id == case_id)
        .order_by(Reminder.due_at)
    )
    return [(k, d, done is not None) for k, d, done in rows]


def test_entering_a_state_plans_its_reminders_and_leaving_drops_them(
    session: Session,
    network: Office,
) -> None:
    case_id = CaseFactory(
        state="in_review",
        student__matriculation_number="R1",
        student__name="R One",
        student__email="r1@example.org",
    ).id
    kinds = [k for k, _, done in reminders(session, case_id) if not done]
    assert kinds == ["decision.remind50", "decision.remind80", "decision.escalate"]
    at = session.scalar(select(Case.updated_at).where(Case.id == case_id))
    assert at is not None
    fire(
        session,
        case_id,
        "request_info",
        actor=network.examiner,
        now=at + dt.timedelta(hours=1),
        data={"message": "Syllabus?"},
    )
    pending = [k for k, _, done in reminders(session, case_id) if not done]
    assert pending == ["info_reply.remind", "info_reply.passed"]


def test_sweep_does_what_is_due_once_and_nothing_else(session: Session, network: Office) -> None:
    case_id = CaseFactory(
        state="course_passed",
        offering=OfferingFactory(past=True),
        student__matriculation_number="R2",
        student__name="R Two",
        student__email="r2@example.org",
    ).id
    plan = reminders(session, case_id)
    assert [k for k, _, _ in plan] == ["transcript.remind", "transcript.escalate"]
    first_due = plan[0][1]
    early = sweep(session, now=first_due - dt.timedelta(seconds=1), settings=SETTINGS)
    assert early.claimed == 0
    on_time = sweep(session, now=first_due, settings=SETTINGS)
    assert (on_time.claimed, on_time.notifications) == (1, 1)
    again = sweep(session, now=first_due + dt.timedelta(minutes=5), settings=SETTINGS)
    assert again.claimed == 0
    row = session.execute(
        select(Outbox).where(Outbox.case_id == case_id, Outbox.template == "transcript.remind")
    ).scalar_one()
    assert (row.recipient, row.channel, row.status) == ("student", "email", "pending")


def test_overdue_reminders_of_one_deadline_collapse_into_the_latest(
    session: Session,
    network: Office,
) -> None:
    case_id = CaseFactory(
        state="submitted",
        offering=OfferingFactory(past=True),
        student__matriculation_number="R3",
        student__name="R Three",
        student__email="r3@example.org",
    ).id
    # A sweep late, but before the deadline: the 50 % and 80 % reminders are both due.
    plan = {k: d for k, d, _ in reminders(session, case_id)}
    late = plan["decision.remind80"] + dt.timedelta(hours=1)
    assert late < plan["decision.escalate"]
    result = sweep(session, now=late, settings=SETTINGS)
    assert result.claimed == 2
    sent = session.scalars(
        select(Outbox.template).where(Outbox.case_id == case_id, Outbox.template.like("decision.%"))
    )
    # 50 % and 80 % go to the examiner: only the later one.
    assert sorted(sent) == ["decision.remind80"]
    outcomes = dict(
        session.execute(
            select(Reminder.kind, Reminder.outcome).where(
                Reminder.case_id == case_id, Reminder.done_at.is_not(None)
            )
        ).all()
    )
    assert outcomes == {
        "decision.remind50": "superseded by a later reminder",
        "decision.remind80": None,
    }


@pytest.mark.parametrize(
    ("state", "kind", "expected"),
    [
        # The examiner is not told "80 % of the time has passed" after all of it has: the
        # latest reminder becomes the escalation, to the examiner, beside the office's.
        (
            "in_review",
            "decision",
            {("examiner", "decision.escalate"), ("clerk", "decision.escalate")},
        ),
        # The student is not told "3 days left" days after the answer was due.
        (
            "info_requested",
            "info_reply",
            {("student", "info_reply.passed"), ("examiner", "info_reply.passed")},
        ),
        # "Request recognition by ..." after the period: nothing; the lapse tells the student.
        ("transcript_received", "submission", set()),
    ],
)
def test_reminders_before_a_deadline_that_has_passed_are_never_sent_with_their_words(
    session: Session, network: Office, state: str, kind: str, expected: set[tuple[str, str]]
) -> None:
    case_id = CaseFactory(
        state=state, offering=OfferingFactory(past=True), student__matriculation_number="R8"
    ).id
    due = session.scalar(select(Case.due_at).where(Case.id == case_id))
    assert due is not None
    session.execute(update(Outbox).values(status="sent"))  # only the sweep's rows count
    late = due + dt.timedelta(days=6)  # the sweep did not run for days
    result = sweep(session, now=late, settings=SETTINGS)
    sent = set(
        session.execute(
            select(Outbox.recipient, Outbox.template).where(
                Outbox.case_id == case_id, Outbox.status == "pending"
            )
        ).all()
    )
    assert {(r, t) for r, t in sent if t.startswith(f"{kind}.")} == expected
    assert result.notifications == len(expected)
    early = {
        k for (k,) in session.execute(select(Reminder.kind).where(Reminder.case_id == case_id))
    } - {t for _, t in expected}
    outcomes = dict(
        session.execute(
            select(Reminder.kind, Reminder.outcome).where(
                Reminder.case_id == case_id, Reminder.kind.in_(early), Reminder.action == "notify"
            )
        ).all()
    )
    assert outcomes
    assert all(
        o and o.startswith(("overtaken by its deadline", "superseded")) for o in outcomes.values()
    )
    again = sweep(session, now=late + dt.timedelta(minutes=5), settings=SETTINGS)
    assert again.notifications == 0


def test_small_batches_collapse_overdue_reminders_too(session: Session, network: Office) -> None:
    case_id = CaseFactory(
        state="submitted",
        offering=OfferingFactory(past=True),
        student__matriculation_number="R7",
        student__name="R Seven",
        student__email="r7@example.org",
    ).id
    plan = {k: d for k, d, _ in reminders(session, case_id)}
    late = plan["decision.remind80"] + dt.timedelta(hours=1)  # before the deadline
    # One reminder per sweep: the 50 % one is claimed alone, but the 80 % one is due as well.
    results = [sweep(session, now=late, settings=SETTINGS, limit=1) for _ in range(3)]
    assert [(r.claimed, r.notifications) for r in results] == [(1, 0), (1, 1), (0, 0)]
    sent = session.scalars(
        select(Outbox.template).where(Outbox.case_id == case_id, Outbox.template.like("decision.%"))
    )
    assert sorted(sent) == ["decision.remind80"]


def test_only_earlier_reminders_to_the_same_person_can_be_superseded() -> None:
    # decision.remind50 and .remind80 both go to the examiner; every other deadline reminds
    # each person once (e.g. transcript: the student, then the clerk).
    assert superseded_kinds(SETTINGS) == {"decision.remind50"}


def test_sweep_fires_the_timer_events(session: Session, network: Office) -> None:
    lapsing = CaseFactory(
        state="transcript_received",
        student__matriculation_number="R4",
        student__name="R Four",
        student__email="r4@example.org",
    ).id
    closing = CaseFactory(
        state="rejected",
        student__matriculation_number="R5",
        student__name="R Five",
        student__email="r5@example.org",
        targets=home_modules("INF-CC"),
    ).id
    due = session.scalar(
        select(func.max(Reminder.due_at)).where(
            Reminder.case_id.in_([lapsing, closing]), Reminder.action == "fire"
        )
    )
    assert due is not None
    result = sweep(session, now=due + dt.timedelta(minutes=1), settings=SETTINGS)
    assert sorted(result.fired) == sorted([(lapsing, "lapse"), (closing, "close")])
    states = dict(
        session.execute(select(Case.id, Case.state).where(Case.id.in_([lapsing, closing]))).all()
    )
    assert states == {lapsing: "lapsed", closing: "closed"}


def test_a_refused_timer_event_is_recorded_not_lost(session: Session, network: Office) -> None:
    case_id = CaseFactory(
        state="transcript_received",
        student__matriculation_number="R6",
        student__name="R Six",
        student__email="r6@example.org",
    ).id
    lapse = session.execute(
        select(Reminder).where(Reminder.case_id == case_id, Reminder.action == "fire")
    ).scalar_one()
    # The case's deadline moved (an office extended it) but the planned lapse did not.
    session.execute(
        update(Case).where(Case.id == case_id).values(due_at=lapse.due_at + dt.timedelta(days=30))
    )
    result = sweep(session, now=lapse.due_at + dt.timedelta(minutes=1), settings=SETTINGS)
    assert result.fired == []
    assert result.refused[0][:2] == (case_id, "lapse")
    session.refresh(lapse)
    assert lapse.outcome is not None
    assert lapse.outcome.startswith("refused: cannot lapse")
    assert session.scalar(select(Case.state).where(Case.id == case_id)) == "transcript_received"


class FailingMail:
    def __init__(self) -> None:
        self.calls = 0

    def send(self, message: object) -> None:
        self.calls += 1
        raise DeliveryError("SMTP 127.0.0.1:1: connection refused")


def _one_notification(engine: Engine, network: Office) -> int:
    with session_factory(engine)() as s, s.begin(), bound(s):
        case_id = CaseFactory(
            state="submitted",
            student__matriculation_number="O1",
            student__name="Olga O",
            student__email="o@example.org",
        ).id
        s.execute(update(Outbox).values(status="sent"))  # only the next event counts
        at = s.scalar(select(Case.updated_at).where(Case.id == case_id))
        assert at is not None
        fire(
            s, case_id, "withdraw", actor=student_actor(s, case_id), now=at + dt.timedelta(hours=1)
        )
        return case_id


def test_relay_delivers_each_row_once(engine: Engine, network: Office) -> None:
    case_id = _one_notification(engine, network)
    memory = MemoryTransport()
    transports = Transports(mail=memory, webhooks=memory)
    factory = session_factory(engine)
    first = relay(factory, settings=SETTINGS, transports=transports)
    second = relay(factory, settings=SETTINGS, transports=transports)
    assert (first.sent, second.sent) == (2, 0)  # student and office
    assert {m["To"] for m in memory.mails} == {
        "o@example.org",
        "pruefungsamt@uni-musterstadt.example",
    }
    assert all(m["X-Recog-Case"] == str(case_id) for m in memory.mails)
    ids = {m["Message-ID"] for m in memory.mails}
    assert len(ids) == 2
    assert "Olga" not in "".join(str(m["Message-ID"]) for m in memory.mails)


def test_failures_back_off_then_dead_letter_then_retry(engine: Engine, network: Office) -> None:
    _one_notification(engine, network)
    failing = FailingMail()
    factory = session_factory(engine)
    transports = Transports(mail=failing, webhooks=MemoryTransport())
    result = relay(factory, settings=SETTINGS, transports=transports)
    assert (result.sent, result.failed) == (0, 2)
    with factory() as s:
        rows = s.scalars(select(Outbox).where(Outbox.status != "sent")).all()
        assert {r.attempts for r in rows} == {1}
        assert all("connection refused" in (r.last_error or "") for r in rows)
        waits = {round((r.available_at - dt.datetime.now(dt.UTC)).total_seconds()) for r in rows}
    assert all(8 <= w <= 10 for w in waits)  # first backoff: 10 s
    assert relay(factory, settings=SETTINGS, transports=transports).failed == 0  # not yet due
    for _ in range(2):
        with factory() as s, s.begin(), bound(s):
            s.execute(
                update(Outbox)
                .where(Outbox.status == "pending")
                .values(available_at=dt.datetime.now(dt.UTC))
            )
        relay(factory, settings=SETTINGS, transports=transports)
    with factory() as s:
        dead = outbox.listing(s, failed_only=True)
    assert {r["status"] for r in dead} == {"dead"}
    assert {r["attempts"] for r in dead} == {3}
    with factory() as s, s.begin(), bound(s):
        for row in dead:
            outbox.retry(s, row["id"], now=dt.datetime.now(dt.UTC))
    memory = MemoryTransport()
    healed = relay(factory, settings=SETTINGS, transports=Transports(memory, memory))
    assert (healed.sent, len(memory.mails)) == (2, 2)


def test_a_rolled_back_transition_leaves_no_outbox_row(engine: Engine, network: Office) -> None:
    factory = session_factory(engine)
    with factory() as s, s.begin(), bound(s):
        case_id = CaseFactory(
            state="planned",
            offering=OfferingFactory(upcoming=True),
            student__matriculation_number="RB",
            student__name="Rolf B",
            student__email="rb@example.org",
        ).id
        before = s.scalar(select(func.count()).select_from(Outbox))

    def failing_request() -> None:
        with factory() as s, s.begin(), bound(s):
            fire(s, case_id, "enrol", actor=network.clerk, now=dt.datetime.now(dt.UTC))
            raise RuntimeError("the request failed after the transition")

    with pytest.raises(RuntimeError):
        failing_request()
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Outbox)) == before
        assert s.scalar(select(Case.state).where(Case.id == case_id)) == "planned"
