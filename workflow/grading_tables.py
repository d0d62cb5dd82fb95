"""Grading tables for percentile conversion (ECTS grading tables, EGRACONS): storing them,
filling them from transcripts and files, and finding the right pair for a case.

Two kinds of table, one row each in ``grading_tables`` (see ``docs/adr/0004-grading-tables.md``):

- a **partner** table: how a partner institution's grades on one grading scheme are
  distributed in a reference group, which is a course offering (an ELMO
  ``resultDistribution``), an ISCED-F field (an EWP ``gradeConversionTable``, or a file), or
  the whole institution;
- a **home** table: the office's own distribution of German grades for a home module, a
  programme, an ISCED-F field or the whole institution.

For a case the most specific table wins: the course offering before its ISCED-F field (the
detailed code before the narrow and the broad one) before the institution; a target module
before the programme before the ISCED-F field before the institution. Within one reference
group the newest reference year wins, then a table entered by hand before an imported one.

Grades are stored best first. Recog orders them itself wherever the grading scheme tells the
order (the EWP example lists F first), so the percentile bands never depend on the order in
which a partner happened to send them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, Final, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import (
    Case,
    GradingTable,
    Institution,
    InstitutionKind,
    Module,
    Offering,
    Programme,
    case_targets,
)
from workflow.errors import NotFound, ValidationFailed
from workflow.grades import (
    DEFAULT_SCHEMES,
    ECTS_FAILING,
    GERMAN_STEPS,
    Comparison,
    Conversion,
    Rounding,
    compare,
    convert,
    percentile,
)
from workflow.imports import ImportRejected, RowError, validate_rows

if TYPE_CHECKING:  # the parser (lxml, schemas) loads only where transcripts are read
    from workflow.transcripts import CourseResult, Transcript

KINDS: Final = ("partner", "home")
SOURCES: Final = ("ewp", "result_distribution", "manual")
SOURCE_NAMES: Final = {"ewp": "EWP transcript", "result_distribution": "ELMO result distribution",
                       "manual": "entered by the office"}
# Within one reference group and year: what the office entered itself beats an import.
_SOURCE_RANK: Final = {"manual": 0, "ewp": 1, "result_distribution": 2}
HOME_SCHEME: Final = "de"
ISCED_PATTERN: Final = re.compile(r"[0-9]{2,4}")
ECTS_LETTERS: Final = ("A", "B", "C", "D", "E", *ECTS_FAILING)
# Published percentages are rounded; a table whose shares do not add up to 100 % within this
# is refused rather than silently renormalised.
SUM_TOLERANCE: Final = Decimal(1)
MAX_GRADES: Final = 200
_HUNDREDTH: Final = Decimal("0.01")


# --- what is stored --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Grade:
    label: str
    percentage: Decimal
    failing: bool = False
    count: int | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"label": self.label, "percentage": str(self.percentage),
                                "failing": self.failing}
        if self.count is not None:
            data["count"] = self.count
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Grade:
        count = data.get("count")
        return cls(str(data["label"]), Decimal(str(data["percentage"])),
                   bool(data.get("failing")), int(count) if count is not None else None)


@dataclass(frozen=True, slots=True)
class StoredTable:
    """One stored table, as a conversion uses and shows it."""

    id: int
    kind: str
    institution: str  # the institution's code
    scheme: str
    scope: str
    scope_label: str  # "ISCED-F 0612", "course IT-01 (2026-03)", "module INF-ML", ...
    reference_year: int
    source: str
    grades: tuple[Grade, ...]

    @property
    def rows(self) -> list[tuple[str, Decimal]]:
        """(grade, percentage) best first, failing grades included (percentile() drops them)."""
        return [(g.label, g.percentage) for g in self.grades]

    @property
    def failing(self) -> tuple[str, ...]:
        return tuple(g.label for g in self.grades if g.failing)

    def reference(self) -> str:
        """One line saying which table this is, for explanations and the case page."""
        what = "partner table" if self.kind == "partner" else "home distribution"
        scheme = f", scheme {self.scheme}" if self.kind == "partner" else ""
        return (f"{what} #{self.id}: {self.institution}{scheme}, {self.scope_label}, "
                f"{self.reference_year}, {SOURCE_NAMES.get(self.source, self.source)}")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "institution": self.institution,
                "scheme": self.scheme, "scope": self.scope, "scope_label": self.scope_label,
                "group": _group(self), "reference_year": self.reference_year, "source": self.source,
                "grades": [g.to_json() for g in self.grades]}


def scope_of(*, isced_code: str | None = None, offering_id: int | None = None,
             programme_id: int | None = None, module_id: int | None = None) -> str:
    """The reference group as the one text the unique key holds."""
    given = [(name, value) for name, value in (("isced", isced_code), ("offering", offering_id),
                                               ("programme", programme_id),
                                               ("module", module_id)) if value is not None]
    if len(given) > 1:
        raise ValidationFailed("a grading table has one reference group: an ISCED-F code, a "
                               "course offering, a programme or a module, not several")
    return f"{given[0][0]}:{given[0][1]}" if given else "all"


def broader_isced(code: str | None) -> list[str]:
    """An ISCED-F code and the fields that contain it, most specific first: 0612, 061, 06."""
    if not code or not ISCED_PATTERN.fullmatch(code):
        return [code] if code else []
    return [code[:n] for n in range(len(code), 1, -1)]


# --- ordering and checking grades ------------------------------------------------------------


def _key(label: str) -> str:
    return " ".join(label.split()).casefold()


def _number(text: str) -> Decimal | None:
    cleaned = text.strip()
    if "," in cleaned and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _order_by_scheme(labels: Sequence[str], code: str) -> tuple[list[str], set[str]]:
    """The labels best first, and which of them fail, as the scheme ``code`` says; raises
    ValidationFailed when a label is not a grade of that scheme."""
    scheme = DEFAULT_SCHEMES.get(code)
    if scheme is None:
        raise ValidationFailed(f"Recog does not know the grading scheme {code!r}, so it cannot "
                               "tell the order of its grades")
    if scheme.kind == "passfail":
        raise ValidationFailed(f"scheme {code} is pass/fail: it has no grades to compare")
    if scheme.kind == "letter":
        order = [_key(x) for x in (*scheme.letters, *scheme.failing)]
        failing = {_key(x) for x in scheme.failing}
        unknown = [x for x in labels if _key(x) not in order]
        if unknown:
            raise ValidationFailed(f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'}"
                                   f" not a grade of scheme {code} "
                                   f"({', '.join((*scheme.letters, *scheme.failing))})")
        ordered = sorted(labels, key=lambda x: order.index(_key(x)))
        return ordered, {x for x in labels if _key(x) in failing}
    best, lowest = Decimal(scheme.best), Decimal(scheme.lowest_pass)
    ascending = best > lowest  # a higher number is a better grade
    values: dict[str, Decimal] = {}
    for label in labels:
        value = _number(label)
        if value is None:
            raise ValidationFailed(f"{label!r} is not a number, as grades of scheme {code} are")
        if (value > best) if ascending else (value < best):
            raise ValidationFailed(f"{label} is better than the best grade {scheme.best} of "
                                   f"scheme {code}")
        values[label] = value
    ordered = sorted(labels, key=lambda x: values[x], reverse=ascending)
    failing = {x for x in labels if (values[x] < lowest if ascending else values[x] > lowest)}
    return ordered, failing


def _ects_letters(labels: Sequence[str]) -> bool:
    known = {_key(x) for x in ECTS_LETTERS}
    return all(_key(x) in known for x in labels)


def order_grades(labels: Sequence[str], schemes: Sequence[str],
                 ) -> tuple[str, list[str], set[str]]:
    """Find the scheme (of ``schemes``, else the ECTS letters) that orders ``labels``: the
    scheme, the labels best first and the failing ones. Raises ValidationFailed saying why
    none does."""
    problems = []
    for code in schemes:
        try:
            ordered, failing = _order_by_scheme(labels, code)
        except ValidationFailed as exc:
            problems.append(exc.message)
        else:
            return code, ordered, failing
    if _ects_letters(labels) and "ects" not in schemes:
        ordered, failing = _order_by_scheme(labels, "ects")
        return "ects", ordered, failing
    raise ValidationFailed("; ".join(problems) or
                           f"cannot tell the order of the grades {', '.join(labels)}")


def _check_shares(grades: Sequence[Grade], counted: bool) -> None:
    if not grades:
        raise ValidationFailed("the table lists no grade")
    if len(grades) > MAX_GRADES:
        raise ValidationFailed(f"the table lists {len(grades)} grades; at most {MAX_GRADES}")
    seen: set[str] = set()
    for g in grades:
        if _key(g.label) in seen:
            raise ValidationFailed(f"grade {g.label} is listed twice")
        seen.add(_key(g.label))
        if g.percentage < 0:
            raise ValidationFailed(f"grade {g.label} has a negative share")
    if not any(g.percentage > 0 for g in grades if not g.failing):
        raise ValidationFailed("no passing grade has a share above 0")
    total = sum((g.percentage for g in grades), Decimal(0))
    if not counted and abs(total - 100) > SUM_TOLERANCE:
        raise ValidationFailed(f"the percentages add up to {total}, not 100")


def from_counts(counts: Sequence[tuple[str, int]]) -> list[tuple[str, Decimal, int]]:
    """(label, percentage rounded to 0.01, count): a result distribution as shares."""
    total = sum(count for _, count in counts)
    if total <= 0:
        raise ValidationFailed("the distribution counts no result")
    return [(label, (Decimal(count) * 100 / total).quantize(_HUNDREDTH), count)
            for label, count in counts]


def partner_grades(rows: Sequence[tuple[str, Decimal, int | None]], schemes: Sequence[str],
                   *, given_scheme: bool = False) -> tuple[str, list[Grade]]:
    """A partner's (label, percentage, count) rows as stored grades, best first, with the
    scheme that orders them (of ``schemes``, else the ECTS letters).

    With ``given_scheme`` (a file names the one scheme of its table) the scheme stays the
    given one: a scheme Recog knows orders the grades and refuses grades not on it; for one it
    does not know, ECTS letters are put in ECTS order and anything else keeps the file's
    order (best first) with no failing grade."""
    labels = [label for label, _, _ in rows]
    by_label = {label: (share, count) for label, share, count in rows}
    if given_scheme and schemes[0] not in DEFAULT_SCHEMES:
        scheme = schemes[0]
        if _ects_letters(labels):
            _, ordered, failing = order_grades(labels, ["ects"])
        else:
            ordered, failing = labels, set()
    elif given_scheme:
        scheme = schemes[0]
        ordered, failing = _order_by_scheme(labels, scheme)
    else:
        scheme, ordered, failing = order_grades(labels, schemes)
    grades = [Grade(label, by_label[label][0], label in failing, by_label[label][1])
              for label in ordered]
    _check_shares(grades, counted=all(count is not None for _, _, count in rows))
    return scheme, grades


def home_grades(rows: Sequence[tuple[str, Decimal, int | None]]) -> list[Grade]:
    """The office's own distribution: German steps 1.0 to 4.0 only, best first."""
    grades = []
    for label, share, count in rows:
        value = _number(label)
        if value is None or value not in GERMAN_STEPS:
            raise ValidationFailed(f"{label!r} is not a German grade step "
                                   f"({' '.join(map(str, GERMAN_STEPS))}); a home "
                                   "distribution lists passing grades only")
        grades.append(Grade(str(GERMAN_STEPS[GERMAN_STEPS.index(value)]), share, False, count))
    grades.sort(key=lambda g: Decimal(g.label))
    _check_shares(grades, counted=all(count is not None for _, _, count in rows))
    return grades


