"""The tables of Recog. Each model says which of its columns hold personal data
(``__personal_data__``), so retention, erasure and subject-access exports know where to look."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, JSONType
from models.enums import InstitutionKind, OutboxStatus, Role

_roles = ", ".join(f"'{r.value}'" for r in Role)


class Institution(Base):
    __tablename__ = "institutions"
    __personal_data__: ClassVar[tuple[str, ...]] = ()

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(120), unique=True)  # SCHAC home organisation
    erasmus_code: Mapped[str | None] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    country: Mapped[str] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    kind: Mapped[str] = mapped_column(String(10), default=InstitutionKind.PARTNER.value)
    timezone: Mapped[str | None] = mapped_column(String(64))
    office_email: Mapped[str | None] = mapped_column(String(320))
    # Students normally use secret status links; an institution may also let them set passwords.
    student_passwords: Mapped[bool] = mapped_column(default=False, server_default=false())

    __table_args__ = (CheckConstraint("kind IN ('home', 'partner')", name="kind"),)


class Programme(Base):
    __tablename__ = "programmes"
    __personal_data__: ClassVar[tuple[str, ...]] = ()

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"))
    code: Mapped[str] = mapped_column(String(60))
    title: Mapped[str] = mapped_column(String(300))
    degree: Mapped[str | None] = mapped_column(String(60))

    institution: Mapped[Institution] = relationship()
    modules: Mapped[list[Module]] = relationship(back_populates="programme")

    __table_args__ = (UniqueConstraint("institution_id", "code"),)


class Module(Base):
    """A home module a foreign achievement can be credited to."""

    __tablename__ = "modules"
    __personal_data__: ClassVar[tuple[str, ...]] = ()

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("programmes.id"))
    code: Mapped[str] = mapped_column(String(60))
    title: Mapped[str] = mapped_column(String(300))
    ects: Mapped[Decimal] = mapped_column(Numeric(5, 1))
    regulation_version: Mapped[str] = mapped_column(String(60))

    programme: Mapped[Programme] = relationship(back_populates="modules")

    __table_args__ = (
        UniqueConstraint("programme_id", "code"),
        CheckConstraint("ects > 0", name="ects_positive"),
    )


class Offering(Base):
    """One partner course in one term: the catalogue entry, with the micro-credential elements
    of the EU Council Recommendation (2022) Annex I."""

    __tablename__ = "offerings"
    __personal_data__: ClassVar[tuple[str, ...]] = ()

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"))
    code: Mapped[str] = mapped_column(String(60))
    term: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(300))
    ects: Mapped[Decimal] = mapped_column(Numeric(5, 1))
    language: Mapped[str] = mapped_column(String(8))
    eqf_level: Mapped[int] = mapped_column(Integer)
    learning_outcomes: Mapped[str] = mapped_column(Text)
    assessment_type: Mapped[str] = mapped_column(String(120))
    participation_mode: Mapped[str] = mapped_column(String(60))
    quality_assurance: Mapped[str | None] = mapped_column(String(300))
    start_date: Mapped[dt.date]
    end_date: Mapped[dt.date]
    exam_date: Mapped[dt.date | None]
    grading_scheme: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(12), default="offered")
    # ISCED-F field of education (2 to 4 digits): the reference group of grading tables.
    isced_code: Mapped[str | None] = mapped_column(String(10))

    institution: Mapped[Institution] = relationship()

    __table_args__ = (
        UniqueConstraint("institution_id", "code", "term"),
        CheckConstraint("ects > 0", name="ects_positive"),
        CheckConstraint("eqf_level BETWEEN 1 AND 8", name="eqf_level"),
        CheckConstraint("status IN ('offered', 'cancelled')", name="status"),
        CheckConstraint("end_date >= start_date", name="dates"),
    )


class Student(Base):
    __tablename__ = "students"
    __personal_data__: ClassVar[tuple[str, ...]] = (
        "matriculation_number",
        "name",
        "email",
        "date_of_birth",
        "preferred_language",
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"))
    matriculation_number: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(300))
    email: Mapped[str] = mapped_column(String(320))
    date_of_birth: Mapped[dt.date | None]
    preferred_language: Mapped[str] = mapped_column(String(2), default="de")
    password_hash: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        UniqueConstraint("institution_id", "matriculation_number"),
        CheckConstraint("preferred_language IN ('de', 'en')", name="language"),
    )


user_programmes = Table(
    "user_programmes",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("programme_id", ForeignKey("programmes.id", ondelete="CASCADE"), primary_key=True),
)


class User(Base):
    """An office account: clerk, examiner, board member or admin of one institution."""

    __tablename__ = "users"
    __personal_data__: ClassVar[tuple[str, ...]] = ("username", "display_name", "email")

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"))
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(300))
    email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(12))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    preferred_language: Mapped[str] = mapped_column(String(2), default="de")

    programmes: Mapped[list[Programme]] = relationship(secondary=user_programmes)

    __table_args__ = (
        CheckConstraint("role IN ('clerk', 'examiner', 'board', 'admin')", name="role"),
    )


case_targets = Table(
    "case_targets",
    Base.metadata,
    Column("case_id", ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True),
    Column("module_id", ForeignKey("modules.id"), primary_key=True),
)


class Case(Base):
    """One student x one partner course offering. Only ``workflow`` changes ``state``, and
    only to a state of the procedure (no CHECK: an office's procedure file may add states;
    docs/adr/0007-procedure-as-data.md)."""

    __tablename__ = "cases"
    __personal_data__: ClassVar[tuple[str, ...]] = ("result", "decision")

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"))
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id"))
    offering_id: Mapped[int] = mapped_column(ForeignKey("offerings.id"))
    programme_id: Mapped[int | None] = mapped_column(ForeignKey("programmes.id"))
    examiner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    state: Mapped[str] = mapped_column(String(24))
    # Grows by one with every audit event: it is also the sequence number of the last event.
    version: Mapped[int] = mapped_column(Integer, default=0)
    chain_head: Mapped[str] = mapped_column(String(64))  # hash of the last audit event
    due_at: Mapped[dt.datetime | None]
    due_kind: Mapped[str | None] = mapped_column(String(20))
    # The decision clock: its due time while it runs; the time left while it is paused.
    decision_due_at: Mapped[dt.datetime | None]
    decision_paused_seconds: Mapped[int | None]
    appeal_ends_at: Mapped[dt.datetime | None]
    result: Mapped[dict[str, Any] | None]
    decision: Mapped[dict[str, Any] | None]
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]

    student: Mapped[Student] = relationship()
    offering: Mapped[Offering] = relationship()
    programme: Mapped[Programme | None] = relationship()
    examiner: Mapped[User | None] = relationship()
    targets: Mapped[list[Module]] = relationship(secondary=case_targets)

    __table_args__ = (
        CheckConstraint("version >= 0", name="version"),
        CheckConstraint("(due_at IS NULL) = (due_kind IS NULL)", name="due_pair"),
        # The deadline sweep reads only what is due, through this index.
        Index(
            "ix_cases_due",
            "due_at",
            "id",
            postgresql_where=text("due_at IS NOT NULL"),
            sqlite_where=text("due_at IS NOT NULL"),
        ),
        Index("ix_cases_institution_state", "institution_id", "state"),
        Index("ix_cases_student", "student_id"),
        Index("ix_cases_offering", "offering_id"),
    )


class CaseEvent(Base):
    """The append-only, hash-chained audit trail: one row per change of a case."""

    __tablename__ = "case_events"
    # Free text (messages, reasons) lives in ``data``; the hash covers only its digest, so
    # erasing personal data later does not break the chain (see workflow/cases/audit.py).
    __personal_data__: ClassVar[tuple[str, ...]] = ("data",)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(40))
    from_state: Mapped[str | None] = mapped_column(String(24))
    to_state: Mapped[str] = mapped_column(String(24))
    actor_role: Mapped[str] = mapped_column(String(12))
    actor_id: Mapped[int | None]
    channel: Mapped[str] = mapped_column(String(12))
    at: Mapped[dt.datetime]
    data: Mapped[dict[str, Any]]
    data_digest: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("case_id", "seq"),
        CheckConstraint(f"actor_role IN ({_roles})", name="actor_role"),
    )


class Document(Base):
    """Metadata of a stored file; the bytes live under the documents directory by SHA-256."""

    __tablename__ = "documents"
    __personal_data__: ClassVar[tuple[str, ...]] = ("filename",)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # transcript, notice, evidence, ...
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[dt.datetime]
    uploaded_by_role: Mapped[str] = mapped_column(String(12))
    uploaded_by_id: Mapped[int | None]


class HomeAchievement(Base):
    """A module the student has already passed at home: it cannot be credited again."""

    __tablename__ = "home_achievements"
    __personal_data__: ClassVar[tuple[str, ...]] = ("passed_on",)

    student_id: Mapped[int] = mapped_column(
        ForeignKey("students.id", ondelete="CASCADE"), primary_key=True
    )
    module_id: Mapped[int] = mapped_column(ForeignKey("modules.id"), primary_key=True)
    passed_on: Mapped[dt.date]


class Reminder(Base):
    """A reminder, escalation or timer event planned for a case by the workflow and carried out
    by the deadline sweep. The unique key makes each happen at most once per (case, kind, due
    time); a transition deletes the pending plan of the state it leaves."""

    __tablename__ = "reminders"
    __personal_data__: ClassVar[tuple[str, ...]] = ()

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    due_at: Mapped[dt.datetime]
    action: Mapped[str] = mapped_column(String(8))
    recipient: Mapped[str | None] = mapped_column(String(12))
    event: Mapped[str | None] = mapped_column(String(40))
    done_at: Mapped[dt.datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(300))

    __table_args__ = (
        UniqueConstraint("case_id", "kind", "due_at"),
        CheckConstraint("action IN ('notify', 'fire')", name="action"),
        # The sweep reads only what is due and not done, through this index.
        Index(
            "ix_reminders_pending",
            "due_at",
            "id",
            postgresql_where=text("done_at IS NULL"),
            sqlite_where=text("done_at IS NULL"),
        ),
        Index("ix_reminders_case", "case_id"),
    )


class Outbox(Base):
    """Notification intents written in the transaction of the change that caused them."""

    __tablename__ = "outbox"
    __personal_data__: ClassVar[tuple[str, ...]] = ()  # ids and template names only

    id: Mapped[int] = mapped_column(primary_key=True)
    # Deterministic, so a replayed transition or delivery can never produce a second row.
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    # None for a message about no case (an office user's invitation: the payload names them).
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    event_seq: Mapped[int | None]
    channel: Mapped[str] = mapped_column(String(12))  # email, webhook
    recipient: Mapped[str] = mapped_column(String(12))  # a role: student, clerk, examiner, ...
    template: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(10), default=OutboxStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime]
    sent_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # The token of the relay's claim that holds the row (random, per claim): only that relay
    # may renew the lease or record the outcome, so a relay whose lease ran out cannot.
    lease_token: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sent', 'dead')", name="status"),
        Index(
            "ix_outbox_pending",
            "available_at",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )


class WebSession(Base):
    """A signed-in browser: the cookie carries a random token; only its SHA-256 is stored."""

    __tablename__ = "web_sessions"
    __personal_data__: ClassVar[tuple[str, ...]] = ()

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    student_id: Mapped[int | None] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    last_seen_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]

    __table_args__ = (
        CheckConstraint("(user_id IS NULL) <> (student_id IS NULL)", name="one_subject"),
        Index("ix_web_sessions_expires", "expires_at"),
    )


class ApiToken(Base):
    """A bearer token for an integration, acting as its office user; stored hashed. Its
    ``scope`` (read, write, admin) caps what it may do beneath the user's role; a token made
    by another token names it as ``parent_id`` and is revoked with it."""

    __tablename__ = "api_tokens"
    __personal_data__: ClassVar[tuple[str, ...]] = ()

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]
    # Tokens made before scopes existed could do all their user could: they keep that.
    scope: Mapped[str] = mapped_column(String(8), server_default="admin")
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True
    )

    __table_args__ = (CheckConstraint("scope IN ('read', 'write', 'admin')", name="scope"),)


class UserInvitation(Base):
    """A one-time link for an office user to set their password. The e-mail's relay mints
    the secret when it composes the message (only its SHA-256 is kept); the expiry is fixed
    when the invitation is made. Setting the password through any of a user's invitations
    uses them all up."""

    __tablename__ = "user_invitations"
    __personal_data__: ClassVar[tuple[str, ...]] = ()

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]


class StatusLink(Base):
    """A student's secret, expiring, revocable link to the status of their cases."""

    __tablename__ = "status_links"
    __personal_data__: ClassVar[tuple[str, ...]] = ()

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(
        ForeignKey("students.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]


class IdempotencyKey(Base):
    """The stored response to a POST with an ``Idempotency-Key``: the same key and body get
    the same response; the same key with another body is refused."""

    __tablename__ = "idempotency_keys"
    __personal_data__: ClassVar[tuple[str, ...]] = ("response_body",)

    principal: Mapped[str] = mapped_column(String(40), primary_key=True)  # "user:7", "student:3"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(500))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime]


class LoginThrottle(Base):
    """Failed logins per account or per client, for a growing delay shared by all processes
    (used when no Redis is configured)."""

    __tablename__ = "login_throttle"
    __personal_data__: ClassVar[tuple[str, ...]] = ("key",)

    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # "account:..", "client:.."
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[dt.datetime]
    blocked_until: Mapped[dt.datetime]


class ImportedResult(Base):
    """One course result from an imported transcript: matched to a case (and fired), or
    waiting for a clerk because it matched no case or more than one."""

    __tablename__ = "imported_results"
    __personal_data__: ClassVar[tuple[str, ...]] = ("learner", "result")

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institutions.id"))
    filename: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64))
    line: Mapped[int]
    learner: Mapped[dict[str, Any]]  # identifiers, names, birth date as in the file
    result: Mapped[dict[str, Any]]  # partner, course code/title, grade, scheme, ECTS, ...
    status: Mapped[str] = mapped_column(String(12))  # matched, unmatched, ambiguous, resolved
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    candidates: Mapped[dict[str, Any] | None]  # {"cases": [ids]} when ambiguous
    note: Mapped[str | None] = mapped_column(String(500))
    imported_at: Mapped[dt.datetime]

    __table_args__ = (
        UniqueConstraint("file_sha256", "line"),
        CheckConstraint(
            "status IN ('matched', 'unmatched', 'ambiguous', 'resolved')", name="status"
        ),
        Index("ix_imported_results_status", "status"),
    )


