"""A demo partner network, and a driver that walks a case to any state through ``fire``.

``recog up --demo`` seeds a home university, three partner universities, a catalogue, 50
cases spread over every state, and grading tables for percentile conversion (the Italian
partner's and the office's own). Every case gets there by real events with real guards, so its
audit trail verifies and its deadlines are what the engine computed. The benchmarks in bench/
use the same driver (``create_case``) instead of pasting state into rows; the tests build
their own data (tests/factories.py), so changing the demo changes no test.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from config.procedure import EventDef, get_procedure
from config.settings import Settings, get_settings
from models import Case, Institution, Module, Offering, Outbox, Programme, Role, User
from workflow.cases.casefile import assign_examiner, attach_document, open_case
from workflow.cases.documents import DocumentStore, MemoryStore
from workflow.cases.engine import fire
from workflow.office.catalog import add_institution, add_user, find_or_create_student
from workflow.policy.actors import Actor
from workflow.policy.auth import actor_for_user

MINIMAL_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages"
    b"/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


@dataclass
class Network:
    """Ids of the seeded network, for the driver and the benchmarks."""

    home_id: int
    clerk: Actor
    examiner: Actor
    examiner_username: str
    board: Actor
    admin: Actor
    offerings: dict[str, int] = field(default_factory=dict)  # "past" | "current" | "next"
    modules: list[str] = field(default_factory=list)


def _actor_for(session: Session, username: str) -> Actor:
    user = session.execute(select(User).where(User.username == username)).scalar_one()
    return actor_for_user(session, user)


def _student_actor(session: Session, case_id: int) -> Actor:
    student_id, inst = session.execute(
        select(Case.student_id, Case.institution_id).where(Case.id == case_id)
    ).one()
    return Actor.student(student_id, inst)


PARTNERS = [
    ("tdu.fi", "Tampere Digital University", "FI", "fi", "en"),
    ("unitol.it", "Università Telematica di Trento", "IT", "it", "it"),
    ("unl.fr", "Université Numérique de Lyon", "FR", "fr", "fr"),
]
COURSES = [
    ("Machine Learning Fundamentals", Decimal("5.0"), 7),
    ("Cloud Computing", Decimal("5.0"), 6),
    ("Human-Computer Interaction", Decimal("6.0"), 6),
    ("Data Ethics", Decimal("3.0"), 6),
]
MODULES = [
    ("INF-BSC", "Informatik (B.Sc.)", "INF-ML", "Maschinelles Lernen", Decimal("5.0")),
    ("INF-BSC", "Informatik (B.Sc.)", "INF-CC", "Cloud Computing", Decimal("5.0")),
    ("INF-BSC", "Informatik (B.Sc.)", "INF-HCI", "Mensch-Computer-Interaktion", Decimal("6.0")),
    ("INF-BSC", "Informatik (B.Sc.)", "INF-WP1", "Wahlpflicht Informatik I", Decimal("3.0")),
    ("INF-BSC", "Informatik (B.Sc.)", "INF-WP2", "Wahlpflicht Informatik II", Decimal("3.0")),
]


def seed_network(session: Session, *, today: dt.date) -> Network:
    """The demo institutions, catalogue, modules and office users (no cases)."""
    home = add_institution(
        session,
        code="uni-musterstadt.de",
        name="Universität Musterstadt",
        country="DE",
        kind="home",
        office_email="pruefungsamt@uni-musterstadt.example",
        erasmus_code="D  MUSTER00",
    )
    prog = Programme(
        institution_id=home.id, code="INF-BSC", title="Informatik (B.Sc.)", degree="B.Sc."
    )
    session.add(prog)
    session.flush()
    for _, _, code, title, ects in MODULES:
        session.add(
            Module(
                programme_id=prog.id,
                code=code,
                title=title,
                ects=ects,
                regulation_version="PO 2024",
            )
        )
    # Course start relative to today: long past (overdue and closed cases), recent (results
    # and decisions of the last weeks), running now, and next term.
    terms = {"past": -150, "recent": -100, "current": -30, "next": 60}
    offerings: dict[str, int] = {}
    for p_code, p_name, country, scheme, lang in PARTNERS:
        partner = session.execute(select(Institution).where(Institution.code == p_code)).scalar()
        if partner is None:
            partner = add_institution(
                session, code=p_code, name=p_name, country=country, kind="partner"
            )
        for term, offset in terms.items():
            start = today + dt.timedelta(days=offset)
            for i, (title, ects, eqf) in enumerate(COURSES):
                offering = Offering(
                    institution_id=partner.id,
                    code=f"{country}-{i + 1:02d}",
                    term=f"{start:%Y-%m}",
                    title=title,
                    ects=ects,
                    language=lang if i % 2 else "en",
                    eqf_level=eqf,
                    learning_outcomes=f"Students can apply the core methods of {title}.",
                    assessment_type="written exam" if i % 2 else "project and oral exam",
                    participation_mode="online",
                    quality_assurance="ENQA-registered agency",
                    start_date=start,
                    end_date=start + dt.timedelta(days=90),
                    exam_date=start + dt.timedelta(days=70),
                    grading_scheme=scheme,
                )
                session.add(offering)
                session.flush()
                offerings.setdefault(term, offering.id)
                offerings[f"{term}:{p_code}:{i}"] = offering.id
    users = {}
    for role, display, progs in [
        ("clerk", "Clara Sachbearbeiterin", []),
        ("examiner", "Prof. Dr. Erik Prüfer", ["INF-BSC"]),
        ("board", "Prüfungsausschuss", []),
        ("admin", "Admin", []),
    ]:
        users[role] = add_user(
            session,
            username=role,
            role=role,
            institution=home.code,
            display_name=display,
            programmes=progs,
            email=f"{role}@uni-musterstadt.example",
        )
    clerk, examiner, board, admin = (users[r] for r in ("clerk", "examiner", "board", "admin"))
    return Network(
        home_id=home.id,
        clerk=_actor_for(session, clerk.username),
        examiner=_actor_for(session, examiner.username),
        examiner_username=examiner.username,
        board=_actor_for(session, board.username),
        admin=_actor_for(session, admin.username),
        offerings=offerings,
        modules=[m[2] for m in MODULES],
    )


# A passing and a failing grade on each demo partner's grading scheme (``PARTNERS``).
DEMO_GRADES: dict[str, tuple[str, str]] = {"fi": ("4", "0"), "it": ("27", "15"), "fr": ("14", "8")}


def event_data(
    ev: EventDef, net: Network, targets: list[str], course: Any = None
) -> dict[str, Any]:
    """Plausible data for ``ev`` that satisfies its guards. A result is graded on the
    scheme of ``course`` (the case's offering: its ``grading_scheme``, ``ects`` and
    ``eqf_level``), the Italian partner's when none is given."""
    first = targets[:1] or net.modules[:1]
    reasons = {"learning_outcomes": "The course covers about half of the module's outcomes."}
    scheme = course.grading_scheme if course is not None else "it"
    passing, failing = DEMO_GRADES[scheme]
    ects = str(course.ects) if course is not None else "5.0"
    eqf = {"eqf_level": course.eqf_level} if course is not None else {}
    canned: dict[str, dict[str, Any]] = {
        "pass_course": {"grade": passing, "scheme": scheme, "ects": ects, **eqf},
        "fail_course": {"grade": failing, "scheme": scheme, **eqf},
        "request_info": {"message": "Please send the syllabus with the weekly topics."},
        "provide_info": {"message": "The syllabus is attached."},
        "recognize": {"modules": first, "grade": "1.7"},
        "recognize_partially": {
            "modules": first,
            "not_credited": ["INF-WP2"],
            "grade": "2.0",
            "reasons": reasons,
            "advice": "Take the lab part at home.",
        },
        "reject": {"reasons": reasons, "advice": "Take the home module's exam."},
        "appeal": {"message": "The outcomes match; see the attached syllabus."},
        "grant_appeal": {"modules": first, "grade": "1.7", "reasons": "Outcomes are equivalent."},
        "dismiss_appeal": {"reasons": "The differences in outcomes are substantial."},
    }
    return dict(canned.get(ev.name, {}))


