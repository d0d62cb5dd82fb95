"""A notification says what happened then (issue 10; DESIGN.md mechanism 10).

Every sequence of events the procedure allows on one case (each path from the initial state to
a final one, every event at most once, so each loop is taken at most once) is fired while no
relay runs, as when the broker is down; then the relay runs once. Every notification must go
out, none may fail, and each must tell the facts of its own moment:

- the moment each outbox row is composed from (``outbox.moment``) is the case exactly as it
  stood right after its event: state, deadline, remedy period, decision;
- every mail and notice is the one a timely relay sends: the same events on a twin database,
  relayed after each event, give the same subjects, texts and attached notice PDFs;
- outright: each mail names the state its event led to and quotes its own event's free text,
  each decision's student mail carries that decision's notice, and a rejection overtaken by a
  granted appeal still says rejected, with its own reasons and advice, not the recognition.

Real SQLite and PostgreSQL, the real relay with the in-memory mail transport, real PDFs.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session

from config.procedure import EventDef, Procedure, get_procedure
from config.settings import Settings, get_settings
from models import Case, CaseEvent, Module, Outbox, Role
from models.base import Base
from models.db import make_engine, session_factory
from tasks.delivery import MemoryTransport, Transports, message_id, relay
from tests.factories import (
    MINIMAL_PDF,
    CaseFactory,
    OfferingFactory,
    Office,
    bound,
    event_data,
    musterstadt,
    student_actor,
)
from workflow.cases import audit, outbox
from workflow.cases.casefile import assign_examiner, attach_document
from workflow.cases.documents import MemoryStore
from workflow.cases.engine import fire
from workflow.decisions.notice_issue import NOTICE_EVENTS
from workflow.errors import ValidationFailed
from workflow.policy.actors import Actor

PROC = get_procedure()
# Long enough ago that every event, including the jumps past a deadline, lies before the wall
# clock the relay claims by (it delivers only rows that are due now).
TODAY = dt.date(2026, 1, 12)
START = dt.datetime(2026, 1, 12, 9, 0, tzinfo=dt.UTC)
# The reasons and advice of a rejection, which its mails must quote.
REASONS = {"learning_outcomes": "The course covers about half of the module's outcomes."}
REJECTION = {"reasons": REASONS, "advice": "Take the home module's exam."}


def every_path(proc: Procedure) -> list[tuple[str, ...]]:
    """Each sequence of events from the initial state to a final one, no event twice."""
    paths: list[tuple[str, ...]] = []

    def walk(state: str, path: tuple[str, ...]) -> None:
        options = [ev for ev in proc.allowed_from(state) if ev.name not in path]
        if proc.states[state].final or not options:
            paths.append(path)
            return
        for ev in options:
            walk(ev.dest, (*path, ev.name))

    walk(proc.initial, ())
    return paths


PATHS = every_path(PROC)


def test_the_paths_cover_the_procedure() -> None:
    assert {e for path in PATHS for e in path} == set(PROC.events)
    assert all(PROC.states[_end(path)].final for path in PATHS)
    assert ("reject", "appeal", "grant_appeal") in {
        path[i : i + 3] for path in PATHS for i in range(len(path))
    }


def _end(path: tuple[str, ...]) -> str:
    state = PROC.initial
    for name in path:
        state = PROC.events[name].dest
    return state


@dataclass
class Played:
    """One case walked along one path: its events' numbers and the case right after each."""

    case_id: int
    path: tuple[str, ...]
    seqs: dict[str, int] = field(default_factory=dict)  # event name -> seq (each fires once)
    after: dict[int, dict[str, Any]] = field(default_factory=dict)  # seq -> the case then
    texts: dict[str, str] = field(default_factory=dict)  # event name -> its tagged free text


def _actor(ev: EventDef, session: Session, case_id: int, net: Office) -> Actor:
    role = ev.actors[0]
    if role == "student":
        return student_actor(session, case_id)
    if role == "timer":
        return Actor.system(Role.TIMER)
    if role == "import":
        return Actor.system(Role.IMPORT)
    return {"clerk": net.clerk, "examiner": net.examiner, "board": net.board}[role]


def _case_then(session: Session, case_id: int) -> dict[str, Any]:
    row = session.execute(
        select(Case.state, Case.due_at, Case.due_kind, Case.appeal_ends_at, Case.decision).where(
            Case.id == case_id
        )
    ).one()
    return dict(row._mapping)


