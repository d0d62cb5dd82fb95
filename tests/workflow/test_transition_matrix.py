"""Every event in every state, generated from the procedure table: legal events succeed for
each allowed role and write exactly one audit event; illegal ones, wrong roles and strangers
are refused with a message naming the state, and nothing changes."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from config.procedure import EventDef, get_procedure
from models import Case, CaseEvent, Outbox, Role
from models.db import make_engine, session_factory
from tests.factories import (
    HOME_MODULES,
    MINIMAL_PDF,
    CaseFactory,
    OfferingFactory,
    Office,
    bound,
    event_data,
    home_modules,
    musterstadt,
)
from workflow.cases.casefile import attach_document
from workflow.cases.documents import MemoryStore
from workflow.cases.engine import fire
from workflow.errors import Forbidden, IllegalTransition, NotFound
from workflow.policy.actors import Actor

PROC = get_procedure()
STATES = list(PROC.states)
EVENTS = list(PROC.events.values())
TODAY = dt.date(2026, 11, 2)


@pytest.fixture(scope="module")
def world(
    sqlite_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Engine, Office, dict[str, int], int]]:
    """One committed case per state (and a second student's case) on a private database."""
    path = tmp_path_factory.mktemp("matrix") / "recog.sqlite3"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    with session_factory(engine)() as s, s.begin(), bound(s):
        net = musterstadt()
        cases = {}
        for i, state in enumerate(STATES):
            term = (
                "upcoming" if state == "planned" else "current" if state == "withdrawn" else "past"
            )
            cases[state] = CaseFactory(
                state=state,
                offering=OfferingFactory(**{term: True}, today=TODAY),
                student__matriculation_number=f"M{i:03d}",
                student__name=f"Student {i}",
                student__email=f"s{i}@example.org",
                targets=home_modules(HOME_MODULES[i % 4][0]),
            ).id
        other = CaseFactory(
            state="planned",
            offering=OfferingFactory(upcoming=True, today=TODAY),
            student__matriculation_number="OTHER",
            student__name="Other Student",
            student__email="other@example.org",
            targets=home_modules("INF-CC"),
        ).id
    yield engine, net, cases, other
    engine.dispose()


@pytest.fixture
def tx(world: tuple[Engine, Office, dict[str, int], int]) -> Iterator[Session]:
    """A session whose every change is rolled back after the test."""
    engine = world[0]
    with engine.connect() as conn:
        outer = conn.begin()
        session = Session(bind=conn, join_transaction_mode="create_savepoint")
        try:
            yield session
        finally:
            session.close()
            outer.rollback()


def actor_of(role: str, net: Office, session: Session, case_id: int) -> Actor:
    if role == "student":
        sid, inst = session.execute(
            select(Case.student_id, Case.institution_id).where(Case.id == case_id)
        ).one()
        return Actor.student(sid, inst)
    return {
        "clerk": net.clerk,
        "examiner": net.examiner,
        "board": net.board,
        "admin": net.admin,
        "import": Actor.system(Role.IMPORT),
        "timer": Actor.system(Role.TIMER),
    }[role]


def snapshot(session: Session, case_id: int) -> tuple[Any, ...]:
    case = session.execute(
        select(Case.state, Case.version, Case.chain_head, Case.due_at).where(Case.id == case_id)
    ).one()
    events = session.scalar(select(func.count()).where(CaseEvent.case_id == case_id))
    outbox = session.scalar(select(func.count()).where(Outbox.case_id == case_id))
    return (*case, events, outbox)


def prepare(
    session: Session,
    net: Office,
    case_id: int,
    ev: EventDef,
) -> tuple[dt.datetime, dict[str, Any]]:
    """A moment and data at which ``ev`` is legal for this case."""
    row = session.execute(
        select(Case.updated_at, Case.due_at, Case.appeal_ends_at).where(Case.id == case_id)
    ).one()
    now = row.updated_at + dt.timedelta(minutes=5)
    if ev.name == "lapse":
        now = max(now, row.due_at + dt.timedelta(minutes=1))
    if ev.name == "close" and row.appeal_ends_at is not None:
        now = max(now, row.appeal_ends_at + dt.timedelta(minutes=1))
    data = event_data(ev, now=now, targets=["INF-ML"], others=["INF-WP2"])
    if ev.name == "recognize" or ev.name == "grant_appeal" or ev.name == "recognize_partially":
        data["modules"] = ["INF-ML"]
    if ev.name == "start_review":
        data["examiner"] = net.examiner_username
    if ev.name == "receive_transcript":
        attach_document(
            session,
            case_id,
            content=MINIMAL_PDF,
            filename="tor.pdf",
            media_type="application/pdf",
            kind="transcript",
            store=MemoryStore(),
            actor=net.clerk,
            now=now,
        )
    return now, data


LEGAL = [(state, ev.name, role) for ev in EVENTS for state in ev.sources for role in ev.actors]
ILLEGAL = [(state, ev.name) for ev in EVENTS for state in STATES if state not in ev.sources]
ALL_ROLES = [r.value for r in Role]
WRONG_ROLE = [
    (state, ev.name, role)
    for ev in EVENTS
    for state in ev.sources
    for role in ALL_ROLES
    if role not in ev.actors and not (role == "admin" and "clerk" in ev.actors)
]


@pytest.mark.parametrize(("state", "event", "role"), LEGAL)
def test_legal_event_moves_the_case_and_writes_one_audit_event(
    world: Any,
    tx: Session,
    state: str,
    event: str,
    role: str,
) -> None:
    _, net, cases, _ = world
    case_id = cases[state]
    ev = PROC.events[event]
    now, data = prepare(tx, net, case_id, ev)
    before = snapshot(tx, case_id)
    fired = fire(tx, case_id, event, actor=actor_of(role, net, tx, case_id), now=now, data=data)
    state_after, version, head, _, n_events, n_outbox = snapshot(tx, case_id)
    assert (fired.from_state, fired.to_state) == (state, ev.dest)
    assert state_after == ev.dest
    assert version == before[1] + 1
    assert n_events == before[4] + 1
    assert head == fired.hash != before[2]
    last = tx.execute(
        select(CaseEvent)
        .where(CaseEvent.case_id == case_id)
        .order_by(CaseEvent.seq.desc())
        .limit(1)
    ).scalar_one()
    assert (last.event, last.from_state, last.to_state, last.actor_role) == (
        event,
        state,
        ev.dest,
        role,
    )
    assert n_outbox - before[5] == len(fired.outbox) >= 1


@pytest.mark.parametrize(("state", "event"), ILLEGAL)
def test_illegal_event_is_refused_naming_the_state_and_changes_nothing(
    world: Any,
    tx: Session,
    state: str,
    event: str,
) -> None:
    _, net, cases, _ = world
    case_id = cases[state]
    role = PROC.events[event].actors[0]
    before = snapshot(tx, case_id)
    with pytest.raises(IllegalTransition) as err:
        fire(
            tx,
            case_id,
            event,
            actor=actor_of(role, net, tx, case_id),
            now=dt.datetime(2027, 6, 1, tzinfo=dt.UTC),
            data={},
        )
    assert f"cannot {event} case {case_id}: it is {state}" in str(err.value)
    assert snapshot(tx, case_id) == before


@pytest.mark.parametrize(("state", "event", "role"), WRONG_ROLE)
def test_wrong_role_is_forbidden_and_changes_nothing(
    world: Any,
    tx: Session,
    state: str,
    event: str,
    role: str,
) -> None:
    _, net, cases, _ = world
    case_id = cases[state]
    now, data = prepare(tx, net, case_id, PROC.events[event])
    before = snapshot(tx, case_id)
    with pytest.raises(Forbidden) as err:
        fire(tx, case_id, event, actor=actor_of(role, net, tx, case_id), now=now, data=data)
    article = "an" if role[0] in "aeiou" else "a"  # an examiner, an admin, an import
    assert f"{article} {role} may not do this" in str(err.value)
    assert snapshot(tx, case_id) == before


@pytest.mark.parametrize("event", [e.name for e in EVENTS if "student" in e.actors])
def test_another_student_cannot_even_see_the_case(world: Any, tx: Session, event: str) -> None:
    _, net, cases, other = world
    ev = PROC.events[event]
    case_id = cases[ev.sources[0]]
    stranger = actor_of("student", net, tx, other)
    with pytest.raises(NotFound, match=f"case {case_id} not found"):
        fire(tx, case_id, event, actor=stranger, now=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))


def test_office_of_another_institution_gets_not_found(world: Any, tx: Session) -> None:
    _, net, cases, _ = world
    foreign = Actor(role=Role.CLERK, id=net.clerk.id, institution_id=9999)
    with pytest.raises(NotFound):
        fire(
            tx,
            cases["planned"],
            "enrol",
            actor=foreign,
            now=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
        )


def test_examiner_outside_the_programme_gets_not_found(world: Any, tx: Session) -> None:
    _, net, cases, _ = world
    outsider = Actor(
        role=Role.EXAMINER, id=12345, institution_id=net.home_id, programme_ids=frozenset({999})
    )
    with pytest.raises(NotFound):
        fire(
            tx,
            cases["in_review"],
            "request_info",
            actor=outsider,
            now=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
            data={"message": "x"},
        )


def test_the_matrix_covers_the_whole_procedure() -> None:
    assert len(LEGAL) + len(ILLEGAL) >= len(STATES) * len(EVENTS)
    assert {s for s, _, _ in LEGAL} | {s for s, _ in ILLEGAL} == set(STATES)