def _actor(role: str, session: Session, case_id: int, net: Network) -> Actor:
    return {
        "clerk": net.clerk,
        "examiner": net.examiner,
        "board": net.board,
        "import": Actor.system(Role.IMPORT),
        "timer": Actor.system(Role.TIMER),
    }.get(role) or _student_actor(session, case_id)


def advance(
    session: Session,
    case_id: int,
    target: str,
    net: Network,
    *,
    now: dt.datetime,
    store: DocumentStore,
    step: dt.timedelta = dt.timedelta(days=1),
    settings: Settings | None = None,
) -> dt.datetime:
    """Fire the shortest path of events that takes the case to ``target``; returns the time
    of the last event. Time moves by ``step`` per event, and past a deadline where an event
    needs it (``lapse``, closing after the appeal window)."""
    proc = get_procedure()
    state = session.execute(select(Case.state).where(Case.id == case_id)).scalar_one()
    path = proc.path_to(state, {target})
    if path is None:
        raise ValueError(f"{target} cannot be reached from {state}")
    targets = list(
        session.scalars(select(Module.code).join(Case.targets).where(Case.id == case_id))
    )
    course = session.execute(
        select(Offering.grading_scheme, Offering.ects, Offering.eqf_level)
        .join(Case, Case.offering_id == Offering.id)
        .where(Case.id == case_id)
    ).one()
    for ev in path:
        now += step
        if ev.name == "receive_transcript":
            attach_document(
                session,
                case_id,
                content=MINIMAL_PDF,
                filename="tor.pdf",
                media_type="application/pdf",
                kind="transcript",
                store=store,
                actor=net.clerk,
                now=now,
                channel="demo",
            )
        if ev.name == "start_review":
            assign_examiner(
                session, case_id, net.examiner_username, actor=net.clerk, now=now, channel="demo"
            )
        if ev.name in ("lapse", "close"):
            row = session.execute(
                select(Case.due_at, Case.appeal_ends_at).where(Case.id == case_id)
            ).one()
            limit = row.due_at if ev.name == "lapse" else row.appeal_ends_at
            if limit is not None and now < limit:
                now = limit + dt.timedelta(minutes=1)
        role = "timer" if ev.name == "lapse" else ev.actors[0]
        data = event_data(ev, net, targets, course)
        if ev.name in ("pass_course", "fail_course"):
            data["date"] = now.date().isoformat()
        fire(
            session,
            case_id,
            ev.name,
            actor=_actor(role, session, case_id, net),
            now=now,
            data=data,
            channel="demo",
            settings=settings,
        )
    return now