def play(
    factory: Callable[[], Session],
    net: Office,
    number: int,
    path: tuple[str, ...],
    *,
    after_each: Callable[[], None],
) -> Played:
    """Open a case and fire ``path`` on it, one committed transaction per event (as the web,
    the CLI and the timer do), calling ``after_each`` after every commit."""
    store = MemoryStore()
    with factory() as s, s.begin(), bound(s):
        case_id = CaseFactory(
            state="planned",
            # One course for every case, named alike in the twin runs.
            offering=OfferingFactory(
                upcoming=True, today=TODAY, institution__code="partner.example", code="LATE-1"
            ),
            student__matriculation_number=f"L{number:04d}",
            student__name=f"Late Student {number}",
            student__email=f"late{number}@example.org",
            student__preferred_language=("de", "en")[number % 2],
            present=START,
        ).id
        played = Played(case_id, path)
        played.after[1] = _case_then(s, case_id)
        targets = list(s.scalars(select(Module.code).join(Case.targets).where(Case.id == case_id)))
    after_each()
    now = START
    for name in path:
        ev = PROC.events[name]
        now += dt.timedelta(days=1)
        with factory() as s, s.begin():
            if name == "receive_transcript":
                attach_document(
                    s,
                    case_id,
                    content=MINIMAL_PDF,
                    filename="tor.pdf",
                    media_type="application/pdf",
                    kind="transcript",
                    store=store,
                    actor=net.clerk,
                    now=now,
                    channel="test",
                )
            if name == "start_review":
                assign_examiner(
                    s, case_id, net.examiner_username, actor=net.clerk, now=now, channel="test"
                )
            if name in ("lapse", "close"):  # the timer's moment: past the deadline it waits for
                row = s.execute(
                    select(Case.due_at, Case.appeal_ends_at).where(Case.id == case_id)
                ).one()
                limit = row.due_at if name == "lapse" else row.appeal_ends_at
                if limit is not None and now < limit:
                    now = limit + dt.timedelta(minutes=1)
            data = event_data(ev, now=now, targets=targets, others=["INF-WP2"])
            if name == "reject":
                data |= REJECTION
            # Free text unique to this case and event, so a mail quoting another moment's
            # text (or another case's) is caught.
            for key in ("message", "advice"):
                if key in data:
                    data[key] = played.texts[name] = f"{data[key]} [{number}:{name}]"
            if isinstance(data.get("reasons"), str):
                data["reasons"] = played.texts[name] = f"{data['reasons']} [{number}:{name}]"
            fired = fire(s, case_id, name, actor=_actor(ev, s, case_id, net), now=now, data=data)
            played.seqs[name] = fired.seq
            played.after[fired.seq] = _case_then(s, case_id)
        after_each()
    assert now < dt.datetime.now(dt.UTC), "the scenario must lie in the past for the relay"
    return played


def _reset(engine: Engine) -> None:
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Engine]]:
    """A factory of empty, migrated databases that number their rows alike (so the twin
    runs give the same case ids, sequence numbers and dedup keys)."""
    engines: list[Engine] = []

    def make() -> Engine:
        for old in engines:
            old.dispose()
        if request.param == "sqlite":
            path = tmp_path / f"twin{len(engines)}.sqlite3"
            shutil.copy(request.getfixturevalue("sqlite_template"), path)
            engine = make_engine(f"sqlite:///{path}")
        else:
            engine = make_engine(request.getfixturevalue("pg_database"))
            _reset(engine)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispose()


@dataclass
class Run:
    engine: Engine
    played: list[Played]
    mails: dict[tuple[int, str, str], EmailMessage]  # (case, event, recipient) -> the mail
    sent: int
    failed: int


def _run(make: Callable[[], Engine], settings: Settings, *, timely: bool) -> Run:
    engine = make()
    factory = session_factory(engine)
    with factory() as s, s.begin(), bound(s):
        net = musterstadt()
    memory = MemoryTransport()
    transports = Transports(mail=memory, webhooks=memory)
    tally = {"sent": 0, "failed": 0}

    def deliver() -> None:
        result = relay(factory, settings=settings, transports=transports, limit=100_000)
        tally["sent"] += result.sent
        tally["failed"] += result.failed

    played = [
        play(factory, net, i, path, after_each=deliver if timely else lambda: None)
        for i, path in enumerate(PATHS)
    ]
    if not timely:
        deliver()  # the broker is back: one relay for everything that piled up
    assert len({m["Message-ID"] for m in memory.mails}) == len(memory.mails), "sent twice"
    with engine.connect() as conn:
        rows = conn.execute(select(Outbox.__table__).where(Outbox.channel == "email")).all()
    # Keyed by what happened (case, event, recipient): the twin runs number their events
    # alike only up to the first notice, which each relay files in the audit trail.
    sent = {m["Message-ID"]: m for m in memory.mails}
    mails = {
        (r.case_id, r.template, r.recipient): sent[key]
        for r in rows
        if (key := _message_id(r, settings)) in sent
    }
    return Run(engine, played, mails, tally["sent"], tally["failed"])


