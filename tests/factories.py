"""Test data: factory_boy factories for the office's reference data, and cases in any state.

The reference data (institutions, programmes, modules, partner offerings, students, office
users) are rows, made by factory_boy's SQLAlchemy factories. A case is not a row one writes:
:class:`CaseFactory` opens it with ``open_case`` and walks it to the requested state by firing
the procedure's events through ``fire``, so its audit trail, deadlines and outbox are those of
a real case. The path and each event's data come from the procedure (its events, their guards
and fields): a state added to ``config/procedure.toml`` needs no change here.

The factories write into the session bound by ``with bound(session):`` (the ``session``
fixture binds its own). Tests import them as ``from tests.factories import ...`` (the
checkout is on ``sys.path``, pyproject's ``pythonpath``; one name, so one module)::

    case = CaseFactory(state="in_review", student__name="Ada Lovelace")
    clerk = office.clerk  # the ``network`` fixture: a home office with its four users
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import factory
from factory.alchemy import SQLAlchemyModelFactory
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from config.procedure import EventDef, get_procedure
from config.settings import Settings, get_settings
from models import Case, Institution, Module, Offering, Programme, Role, Student, User
from workflow.cases.casefile import assign_examiner, attach_document, open_case
from workflow.cases.documents import DocumentStore, MemoryStore
from workflow.cases.engine import fire
from workflow.policy.actors import Actor
from workflow.policy.auth import actor_for_user

# The tests' present (tests/conftest.py NOW); offerings are dated relative to its day.
TODAY = dt.date(2026, 11, 2)
MINIMAL_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages"
    b"/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)
CHANNEL = "test"

_sessions: list[Session] = []


def current_session() -> Session:
    if not _sessions:
        raise RuntimeError("no session bound for the factories: use `with bound(session):`")
    return _sessions[-1]


@contextmanager
def bound(session: Session) -> Iterator[Session]:
    """Let the factories write into ``session`` (flushing, never committing) inside the block."""
    _sessions.append(session)
    try:
        yield session
    finally:
        _sessions.remove(session)


class _RowFactory(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = current_session
        sqlalchemy_session_persistence = "flush"


# --- reference data ----------------------------------------------------------------------------


class InstitutionFactory(_RowFactory):
    """A home institution; given the code of an existing one, that one (partners are shared)."""

    class Meta:
        model = Institution

    code = factory.Sequence(lambda n: f"uni-{n}.example")
    name = factory.LazyAttribute(lambda o: f"University {o.code}")
    country = "DE"
    kind = "home"
    office_email = factory.LazyAttribute(lambda o: f"office@{o.code}")

    @classmethod
    def _create(cls, model_class: type[Institution], *args: Any, **kwargs: Any) -> Institution:
        found = (
            current_session()
            .execute(select(Institution).where(Institution.code == kwargs["code"]))
            .scalar()
        )
        return found or super()._create(model_class, *args, **kwargs)  # type: ignore[no-any-return]


def default_home() -> Institution:
    """The first home institution in the database (the test's office), or a new one."""
    session = current_session()
    home = session.execute(
        select(Institution).where(Institution.kind == "home").order_by(Institution.id).limit(1)
    ).scalar()
    return home or InstitutionFactory()


class PartnerFactory(InstitutionFactory):
    code = factory.Sequence(lambda n: f"partner-{n}.example")
    country = "IT"
    kind = "partner"
    office_email = None


class ProgrammeFactory(_RowFactory):
    class Meta:
        model = Programme

    class Params:
        institution = None  # an Institution row (default: ``default_home()``)

    institution_id = factory.LazyAttribute(lambda o: (o.institution or default_home()).id)
    code = factory.Sequence(lambda n: f"PRG-{n}")
    title = factory.LazyAttribute(lambda o: f"Programme {o.code}")
    degree = "B.Sc."


class ModuleFactory(_RowFactory):
    class Meta:
        model = Module

    programme = factory.SubFactory(ProgrammeFactory)
    code = factory.Sequence(lambda n: f"MOD-{n}")
    title = factory.LazyAttribute(lambda o: f"Module {o.code}")
    ects = Decimal("5.0")
    regulation_version = "PO 2024"


TERM_STARTS = {"past": -150, "recent": -100, "current": -30, "upcoming": 60}


class OfferingFactory(_RowFactory):
    """A partner's course in one term, placed relative to ``today`` by ``when`` (or the
    trait of that name): "recent" (the default: began 100 days ago, exam and results are
    past), "past" (150 days ago), "current" (30 days ago, the exam ahead) or "upcoming"
    (starts in 60 days); ``starts_in`` gives the days exactly."""

    class Meta:
        model = Offering

    class Params:
        today = TODAY
        when = "recent"
        starts_in = factory.LazyAttribute(lambda o: TERM_STARTS[o.when])  # days from today
        past = factory.Trait(when="past")
        current = factory.Trait(when="current")
        upcoming = factory.Trait(when="upcoming")

    institution = factory.SubFactory(PartnerFactory)
    code = factory.Sequence(lambda n: f"C-{n:03d}")
    start_date = factory.LazyAttribute(lambda o: o.today + dt.timedelta(days=o.starts_in))
    end_date = factory.LazyAttribute(lambda o: o.start_date + dt.timedelta(days=90))
    exam_date = factory.LazyAttribute(lambda o: o.start_date + dt.timedelta(days=70))
    term = factory.LazyAttribute(lambda o: f"{o.start_date:%Y-%m}")
    title = factory.LazyAttribute(lambda o: f"Course {o.code}")
    ects = Decimal("5.0")
    language = "en"
    eqf_level = 6
    learning_outcomes = factory.LazyAttribute(lambda o: f"Students can apply {o.title}.")
    assessment_type = "written exam"
    participation_mode = "online"
    quality_assurance = "ENQA-registered agency"
    grading_scheme = "it"

    @classmethod
    def _create(cls, model_class: type[Offering], *args: Any, **kwargs: Any) -> Offering:
        """The partner's offering of that code and term if it exists (cases share it)."""
        found = (
            current_session()
            .execute(
                select(Offering).where(
                    Offering.institution_id == kwargs["institution"].id,
                    Offering.code == kwargs["code"],
                    Offering.term == kwargs["term"],
                )
            )
            .scalar()
        )
        return found or super()._create(model_class, *args, **kwargs)  # type: ignore[no-any-return]


class StudentFactory(_RowFactory):
    class Meta:
        model = Student

    class Params:
        institution = None  # an Institution row (default: ``default_home()``)

    institution_id = factory.LazyAttribute(lambda o: (o.institution or default_home()).id)
    matriculation_number = factory.Sequence(lambda n: f"{4700000 + n}")
    name = factory.Sequence(lambda n: f"Student {n}")
    email = factory.Sequence(lambda n: f"student{n}@student.example")
    preferred_language = "de"


class UserFactory(_RowFactory):
    """An office user; an examiner is given the programmes it examines (``programmes=[...]``)."""

    class Meta:
        model = User

    class Params:
        institution = None  # an Institution row (default: ``default_home()``)

    institution_id = factory.LazyAttribute(lambda o: (o.institution or default_home()).id)
    role = "clerk"
    username = factory.Sequence(lambda n: f"user{n}")
    display_name = factory.LazyAttribute(lambda o: o.username)
    email = factory.LazyAttribute(lambda o: f"{o.username}@office.example")
    programmes = factory.List([])


def actor(user: User) -> Actor:
    """The office user as the engine sees it (as signing in makes it)."""
    session = object_session(user)
    assert session is not None, "a user of a session"
    return actor_for_user(session, user)


def actor_named(session: Session, username: str) -> Actor:
    return actor(session.execute(select(User).where(User.username == username)).scalar_one())


def student_actor(session: Session, case_id: int) -> Actor:
    """The student of a case, signed in."""
    student_id, inst = session.execute(
        select(Case.student_id, Case.institution_id).where(Case.id == case_id)
    ).one()
    return Actor(
        role=Role.STUDENT, id=student_id, institution_id=inst, label=f"student#{student_id}"
    )


@dataclass
class Office:
    """A home institution's examination office: one programme with its modules, and one user
    of each office role (the examiner examines the programme)."""

    home_id: int
    programme_id: int
    clerk: Actor
    examiner: Actor
    board: Actor
    admin: Actor

    @property
    def examiner_username(self) -> str:
        return self.examiner.label


def make_office(
    *,
    home: dict[str, Any] | None = None,
    programme: dict[str, Any] | None = None,
    modules: list[dict[str, Any]] | tuple[()] = (),
    users: dict[str, dict[str, Any]] | None = None,
) -> Office:
    """A home office made by the factories; every detail can be given (``users`` by role)."""
    institution = InstitutionFactory(**(home or {}))
    prog = ProgrammeFactory(institution=institution, **(programme or {}))
    for spec in modules or [{}, {}]:
        ModuleFactory(programme=prog, **spec)
    made = {
        role: UserFactory(
            institution=institution,
            role=role,
            programmes=[prog] if role == "examiner" else [],
            **(users or {}).get(role, {}),
        )
        for role in ("clerk", "examiner", "board", "admin")
    }
    return Office(
        home_id=institution.id,
        programme_id=prog.id,
        **{role: actor(user) for role, user in made.items()},
    )


# The tests' usual home office (the ``network`` fixture, the web tests' world): the codes,
# names and users that tests name in their assertions.
HOME_MODULES = [
    ("INF-ML", "Maschinelles Lernen", "5.0"),
    ("INF-CC", "Cloud Computing", "5.0"),
    ("INF-HCI", "Mensch-Computer-Interaktion", "6.0"),
    ("INF-WP1", "Wahlpflicht Informatik I", "3.0"),
    ("INF-WP2", "Wahlpflicht Informatik II", "3.0"),
]


def home_modules(*codes: str, home_id: int | None = None) -> list[Module]:
    """The home's modules of these codes, in this order (default: ``default_home()``'s)."""
    home_id = home_id or default_home().id
    found = {
        m.code: m
        for m in current_session().scalars(
            select(Module)
            .join(Programme)
            .where(Programme.institution_id == home_id, Module.code.in_(codes))
        )
    }
    return [found[c] for c in codes]


def musterstadt(code: str = "uni-musterstadt.de") -> Office:
    """Universität Musterstadt: programme INF-BSC with the modules of ``HOME_MODULES``, and
    the users clerk, examiner, board and admin (``clerk@<code>`` ... for any other code)."""
    suffix = "" if code == "uni-musterstadt.de" else f"@{code}"
    names = {
        "clerk": "Clara Sachbearbeiterin",
        "examiner": "Prof. Dr. Erik Prüfer",
        "board": "Prüfungsausschuss",
        "admin": "Admin",
    }
    return make_office(
        home={
            "code": code,
            "name": "Universität Musterstadt",
            "office_email": "pruefungsamt@uni-musterstadt.example",
        },
        programme={"code": "INF-BSC", "title": "Informatik (B.Sc.)"},
        modules=[
            {"code": c, "title": t, "ects": Decimal(e), "regulation_version": "PO 2024"}
            for c, t, e in HOME_MODULES
        ],
        users={
            role: {
                "username": f"{role}{suffix}",
                "display_name": display,
                "email": f"{role}{suffix.replace('@', '.')}@uni-musterstadt.example",
            }
            for role, display in names.items()
        },
    )


# --- cases -------------------------------------------------------------------------------------

# Plausible data for the events a guard checks, by guard (the engine's fixed vocabulary, not
# the procedure's events): what a clerk, examiner or board would enter.
REASONS = {"learning_outcomes": "The course covers half of the module's outcomes."}


@dataclass
class _Step:
    event: EventDef
    now: dt.datetime
    targets: list[str]
    others: list[str]  # the programme's modules that are not targets

    def required(self, name: str) -> bool:
        spec = self.event.fields.get(name)
        return spec is not None and spec.required


GUARD_DATA: dict[str, Callable[[_Step], dict[str, Any]]] = {
    # A pass needs a grade (an Italian 27 by default); a fail is recorded with one too.
    "result_data": lambda s: {
        "date": s.now.date().isoformat(),
        "scheme": "it",
        **({"grade": "27", "ects": "5.0"} if s.required("grade") else {"grade": "15"}),
    },
    "recognition_data": lambda s: {"modules": s.targets[:1], "grade": "1.7"},
    "partial_recognition_data": lambda s: {
        "modules": s.targets[:1],
        "not_credited": s.others[:1],
        "grade": "2.0",
        "reasons": dict(REASONS),
        "advice": "Take the missing part at home.",
    },
    "rejection_reasons": lambda s: {"reasons": dict(REASONS), "advice": "Take the exam at home."},
    "message_given": lambda s: {"message": f"A message to {s.event.name}."},
    "reasons_given": lambda s: {"reasons": f"The reasons to {s.event.name}."},
}
# A required field no guard fills gets a value of its type.
TYPE_DATA: dict[str, Callable[[_Step], Any]] = {
    "text": lambda s: "text",
    "number": lambda s: "1",
    "integer": lambda s: 1,
    "date": lambda s: s.now.date().isoformat(),
    "list": lambda s: s.targets[:1],
    "mapping": lambda s: dict(REASONS),
}


def event_data(
    event: EventDef, *, now: dt.datetime, targets: Sequence[str], others: Sequence[str] = ()
) -> dict[str, Any]:
    """Data for ``event`` at ``now`` that satisfies its guards and required fields, for a
    case with these target module codes (``others``: the programme's other modules)."""
    step = _Step(event, now, list(targets), list(others))
    data: dict[str, Any] = {}
    for guard in event.guards:
        if guard in GUARD_DATA:
            data.update(GUARD_DATA[guard](step))
    for name, spec in event.fields.items():
        if spec.required and name not in data:
            data[name] = TYPE_DATA[spec.type](step)
    return {k: v for k, v in data.items() if k in event.fields}


class Cast:
    """Who acts on one case: the system roles, its student, and the first active user of
    each office role in its institution (the examiner: the case's own, else one of its
    programme), each looked up once; a role nobody holds is given to a new user."""

    def __init__(self, session: Session, case_id: int, **known: Actor) -> None:
        self.session, self.case_id = session, case_id
        self.row = session.execute(
            select(Case.institution_id, Case.programme_id, Case.student_id).where(
                Case.id == case_id
            )
        ).one()
        self.known = dict(known)

    def __call__(self, role: str) -> Actor:
        if role not in self.known:
            self.known[role] = self._find(role)
        return self.known[role]

    def _find(self, role: str) -> Actor:
        if role in (Role.IMPORT.value, Role.TIMER.value):
            return Actor.system(Role(role))
        if role == Role.STUDENT.value:
            return Actor(
                role=Role.STUDENT,
                id=self.row.student_id,
                institution_id=self.row.institution_id,
                label=f"student#{self.row.student_id}",
            )
        query = select(User).where(
            User.institution_id == self.row.institution_id, User.role == role, User.active
        )
        if role == Role.EXAMINER.value:
            assigned = self.session.scalar(select(Case.examiner_id).where(Case.id == self.case_id))
            if assigned is not None:
                query = select(User).where(User.id == assigned)
            elif self.row.programme_id is not None:
                query = query.where(User.programmes.any(Programme.id == self.row.programme_id))
        user = self.session.execute(query.order_by(User.id).limit(1)).scalar()
        if user is None:
            programme = self.row.programme_id and self.session.get(Programme, self.row.programme_id)
            user = UserFactory(
                institution_id=self.row.institution_id,
                role=role,
                programmes=[programme] if programme else [],
            )
        return actor(user)


def walk(
    session: Session,
    case_id: int,
    state: str,
    *,
    now: dt.datetime,
    step: dt.timedelta = dt.timedelta(days=2),
    store: DocumentStore | None = None,
    data: dict[str, dict[str, Any]] | None = None,
    settings: Settings | None = None,
    cast: Cast | None = None,
) -> dt.datetime:
    """Fire the shortest path of the procedure's events from the case's state to ``state``,
    ``step`` apart; returns the time of the last event. Results come after the course's
    exam, and an event that needs a deadline passed happens just after it. ``data`` gives
    an event's data by its name (merged over the plausible defaults)."""
    proc = get_procedure()
    settings = settings or get_settings()
    store = store or MemoryStore()
    cast = cast or Cast(session, case_id)
    case = session.execute(
        select(
            Case.state,
            Case.programme_id,
            Case.examiner_id,
            Offering.exam_date,
            Offering.end_date,
            Institution.timezone,
        )
        .join(Offering, Offering.id == Case.offering_id)
        .join(Institution, Institution.id == Case.institution_id)
        .where(Case.id == case_id)
    ).one()
    path = proc.path_to(case.state, {state})
    if path is None:
        raise ValueError(f"{state} cannot be reached from {case.state}")
    if not path:
        return now
    codes: list[list[str]] = []  # [targets, others], read when an event takes a list

    def modules() -> list[list[str]]:
        if not codes:
            targets = list(
                session.scalars(select(Module.code).join(Case.targets).where(Case.id == case_id))
            )
            others = session.scalars(
                select(Module.code)
                .where(Module.programme_id == case.programme_id, Module.code.not_in(targets))
                .order_by(Module.id)
            )
            codes.extend([targets, list(others)])
        return codes

    exam = dt.datetime.combine(
        case.exam_date or case.end_date,
        dt.time(10),
        tzinfo=ZoneInfo(case.timezone or settings.timezone),
    )
    examiner_assigned = case.examiner_id is not None
    for ev in path:
        now += step
        if "result_data" in ev.guards:
            now = max(now, exam + step)
        if "document_attached" in ev.guards:
            attach_document(
                session,
                case_id,
                content=MINIMAL_PDF,
                filename="tor.pdf",
                media_type="application/pdf",
                kind="transcript",
                store=store,
                actor=cast("clerk"),
                now=now,
                channel=CHANNEL,
            )
        if "examiner_assigned" in ev.guards and not examiner_assigned:
            assign_examiner(
                session,
                case_id,
                cast("examiner").label,
                actor=cast("clerk"),
                now=now,
                channel=CHANNEL,
            )
            examiner_assigned = True
        if "deadline_passed" in ev.guards or "appeal_window_over" in ev.guards:
            due, appeal_ends = session.execute(
                select(Case.due_at, Case.appeal_ends_at).where(Case.id == case_id)
            ).one()
            limit = due if "deadline_passed" in ev.guards else appeal_ends
            if limit is not None and now < limit:
                now = limit + dt.timedelta(minutes=1)
        lists = any(f.type == "list" for f in ev.fields.values())
        targets, others = modules() if lists else ([], [])
        fire(
            session,
            case_id,
            ev.name,
            actor=cast(ev.actors[0]),
            now=now,
            data={
                **event_data(ev, now=now, targets=targets, others=others),
                **(data or {}).get(ev.name, {}),
            },
            channel=CHANNEL,
            settings=settings,
        )
    return now


def _first_modules(session: Session, institution_id: int) -> list[Module]:
    found = session.execute(
        select(Module)
        .join(Programme)
        .where(Programme.institution_id == institution_id)
        .order_by(Module.id)
        .limit(1)
    ).scalar()
    return [found] if found is not None else []


class CaseFactory(factory.Factory):
    """A case of ``student`` for ``offering``, opened by the home's clerk and walked through
    the procedure's events to ``state`` (the initial state by default). It is opened 20 days
    before the course starts (or ``opened_at``), and events follow ``step`` apart; the result
    comes after the exam. ``targets`` are home modules (default: the home's first module);
    ``data`` gives an event's data by its name. Returns the ``Case`` row."""

    class Meta:
        model = Case

    state = factory.LazyFunction(lambda: get_procedure().initial)
    student = factory.SubFactory(StudentFactory)
    offering = factory.SubFactory(OfferingFactory)
    targets = None
    opened_at = None
    present = None  # the moment "now": a case is not opened later than two days before it
    step = dt.timedelta(days=2)
    data = factory.Dict({})
    store = None
    settings = None

    @classmethod
    def _build(cls, model_class: type[Case], *args: Any, **kwargs: Any) -> Case:
        raise TypeError("a case is opened in a database: use CaseFactory(...), not .build()")

    @classmethod
    def _create(
        cls,
        model_class: type[Case],
        *,
        state: str,
        student: Student,
        offering: Offering,
        targets: list[Module] | None,
        opened_at: dt.datetime | None,
        present: dt.datetime | None,
        step: dt.timedelta,
        data: dict[str, dict[str, Any]],
        store: DocumentStore | None,
        settings: Settings | None,
    ) -> Case:
        session = current_session()
        settings = settings or get_settings()
        if targets is None:
            targets = _first_modules(session, student.institution_id)
        if opened_at is None:
            opened_at = dt.datetime.combine(
                offering.start_date, dt.time(9), tzinfo=settings.zone
            ) - dt.timedelta(days=20)
            if present is not None:
                opened_at = min(opened_at, present - dt.timedelta(days=2))
        clerk = actor(
            session.execute(
                select(User)
                .where(User.institution_id == student.institution_id, User.role == "clerk")
                .order_by(User.id)
                .limit(1)
            ).scalar()
            or UserFactory(institution_id=student.institution_id, role="clerk")
        )
        opened = open_case(
            session,
            student_id=student.id,
            offering_id=offering.id,
            actor=clerk,
            now=opened_at,
            target_module_ids=[m.id for m in targets],
            channel=CHANNEL,
            settings=settings,
        )
        walk(
            session,
            opened.case_id,
            state,
            now=opened_at,
            step=step,
            store=store,
            data=data,
            settings=settings,
            cast=Cast(session, opened.case_id, clerk=clerk),
        )
        case = session.get(Case, opened.case_id)
        assert case is not None
        return case