FIRST_NAMES = [
    "Anna",
    "Ben",
    "Chiara",
    "David",
    "Elif",
    "Femi",
    "Greta",
    "Hamid",
    "Ines",
    "Jonas",
    "Kaori",
    "Lena",
    "Malik",
    "Nora",
    "Oskar",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tara",
]
LAST_NAMES = [
    "Schmidt",
    "Yılmaz",
    "Rossi",
    "Nowak",
    "Müller",
    "Okafor",
    "Larsen",
    "Haddad",
    "García",
    "Weber",
]

# Target state -> (term of the offering, how many demo cases).
SPREAD: list[tuple[str, str, int]] = [
    ("planned", "next", 4),
    ("enrolled", "current", 5),
    ("course_passed", "past", 2),
    ("course_passed", "recent", 2),
    ("course_failed", "recent", 2),
    ("transcript_received", "recent", 4),
    ("submitted", "past", 2),
    ("submitted", "recent", 2),
    ("in_review", "past", 2),
    ("in_review", "recent", 3),
    ("info_requested", "recent", 3),
    ("recognized", "recent", 4),
    ("partially_recognized", "recent", 2),
    ("rejected", "recent", 2),
    ("appealed", "recent", 2),
    ("closed", "past", 4),
    ("withdrawn", "current", 2),
    ("lapsed", "past", 3),
]


# The demo's grading tables for percentile conversion: the Italian partner's published
# distribution of its 30-point grades (best first, percent) and the office's own distribution
# of German grades in the programme. The demo's partner grade 27 lies in the partner's band 33
# to 45 %, midpoint 39 %, which is the home band of 2.0; the Bavarian formula gives 1.7, so
# the case page shows both conversions, flagged (they differ by 0.3).
DEMO_PARTNER_TABLE = (
    "unitol.it",
    "it",
    [
        ("30", "14"),
        ("29", "8"),
        ("28", "11"),
        ("27", "12"),
        ("26", "10"),
        ("25", "9"),
        ("24", "9"),
        ("23", "7"),
        ("22", "6"),
        ("21", "5"),
        ("20", "4"),
        ("19", "3"),
        ("18", "2"),
    ],
)
DEMO_HOME_TABLE = (
    "INF-BSC",
    [
        ("1.0", "5"),
        ("1.3", "8"),
        ("1.7", "12"),
        ("2.0", "15"),
        ("2.3", "15"),
        ("2.7", "13"),
        ("3.0", "12"),
        ("3.3", "8"),
        ("3.7", "7"),
        ("4.0", "5"),
    ],
)


def seed_grading_tables(
    session: Session, net: Network, *, year: int, now: dt.datetime
) -> tuple[int, int]:
    """Store the demo's partner grading table (the whole Italian partner, its scheme) and the
    home distribution (the demo programme), as the office would enter them; returns their
    ids."""
    from workflow.grading import tables as grading_tables

    code, scheme, partner_rows = DEMO_PARTNER_TABLE
    partner_id = session.execute(
        select(Institution.id).where(Institution.code == code)
    ).scalar_one()
    _, partner_grades = grading_tables.partner_grades(
        [(label, Decimal(share), None) for label, share in partner_rows],
        [scheme],
        given_scheme=True,
    )
    partner_table, _ = grading_tables.store_table(
        session,
        kind="partner",
        institution_id=partner_id,
        scheme=scheme,
        reference_year=year,
        source="manual",
        grades=partner_grades,
        now=now,
    )
    programme_code, home_rows = DEMO_HOME_TABLE
    programme_id = session.execute(
        select(Programme.id).where(
            Programme.institution_id == net.home_id, Programme.code == programme_code
        )
    ).scalar_one()
    home_grades = grading_tables.home_grades(
        [(label, Decimal(share), None) for label, share in home_rows]
    )
    home_table, _ = grading_tables.store_table(
        session,
        kind="home",
        institution_id=net.home_id,
        scheme="de",
        reference_year=year,
        source="manual",
        grades=home_grades,
        now=now,
        programme_id=programme_id,
    )
    return partner_table, home_table