def _parts(mail: EmailMessage) -> tuple[Any, ...]:
    """What a mail tells (its Date header says when it was sent, not what happened)."""
    plain = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert plain is not None
    assert html is not None
    attached = [
        (a.get_filename(), a.get_content_type(), a.get_payload(decode=True))
        for a in mail.iter_attachments()
    ]
    return (mail["Subject"], mail["To"], plain.get_content(), html.get_content(), attached)


def _labels() -> dict[str, set[str]]:
    """Each state's label in both languages, as the procedure gives them to the mails."""
    return {name: set(state.labels.values()) for name, state in PROC.states.items()}


_FOOTER = re.compile(r"(?:Case|Antrag) (\d+), (?:status|Stand): (.+?)\. ")


@pytest.mark.slow
def test_relaying_only_at_the_end_delivers_every_notification_with_the_facts_of_its_moment(
    fresh_engine: Callable[[], Engine],
) -> None:
    settings = get_settings()
    late = _run(fresh_engine, settings, timely=False)

    # Every notification went out, none failed.
    with late.engine.connect() as conn:
        rows = conn.execute(select(Outbox.__table__).order_by(Outbox.id)).all()
        events = {
            (r.case_id, r.seq): r
            for r in conn.execute(select(CaseEvent.case_id, CaseEvent.seq, CaseEvent.to_state))
        }
    assert late.failed == 0, sorted({r.last_error for r in rows if r.last_error})
    assert late.sent == len(rows) > 0
    assert {r.status for r in rows} == {"sent"}
    assert len(late.mails) == sum(r.channel == "email" for r in rows)

    # Each row is composed from its own moment: the case as it stood right after the event.
    by_case = {p.case_id: p for p in late.played}
    with session_factory(late.engine)() as s:
        report = audit.verify(s)  # the decisions kept in the events are inside the chain
        assert report.breaches == []
        assert report.cases == len(PATHS)
        for r in rows:
            then = outbox.moment(s, r.case_id, r.event_seq)
            assert then is not None
            expected = by_case[r.case_id].after[r.event_seq]
            told = {
                "state": then.state,
                "due_at": then.due_at,
                "due_kind": then.due_kind,
                "appeal_ends_at": then.appeal_ends_at,
                "decision": then.decision,
            }
            assert told == expected, (by_case[r.case_id].path, r.template, r.recipient)

    # Each mail names the state its own event led to, not the state the case ended in.
    labels = _labels()
    for (case_id, name, _), mail in late.mails.items():
        footer = _FOOTER.search(_text(mail))
        assert footer is not None, _text(mail)
        assert int(footer.group(1)) == case_id
        seq = by_case[case_id].seqs.get(name, 1)  # the case's opening is its first event
        assert footer.group(2) in labels[events[case_id, seq].to_state]

    # Each mail quotes its own event's free text (question, answer, objection, advice, the
    # board's reasons), which only that event of that case carries.
    for p in late.played:
        for (case_id, name, recipient), mail in late.mails.items():
            if case_id == p.case_id and name in p.texts:
                assert p.texts[name] in _text(mail), (p.path, name, recipient)

    # Each decision's student mail carries that decision's own notice.
    for p in late.played:
        for name in NOTICE_EVENTS & set(p.path):
            mail = late.mails[p.case_id, name, "student"]
            names = [a.get_filename() or "" for a in mail.iter_attachments()]
            assert [n for n in names if f"-{name}-" in n], (p.path, name, names)

    # A rejection overtaken by a granted appeal still says what was decided then.
    overtaken = [p for p in late.played if {"reject", "grant_appeal"} <= set(p.path)]
    assert overtaken
    for p in overtaken:
        assert p.after[max(p.after)]["decision"]["outcome"] == "recognized"
        for recipient in ("student", "clerk"):
            body = _text(late.mails[p.case_id, "reject", recipient])
            assert p.texts["reject"] in body  # its own advice
            assert "The course covers about half" in body  # its own reasons
            assert p.texts["grant_appeal"] not in body
        reject = p.after[p.seqs["reject"]]
        assert reject["decision"]["outcome"] == "rejected"
        assert reject["appeal_ends_at"] != p.after[p.seqs["grant_appeal"]]["appeal_ends_at"]

    # The same mails, texts and notice PDFs as a relay that ran after every event.
    timely = _run(fresh_engine, settings, timely=True)
    assert timely.failed == 0
    assert set(timely.mails) == set(late.mails)
    for key, mail in late.mails.items():
        assert _parts(mail) == _parts(timely.mails[key]), mail["Subject"]


