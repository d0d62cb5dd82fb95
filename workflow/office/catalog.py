"""The reference data an office keeps: institutions, home programmes and modules, the partner
course catalogue, office users and students. Imports are all-or-nothing and re-runnable."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    USER_ROLES,
    Institution,
    InstitutionKind,
    Module,
    Offering,
    Programme,
    Role,
    Student,
    User,
)
from workflow.errors import NotFound, ValidationFailed
from workflow.grading.grades import DEFAULT_SCHEMES, scheme_misfit
from workflow.imports import ImportRejected, RowError, validate_rows
from workflow.office.sharing import acting_home, offerings_used_by_others
from workflow.policy.actors import Actor
from workflow.policy.permissions import Action, require

Progress = Callable[[int, int], None]  # (done, total)
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
# A catalogue's descriptive texts (learning outcomes, assessment, ...): bounded, as everything
# that reaches the database from a file is; a course description runs to a few pages at most.
MAX_TEXT = 20_000
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT)]
BATCH = 1000


class OfferingRow(BaseModel):
    """One catalogue entry: the micro-credential elements of the EU Council Recommendation."""

    model_config = ConfigDict(extra="forbid")

    institution: Code
    code: Code
    term: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
    ects: Decimal = Field(gt=0, le=60, decimal_places=1)
    language: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z]{2}$")]
    eqf_level: int = Field(ge=1, le=8)
    learning_outcomes: Text
    assessment_type: Text
    participation_mode: Text
    quality_assurance: Annotated[str, StringConstraints(max_length=MAX_TEXT)] | None = None
    start_date: dt.date
    end_date: dt.date
    exam_date: dt.date | None = None
    grading_scheme: Code
    status: str = Field(default="offered", pattern=r"^(offered|cancelled)$")
    # ISCED-F field of education: finds the partner's grading table for the field.
    isced_code: str | None = Field(default=None, pattern=r"^[0-9]{2,4}$")

    @model_validator(mode="after")
    def _dates(self) -> OfferingRow:
        if self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        if self.exam_date is not None and self.exam_date < self.start_date:
            raise ValueError(f"exam_date {self.exam_date} is before start_date {self.start_date}")
        return self


class ModuleRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    institution: Code
    programme: Code
    programme_title: Text
    code: Code
    title: Text
    ects: Decimal = Field(gt=0, le=60, decimal_places=1)
    regulation_version: Code
    degree: str | None = None


@dataclass(frozen=True, slots=True)
class ImportSummary:
    created: int
    updated: int

    @property
    def total(self) -> int:
        return self.created + self.updated


def _position(error: RowError) -> tuple[int, str]:
    """Problems in file order (line 7 before line 12), however they were found."""
    number = error.where.rsplit(" ", 1)[-1]
    return (int(number) if number.isdigit() else 0, error.where)


def _institutions(session: Session) -> dict[str, Institution]:
    return {i.code: i for i in session.scalars(select(Institution))}


def _check_duplicates(
    rows: list[tuple[str, Any]],
    key: Callable[[Any], tuple[Any, ...]],
    errors: list[RowError],
    what: str,
) -> None:
    seen: dict[tuple[Any, ...], str] = {}
    for where, row in rows:
        k = key(row)
        if k in seen:
            errors.append(
                RowError(
                    where, "code", f"duplicate {what} {'/'.join(map(str, k))} (also at {seen[k]})"
                )
            )
        else:
            seen[k] = where


def import_catalogue(
    session: Session,
    path: Path,
    *,
    progress: Progress | None = None,
    filename: str | None = None,
    actor: Actor | None = None,
) -> ImportSummary:
    """Import partner course offerings from CSV/JSON; update existing ones by institution,
    code and term. All rows are validated first; any problem and nothing is written.

    An office's ``actor`` may change an existing offering only while no other home
    institution's cases use it (docs/adr/0014-shared-partner-data.md); the operator
    (``actor`` None) may change any."""
    require(actor, Action.IMPORT_CATALOGUE)
    name = filename or path.name  # an upload is read from a temporary file
    rows, errors = validate_rows(path, OfferingRow, name)
    institutions = _institutions(session)
    for where, row in rows:
        inst = institutions.get(row.institution)
        if inst is None:
            errors.append(
                RowError(
                    where,
                    "institution",
                    f"unknown institution {row.institution!r}"
                    " (add it first: recog institution add)",
                )
            )
        elif inst.kind != InstitutionKind.PARTNER.value:
            errors.append(
                RowError(
                    where,
                    "institution",
                    f"{row.institution} is a home institution; the catalogue lists partner courses",
                )
            )
        if row.grading_scheme.lower() not in DEFAULT_SCHEMES:
            errors.append(
                RowError(
                    where,
                    "grading_scheme",
                    f"unknown grading scheme {row.grading_scheme!r}; known schemes: "
                    + ", ".join(sorted(DEFAULT_SCHEMES)),
                )
            )
        elif (
            inst is not None
            and (misfit := scheme_misfit(row.grading_scheme, inst.country)) is not None
        ):
            errors.append(RowError(where, "grading_scheme", misfit))
    _check_duplicates(rows, lambda r: (r.institution, r.code, r.term), errors, "course")
    existing = {(o.institution_id, o.code, o.term): o for o in session.scalars(select(Offering))}
    home_id = acting_home(actor)
    if home_id is not None and not errors:
        changing = {}
        for where, row in rows:
            offering = existing.get((institutions[row.institution].id, row.code, row.term))
            values = row.model_dump(exclude={"institution"})
            if offering is not None and any(getattr(offering, k) != v for k, v in values.items()):
                changing[offering.id] = (where, row)
        for offering_id in sorted(offerings_used_by_others(session, changing, home_id)):
            where, row = changing[offering_id]
            errors.append(
                RowError(
                    where,
                    "code",
                    f"{row.institution} {row.code} ({row.term}) is used by cases of another "
                    "home institution; a shared offering is changed by the operator only",
                )
            )
    if errors:
        errors.sort(key=_position)
        raise ImportRejected(name, errors)

    created = updated = 0
    for n, (_, row) in enumerate(rows, start=1):
        values = row.model_dump(exclude={"institution"})
        inst_id = institutions[row.institution].id
        offering = existing.get((inst_id, row.code, row.term))
        if offering is None:
            session.add(Offering(institution_id=inst_id, **values))
            created += 1
        else:
            for key, value in values.items():
                setattr(offering, key, value)
            updated += 1
        if n % BATCH == 0:
            session.flush()
            if progress:
                progress(n, len(rows))
    session.flush()
    if progress:
        progress(len(rows), len(rows))
    return ImportSummary(created, updated)


def import_modules(
    session: Session,
    path: Path,
    *,
    progress: Progress | None = None,
    filename: str | None = None,
    actor: Actor | None = None,
) -> ImportSummary:
    """Import home programmes and modules; update by institution, programme and code. An
    office's ``actor`` imports its own institution's only; the operator (None) any."""
    require(actor, Action.IMPORT_MODULES)
    name = filename or path.name  # an upload is read from a temporary file
    rows, errors = validate_rows(path, ModuleRow, name)
    institutions = _institutions(session)
    home_id = acting_home(actor)
    for where, row in rows:
        inst = institutions.get(row.institution)
        if inst is not None and home_id is not None and inst.id != home_id:
            errors.append(
                RowError(
                    where,
                    "institution",
                    f"{row.institution} is not your institution; import only your own modules",
                )
            )
        elif inst is None:
            errors.append(
                RowError(
                    where,
                    "institution",
                    f"unknown institution {row.institution!r}"
                    " (add it first: recog institution add)",
                )
            )
        elif inst.kind != InstitutionKind.HOME.value:
            errors.append(
                RowError(
                    where,
                    "institution",
                    f"{row.institution} is a partner; modules belong to a home institution",
                )
            )
    _check_duplicates(rows, lambda r: (r.institution, r.programme, r.code), errors, "module")
    if errors:
        raise ImportRejected(name, errors)

    programmes = {(p.institution_id, p.code): p for p in session.scalars(select(Programme))}
    modules = {(m.programme_id, m.code): m for m in session.scalars(select(Module))}
    created = updated = 0
    for n, (_, row) in enumerate(rows, start=1):
        inst_id = institutions[row.institution].id
        prog = programmes.get((inst_id, row.programme))
        if prog is None:
            prog = Programme(
                institution_id=inst_id,
                code=row.programme,
                title=row.programme_title,
                degree=row.degree,
            )
            session.add(prog)
            session.flush()
            programmes[(inst_id, row.programme)] = prog
        else:
            prog.title, prog.degree = row.programme_title, row.degree or prog.degree
        values = {
            "title": row.title,
            "ects": row.ects,
            "regulation_version": row.regulation_version,
        }
        mod = modules.get((prog.id, row.code))
        if mod is None:
            session.add(Module(programme_id=prog.id, code=row.code, **values))
            created += 1
        else:
            for key, value in values.items():
                setattr(mod, key, value)
            updated += 1
        if progress and n % BATCH == 0:
            progress(n, len(rows))
    session.flush()
    if progress:
        progress(len(rows), len(rows))
    return ImportSummary(created, updated)


class InstitutionIn(BaseModel):
    code: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=3, max_length=120, pattern=r"^[a-z0-9.-]+\.[a-z]{2,}$"
        ),
    ]
    name: Text
    country: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Z]{2}$")]
    kind: InstitutionKind
    erasmus_code: str | None = None
    timezone: str | None = None
    office_email: EmailStr | None = None


T = TypeVar("T", bound=BaseModel)


def _validated(model: type[T], what: str, **values: Any) -> T:
    try:
        return model(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ValidationFailed(
            f"{what}: {field}: {err['msg'].removeprefix('Value error, ')}"
        ) from None


class OfficeEmailIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    office_email: EmailStr


def add_institution(session: Session, **values: Any) -> Institution:
    data = _validated(InstitutionIn, "institution", **values)
    if session.execute(select(Institution.id).where(Institution.code == data.code)).first():
        raise ValidationFailed(f"institution {data.code} exists already")
    inst = Institution(**data.model_dump(mode="json"))
    session.add(inst)
    session.flush()
    return inst


def institution_by_code(session: Session, code: str) -> Institution:
    inst = session.execute(select(Institution).where(Institution.code == code)).scalar()
    if inst is None:
        known = ", ".join(session.scalars(select(Institution.code).order_by(Institution.code)))
        raise NotFound(f"unknown institution {code!r}; known: {known or '(none yet)'}")
    return inst


def add_user(
    session: Session,
    *,
    username: str,
    role: str,
    institution: str,
    display_name: str | None = None,
    email: str | None = None,
    programmes: list[str] | None = None,
    language: str = "de",
) -> User:
    if role not in [r.value for r in USER_ROLES]:
        raise ValidationFailed(
            f"unknown role {role!r}; use one of {', '.join(r.value for r in USER_ROLES)}"
        )
    if not username.strip() or len(username) > 80:
        raise ValidationFailed("the user name must be 1 to 80 characters")
    inst = institution_by_code(session, institution)
    if session.execute(select(User.id).where(User.username == username)).first():
        raise ValidationFailed(f"user {username!r} exists already")
    progs: list[Programme] = []
    for code in programmes or []:
        prog = session.execute(
            select(Programme).where(Programme.institution_id == inst.id, Programme.code == code)
        ).scalar()
        if prog is None:
            raise NotFound(f"unknown programme {code!r} in {inst.code}")
        progs.append(prog)
    if role == Role.EXAMINER.value and not progs:
        raise ValidationFailed("an examiner needs at least one programme (--programme CODE)")
    user = User(
        username=username,
        role=role,
        institution_id=inst.id,
        display_name=display_name or username,
        email=email,
        programmes=progs,
        preferred_language=language,
    )
    session.add(user)
    session.flush()
    return user


class StudentIn(BaseModel):
    matriculation_number: Code
    name: Text
    email: EmailStr
    preferred_language: str = Field(default="de", pattern=r"^(de|en)$")
    date_of_birth: dt.date | None = None


# What a new student is registered with (the API's schema requires both; the CLI asks here).
_NEW_STUDENT = (("name", "a name (--name)"), ("email", "an e-mail address (--email)"))


def find_or_create_student(session: Session, institution_id: int, **values: Any) -> Student:
    """The student with this matriculation number, created from the given details if new."""
    matno = str(values.get("matriculation_number") or "").strip()
    student = session.execute(
        select(Student).where(
            Student.institution_id == institution_id, Student.matriculation_number == matno
        )
    ).scalar()
    if student is not None:
        return student
    missing = [what for key, what in _NEW_STUDENT if not str(values.get(key) or "").strip()]
    if matno and missing:
        raise ValidationFailed(
            f"there is no student {matno} yet: a new student needs " + " and ".join(missing)
        )
    data = _validated(StudentIn, "student", **values)
    student = Student(institution_id=institution_id, **data.model_dump())
    session.add(student)
    session.flush()
    return student


def set_user_password(session: Session, username: str, password: str) -> User:
    """Set an office user's password (argon2id); the old sessions of the user end."""
    from sqlalchemy import delete

    from models import WebSession
    from workflow.policy.auth import hash_password

    user = session.execute(select(User).where(User.username == username)).scalar()
    if user is None:
        raise NotFound(f"there is no user {username!r}")
    user.password_hash = hash_password(password)
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    return user


