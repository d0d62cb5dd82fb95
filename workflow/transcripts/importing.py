"""Importing a partner's transcript of records: each result lands on its case, or waits for a
clerk.

A file is parsed and validated whole first (``workflow.transcripts.elmo``): a bad file changes
nothing. Each course result is then matched to its case by the student (an identifier ending
in the matriculation number, else name and date of birth) and the course (the partner's code
for it, else its title); a case must be waiting for the result (``enrolled``) or for the
transcript (``course_passed``). A match fires ``pass_course``/``fail_course`` with the result's
data and, for a pass, attaches the file (and any PDF inside it) and fires
``receive_transcript``, as the actor ``import``. A result that matches no case or several is
kept for a clerk (``recog transcript pending``/``match``). Re-importing a file skips what was
already imported.
"""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.procedure import get_procedure
from models import Case, ImportedResult, Institution, Offering, Role, Student
from workflow.cases.casefile import attach_document
from workflow.cases.documents import DocumentStore
from workflow.cases.engine import fire
from workflow.cases.guards import FROM_TRANSCRIPT
from workflow.cases.storage import JSONText, insert_rows
from workflow.errors import DomainError, NotFound, ValidationFailed
from workflow.grading import tables as grading_tables
from workflow.policy.actors import Actor
from workflow.policy.permissions import Action, require
from workflow.transcripts.elmo import CourseResult, Learner, Transcript, parse_transcript, pick_text

# The events an imported result fires: its grade, then the transcript itself.
RESULT_EVENTS = ("pass_course", "fail_course")
TRANSCRIPT_EVENT = "receive_transcript"


def waiting_states() -> frozenset[str]:
    """The states in which a case waits for an imported result or transcript."""
    return get_procedure().sources_of(*RESULT_EVENTS, TRANSCRIPT_EVENT)


@dataclass
class ImportReport:
    filename: str
    format: str
    results: list[dict[str, Any]] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)  # grading tables kept

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r["status"] == status)


def _norm(text: str | None) -> str:
    folded = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    return " ".join(folded.casefold().split())


def _learner_json(learner: Learner) -> dict[str, Any]:
    return {
        "identifiers": [{"type": i.type, "value": i.value} for i in learner.identifiers],
        "given_names": learner.given_names,
        "family_name": learner.family_name,
        "birth_date": learner.birth_date.isoformat() if learner.birth_date else None,
    }


def _course_code(result: CourseResult) -> str | None:
    for ident in result.identifiers:
        if ident.type.casefold() == "local":
            return ident.value
    return result.identifiers[0].value if result.identifiers else None


_RESULT_KEYS = (
    "partner",
    "code",
    "title",
    "status",
    "grade",
    "ects",
    "eqf_level",
    "date",
    "language",
)


def _result_json(result: CourseResult, partner: str | None) -> dict[str, Any]:
    return dict(zip(_RESULT_KEYS, _result_values(result, partner, {}), strict=True))


def _result_values(
    result: CourseResult,
    partner: str | None,
    memo: dict[Any, str],
) -> tuple[Any, ...]:
    """The values of ``_result_json``, in its order (``memo`` keeps the text of the ECTS
    and dates, which repeat from result to result)."""
    ects = day = None
    if result.ects_credits is not None:
        ects = memo.get(result.ects_credits)
        if ects is None:
            ects = memo[result.ects_credits] = str(result.ects_credits)
    if result.result_date is not None:
        day = memo.get(result.result_date)
        if day is None:
            day = memo[result.result_date] = result.result_date.isoformat()
    return (
        partner,
        _course_code(result),
        pick_text(result.titles),
        result.status.value,
        result.grade,
        ects,
        result.eqf_level,
        day,
        result.language_of_instruction,
    )


_encode_str = json.encoder.encode_basestring_ascii  # what json.dumps does to a str