class Precedent(Base):
    """A past decision for (partner course, home module, regulation version): the office's
    memory, shown for new cases of the same pair until it expires."""

    __tablename__ = "precedents"
    __personal_data__: ClassVar[tuple[str, ...]] = ()

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"))
    partner_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"))
    course_code: Mapped[str] = mapped_column(String(60))
    module_id: Mapped[int] = mapped_column(ForeignKey("modules.id"))
    regulation_version: Mapped[str] = mapped_column(String(60))
    outcome: Mapped[str] = mapped_column(String(24))  # credited | not_credited
    grade: Mapped[str | None] = mapped_column(String(10))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    event_seq: Mapped[int]
    decided_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]

    __table_args__ = (
        CheckConstraint("outcome IN ('credited', 'not_credited')", name="outcome"),
        UniqueConstraint("case_id", "event_seq", "module_id"),
        Index("ix_precedents_pair", "institution_id", "partner_id", "course_code", "module_id"),
    )


class GradingTable(Base):
    """A grade distribution for percentile conversion (ECTS grading table, EGRACONS).

    ``kind`` ``partner``: the distribution of a partner's grades on one grading ``scheme``, for
    one reference group (``scope``): a course offering (its ``resultDistribution``), an ISCED-F
    field, or the whole institution. ``kind`` ``home``: the office's own distribution of German
    grades for a home module, a programme, an ISCED-F field or the whole institution.

    ``scope`` is the reference group as one text (``offering:7``, ``isced:0612``,
    ``module:3``, ``programme:2``, ``all``), derived from the id columns beside it by
    ``workflow.grading.tables``, so the key is unique on SQLite and PostgreSQL alike (NULLs
    would make a unique constraint over the id columns toothless). ``grades`` lists the grades
    best first: ``[{"label": "A", "percentage": "2.0", "failing": false, "count": 7}, ...]``.
    """

    __tablename__ = "grading_tables"
    __personal_data__: ClassVar[tuple[str, ...]] = ()  # aggregate counts only

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"))
    scheme: Mapped[str] = mapped_column(String(60))
    scope: Mapped[str] = mapped_column(String(80))
    isced_code: Mapped[str | None] = mapped_column(String(10))
    offering_id: Mapped[int | None] = mapped_column(ForeignKey("offerings.id", ondelete="CASCADE"))
    programme_id: Mapped[int | None] = mapped_column(
        ForeignKey("programmes.id", ondelete="CASCADE")
    )
    module_id: Mapped[int | None] = mapped_column(ForeignKey("modules.id", ondelete="CASCADE"))
    reference_year: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(20))  # ewp, result_distribution, manual
    grades: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)  # best first, see above
    filename: Mapped[str | None] = mapped_column(String(255))  # where it came from
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]

    __table_args__ = (
        UniqueConstraint(
            "institution_id",
            "kind",
            "scheme",
            "scope",
            "reference_year",
            "source",
            name="uq_grading_tables_key",
        ),
        CheckConstraint("kind IN ('partner', 'home')", name="kind"),
        CheckConstraint("source IN ('ewp', 'result_distribution', 'manual')", name="source"),
        CheckConstraint("reference_year BETWEEN 1900 AND 2999", name="reference_year"),
        # A partner table never names a home module or programme, a home table no offering.
        CheckConstraint(
            "kind = 'home' OR (module_id IS NULL AND programme_id IS NULL)", name="partner_scope"
        ),
        CheckConstraint("kind = 'partner' OR offering_id IS NULL", name="home_scope"),
        CheckConstraint(
            "(CASE WHEN isced_code IS NULL THEN 0 ELSE 1 END"
            " + CASE WHEN offering_id IS NULL THEN 0 ELSE 1 END"
            " + CASE WHEN programme_id IS NULL THEN 0 ELSE 1 END"
            " + CASE WHEN module_id IS NULL THEN 0 ELSE 1 END) <= 1",
            name="one_scope",
        ),
    )