# --- writing ---------------------------------------------------------------------------------


def store_table(session: Session, *, kind: str, institution_id: int, scheme: str,
                reference_year: int, source: str, grades: Sequence[Grade], now: dt.datetime,
                isced_code: str | None = None, offering_id: int | None = None,
                programme_id: int | None = None, module_id: int | None = None,
                filename: str | None = None) -> tuple[int, str]:
    """Create or replace the table of this key; returns its id and ``created``, ``updated``
    or ``unchanged``. Never commits."""
    if kind not in KINDS or source not in SOURCES:
        raise ValidationFailed(f"unknown table kind {kind!r} or source {source!r}")
    scope = scope_of(isced_code=isced_code, offering_id=offering_id, programme_id=programme_id,
                     module_id=module_id)
    stored = [g.to_json() for g in grades]
    row = session.execute(select(GradingTable).where(
        GradingTable.institution_id == institution_id, GradingTable.kind == kind,
        GradingTable.scheme == scheme, GradingTable.scope == scope,
        GradingTable.reference_year == reference_year, GradingTable.source == source,
    )).scalar()
    if row is None:
        row = GradingTable(kind=kind, institution_id=institution_id, scheme=scheme, scope=scope,
                           isced_code=isced_code, offering_id=offering_id,
                           programme_id=programme_id, module_id=module_id,
                           reference_year=reference_year, source=source, grades=stored,
                           filename=filename, created_at=now, updated_at=now)
        session.add(row)
        session.flush()
        return row.id, "created"
    if row.grades == stored:
        return row.id, "unchanged"
    row.grades, row.filename, row.updated_at = stored, filename, now
    session.flush()
    return row.id, "updated"


