"""Stateful properties of ``fire``: random events, actors and clock moves on one case (SQLite).

A hypothesis ``RuleBasedStateMachine`` drives a case (opened and walked to a random state by
``CaseFactory``) with events chosen from the whole procedure, legal or not, fired by every role
(including the wrong ones, a student of another case and a clerk of another institution), with
plausible, missing or incomplete data, while the clock moves forward by minutes to weeks. Each
step runs in its own transaction and commits, as a boundary would, even after a refusal (so
anything a refused call wrote would stay and be caught).

Properties:
- a refusal is a domain error of the kind the rules predict (not found, illegal, forbidden,
  guard failed) and writes nothing: state, version, chain head, clocks, examiner, result,
  decision, events, outbox rows, documents and targets are as they were before the call;
- a success moves the case along an edge of the procedure and appends exactly one event;
- after every step: the state is a known state, the history is a path in the procedure graph,
  the audit chain verifies, the version only grows and equals the number of events, there is at
  most one open deadline (due_at and due_kind both set or both null; none in a final state),
  and the case of the other student is never touched.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import Phase, settings
from hypothesis import event as tally
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from config.procedure import EventDef, get_procedure
from models import Case, CaseEvent, Document, Module, Outbox, Programme, Role, case_targets
from models.db import make_engine, session_factory
from tests.factories import (
    HOME_MODULES,
    MINIMAL_PDF,
    CaseFactory,
    OfferingFactory,
    Office,
    UserFactory,
    bound,
    event_data,
    home_modules,
    musterstadt,
    student_actor,
)
from workflow.cases import audit
from workflow.cases.casefile import assign_examiner, attach_document, set_targets
from workflow.cases.documents import MemoryStore
from workflow.cases.engine import fire
from workflow.errors import (
    DomainError,
    Forbidden,
    GuardFailed,
    IllegalTransition,
    NotFound,
    ValidationFailed,
)
from workflow.policy.actors import Actor, acting_role

NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)  # as in tests/conftest.py
PROC = get_procedure()
ALL_EVENTS = list(PROC.events)
# Where a case under test starts: every state of the procedure, on a course of the last term
# (planned on one that starts soon; enrolled and withdrawn on a running one; lapsed and closed
# on one of the term before).
TERMS = {"planned": "upcoming", "enrolled": "current", "withdrawn": "current"}
TERMS |= {"lapsed": "past", "closed": "past"}
STARTS = [(state, TERMS.get(state, "recent")) for state in PROC.states]
NON_TRANSITIONS = {"open", "assign_examiner", "attach_document", "set_targets"}
# Guards that need event data; without data such an event must be refused.
DATA_GUARDS = {
    "result_data",
    "message_given",
    "reasons_given",
    "recognition_data",
    "partial_recognition_data",
    "rejection_reasons",
}
ACTOR_KINDS = [
    "clerk",
    "admin",
    "examiner",
    "examiner2",
    "board",
    "student",
    "other_student",
    "foreign_clerk",
    "import",
    "timer",
]
INVISIBLE = {"other_student", "foreign_clerk"}
CLOCK_MOVES = st.one_of(
    st.builds(lambda m: dt.timedelta(minutes=m), st.integers(1, 600)),
    st.builds(lambda h: dt.timedelta(hours=h), st.integers(1, 72)),
    st.builds(lambda d: dt.timedelta(days=d), st.integers(1, 60)),
)


@dataclass(frozen=True)
class Seed:
    """A migrated SQLite file holding a home office, a second examiner and a bystander
    case of another student; every example starts from a copy of it."""

    path: Path
    net: Office
    actors: dict[str, Actor]
    bystander: int
    bystander_version: int


def make_seed(template: Path, directory: Path) -> Seed:
    path = directory / "seeded.sqlite3"
    shutil.copy(template, path)
    engine = make_engine(f"sqlite:///{path}")
    try:
        with session_factory(engine)() as s, s.begin(), bound(s):
            net = musterstadt()
            second = UserFactory(
                username="examiner2",
                role="examiner",
                institution_id=net.home_id,
                programmes=[s.get(Programme, net.programme_id)],
            )
            other = CaseFactory(
                state="planned",
                offering=OfferingFactory(current=True),
                student__matriculation_number="4710000",
                student__name="Ben Rossi",
                student__email="ben@student.example",
                targets=home_modules("INF-CC"),
            ).id
            version = s.scalar(select(Case.version).where(Case.id == other))
            actors = {
                "clerk": net.clerk,
                "admin": net.admin,
                "examiner": net.examiner,
                "examiner2": Actor(
                    role=Role.EXAMINER,
                    id=second.id,
                    institution_id=net.home_id,
                    programme_ids=net.examiner.programme_ids,
                    label="examiner2",
                ),
                "board": net.board,
                "other_student": student_actor(s, other),
                "foreign_clerk": Actor(
                    role=Role.CLERK,
                    id=net.clerk.id,
                    institution_id=net.home_id + 1000,
                    label="foreign",
                ),
                "import": Actor.system(Role.IMPORT),
                "timer": Actor.system(Role.TIMER),
            }
    finally:
        engine.dispose()  # the last connection checkpoints the WAL into the file
    assert not path.with_name(path.name + "-wal").exists()
    assert version is not None
    return Seed(path, net, actors, other, version)


class CaseMachine(RuleBasedStateMachine):
    """One fresh copy of the seeded SQLite file per example: the case under test, a bystander
    case of another student, and (once the case under test is over) the next case."""

    seed: Seed  # set by the test

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="recog-prop-"))
        path = self.tmp / "recog.sqlite3"
        shutil.copy(self.seed.path, path)
        self.engine = make_engine(f"sqlite:///{path}")
        self.factory: sessionmaker[Session] = session_factory(self.engine)
        self.store = MemoryStore()
        self.net = self.seed.net
        self.actors = dict(self.seed.actors)
        self.case_id: int | None = None
        self.state = ""
        self.version = 0
        self.now = NOW
        self.students = 0
        # Case id -> the version it must keep: the bystander, and cases that are over.
        self.untouched = {self.seed.bystander: self.seed.bystander_version}

    def teardown(self) -> None:
        self.engine.dispose()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- set-up ---------------------------------------------------------------------------

    @initialize(start=st.sampled_from(STARTS), course=st.integers(0, 3))
    def open_case(self, start: tuple[str, str], course: int) -> None:
        with self.factory() as s, s.begin(), bound(s):
            self._switch_to(s, self._new_case(s, start[0], start[1], course))

    @precondition(lambda self: self.case_id is not None and PROC.states[self.state].final)
    @rule(start=st.sampled_from(STARTS), course=st.integers(0, 3))
    def next_case(self, start: tuple[str, str], course: int) -> None:
        """The case is over: keep it as a bystander and go on with a new one."""
        assert self.case_id is not None
        self.untouched[self.case_id] = self.version
        with self.factory() as s, s.begin(), bound(s):
            self._switch_to(s, self._new_case(s, start[0], start[1], course))

    def _new_case(self, s: Session, target: str, term: str, course: int) -> int:
        self.students += 1
        return int(
            CaseFactory(
                state=target,
                offering=OfferingFactory(**({} if term == "recent" else {term: True})),
                student__matriculation_number=f"{4711000 + self.students}",
                student__name=f"Student {self.students}",
                student__email=f"s{self.students}@student.example",
                targets=home_modules(HOME_MODULES[course][0]),
                store=self.store,
            ).id
        )

    def _switch_to(self, s: Session, case_id: int) -> None:
        self.case_id = case_id
        self.actors["student"] = student_actor(s, case_id)
        row = s.execute(select(Case.state, Case.version).where(Case.id == case_id)).one()
        self.state, self.version = row.state, row.version
        last = s.scalar(select(func.max(CaseEvent.at)))
        assert last is not None
        self.now = max(self.now, last + dt.timedelta(minutes=1))

    # --- helpers --------------------------------------------------------------------------

    def _snapshot(self, s: Session) -> tuple[Any, ...]:
        def count(table: Any) -> Any:
            return (
                select(func.count())
                .select_from(table)
                .where(table.c.case_id == self.case_id)
                .scalar_subquery()
            )

        return tuple(
            s.execute(
                select(
                    Case.state,
                    Case.version,
                    Case.chain_head,
                    Case.due_at,
                    Case.due_kind,
                    Case.examiner_id,
                    Case.result,
                    Case.decision,
                    count(CaseEvent.__table__),
                    count(Outbox.__table__),
                    count(Document.__table__),
                    count(case_targets),
                ).where(Case.id == self.case_id)
            ).one()
        )

    def _attempt(self, action: Any) -> Any:
        """Run ``action(session)`` in its own transaction and commit. A domain error must
        have written nothing: the transaction looks as it did before the call."""
        with self.factory() as s, s.begin():
            before = self._snapshot(s)
            try:
                return action(s)
            except DomainError as exc:
                refusal = exc
            assert self._snapshot(s) == before, f"{refusal!r} left writes behind"
            return refusal

    def _row(self) -> Any:
        with self.factory() as s:
            row = s.execute(select(Case).where(Case.id == self.case_id)).scalar_one()
            has_doc = s.execute(
                select(Document.id).where(
                    Document.case_id == self.case_id, Document.kind == "transcript"
                )
            ).first()
            targets = list(
                s.scalars(
                    select(Module.code)
                    .join(case_targets, case_targets.c.module_id == Module.id)
                    .where(case_targets.c.case_id == self.case_id)
                    .order_by(Module.id)
                )
            )
            return row, has_doc is not None, targets

    def _predict(
        self,
        ev: EventDef,
        kind: str,
        actor: Actor,
        mode: str,
        row: Any,
        has_doc: bool,
        targets: list[str],
    ) -> type[DomainError] | str | None:
        """The outcome the rules imply: "ok", an error class, or None if not predicted."""
        if kind in INVISIBLE:
            return NotFound
        if self.state not in ev.sources:
            return IllegalTransition
        if acting_role(actor, ev) is None:
            return Forbidden
        if mode == "none" and ev.required:
            return ValidationFailed  # fire checks the declared fields before the guards
        if "assigned_examiner" in ev.guards and row.examiner_id != actor.id:
            return Forbidden  # a guard
        if mode == "none" and "result_data" in ev.guards:
            # A result without its date: a transcript's (the import) keeps it unknown for a
            # clerk to record later; a clerk must give it (refused as a missing field).
            return None if actor.role is Role.IMPORT else ValidationFailed
        if mode == "none" and DATA_GUARDS & set(ev.guards):
            return GuardFailed
        if mode != "full":
            return None
        met = {
            "course_offered": True,
            "result_data": True,
            "target_set": bool(targets),
            "not_passed_at_home": True,
            "assigned_examiner": True,
            "message_given": True,
            "reasons_given": True,
            "recognition_data": True,
            "rejection_reasons": True,
            "document_attached": has_doc,
            "examiner_assigned": row.examiner_id is not None,
            "partial_recognition_data": (targets[:1] or ["INF-ML"])[0] != "INF-WP2",
            "inside_appeal_window": row.appeal_ends_at is not None
            and self.now < row.appeal_ends_at,
            # No objection against the board's decision on one (ADR 0015).
            "objection_open": row.appeal_ends_at is not None
            and self.now < row.appeal_ends_at
            and (row.decision or {}).get("event") != "grant_appeal",
            # No case closes before its decision is final, whoever asks (ADR 0015).
            "appeal_window_over": row.appeal_ends_at is None or self.now >= row.appeal_ends_at,
            "deadline_passed": row.due_at is not None and self.now >= row.due_at,
        }
        return "ok" if all(met[g] for g in ev.guards) else GuardFailed

    # --- rules ----------------------------------------------------------------------------

    @rule(move=CLOCK_MOVES)
    def tick(self, move: dt.timedelta) -> None:
        self.now += move

    @rule(data=st.data())
    def fire_any(self, data: st.DataObject) -> None:
        """Any event, any actor, any data: mostly refusals."""
        event = data.draw(st.sampled_from(ALL_EVENTS), label="event")
        kind = data.draw(st.sampled_from(ACTOR_KINDS), label="actor")
        mode = data.draw(st.sampled_from(["full", "full", "none", "partial"]), label="data")
        self._fire(data, event, kind, mode)

    @precondition(lambda self: not PROC.states[self.state].final)
    @rule(data=st.data())
    def fire_plausible(self, data: st.DataObject) -> None:
        """Mostly an event the state allows, by one of its actors, with complete data."""
        legal = [e.name for e in PROC.allowed_from(self.state)]
        if data.draw(st.integers(0, 9), label="may withdraw") > 0:
            legal = [name for name in legal if name != "withdraw"] or legal
        event = data.draw(st.sampled_from(legal), label="event")
        if data.draw(st.integers(0, 4), label="wrong actor") > 0:
            kind = data.draw(st.sampled_from(PROC.events[event].actors), label="actor")
        else:
            kind = data.draw(st.sampled_from(ACTOR_KINDS), label="actor")
        mode = data.draw(st.sampled_from(["full"] * 8 + ["none", "partial"]), label="data")
        self._fire(data, event, kind, mode)

    def _fire(self, data: st.DataObject, event: str, kind: str, mode: str) -> None:
        ev = PROC.events[event]
        actor = self.actors[kind]
        if data.draw(st.integers(0, 3), label="prepare") > 0:
            if ev.name == "receive_transcript":
                self.attach("clerk")
            if ev.name == "start_review":
                self.assign("clerk", self.net.examiner_username)

        row, has_doc, targets = self._row()
        payload: dict[str, Any] | None = event_data(
            ev, now=self.now, targets=targets or ["INF-ML"], others=["INF-WP2"]
        )
        assert payload is not None
        if mode == "none":
            payload = None
        elif mode == "partial" and payload:
            payload.pop(data.draw(st.sampled_from(sorted(payload)), label="drop"))
        expected = self._predict(ev, kind, actor, mode, row, has_doc, targets)

        now = self.now
        outcome = self._attempt(
            lambda s: fire(
                s, self.case_id, ev.name, actor=actor, now=now, data=payload, channel="test"
            )
        )
        if isinstance(outcome, DomainError):
            tally(f"refused:{type(outcome).__name__}")
            assert expected != "ok", (
                f"{ev.name} by {kind} in {self.state} ({mode} data) was refused: {outcome}"
            )
            if expected is not None:
                assert type(outcome) is expected, (
                    f"{ev.name} by {kind} in {self.state}: expected {expected}, got {outcome!r}"
                )
            assert not isinstance(outcome, IllegalTransition) or (
                f"it is {self.state}" in str(outcome)
            ), str(outcome)
            return
        tally(f"fired:{ev.name}")
        assert expected in (None, "ok"), (
            f"{ev.name} by {kind} in {self.state} ({mode} data) succeeded; expected {expected}"
        )
        assert outcome.from_state == self.state
        assert self.state in ev.sources
        assert outcome.to_state == ev.dest
        assert outcome.seq == self.version + 1
        assert outcome.event == ev.name
        self.state, self.version = outcome.to_state, outcome.seq

    @rule(data=st.data())
    def side_event(self, data: st.DataObject) -> None:
        """A non-transition event: attach a transcript, assign an examiner, set targets."""
        which = data.draw(st.sampled_from(["attach", "assign", "targets"]), label="which")
        if which == "attach":
            self.attach(
                data.draw(
                    st.sampled_from(
                        [
                            "clerk",
                            "admin",
                            "student",
                            "import",
                            "examiner",
                            "other_student",
                            "foreign_clerk",
                        ]
                    ),
                    label="actor",
                )
            )
        elif which == "assign":
            self.assign(
                data.draw(
                    st.sampled_from(
                        ["clerk", "clerk", "admin", "examiner", "student", "foreign_clerk"]
                    ),
                    label="actor",
                ),
                data.draw(
                    st.sampled_from(["examiner", "examiner", "examiner2", "clerk"]),
                    label="username",
                ),
            )
        else:
            self.targets(
                data.draw(
                    st.sampled_from(["clerk", "student", "examiner", "other_student"]),
                    label="actor",
                ),
                data.draw(
                    st.lists(
                        st.sampled_from(["INF-ML", "INF-CC", "INF-WP2", "NOPE"]),
                        max_size=2,
                        unique=True,
                    ),
                    label="codes",
                ),
            )

    def attach(self, kind: str) -> None:
        actor = self.actors[kind]
        now = self.now
        outcome = self._attempt(
            lambda s: attach_document(
                s,
                self.case_id,
                content=MINIMAL_PDF,
                filename="tor.pdf",
                media_type="application/pdf",
                kind="transcript",
                store=self.store,
                actor=actor,
                now=now,
                channel="test",
            )
        )
        # A transcript: the office's or an import's, never the student's (the permission
        # table's ATTACH_TRANSCRIPT).
        self._record(outcome, "attach_document", ok=kind in ("clerk", "admin", "import"))

    def assign(self, kind: str, username: str) -> None:
        actor = self.actors[kind]
        now = self.now
        outcome = self._attempt(
            lambda s: assign_examiner(
                s, self.case_id, username, actor=actor, now=now, channel="test"
            )
        )
        self._record(
            outcome, "assign_examiner", ok=kind in ("clerk", "admin") and username != "clerk"
        )

    def targets(self, kind: str, codes: list[str]) -> None:
        actor = self.actors[kind]
        now = self.now
        outcome = self._attempt(
            lambda s: set_targets(s, self.case_id, codes, actor=actor, now=now, channel="test")
        )
        open_states = {
            "planned",
            "enrolled",
            "course_passed",
            "course_failed",
            "transcript_received",
        }
        self._record(
            outcome,
            "set_targets",
            ok=(
                kind in ("clerk", "student")
                and self.state in open_states
                and bool(codes)
                and "NOPE" not in codes
            ),
        )

    def _record(self, outcome: Any, name: str, *, ok: bool) -> None:
        """Check a non-transition event: it keeps the state and adds one event, or it is
        refused (with nothing written, checked by ``_attempt``)."""
        fired = outcome[1] if isinstance(outcome, tuple) else outcome
        if isinstance(fired, DomainError):
            tally(f"refused:{name}")
            assert not ok, f"{name} was refused: {fired}"
            return
        tally(f"recorded:{name}")
        assert ok, f"{name} should have been refused"
        assert fired.event == name
        assert fired.from_state == fired.to_state == self.state
        assert fired.seq == self.version + 1
        self.version = fired.seq

    # --- invariants -----------------------------------------------------------------------

    @invariant()
    def case_is_consistent(self) -> None:
        if self.case_id is None:
            return
        with self.factory() as s:
            case = s.execute(select(Case).where(Case.id == self.case_id)).scalar_one()
            events = list(
                s.scalars(
                    select(CaseEvent)
                    .where(CaseEvent.case_id == self.case_id)
                    .order_by(CaseEvent.seq)
                )
            )
            assert case.state in PROC.states
            assert case.state == self.state
            assert case.version == self.version == len(events)
            assert [e.seq for e in events] == list(range(1, len(events) + 1))

            first, *rest = events
            assert (first.event, first.from_state, first.to_state) == ("open", None, PROC.initial)
            previous = first
            for ev in rest:
                assert ev.from_state == previous.to_state, (previous.event, ev.event)
                assert ev.at >= previous.at
                if ev.event in NON_TRANSITIONS:
                    assert ev.to_state == ev.from_state, ev.event
                else:
                    edge = PROC.events[ev.event]
                    assert ev.from_state in edge.sources, (ev.event, ev.from_state)
                    assert ev.to_state == edge.dest, (ev.event, ev.to_state)
                previous = ev
            assert previous.to_state == case.state

            report = audit.verify(s, self.case_id)
            assert report.ok, [str(b) for b in report.breaches]

            assert (case.due_at is None) == (case.due_kind is None)
            if PROC.states[case.state].final:
                assert case.due_at is None
            else:
                assert case.due_kind == PROC.states[case.state].deadline

            versions = dict(
                s.execute(select(Case.id, Case.version).where(Case.id.in_(self.untouched))).all()
            )
            assert versions == self.untouched, "a bystander case was changed"


def test_random_event_sequences_keep_the_case_consistent(
    sqlite_template: Path, tmp_path: Path
) -> None:
    CaseMachine.seed = make_seed(sqlite_template, tmp_path)
    run_state_machine_as_test(
        CaseMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=30,
            deadline=None,
            database=None,
            # Each example costs a fresh database; skip the (slow) explain phase on failure.
            phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
        ),
    )