def _json_text(values: tuple[Any, ...], memo: dict[Any, str]) -> JSONText:
    """``json.dumps(dict(zip(_RESULT_KEYS, values)))``, built from the encoding of each value.
    Only the course's code and title differ from result to result as a rule: the encoding
    of the partner and of the rest (status, grade, ECTS, level, date, language) are kept in
    ``memo``."""
    partner, code, title, *rest = values
    head = memo.get(partner)
    if head is None:
        head = memo[partner] = '{"partner": ' + _json_value(partner)
    tail_key = tuple(rest)
    tail = memo.get(tail_key)
    if tail is None:
        tail = memo[tail_key] = (
            "".join(
                f', "{key}": {_json_value(value)}'
                for key, value in zip(_RESULT_KEYS[3:], rest, strict=True)
            )
            + "}"
        )
    code_text = _encode_str(code) if code.__class__ is str else _json_value(code)
    title_text = _encode_str(title) if title.__class__ is str else _json_value(title)
    return JSONText(f'{head}, "code": {code_text}, "title": {title_text}{tail}')


def _json_value(value: Any) -> str:
    return _encode_str(value) if value.__class__ is str else json.dumps(value)


def match_students(session: Session, learner: Learner, home_ids: list[int]) -> list[int]:
    """Students of the home institution(s) this learner is: by an identifier that ends in a
    matriculation number, else by name and date of birth."""
    tokens = {i.value.rsplit(":", 1)[-1].strip() for i in learner.identifiers if i.value}
    if tokens:
        found = list(
            session.scalars(
                select(Student.id).where(
                    Student.institution_id.in_(home_ids), Student.matriculation_number.in_(tokens)
                )
            )
        )
        if found:
            return found
    if learner.birth_date is None:
        return []
    wanted = _norm(f"{learner.given_names} {learner.family_name}")
    same_day = session.execute(
        select(Student.id, Student.name).where(
            Student.institution_id.in_(home_ids), Student.date_of_birth == learner.birth_date
        )
    )
    return [sid for sid, name in same_day if _norm(name) == wanted]


def _partner(session: Session, transcript: Transcript) -> Institution | None:
    issuer = transcript.issuer
    for code in (issuer.schac, issuer.erasmus_code):
        if code:
            inst = session.execute(
                select(Institution).where(
                    (Institution.code == code) | (Institution.erasmus_code == code)
                )
            ).scalar()
            if inst is not None:
                return inst
    return None


class _Waiting:
    """The cases of the matched students at the partner that wait for a result, read once
    for the whole file (one query, not one per result)."""

    def __init__(
        self,
        session: Session,
        students: list[int],
        partner: Institution | None,
    ) -> None:
        self.session = session
        self.cases: list[tuple[int, str, str]] = []  # (case id, course code, folded title)
        if students and partner is not None:
            self.cases = [
                (case_id, code, _norm(title))
                for case_id, code, title in session.execute(
                    select(Case.id, Offering.code, Offering.title)
                    .join(Offering, Offering.id == Case.offering_id)
                    .where(
                        Case.student_id.in_(students),
                        Offering.institution_id == partner.id,
                        Case.state.in_(waiting_states()),
                    )
                    .order_by(Case.id)
                )
            ]

    def candidates(self, code: str | None, title: str | None) -> list[int]:
        """By the partner's course code, else by the course title."""
        if not self.cases:
            return []
        by_code = [case_id for case_id, c, _ in self.cases if code and c == code]
        if by_code:
            return by_code
        folded = _norm(title)
        return [case_id for case_id, _, t in self.cases if folded and t == folded]

    def changed(self, case_id: int) -> None:
        """A result was applied to the case: it waits no more once it left those states."""
        state = self.session.scalar(select(Case.state).where(Case.id == case_id))
        if state not in waiting_states():
            self.cases = [c for c in self.cases if c[0] != case_id]