# --- finding the tables of a case ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaseTables:
    """The partner table and the home distribution a case's percentile conversion uses, and
    what was looked for (to say what is missing)."""

    partner: StoredTable | None
    home: StoredTable | None
    partner_wanted: str
    home_wanted: str

    @property
    def known(self) -> bool:
        return self.partner is not None and self.home is not None

    def missing(self) -> str:
        parts = []
        if self.partner is None:
            parts.append(f"no partner grading table for {self.partner_wanted}")
        if self.home is None:
            parts.append(f"no home grade distribution for {self.home_wanted}")
        return ("; ".join(parts) + " (import one: recog grade table import FILE.csv)"
                if parts else "")

    def to_dict(self) -> dict[str, Any]:
        return {"partner": self.partner.to_dict() if self.partner else None,
                "home": self.home.to_dict() if self.home else None,
                "missing": self.missing() or None}


def _labels(session: Session, rows: Iterable[GradingTable]) -> dict[str, str]:
    """Readable names of the reference groups of ``rows``."""
    rows = list(rows)
    offering_ids = {r.offering_id for r in rows if r.offering_id}
    module_ids = {r.module_id for r in rows if r.module_id}
    programme_ids = {r.programme_id for r in rows if r.programme_id}
    names: dict[str, str] = {"all": "whole institution"}
    if offering_ids:
        for oid, code, term in session.execute(select(Offering.id, Offering.code, Offering.term)
                                               .where(Offering.id.in_(offering_ids))):
            names[f"offering:{oid}"] = f"course {code} ({term})"
    if module_ids:
        for mid, code in session.execute(select(Module.id, Module.code)
                                         .where(Module.id.in_(module_ids))):
            names[f"module:{mid}"] = f"module {code}"
    if programme_ids:
        for pid, code in session.execute(select(Programme.id, Programme.code)
                                         .where(Programme.id.in_(programme_ids))):
            names[f"programme:{pid}"] = f"programme {code}"
    for r in rows:
        if r.isced_code:
            names[r.scope] = f"ISCED-F {r.isced_code}"
    return names