def _message_id(row: Any, settings: Settings) -> str:
    return message_id(
        outbox.Claimed(
            row.id,
            row.dedup_key,
            row.case_id,
            row.event_seq,
            row.channel,
            row.recipient,
            row.template,
            row.payload,
            row.attempts,
        ),
        settings,
    )


def _text(mail: EmailMessage) -> str:
    plain = mail.get_body(("plain",))
    assert plain is not None
    return str(plain.get_content())


def test_a_row_queued_before_messages_carried_their_moment_is_told_from_the_case(
    engine: Engine, network: Office
) -> None:
    factory = session_factory(engine)
    with factory() as s, s.begin(), bound(s):
        case_id = CaseFactory(
            state="planned",
            offering=OfferingFactory(upcoming=True),
            student__matriculation_number="OLD1",
            student__name="Olde Row",
            student__email="olde@example.org",
            student__preferred_language="en",
            present=dt.datetime.now(dt.UTC),
        ).id
        # The payload an older Recog wrote: ids, event and state, no clocks.
        s.execute(
            update(Outbox)
            .where(Outbox.case_id == case_id)
            .values(payload={"case_id": case_id, "seq": 1, "event": "open", "state": "planned"})
        )
        assert outbox.moment(s, case_id, 1) is None
    memory = MemoryTransport()
    result = relay(factory, settings=get_settings(), transports=Transports(memory, memory))
    assert (result.sent, result.failed) == (1, 0)
    assert "status: Planned." in _text(memory.mails[0])


def test_a_decision_cannot_be_smuggled_in_as_event_data(session: Session, network: Office) -> None:
    case_id = CaseFactory(
        state="planned",
        offering=OfferingFactory(upcoming=True),
        student__matriculation_number="FAKE1",
        student__name="Fay Ke",
        student__email="fake@example.org",
    ).id
    with pytest.raises(ValidationFailed, match="takes no field 'decision'"):
        fire(
            session,
            case_id,
            "withdraw",
            actor=student_actor(session, case_id),
            now=dt.datetime.now(dt.UTC),
            data={"decision": {"outcome": "recognized"}},
        )
    assert session.scalar(select(Case.state).where(Case.id == case_id)) == "planned"


def test_a_decision_made_before_events_kept_theirs_is_told_from_the_case(
    engine: Engine, network: Office
) -> None:
    factory = session_factory(engine)
    with factory() as s, s.begin(), bound(s):
        case_id = CaseFactory(
            state="rejected",
            data={"reject": REJECTION},
            student__matriculation_number="OLD2",
            student__name="Olde Decision",
            student__email="olde2@example.org",
            student__preferred_language="en",
        ).id
        # The rejection as an older Recog recorded it: its fields, not the decision itself.
        seq, data = s.execute(
            select(CaseEvent.seq, CaseEvent.data).where(
                CaseEvent.case_id == case_id, CaseEvent.event == "reject"
            )
        ).one()
        s.execute(
            update(CaseEvent)
            .where(CaseEvent.case_id == case_id, CaseEvent.seq == seq)
            .values(data={k: v for k, v in data.items() if k != "decision"})
        )
        s.execute(update(Outbox).values(status="sent"))  # only the appeal's mails count
        at = s.scalar(select(Case.updated_at).where(Case.id == case_id))
        assert at is not None
        fire(
            s,
            case_id,
            "appeal",
            actor=student_actor(s, case_id),
            now=at + dt.timedelta(days=1),
            data={"message": "The outcomes match."},
        )
    memory = MemoryTransport()
    result = relay(factory, settings=get_settings(), transports=Transports(memory, memory))
    assert (result.sent, result.failed) == (3, 0)  # student, clerk, board
    student = next(m for m in memory.mails if m["To"] == "olde2@example.org")
    assert "Take the home module's exam." in _text(student)  # the rejection appealed against