def apply_result(
    session: Session,
    case_id: int,
    result: dict[str, Any],
    *,
    transcript: bytes,
    filename: str,
    pdfs: list[bytes],
    store: DocumentStore,
    actor: Actor,
    now: dt.datetime,
    channel: str,
) -> list[str]:
    """Fire what a result means for its case; returns the events fired."""
    state = session.scalar(select(Case.state).where(Case.id == case_id))
    fired = []
    passed = result["status"] == "passed"
    if state in get_procedure().sources_of(*RESULT_EVENTS):
        scheme = session.scalar(
            select(Offering.grading_scheme)
            .join(Case, Case.offering_id == Offering.id)
            .where(Case.id == case_id)
        )
        data = {
            "grade": result.get("grade") or ("passed" if passed else "failed"),
            "scheme": scheme,
            "source": FROM_TRANSCRIPT,
        }
        if result.get("date"):
            # Without one the date stays unknown (not the import day, not the catalogue's
            # planned exam): the case asks a clerk to record it.
            data["date"] = result["date"]
        for key in ("ects", "eqf_level", "language"):
            if result.get(key) is not None:
                data[key] = result[key]
        event = "pass_course" if passed else "fail_course"
        fire(session, case_id, event, actor=actor, now=now, data=data, channel=channel)
        fired.append(event)
    if passed:
        media = "application/xml"
        attach_document(
            session,
            case_id,
            content=transcript,
            filename=filename,
            media_type=media,
            kind="transcript",
            store=store,
            actor=actor,
            now=now,
            channel=channel,
        )
        for i, pdf in enumerate(pdfs, start=1):
            attach_document(
                session,
                case_id,
                content=pdf,
                filename=f"{filename}.{i}.pdf",
                media_type="application/pdf",
                kind="transcript",
                store=store,
                actor=actor,
                now=now,
                channel=channel,
            )
        fire(session, case_id, TRANSCRIPT_EVENT, actor=actor, now=now, channel=channel)
        fired.append(TRANSCRIPT_EVENT)
    return fired


def import_transcript(
    session: Session,
    source: Path | bytes,
    *,
    store: DocumentStore,
    now: dt.datetime,
    filename: str | None = None,
    home_institution_id: int | None = None,
    channel: str = "import",
) -> ImportReport:
    """Import one transcript file; never commits (the caller's transaction holds it all)."""
    raw = source.read_bytes() if isinstance(source, Path) else source
    name = filename or (source.name if isinstance(source, Path) else "transcript.xml")
    transcript = parse_transcript(raw, filename=name)
    sha = store.put(raw)  # kept whole (by SHA-256), so a clerk can later match by hand
    home_ids = (
        [home_institution_id]
        if home_institution_id is not None
        else list(session.scalars(select(Institution.id).where(Institution.kind == "home")))
    )
    partner = _partner(session, transcript)
    students = match_students(session, transcript.learner, home_ids)
    pdfs = [a.data for a in transcript.attachments if a.data and a.media_type == "application/pdf"]
    actor = Actor.system(Role.IMPORT)
    report = ImportReport(name, str(transcript.version))
    report.tables = grading_tables.from_transcript(
        session,
        transcript,
        partner,
        now=now,
        filename=name,
        home_institution_id=home_institution_id,
    )
    learner = JSONText(json.dumps(_learner_json(transcript.learner)))  # the same for all
    done = set(
        session.scalars(select(ImportedResult.line).where(ImportedResult.file_sha256 == sha))
    )
    waiting = _Waiting(session, students, partner)
    partner_code = partner.code if partner else transcript.issuer.schac
    institution_id = home_ids[0] if len(home_ids) == 1 else None
    if partner is None:
        unmatched = f"unknown partner institution {transcript.issuer.schac or '?'}"
    elif not students:
        unmatched = "no student of this institution matches the learner"
    else:
        unmatched = "no case of this student waits for this course's result"
    memo: dict[Any, str] = {}  # ECTS and dates as text
    encoded: dict[Any, str] = {}  # values as JSON
    stored: list[tuple[Any, ...]] = []  # rows of imported_results, in _STORED's order
    results = report.results
    for course in transcript.courses:
        values = _result_values(course, partner_code, memo)
        line, code, title, grade = course.line, values[1], values[2], values[4]
        if line in done:
            results.append(
                {
                    "line": line,
                    "course": code,
                    "title": title,
                    "grade": grade,
                    "status": "skipped",
                    "note": "already imported",
                }
            )
            continue
        cases = waiting.candidates(code, title)
        status, case_id, note = "unmatched", None, unmatched
        if len(cases) > 1:
            status, note = "ambiguous", f"{len(cases)} cases could take this result"
        elif cases:
            savepoint = session.begin_nested()
            try:
                events = apply_result(
                    session,
                    cases[0],
                    dict(zip(_RESULT_KEYS, values, strict=True)),
                    transcript=raw,
                    filename=name,
                    pdfs=pdfs,
                    store=store,
                    actor=actor,
                    now=now,
                    channel=channel,
                )
            except DomainError as exc:
                savepoint.rollback()
                note = f"case {cases[0]}: {exc}"
            else:
                savepoint.commit()
                status, case_id, note = "matched", cases[0], ", ".join(events)
                waiting.changed(case_id)
        stored.append(
            (
                institution_id,
                name,
                sha,
                line,
                learner,
                _json_text(values, encoded),
                status,
                case_id,
                {"cases": cases} if len(cases) > 1 else None,
                note,
                now,
            )
        )
        results.append(
            {
                "line": line,
                "course": code,
                "title": title,
                "grade": grade,
                "status": status,
                "case": case_id,
                "note": note,
            }
        )
    # One set-based insert (sqlite3 executemany; one INSERT ... SELECT FROM unnest on
    # PostgreSQL), with each result's JSON built once and the learner's shared by all.
    insert_rows(session.connection(), ImportedResult.__table__, stored, columns=_STORED)
    return report