def _stored(row: GradingTable, institution: str, names: dict[str, str]) -> StoredTable:
    return StoredTable(id=row.id, kind=row.kind, institution=institution, scheme=row.scheme,
                       scope=row.scope, scope_label=names.get(row.scope, row.scope),
                       reference_year=row.reference_year, source=row.source,
                       grades=tuple(Grade.from_json(g) for g in row.grades))


def _best(session: Session, *, kind: str, institution_id: int, scheme: str,
          scopes: list[str]) -> StoredTable | None:
    rows = list(session.execute(
        select(GradingTable, Institution.code)
        .join(Institution, Institution.id == GradingTable.institution_id)
        .where(GradingTable.kind == kind, GradingTable.institution_id == institution_id,
               GradingTable.scheme == scheme, GradingTable.scope.in_(scopes))))
    if not rows:
        return None
    row, code = min(rows, key=lambda r: (scopes.index(r[0].scope), -r[0].reference_year,
                                         _SOURCE_RANK.get(r[0].source, 9), -r[0].id))
    return _stored(row, code, _labels(session, [row]))


def tables_for_case(session: Session, case_id: int) -> CaseTables:
    """The most specific partner table (course offering, then its ISCED-F field from detailed
    to broad, then the whole partner institution, on the case's grading scheme) and home
    distribution (target module, programme, ISCED-F field, whole institution) for a case."""
    row = session.execute(
        select(Case.institution_id, Case.programme_id, Case.offering_id, Case.result,
               Offering.institution_id.label("partner_id"), Offering.grading_scheme,
               Offering.isced_code, Offering.code, Institution.code.label("partner"))
        .join(Offering, Offering.id == Case.offering_id)
        .join(Institution, Institution.id == Offering.institution_id)
        .where(Case.id == case_id)).first()
    if row is None:
        raise NotFound(f"case {case_id} not found")
    result = row.result or {}
    scheme = str(result.get("scheme") or row.grading_scheme).strip().lower()
    fields = broader_isced(row.isced_code)
    isced = [f"isced:{code}" for code in fields]
    partner = _best(session, kind="partner", institution_id=row.partner_id, scheme=scheme,
                    scopes=[f"offering:{row.offering_id}", *isced, "all"])
    targets = list(session.execute(
        select(Module.id, Module.code, Module.programme_id)
        .join(case_targets, case_targets.c.module_id == Module.id)
        .where(case_targets.c.case_id == case_id).order_by(Module.code)))
    programmes = [p for p in dict.fromkeys([row.programme_id, *(t.programme_id
                                                                for t in targets)]) if p]
    home = _best(session, kind="home", institution_id=row.institution_id, scheme=HOME_SCHEME,
                 scopes=[*(f"module:{t.id}" for t in targets),
                         *(f"programme:{p}" for p in programmes), *isced, "all"])
    field_text = f", ISCED-F {row.isced_code}" if row.isced_code else ""
    modules = ", ".join(t.code for t in targets)
    return CaseTables(
        partner=partner, home=home,
        partner_wanted=f"{row.partner} on scheme {scheme} (course {row.code}{field_text})",
        home_wanted=(f"{'module ' + modules if modules else 'the case'}{field_text} "
                     "or the institution"))