MIN_PASSWORD_LENGTH = 12  # as for office users (the API's user password)


def set_student_password(session: Session, student_id: int, password: str) -> Student:
    """Set a student's password, where the student's institution allows student passwords.
    Every browser session of the student ends (the caller may start a new one)."""
    from sqlalchemy import delete

    from models import WebSession
    from workflow.policy.auth import hash_password

    student = session.get(Student, student_id)
    if student is None:
        raise NotFound(f"student {student_id} not found")
    inst = session.get(Institution, student.institution_id)
    if inst is None or not inst.student_passwords:
        raise ValidationFailed(
            "this institution does not enable student passwords; students use their status link"
        )
    if not MIN_PASSWORD_LENGTH <= len(password) <= 1024:
        raise ValidationFailed(
            f"a password needs at least {MIN_PASSWORD_LENGTH} characters (and at most 1024)"
        )
    student.password_hash = hash_password(password)
    session.execute(delete(WebSession).where(WebSession.student_id == student.id))
    return student


def set_office_email(session: Session, code: str, email: str) -> Institution:
    """Set the examination office's e-mail address of a home institution: the address its
    decision notices name for questions and objections, and the sender of its mail."""
    inst = institution_by_code(session, code)
    if inst.kind != InstitutionKind.HOME.value:
        raise ValidationFailed(
            f"{code} is a partner institution; only a home institution has an examination office"
        )
    inst.office_email = _validated(OfficeEmailIn, "institution", office_email=email).office_email
    return inst


def allow_student_passwords(session: Session, code: str, allowed: bool) -> Institution:
    """Let the students of a home institution sign in with a password (besides their status
    link), or stop it: then the passwords they set are deleted, so enabling it again later does
    not revive them."""
    from sqlalchemy import update

    inst = institution_by_code(session, code)
    if inst.kind != InstitutionKind.HOME.value:
        raise ValidationFailed(
            f"{code} is a partner institution; only a home institution has students who sign in"
        )
    inst.student_passwords = allowed
    if not allowed:
        session.execute(
            update(Student).where(Student.institution_id == inst.id).values(password_hash=None)
        )
    return inst