_STORED = (
    "institution_id",
    "filename",
    "file_sha256",
    "line",
    "learner",
    "result",
    "status",
    "case_id",
    "candidates",
    "note",
    "imported_at",
)


def pending(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(ImportedResult)
        .where(ImportedResult.status.in_(("unmatched", "ambiguous")))
        .order_by(ImportedResult.id)
    )
    return [
        {
            "id": r.id,
            "file": r.filename,
            "line": r.line,
            "status": r.status,
            "learner": f"{r.learner.get('given_names')} {r.learner.get('family_name')}",
            "course": r.result.get("code"),
            "title": r.result.get("title"),
            "grade": r.result.get("grade"),
            "candidates": (r.candidates or {}).get("cases"),
            "note": r.note,
        }
        for r in rows
    ]


def match_by_hand(
    session: Session,
    result_id: int,
    case_id: int,
    *,
    store: DocumentStore,
    actor: Actor,
    now: dt.datetime,
    channel: str = "cli",
) -> list[str]:
    """A clerk assigns a waiting result to a case; the same events as an automatic match.
    Another office's result or case is not found; a role the permission table does not
    allow is forbidden."""
    require(actor, Action.MATCH_BY_HAND)
    row = session.get(ImportedResult, result_id)
    if (
        row is None
        or row.status not in ("unmatched", "ambiguous")
        # A result imported for several home institutions at once belongs to none yet: the
        # case it is matched to (which must be the clerk's) decides.
        or row.institution_id not in (None, actor.institution_id)
    ):
        raise NotFound(f"no waiting transcript result {result_id}")
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound(f"case {case_id} not found")
    require(actor, Action.MATCH_BY_HAND, case)
    waiting = waiting_states()
    if case.state not in waiting:
        raise ValidationFailed(
            f"case {case_id} is {case.state}; a transcript result can only "
            f"be applied to a case that is {' or '.join(sorted(waiting))}"
        )
    content = store.get(row.file_sha256)  # every imported file is kept in the store
    events = apply_result(
        session,
        case_id,
        row.result,
        transcript=content,
        filename=row.filename,
        pdfs=[],
        store=store,
        actor=actor,
        now=now,
        channel=channel,
    )
    row.status, row.case_id = "resolved", case_id
    row.note = f"matched by hand by user {actor.id}: {', '.join(events)}"
    return events