def _group(table: StoredTable) -> str:
    """The reference group's own code (``0612``, ``INF-ML``, ``IT-01 (2026-03)``; empty for
    the whole institution), for texts that name the kind of group in their own language."""
    return "" if table.scope == "all" else table.scope_label.split(" ", 1)[-1]


def convert_by_tables(grade: str, scheme: str | None, tables: CaseTables) -> Conversion:
    """The percentile conversion of ``grade`` with the case's tables; its parameters name the
    tables (ids, reference groups, years, sources) besides their percentages."""
    if tables.partner is None or tables.home is None:
        raise ValidationFailed(tables.missing())
    partner, home = tables.partner, tables.home
    conversion = percentile(grade, partner.rows, home.rows, failing=partner.failing,
                            scheme=scheme)
    parameters = {
        **conversion.parameters,
        "partner_table_id": partner.id,
        "home_table_id": home.id,
        "tables": {
            "partner": {"id": partner.id, "institution": partner.institution,
                        "scheme": partner.scheme, "scope": partner.scope,
                        "group": _group(partner), "reference_year": partner.reference_year,
                        "source": partner.source},
            "home": {"id": home.id, "institution": home.institution, "scope": home.scope,
                     "group": _group(home), "reference_year": home.reference_year,
                     "source": home.source},
        },
    }
    return replace(conversion, parameters=MappingProxyType(parameters),
                   explanation=(f"{partner.reference()}", f"{home.reference()}",
                                *conversion.explanation))


def side_by_side(grade: str, scheme: str, rounding: Rounding, tables: CaseTables,
                 ) -> tuple[Conversion | None, Conversion | None, Comparison | None,
                            dict[str, str]]:
    """Both conversions of a grade (each None with its error when it fails) and, when both
    exist, their comparison (``differs``: 0.3 or more apart)."""
    errors: dict[str, str] = {}
    by_formula = by_table = None
    try:
        by_formula = convert(grade, scheme, rounding)
    except ValidationFailed as exc:
        errors["bavarian"] = exc.message
    if tables.known:
        try:
            by_table = convert_by_tables(grade, scheme, tables)
        except ValidationFailed as exc:
            errors["percentile"] = exc.message
    else:
        errors["percentile"] = tables.missing()
    both = compare(by_formula, by_table) if by_formula and by_table else None
    return by_formula, by_table, both, errors


# --- filling from a transcript ---------------------------------------------------------------


def _course_code(result: CourseResult) -> str | None:
    # The same reading of a course's code as the transcript import's matching.
    local = result.local_code
    return local or (result.identifiers[0].value if result.identifiers else None)


class _Offering(NamedTuple):
    id: int
    code: str
    term: str
    start_date: dt.date
    grading_scheme: str
    isced_code: str | None


def _offering_for(candidates: list[_Offering], day: dt.date | None) -> _Offering | None:
    """The offering a result belongs to: the only one with its code, else the latest that
    started on or before the result's date."""
    if len(candidates) == 1:
        return candidates[0]
    started = [o for o in candidates if day is not None and o.start_date <= day]
    return max(started, key=lambda o: o.start_date) if started else None


