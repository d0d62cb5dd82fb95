"""Two OS processes fire conflicting events on the same cases at the same moment (PostgreSQL).

200 cases are walked to ``in_review`` with the network's examiner assigned. For each case, two
spawned processes meet at a barrier and then each fires its event in its own transaction and
commits: recognize vs reject, withdraw vs recognize, request_info vs recognize_partially,
reject vs withdraw. Each pair is conflicting: whichever wins, the other is no longer possible.
(withdraw vs request_info is not: a student may still withdraw while information is requested.)

Exactly one wins; the loser gets ``IllegalTransition`` or ``Conflict`` naming the state the
winner produced; the case ends in the winner's target (no lost update); the trail has exactly
one new event; every chain verifies.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import re
import time
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from config.procedure import get_procedure
from models import Case, CaseEvent
from models.db import make_engine, session_factory
from tests.factories import (
    HOME_MODULES,
    CaseFactory,
    OfferingFactory,
    actor_named,
    bound,
    event_data,
    home_modules,
    musterstadt,
    student_actor,
)
from workflow.cases import audit
from workflow.cases.engine import fire
from workflow.errors import Conflict, DomainError, IllegalTransition
from workflow.policy.actors import Actor

pytestmark = pytest.mark.postgres

NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)  # as in tests/conftest.py
ROUNDS = 200
# (event of process A, event of process B); cycled over the cases.
PAIRS = [
    ("recognize", "reject"),
    ("withdraw", "recognize"),
    ("request_info", "recognize_partially"),
    ("reject", "withdraw"),
]
BARRIER_TIMEOUT = 30.0

# One round as passed to a process: case id, event, data, time (plain values only).
Round = tuple[int, str, dict[str, Any], dt.datetime]
# One outcome: case id, event, "ok" or the error class, the new state, message, start, end.
Outcome = tuple[int, str, str, str | None, str, float, float]


def racer(
    url: str, examiner_username: str, rounds: list[Round], barrier: Any, results: Any
) -> None:
    """A process of its own: for each round, wait for the other one, fire, commit."""
    engine = make_engine(url, pool_size=1)
    factory = session_factory(engine)
    out: list[Outcome] = []
    try:
        with factory() as s:
            examiner = actor_named(s, examiner_username)
            students = {case_id: student_actor(s, case_id) for case_id, *_ in rounds}
        for case_id, event, data, now in rounds:
            actor: Actor = students[case_id] if event == "withdraw" else examiner
            barrier.wait(timeout=BARRIER_TIMEOUT)
            start = time.monotonic()
            try:
                with factory() as s, s.begin():
                    fired = fire(s, case_id, event, actor=actor, now=now, data=data, channel="test")
                out.append((case_id, event, "ok", fired.to_state, "", start, time.monotonic()))
            except DomainError as exc:
                out.append(
                    (case_id, event, type(exc).__name__, None, str(exc), start, time.monotonic())
                )
            except Exception as exc:  # anything else fails the test, without a hang
                out.append((case_id, event, "crash", None, repr(exc), start, time.monotonic()))
                barrier.abort()
                break
    finally:
        engine.dispose()
        results.put(out)


def _prepare(engine: Engine) -> tuple[str, dict[int, int], list[list[Round]]]:
    """A home office and ROUNDS cases in review with the examiner assigned: the examiner's
    user name, each case's version, and the rounds of both processes."""
    proc = get_procedure()
    with session_factory(engine)() as s, s.begin(), bound(s):
        net = musterstadt()
        ids = [
            CaseFactory(
                state="in_review",
                offering=OfferingFactory(past=True, today=NOW.date()),
                student__matriculation_number=f"{4800000 + i}",
                student__name=f"Student {i}",
                student__email=f"student{i}@student.example",
                targets=home_modules(HOME_MODULES[i % 4][0]),
            ).id
            for i in range(ROUNDS)
        ]
        cases = s.scalars(select(Case).where(Case.id.in_(ids))).all()
        assert {c.state for c in cases} == {"in_review"}
        assert {c.examiner_id for c in cases} == {net.examiner.id}
        last = s.scalar(select(func.max(CaseEvent.at)))
        assert last is not None
        now = last + dt.timedelta(hours=1)
        targets = {c.id: [m.code for m in c.targets] for c in cases}
        sides: list[list[Round]] = [[], []]
        for i, case_id in enumerate(ids):
            for side, event in enumerate(PAIRS[i % len(PAIRS)]):
                data = event_data(
                    proc.events[event], now=now, targets=targets[case_id], others=["INF-WP2"]
                )
                sides[side].append((case_id, event, data, now))
        return net.examiner_username, {c.id: c.version for c in cases}, sides


def test_two_processes_racing_on_one_case_exactly_one_wins(
    pg_engine: Engine, pg_database: str
) -> None:
    examiner_username, seeded, sides = _prepare(pg_engine)
    ids = list(seeded)

    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    workers = [
        ctx.Process(
            target=racer,
            args=(pg_database, examiner_username, rounds, barrier, results),
            daemon=True,
        )
        for rounds in sides
    ]
    for w in workers:
        w.start()
    try:
        collected = [results.get(timeout=120) for _ in workers]
    finally:
        for w in workers:
            w.join(timeout=30)
            if w.is_alive():
                w.terminate()
    assert [w.exitcode for w in workers] == [0, 0]
    crashes = [o for out in collected for o in out if o[2] == "crash"]
    assert not crashes, crashes
    assert [len(out) for out in collected] == [ROUNDS, ROUNDS]

    by_case: dict[int, list[Outcome]] = {case_id: [] for case_id in ids}
    for out in collected:
        for outcome in out:
            by_case[outcome[0]].append(outcome)

    proc = get_procedure()
    loser_errors: Counter[str] = Counter()
    overlapping = 0
    with session_factory(pg_engine)() as s:
        final = {
            r.id: (r.state, r.version)
            for r in s.execute(select(Case.id, Case.state, Case.version).where(Case.id.in_(ids)))
        }
        appended: dict[int, list[tuple[int, str]]] = {case_id: [] for case_id in ids}
        for case_id, seq, event in s.execute(
            select(CaseEvent.case_id, CaseEvent.seq, CaseEvent.event)
            .where(CaseEvent.case_id.in_(ids))
            .order_by(CaseEvent.case_id, CaseEvent.seq)
        ):
            if seq > seeded[case_id]:
                appended[case_id].append((seq, event))
        for case_id, (a, b) in by_case.items():
            winners = [o for o in (a, b) if o[2] == "ok"]
            assert len(winners) == 1, (case_id, a, b)
            winner = winners[0]
            loser = b if winner is a else a
            state = winner[3]
            assert state == proc.events[winner[1]].dest
            assert loser[2] in (IllegalTransition.__name__, Conflict.__name__), loser
            assert re.search(rf"\bis (now )?{state}\b", loser[4]), (state, loser[4])
            loser_errors[loser[2]] += 1
            assert final[case_id] == (state, seeded[case_id] + 1), (case_id, a, b)
            assert appended[case_id] == [(seeded[case_id] + 1, winner[1])], (case_id, a, b)
            if a[5] < b[6] and b[5] < a[6]:
                overlapping += 1
        report = audit.verify(s)
        assert report.cases == ROUNDS
        assert report.ok, [str(b) for b in report.breaches[:5]]

    print(
        f"losers: {dict(loser_errors)}; rounds in which both calls overlapped in time: "
        f"{overlapping}/{ROUNDS}"
    )
    assert sum(loser_errors.values()) == ROUNDS
    assert overlapping > 0, "the two processes never raced"