@dataclass(frozen=True)
class DemoSummary:
    cases: int
    by_state: dict[str, int]
    logins: dict[str, str]


def create_case(
    session: Session,
    net: Network,
    *,
    target: str,
    term: str,
    matriculation: str,
    name: str,
    email: str,
    language: str = "de",
    partner: int = 0,
    course: int = 0,
    store: DocumentStore | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Open a case for a (new) student on a demo offering and walk it to ``target`` through
    real events, at plausible times: results arrive after the exam, decisions after that."""
    settings = get_settings()
    store = store or MemoryStore()
    home = session.get(Institution, net.home_id)
    assert home is not None
    student = find_or_create_student(
        session,
        home.id,
        matriculation_number=matriculation,
        name=name,
        email=email,
        preferred_language=language,
    )
    offering_id = net.offerings[
        f"{term}:{PARTNERS[partner % len(PARTNERS)][0]}:{course % len(COURSES)}"
    ]
    offering = session.get(Offering, offering_id)
    assert offering is not None
    module = session.execute(
        select(Module.id)
        .join(Programme)
        .where(
            Module.code == net.modules[course % len(COURSES)], Programme.institution_id == home.id
        )
    ).scalar_one()
    start = dt.datetime.combine(
        offering.start_date, dt.time(9), tzinfo=settings.zone
    ) - dt.timedelta(days=20)
    if target == "lapsed":
        start -= dt.timedelta(days=30)
    if now is not None:  # a case of next term was opened recently, not in the future
        start = min(start, now - dt.timedelta(days=2))
    opened = open_case(
        session,
        student_id=student.id,
        offering_id=offering_id,
        actor=net.clerk,
        now=start,
        target_module_ids=[module],
        channel="demo",
    )
    if term in ("past", "recent") and target != "planned":
        advance(session, opened.case_id, "enrolled", net, now=start, store=store)
        exam = offering.exam_date or offering.end_date
        start = dt.datetime.combine(exam, dt.time(10), tzinfo=settings.zone)
    if target not in ("planned", "enrolled") or term in ("current", "next"):
        advance(
            session,
            opened.case_id,
            target,
            net,
            now=start,
            store=store,
            step=dt.timedelta(days=3 if term == "past" else 2),
        )
    return opened.case_id


def seed_demo(
    session: Session, *, now: dt.datetime, store: DocumentStore | None = None, seed: int = 7
) -> DemoSummary:
    """Seed the demo network, 50 cases over every state and the grading tables that let the
    Italian partner's cases be converted by percentiles (call it on an empty database)."""
    settings = get_settings()
    rng = random.Random(seed)
    net = seed_network(session, today=now.astimezone(settings.zone).date())
    n = 0
    for target, term, count in SPREAD:
        for _ in range(count):
            n += 1
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            create_case(
                session,
                net,
                target=target,
                term=term,
                matriculation=f"{4711000 + n}",
                name=f"{first} {last}",
                email=f"{first.lower()}.{n}@student.uni-musterstadt.example",
                language=rng.choice(["de", "en"]),
                partner=rng.randrange(3),
                course=n,
                store=store,
                now=now,
            )
    seed_grading_tables(session, net, year=now.astimezone(settings.zone).year - 1, now=now)
    # The demo's invented history is not mailed to anybody; what falls due from now on is.
    session.execute(delete(Outbox))
    by_state = dict(session.execute(select(Case.state, func.count()).group_by(Case.state)).all())
    logins = {
        net.clerk.label: "clerk",
        net.examiner.label: "examiner",
        net.board.label: "board",
        net.admin.label: "admin",
    }
    return DemoSummary(n, by_state, logins)


def has_data(session: Session) -> bool:
    return session.execute(select(Institution.id).limit(1)).first() is not None


__all__ = [
    "DEMO_HOME_TABLE",
    "DEMO_PARTNER_TABLE",
    "MINIMAL_PDF",
    "DemoSummary",
    "Network",
    "advance",
    "create_case",
    "event_data",
    "has_data",
    "seed_demo",
    "seed_grading_tables",
    "seed_network",
]