def from_transcript(session: Session, transcript: Transcript, partner: Institution | None, *,
                    now: dt.datetime, filename: str) -> list[dict[str, Any]]:
    """Keep what a transcript says about grade distributions: each EWP
    ``gradeConversionTable/iscedTable`` as the partner's table for that ISCED-F field, each
    ELMO ``resultDistribution`` as the table of its course offering, and each course's ISCED-F
    code on an offering that has none yet. Returns one report line per table (stored,
    updated, unchanged or skipped with the reason); never refuses the transcript."""
    courses = [c for c in transcript.courses if c.result_distribution or c.isced_code]
    if not courses and not transcript.grade_conversion_tables:
        return []
    if partner is None:
        return [{"table": None, "status": "skipped", "what": "grading tables",
                 "note": f"unknown partner institution {transcript.issuer.schac or '?'}"}]
    report: list[dict[str, Any]] = []
    by_code: dict[str, list[_Offering]] = defaultdict(list)
    for found in session.execute(
            select(Offering.id, Offering.code, Offering.term, Offering.start_date,
                   Offering.grading_scheme, Offering.isced_code)
            .where(Offering.institution_id == partner.id)):
        by_code[found.code].append(_Offering(*found))
    matched: list[tuple[CourseResult, _Offering | None]] = []
    given_field: set[int] = set()
    for course in courses:
        offering = _offering_for(by_code.get(_course_code(course) or "", []),
                                 course.result_date)
        matched.append((course, offering))
        if (offering is not None and course.isced_code and offering.isced_code is None
                and offering.id not in given_field
                and ISCED_PATTERN.fullmatch(course.isced_code)):
            given_field.add(offering.id)
            session.execute(update(Offering).where(Offering.id == offering.id)
                            .values(isced_code=course.isced_code))
            report.append({"table": None, "status": "updated",
                           "what": f"course {offering.code} ({offering.term})",
                           "note": f"ISCED-F code {course.isced_code} from the transcript"})
    year = transcript.issued_at.year
    all_schemes = sorted({o.grading_scheme for group in by_code.values() for o in group})
    for table in transcript.grade_conversion_tables:
        what = f"EWP table for ISCED-F {table.isced_code}"
        if not ISCED_PATTERN.fullmatch(table.isced_code):
            report.append({"table": None, "status": "skipped", "what": what,
                           "note": f"{table.isced_code!r} is not an ISCED-F code"})
            continue
        schemes = sorted({o.grading_scheme for c, o in matched if o is not None
                          and c.isced_code == table.isced_code}) or all_schemes
        rows = [(f.label, f.percentage, None) for f in table.frequencies]
        try:
            scheme, grades = partner_grades(rows, schemes)
        except ValidationFailed as exc:
            report.append({"table": None, "status": "skipped", "what": what,
                           "note": exc.message})
            continue
        table_id, status = store_table(
            session, kind="partner", institution_id=partner.id, scheme=scheme,
            reference_year=year, source="ewp", grades=grades, now=now,
            isced_code=table.isced_code, filename=filename)
        report.append({"table": table_id, "status": status, "what": f"{what}, scheme {scheme}",
                       "note": None})
    for course, offering in matched:
        distribution = course.result_distribution
        if distribution is None:
            continue
        what = f"result distribution of {_course_code(course) or course.title or '?'}"
        if offering is None:
            report.append({"table": None, "status": "skipped", "what": what,
                           "note": "no course offering of the partner has this code"})
            continue
        try:
            counted = from_counts([(c.label, c.count) for c in distribution.categories])
            scheme, grades = partner_grades(counted, [offering.grading_scheme])
        except ValidationFailed as exc:
            report.append({"table": None, "status": "skipped", "what": what,
                           "note": exc.message})
            continue
        day = course.result_date or transcript.issued_at.date()
        table_id, status = store_table(
            session, kind="partner", institution_id=partner.id, scheme=scheme,
            reference_year=day.year, source="result_distribution", grades=grades, now=now,
            offering_id=offering.id, filename=filename)
        report.append({"table": table_id, "status": status,
                       "what": f"{what} ({offering.term}), scheme {scheme}", "note": None})
    return report


# --- files entered by the office -------------------------------------------------------------

Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]


class TableRow(BaseModel):
    """One grade of one table in a CSV/JSON file; rows with the same key form a table."""

    model_config = ConfigDict(extra="forbid")

    kind: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^(partner|home)$")]
    institution: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                  max_length=120)]
    scheme: Code | None = None
    isced: Annotated[str, StringConstraints(strip_whitespace=True,
                                            pattern=r"^[0-9]{2,4}$")] | None = None
    course: Code | None = None
    term: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                           max_length=20)] | None = None
    programme: Code | None = None
    module: Code | None = None
    reference_year: int = Field(ge=1900, le=2999)
    grade: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                            max_length=40)]
    percentage: Decimal | None = Field(default=None, ge=0, le=100)
    count: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> TableRow:
        if (self.percentage is None) == (self.count is None):
            raise ValueError("give either percentage or count")
        if self.kind == "partner":
            if not self.scheme:
                raise ValueError("a partner table needs its grading scheme (scheme)")
            if self.programme or self.module:
                raise ValueError("programme and module belong to home tables")
        else:
            if self.scheme and self.scheme.lower() != HOME_SCHEME:
                raise ValueError(f"a home table is on the German scale: scheme {HOME_SCHEME} "
                                 "(or empty)")
            if self.course or self.term:
                raise ValueError("course and term belong to partner tables")
        if bool(self.course) != bool(self.term):
            raise ValueError("a course offering is named by course and term together")
        groups = [g for g in (self.isced, self.course, self.programme and not self.module,
                              self.module) if g]
        if len(groups) > 1:
            raise ValueError("one reference group per table: isced, course+term, programme "
                             "or module (a module may name its programme)")
        return self

    def key(self) -> tuple[Any, ...]:
        return (self.kind, self.institution, (self.scheme or HOME_SCHEME).lower(), self.isced,
                self.course, self.term, self.programme, self.module, self.reference_year)


@dataclass(frozen=True, slots=True)
class TableImport:
    created: int
    updated: int
    unchanged: int
    tables: list[dict[str, Any]]


def import_file(session: Session, path: Path, *, now: dt.datetime,
                home_institution_id: int | None = None,
                filename: str | None = None) -> TableImport:
    """Import partner tables and home distributions from CSV/JSON, one row per grade.

    Every row and every table is checked first; any problem and nothing is imported (the
    errors name file, line and field). A table replaces the one entered by hand before for the
    same institution, scheme, reference group and year. With ``home_institution_id`` (an
    office acting through the web) home distributions of other institutions are refused."""
    name = filename or path.name  # an upload is read from a temporary file
    rows, errors = validate_rows(path, TableRow)
    groups: dict[tuple[Any, ...], list[tuple[str, TableRow]]] = defaultdict(list)
    for where, row in rows:
        groups[row.key()].append((where, row))
    institutions = {i.code: i for i in session.scalars(select(Institution))}
    planned: list[dict[str, Any]] = []
    for group in groups.values():
        where, first = group[0]
        inst = institutions.get(first.institution)
        wanted = (InstitutionKind.PARTNER.value if first.kind == "partner"
                  else InstitutionKind.HOME.value)
        if inst is None:
            errors.append(RowError(where, "institution", f"unknown institution "
                                   f"{first.institution!r} (add it first: recog institution "
                                   "add)"))
            continue
        if inst.kind != wanted:
            errors.append(RowError(where, "institution", f"{inst.code} is a {inst.kind} "
                                   f"institution; a {first.kind} table needs a {wanted} one"))
            continue
        if first.kind == "home" and home_institution_id not in (None, inst.id):
            errors.append(RowError(where, "institution", f"{inst.code} is not your "
                                   "institution; import only your own grade distribution"))
            continue
        target: dict[str, Any] = {"isced_code": first.isced}
        problem = _resolve_group(session, first, inst.id, target)
        if problem is not None:
            errors.append(RowError(where, problem[0], problem[1]))
            continue
        seen: dict[str, str] = {}
        for row_where, row in group:
            if _key(row.grade) in seen:
                errors.append(RowError(row_where, "grade", f"grade {row.grade} is listed twice "
                                       f"in this table (also at {seen[_key(row.grade)]})"))
            seen.setdefault(_key(row.grade), row_where)
        given = [r.count for _, r in group]
        if any(c is None for c in given) and any(c is not None for c in given):
            errors.append(RowError(where, "count", "a table gives either percentages or counts "
                                   "in every row, not both"))
            continue
        if len(seen) < len(group):
            continue
        try:
            share_rows: list[tuple[str, Decimal, int | None]]
            if all(c is not None for c in given):
                share_rows = list(from_counts([(r.grade, r.count or 0) for _, r in group]))
            else:
                share_rows = [(r.grade, r.percentage or Decimal(0), None) for _, r in group]
            if first.kind == "partner":
                scheme, grades = partner_grades(share_rows, [(first.scheme or "").lower()],
                                                given_scheme=True)
            else:
                scheme, grades = HOME_SCHEME, home_grades(share_rows)
        except ValidationFailed as exc:
            errors.append(RowError(where, "grade" if "grade" in exc.message or "scheme"
                                   in exc.message else "percentage", exc.message))
            continue
        planned.append({"kind": first.kind, "institution_id": inst.id, "scheme": scheme,
                        "reference_year": first.reference_year, "grades": grades,
                        "institution": inst.code, "where": where, **target})
    if errors:
        errors.sort(key=_position)
        raise ImportRejected(name, errors)
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    tables = []
    for plan in planned:
        table_id, status = store_table(
            session, kind=plan["kind"], institution_id=plan["institution_id"],
            scheme=plan["scheme"], reference_year=plan["reference_year"], source="manual",
            grades=plan["grades"], now=now, isced_code=plan.get("isced_code"),
            offering_id=plan.get("offering_id"), programme_id=plan.get("programme_id"),
            module_id=plan.get("module_id"), filename=name)
        counts[status] += 1
        tables.append({"id": table_id, "status": status, "kind": plan["kind"],
                       "institution": plan["institution"], "from": plan["where"]})
    return TableImport(counts["created"], counts["updated"], counts["unchanged"], tables)


def _position(error: RowError) -> tuple[int, str]:
    number = error.where.rsplit(" ", 1)[-1]
    return (int(number) if number.isdigit() else 0, error.field or "")


def _resolve_group(session: Session, row: TableRow, institution_id: int,
                   target: dict[str, Any]) -> tuple[str, str] | None:
    """Fill ``target`` with the ids of the row's reference group; (field, problem) if it
    names something that does not exist."""
    if row.course and row.term:
        offering_id = session.execute(select(Offering.id).where(
            Offering.institution_id == institution_id, Offering.code == row.course,
            Offering.term == row.term)).scalar()
        if offering_id is None:
            return "course", (f"{row.institution} offers no course {row.course} in term "
                              f"{row.term} (import the catalogue first)")
        target["offering_id"] = offering_id
        return None
    programme_id = None
    if row.programme:
        programme_id = session.execute(select(Programme.id).where(
            Programme.institution_id == institution_id, Programme.code == row.programme,
        )).scalar()
        if programme_id is None:
            return "programme", f"{row.institution} has no programme {row.programme}"
    if row.module:
        query = (select(Module.id).join(Programme, Programme.id == Module.programme_id)
                 .where(Programme.institution_id == institution_id, Module.code == row.module))
        if programme_id is not None:
            query = query.where(Module.programme_id == programme_id)
        found = list(session.scalars(query))
        if not found:
            return "module", f"{row.institution} has no module {row.module}" + (
                f" in programme {row.programme}" if row.programme else "")
        if len(found) > 1:
            return "programme", (f"module {row.module} exists in several programmes; name "
                                 "its programme")
        target["module_id"] = found[0]
        return None
    if programme_id is not None:
        target["programme_id"] = programme_id
    return None


def list_tables(session: Session, *, kind: str | None = None,
                institution: str | None = None) -> list[dict[str, Any]]:
    """Every stored table, newest first within its institution and kind."""
    query = (select(GradingTable, Institution.code)
             .join(Institution, Institution.id == GradingTable.institution_id)
             .order_by(GradingTable.kind.desc(), Institution.code, GradingTable.scheme,
                       GradingTable.scope, GradingTable.reference_year.desc(),
                       GradingTable.id))
    if kind:
        if kind not in KINDS:
            raise ValidationFailed(f"unknown kind {kind!r}; use partner or home")
        query = query.where(GradingTable.kind == kind)
    if institution:
        query = query.where(Institution.code == institution)
    rows = list(session.execute(query))
    names = _labels(session, (r[0] for r in rows))
    found = []
    for row, code in rows:
        table = _stored(row, code, names)
        found.append({**table.to_dict(),
                      "shares": " · ".join(f"{g.label}: {g.percentage}"
                                           + (" (fail)" if g.failing else "")
                                           for g in table.grades),
                      "filename": row.filename, "updated_at": row.updated_at})
    return found


def get_table(session: Session, table_id: int, *, kind: str | None = None) -> StoredTable:
    """One stored table by id (of ``kind``, if given)."""
    row = session.execute(select(GradingTable, Institution.code)
                          .join(Institution, Institution.id == GradingTable.institution_id)
                          .where(GradingTable.id == table_id)).first()
    if row is None or (kind is not None and row[0].kind != kind):
        raise NotFound(f"there is no {kind or 'grading'} table {table_id} "
                       "(recog grade table list)")
    return _stored(row[0], row[1], _labels(session, [row[0]]))


def delete_table(session: Session, table_id: int) -> None:
    row = session.get(GradingTable, table_id)
    if row is None:
        raise NotFound(f"no grading table {table_id}")
    session.delete(row)
    session.flush()
