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
which a partner happened to send them. A partner's grades may be ranges (``90-100``,
``1,0-1,5``): they are kept with their bounds, ordered the same way, and a student's grade
converts as the band that holds it (ADR 0004, decision 11).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from itertools import pairwise
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
from workflow.errors import DomainError, NotFound, ValidationFailed
from workflow.grading.grades import (
    DEFAULT_SCHEMES,
    DIFFERENCE_THRESHOLD,
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
from workflow.office.sharing import (
    acting_home,
    offerings_used_by_others,
    partner_used_by_others,
)
from workflow.policy.actors import Actor
from workflow.policy.permissions import Action, require

if TYPE_CHECKING:  # the parser (lxml, schemas) loads only where transcripts are read
    from workflow.transcripts.elmo import CourseResult, Transcript

KINDS: Final = ("partner", "home")
SOURCES: Final = ("ewp", "result_distribution", "manual")
SOURCE_NAMES: Final = {
    "ewp": "EWP transcript",
    "result_distribution": "ELMO result distribution",
    "manual": "entered by the office",
}
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
    """One grade of a table. In a table whose grades are ranges (``80-89.9``, ``1,0-1,5``)
    every grade has its ``lower`` and ``upper`` bound, both belonging to it; a single number
    in such a table is the band from itself to itself."""

    label: str
    percentage: Decimal
    failing: bool = False
    count: int | None = None
    lower: Decimal | None = None
    upper: Decimal | None = None

    def holds(self, value: Decimal) -> bool:
        return (
            self.lower is not None and self.upper is not None and self.lower <= value <= self.upper
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "label": self.label,
            "percentage": str(self.percentage),
            "failing": self.failing,
        }
        if self.count is not None:
            data["count"] = self.count
        if self.lower is not None and self.upper is not None:
            data["lower"], data["upper"] = str(self.lower), str(self.upper)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Grade:
        count, lower, upper = data.get("count"), data.get("lower"), data.get("upper")
        return cls(
            str(data["label"]),
            Decimal(str(data["percentage"])),
            bool(data.get("failing")),
            int(count) if count is not None else None,
            Decimal(str(lower)) if lower is not None else None,
            Decimal(str(upper)) if upper is not None else None,
        )


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

    @property
    def banded(self) -> bool:
        """Whether the table's grades are ranges (each with its bounds)."""
        return any(g.lower is not None for g in self.grades)

    def band_for(self, grade: str) -> Grade:
        """The grade of this table of ranges whose band holds ``grade``, bounds included (a
        grade printed as one of the bands, ``80-89.9``, is that band). Raises
        ValidationFailed naming every band when none holds it."""
        text = " ".join(grade.split())
        same = next((g for g in self.grades if _key(g.label) == _key(text)), None)
        if same is not None:
            return same
        value = _number(text)
        if value is not None:
            holding = next((g for g in self.grades if g.holds(value)), None)
            if holding is not None:
                return holding
        bands = ", ".join(g.label + (" (fail)" if g.failing else "") for g in self.grades)
        if value is None:
            raise ValidationFailed(
                f"grade {text!r} is not a number, and the partner's table "
                f"#{self.id} gives its grades as ranges: {bands}"
            )
        raise ValidationFailed(
            f"grade {text} lies in none of the bands of the partner's "
            f"table #{self.id} (bounds included): {bands}"
        )

    def reference(self) -> str:
        """One line saying which table this is, for explanations and the case page."""
        what = "partner table" if self.kind == "partner" else "home distribution"
        scheme = f", scheme {self.scheme}" if self.kind == "partner" else ""
        return (
            f"{what} #{self.id}: {self.institution}{scheme}, {self.scope_label}, "
            f"{self.reference_year}, {SOURCE_NAMES.get(self.source, self.source)}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "institution": self.institution,
            "scheme": self.scheme,
            "scope": self.scope,
            "scope_label": self.scope_label,
            "group": _group(self),
            "reference_year": self.reference_year,
            "source": self.source,
            "grades": [g.to_json() for g in self.grades],
        }


def scope_of(
    *,
    isced_code: str | None = None,
    offering_id: int | None = None,
    programme_id: int | None = None,
    module_id: int | None = None,
) -> str:
    """The reference group as the one text the unique key holds."""
    given = [
        (name, value)
        for name, value in (
            ("isced", isced_code),
            ("offering", offering_id),
            ("programme", programme_id),
            ("module", module_id),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise ValidationFailed(
            "a grading table has one reference group: an ISCED-F code, a "
            "course offering, a programme or a module, not several"
        )
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


class GradeProblem(ValidationFailed):
    """A table refused for one of its grades, ``label``, so that a file import can name the
    line that grade is on."""

    def __init__(self, label: str, message: str) -> None:
        super().__init__(message)
        self.label = label


# --- grades that are ranges ------------------------------------------------------------------

# Partners may send their table in bands (EGRACONS allows it): two numbers, a decimal point or
# comma each, with a hyphen or an en dash between: 80-89.9, 1,0–1,5, 90 - 100.
_DASHES: Final = "-\u2010\u2011\u2013"  # hyphen-minus, hyphen, non-breaking hyphen, en dash
_BOUND: Final = r"[0-9]+(?:[.,][0-9]+)?"
_BAND: Final = re.compile(rf"({_BOUND})\s*[{_DASHES}]\s*({_BOUND})")
# Meant as a range: a dash between two characters and a digit somewhere. "2-" and "A-" (minus
# grades) and "-5" are single grades; "80-89.9x" is a range written wrong.
_RANGE_LIKE: Final = re.compile(rf"\S\s*[{_DASHES}]\s*\S")
# A grade with a name: a word of two letters or more, or brackets ("Good (80-89)", "ca. 80-90",
# "A (90-100)"). It is a label like "B", whatever numbers it mentions, not a range.
_NAMED: Final = re.compile(r"[^\W\d_]{2,}|[()\[\]]")


def parse_band(label: str) -> tuple[Decimal, Decimal] | None:
    """The bounds (lower, upper) of a grade written as a range (``80-89.9``, ``1,0–1,5``;
    either way round); None for a grade not meant as one (``B``, ``27``, ``2-``, a named grade
    such as ``A (90-100)``). Raises
    GradeProblem for a range that is not two numbers with a dash between."""
    text = " ".join(label.split())
    if (
        not _RANGE_LIKE.search(text)
        or not any(c in "0123456789" for c in text)
        or _NAMED.search(text)
    ):
        return None
    match = _BAND.fullmatch(text)
    first = _number(match.group(1)) if match else None
    second = _number(match.group(2)) if match else None
    if first is None or second is None:
        raise GradeProblem(
            label,
            f"{label!r} is not a range of two numbers (write it as "
            "80-89.9 or 1,0-1,5: a decimal point or comma, a hyphen or an en "
            "dash between)",
        )
    return min(first, second), max(first, second)


def table_bands(labels: Sequence[str]) -> dict[str, tuple[Decimal, Decimal]]:
    """The bounds of every grade of a table whose grades are ranges; empty for a table of
    single grades (no grade is a range).

    In a table of ranges every grade must be a range or a single number (the band from itself
    to itself, ``100``); a word or letter (``F``, ``Less than 50``) could stand for any band
    and is refused. Bounds belong to their band, so two bands must not even share a bound.
    Raises GradeProblem naming the grade at fault."""
    found: dict[str, tuple[Decimal, Decimal]] = {}
    for label in labels:
        band = parse_band(label)
        if band is not None:
            found[label] = band
    if not found:
        return {}
    example = next(iter(found))
    bands: dict[str, tuple[Decimal, Decimal]] = {}
    for label in labels:
        if label in found:
            bands[label] = found[label]
            continue
        value = _number(label)
        if value is None:
            raise GradeProblem(
                label,
                f"{label!r} is neither a range nor a number: in a table "
                f"of ranges (such as {example}) every grade must be a range or "
                f"a number, or Recog cannot tell which grades {label!r} stands "
                "for",
            )
        bands[label] = (value, value)
    order = {label: n for n, label in enumerate(labels)}
    by_lower = sorted(bands, key=lambda x: bands[x])
    for below, above in pairwise(by_lower):
        if bands[above][0] <= bands[below][1]:
            first, second = sorted((below, above), key=lambda x: order[x])
            low, high = bands[above][0], min(bands[below][1], bands[above][1])
            shared = str(low) if low == high else f"{low} to {high}"
            raise GradeProblem(
                second,
                f"band {second} overlaps band {first}: both hold "
                f"{shared} (a band's bounds belong to it, so bands must not "
                "overlap, not even on a bound)",
            )
    return bands


def _in_given_order(
    labels: Sequence[str], bands: dict[str, tuple[Decimal, Decimal]], code: str
) -> list[str]:
    """The bands of a scheme Recog does not know, as listed (best first): they must run one
    way, all upwards or all downwards, or the order is not to be trusted."""
    lowers = [bands[x][0] for x in labels]
    way = {True: "up", False: "down"}
    for n in range(2, len(labels)):
        if (lowers[n] > lowers[n - 1]) != (lowers[1] > lowers[0]):
            raise GradeProblem(
                labels[n],
                f"Recog does not know the grading scheme {code}, so "
                "it keeps the bands as listed, best first, and they must run "
                f"one way: {labels[0]}, {labels[1]} go "
                f"{way[lowers[1] > lowers[0]]}, but {labels[n]} after "
                f"{labels[n - 1]} goes {way[lowers[n] > lowers[n - 1]]}",
            )
    return list(labels)


def _order_by_scheme(
    labels: Sequence[str],
    code: str,
    bands: dict[str, tuple[Decimal, Decimal]] | None = None,
) -> tuple[list[str], set[str]]:
    """The labels best first, and which of them fail, as the scheme ``code`` says; raises
    ValidationFailed when a label is not a grade of that scheme. With ``bands`` (see
    table_bands) the labels are ranges of the scheme's numbers."""
    scheme = DEFAULT_SCHEMES.get(code)
    if scheme is None:
        raise ValidationFailed(
            f"Recog does not know the grading scheme {code!r}, so it cannot "
            "tell the order of its grades"
        )
    if scheme.kind == "passfail":
        raise ValidationFailed(f"scheme {code} is pass/fail: it has no grades to compare")
    if scheme.kind == "letter":
        if bands:
            raise ValidationFailed(
                f"scheme {code} is a scale of letters "
                f"({', '.join((*scheme.letters, *scheme.failing))}), not "
                f"of numbers: its grades are not ranges such as "
                f"{next(iter(bands))}"
            )
        order = [_key(x) for x in (*scheme.letters, *scheme.failing)]
        failing = {_key(x) for x in scheme.failing}
        unknown = [x for x in labels if _key(x) not in order]
        if unknown:
            raise ValidationFailed(
                f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'}"
                f" not a grade of scheme {code} "
                f"({', '.join((*scheme.letters, *scheme.failing))})"
            )
        ordered = sorted(labels, key=lambda x: order.index(_key(x)))
        return ordered, {x for x in labels if _key(x) in failing}
    best, lowest = Decimal(scheme.best), Decimal(scheme.lowest_pass)
    ascending = best > lowest  # a higher number is a better grade

    def beyond(a: Decimal, b: Decimal) -> bool:  # a is strictly better than b
        return a > b if ascending else a < b

    # A single grade is the band from itself to itself: one rule orders and marks both.
    spans: dict[str, tuple[Decimal, Decimal]] = {}
    fails: set[str] = set()
    for label in labels:
        if bands:
            lower, upper = bands[label]
        else:
            value = _number(label)
            if value is None:
                raise GradeProblem(
                    label, f"{label!r} is not a number, as grades of scheme {code} are"
                )
            lower = upper = value
        top, bottom = (upper, lower) if ascending else (lower, upper)  # its best, its worst
        if beyond(top, best):
            raise GradeProblem(
                label,
                f"{label} is better than the best grade {scheme.best} of scheme {code}"
                if lower == upper
                else f"band {label} reaches beyond the best grade {scheme.best} of scheme {code}",
            )
        if beyond(lowest, top):
            fails.add(label)
        elif beyond(lowest, bottom):
            raise GradeProblem(
                label,
                f"band {label} holds passing and failing grades (the "
                f"lowest pass of scheme {code} is {scheme.lowest_pass}): give "
                "the failing grades a band of their own",
            )
        spans[label] = (lower, upper)
    ordered = sorted(labels, key=lambda x: spans[x], reverse=ascending)
    return ordered, fails


def _ects_letters(labels: Sequence[str]) -> bool:
    known = {_key(x) for x in ECTS_LETTERS}
    return all(_key(x) in known for x in labels)


def order_grades(
    labels: Sequence[str],
    schemes: Sequence[str],
    bands: dict[str, tuple[Decimal, Decimal]] | None = None,
) -> tuple[str, list[str], set[str]]:
    """Find the scheme (of ``schemes``, else the ECTS letters) that orders ``labels`` (ranges
    with their ``bands``): the scheme, the labels best first and the failing ones. Raises
    ValidationFailed saying why none does."""
    problems = []
    for code in schemes:
        try:
            ordered, failing = _order_by_scheme(labels, code, bands)
        except ValidationFailed as exc:
            problems.append(exc.message)
        else:
            return code, ordered, failing
    if _ects_letters(labels) and "ects" not in schemes:
        ordered, failing = _order_by_scheme(labels, "ects")
        return "ects", ordered, failing
    raise ValidationFailed(
        "; ".join(problems) or f"cannot tell the order of the grades {', '.join(labels)}"
    )


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
    return [
        (label, (Decimal(count) * 100 / total).quantize(_HUNDREDTH), count)
        for label, count in counts
    ]


def partner_grades(
    rows: Sequence[tuple[str, Decimal, int | None]],
    schemes: Sequence[str],
    *,
    given_scheme: bool = False,
) -> tuple[str, list[Grade]]:
    """A partner's (label, percentage, count) rows as stored grades, best first, with the
    scheme that orders them (of ``schemes``, else the ECTS letters).

    With ``given_scheme`` (a file names the one scheme of its table) the scheme stays the
    given one: a scheme Recog knows orders the grades and refuses grades not on it; for one it
    does not know, ECTS letters are put in ECTS order and anything else keeps the file's
    order (best first) with no failing grade.

    Grades that are ranges (``90-100``, ``80-89.9``; see table_bands) are checked as bands,
    ordered the same way (the bands of an unknown scheme must be listed in order) and kept with
    their bounds. A problem with one grade raises GradeProblem naming it."""
    labels = [label for label, _, _ in rows]
    by_label = {label: (share, count) for label, share, count in rows}
    bands = table_bands(labels)
    failing: set[str]
    if given_scheme and schemes[0] not in DEFAULT_SCHEMES:
        scheme = schemes[0]
        if bands:
            ordered, failing = _in_given_order(labels, bands, scheme), set()
        elif _ects_letters(labels):
            _, ordered, failing = order_grades(labels, ["ects"])
        else:
            ordered, failing = labels, set()
    elif given_scheme:
        scheme = schemes[0]
        ordered, failing = _order_by_scheme(labels, scheme, bands)
    else:
        scheme, ordered, failing = order_grades(labels, schemes, bands)
    grades = [
        Grade(
            label,
            by_label[label][0],
            label in failing,
            by_label[label][1],
            *bands.get(label, (None, None)),
        )
        for label in ordered
    ]
    _check_shares(grades, counted=all(count is not None for _, _, count in rows))
    return scheme, grades


def home_grades(rows: Sequence[tuple[str, Decimal, int | None]]) -> list[Grade]:
    """The office's own distribution: German steps 1.0 to 4.0 only, best first."""
    grades = []
    for label, share, count in rows:
        value = _number(label)
        if value is None or value not in GERMAN_STEPS:
            raise ValidationFailed(
                f"{label!r} is not a German grade step "
                f"({' '.join(map(str, GERMAN_STEPS))}); a home "
                "distribution lists passing grades only"
            )
        grades.append(Grade(str(GERMAN_STEPS[GERMAN_STEPS.index(value)]), share, False, count))
    grades.sort(key=lambda g: Decimal(g.label))
    _check_shares(grades, counted=all(count is not None for _, _, count in rows))
    return grades


# --- writing ---------------------------------------------------------------------------------


def store_table(
    session: Session,
    *,
    kind: str,
    institution_id: int,
    scheme: str,
    reference_year: int,
    source: str,
    grades: Sequence[Grade],
    now: dt.datetime,
    isced_code: str | None = None,
    offering_id: int | None = None,
    programme_id: int | None = None,
    module_id: int | None = None,
    filename: str | None = None,
) -> tuple[int, str]:
    """Create or replace the table of this key; returns its id and ``created``, ``updated``
    or ``unchanged``. Never commits."""
    if kind not in KINDS or source not in SOURCES:
        raise ValidationFailed(f"unknown table kind {kind!r} or source {source!r}")
    scope = scope_of(
        isced_code=isced_code,
        offering_id=offering_id,
        programme_id=programme_id,
        module_id=module_id,
    )
    stored = [g.to_json() for g in grades]
    row = session.execute(
        select(GradingTable).where(
            GradingTable.institution_id == institution_id,
            GradingTable.kind == kind,
            GradingTable.scheme == scheme,
            GradingTable.scope == scope,
            GradingTable.reference_year == reference_year,
            GradingTable.source == source,
        )
    ).scalar()
    if row is None:
        row = GradingTable(
            kind=kind,
            institution_id=institution_id,
            scheme=scheme,
            scope=scope,
            isced_code=isced_code,
            offering_id=offering_id,
            programme_id=programme_id,
            module_id=module_id,
            reference_year=reference_year,
            source=source,
            grades=stored,
            filename=filename,
            created_at=now,
            updated_at=now,
        )
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
    # The same, as values a page puts into its own language's words: partner, scheme, course,
    # isced (partner); modules, isced (home).
    wanted: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def known(self) -> bool:
        return self.partner is not None and self.home is not None

    def missing(self) -> str:
        parts = []
        if self.partner is None:
            parts.append(f"no partner grading table for {self.partner_wanted}")
        if self.home is None:
            parts.append(f"no home grade distribution for {self.home_wanted}")
        if not parts:
            return ""
        return "; ".join(parts) + (
            " (a clerk must import the missing table first: recog grade table import FILE.csv)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "partner": self.partner.to_dict() if self.partner else None,
            "home": self.home.to_dict() if self.home else None,
            "missing": self.missing() or None,
        }


def _labels(session: Session, rows: Iterable[GradingTable]) -> dict[str, str]:
    """Readable names of the reference groups of ``rows``."""
    rows = list(rows)
    offering_ids = {r.offering_id for r in rows if r.offering_id}
    module_ids = {r.module_id for r in rows if r.module_id}
    programme_ids = {r.programme_id for r in rows if r.programme_id}
    names: dict[str, str] = {"all": "whole institution"}
    if offering_ids:
        for oid, code, term in session.execute(
            select(Offering.id, Offering.code, Offering.term).where(Offering.id.in_(offering_ids))
        ):
            names[f"offering:{oid}"] = f"course {code} ({term})"
    if module_ids:
        for mid, code in session.execute(
            select(Module.id, Module.code).where(Module.id.in_(module_ids))
        ):
            names[f"module:{mid}"] = f"module {code}"
    if programme_ids:
        for pid, code in session.execute(
            select(Programme.id, Programme.code).where(Programme.id.in_(programme_ids))
        ):
            names[f"programme:{pid}"] = f"programme {code}"
    for r in rows:
        if r.isced_code:
            names[r.scope] = f"ISCED-F {r.isced_code}"
    return names


def _stored(row: GradingTable, institution: str, names: dict[str, str]) -> StoredTable:
    return StoredTable(
        id=row.id,
        kind=row.kind,
        institution=institution,
        scheme=row.scheme,
        scope=row.scope,
        scope_label=names.get(row.scope, row.scope),
        reference_year=row.reference_year,
        source=row.source,
        grades=tuple(Grade.from_json(g) for g in row.grades),
    )


def _best(
    session: Session, *, kind: str, institution_id: int, scheme: str, scopes: list[str]
) -> StoredTable | None:
    rows = list(
        session.execute(
            select(GradingTable, Institution.code)
            .join(Institution, Institution.id == GradingTable.institution_id)
            .where(
                GradingTable.kind == kind,
                GradingTable.institution_id == institution_id,
                GradingTable.scheme == scheme,
                GradingTable.scope.in_(scopes),
            )
        )
    )
    if not rows:
        return None
    row, code = min(
        rows,
        key=lambda r: (
            scopes.index(r[0].scope),
            -r[0].reference_year,
            _SOURCE_RANK.get(r[0].source, 9),
            -r[0].id,
        ),
    )
    return _stored(row, code, _labels(session, [row]))


def tables_for_case(
    session: Session, case_id: int, memo: dict[Any, StoredTable | None] | None = None
) -> CaseTables:
    """The most specific partner table (course offering, then its ISCED-F field from detailed
    to broad, then the whole partner institution, on the case's grading scheme) and home
    distribution (target module, programme, ISCED-F field, whole institution) for a case.

    ``memo`` keeps the tables found for a lookup (kind, institution, scheme, groups) across
    the cases of one batch: the cases of a cohort share them (stored tables are immutable)."""

    def best(
        kind: str,
        institution_id: int,
        scheme: str,
        scopes: list[str],
    ) -> StoredTable | None:
        key = (kind, institution_id, scheme, tuple(scopes))
        if memo is not None and key in memo:
            return memo[key]
        found = _best(
            session, kind=kind, institution_id=institution_id, scheme=scheme, scopes=scopes
        )
        if memo is not None:
            memo[key] = found
        return found

    row = session.execute(
        select(
            Case.institution_id,
            Case.programme_id,
            Case.offering_id,
            Case.result,
            Offering.institution_id.label("partner_id"),
            Offering.grading_scheme,
            Offering.isced_code,
            Offering.code,
            Institution.code.label("partner"),
        )
        .join(Offering, Offering.id == Case.offering_id)
        .join(Institution, Institution.id == Offering.institution_id)
        .where(Case.id == case_id)
    ).first()
    if row is None:
        raise NotFound(f"case {case_id} not found")
    result = row.result or {}
    scheme = str(result.get("scheme") or row.grading_scheme).strip().lower()
    fields = broader_isced(row.isced_code)
    isced = [f"isced:{code}" for code in fields]
    partner = best(
        "partner", row.partner_id, scheme, [f"offering:{row.offering_id}", *isced, "all"]
    )
    targets = list(
        session.execute(
            select(Module.id, Module.code, Module.programme_id)
            .join(case_targets, case_targets.c.module_id == Module.id)
            .where(case_targets.c.case_id == case_id)
            .order_by(Module.code)
        )
    )
    programmes = [
        p for p in dict.fromkeys([row.programme_id, *(t.programme_id for t in targets)]) if p
    ]
    home = best(
        "home",
        row.institution_id,
        HOME_SCHEME,
        [
            *(f"module:{t.id}" for t in targets),
            *(f"programme:{p}" for p in programmes),
            *isced,
            "all",
        ],
    )
    field_text = f", ISCED-F {row.isced_code}" if row.isced_code else ""
    modules = ", ".join(t.code for t in targets)
    return CaseTables(
        partner=partner,
        home=home,
        partner_wanted=f"{row.partner} on scheme {scheme} (course {row.code}{field_text})",
        home_wanted=(
            f"{'module ' + modules if modules else 'the case'}{field_text} or the institution"
        ),
        wanted={
            "partner": {
                "partner": row.partner,
                "scheme": scheme,
                "course": row.code,
                "isced": field_text,
            },
            "home": {"modules": modules, "isced": field_text},
        },
    )


def _group(table: StoredTable) -> str:
    """The reference group's own code (``0612``, ``INF-ML``, ``IT-01 (2026-03)``; empty for
    the whole institution), for texts that name the kind of group in their own language."""
    return "" if table.scope == "all" else table.scope_label.split(" ", 1)[-1]


def convert_by_tables(grade: str, scheme: str | None, tables: CaseTables) -> Conversion:
    """The percentile conversion of ``grade`` with the case's tables; its parameters name the
    tables (ids, reference groups, years, sources) besides their percentages.

    When the partner's grades are ranges, the grade is converted as the band that holds it
    (bounds included; ``partner_band`` among the parameters); a grade in no band is refused
    with the bands there are."""
    if tables.partner is None or tables.home is None:
        raise ValidationFailed(tables.missing())
    partner, home = tables.partner, tables.home
    band = partner.band_for(grade) if partner.banded else None
    if band is not None and band.failing:
        raise ValidationFailed(
            f"grade {grade.strip()} lies in the band {band.label}, a fail: "
            "it is not converted (failing grades are left out of the "
            "percentile table)"
        )
    conversion = percentile(
        band.label if band else grade,
        partner.rows,
        home.rows,
        failing=partner.failing,
        scheme=scheme,
    )
    found: tuple[str, ...] = ()
    extra: dict[str, Any] = {}
    if band is not None:
        conversion = replace(conversion, original=grade.strip())
        found = (
            f"{grade.strip()} lies in the partner's band {band.label} ({band.lower} to "
            f"{band.upper}, bounds included)",
        )
        extra["partner_band"] = {
            "label": band.label,
            "lower": str(band.lower),
            "upper": str(band.upper),
        }
    parameters = {
        **conversion.parameters,
        **extra,
        "partner_table_id": partner.id,
        "home_table_id": home.id,
        "tables": {
            "partner": {
                "id": partner.id,
                "institution": partner.institution,
                "scheme": partner.scheme,
                "scope": partner.scope,
                "group": _group(partner),
                "reference_year": partner.reference_year,
                "source": partner.source,
            },
            "home": {
                "id": home.id,
                "institution": home.institution,
                "scope": home.scope,
                "group": _group(home),
                "reference_year": home.reference_year,
                "source": home.source,
            },
        },
    }
    return replace(
        conversion,
        parameters=MappingProxyType(parameters),
        explanation=(
            f"{partner.reference()}",
            f"{home.reference()}",
            *found,
            *conversion.explanation,
        ),
    )


def side_by_side(
    grade: str,
    scheme: str,
    rounding: Rounding,
    tables: CaseTables,
) -> tuple[Conversion | None, Conversion | None, Comparison | None, dict[str, str]]:
    """Both conversions of a grade (each None with its error when it fails) and, when both
    exist, their comparison (``differs``: 0.3 or more apart)."""
    errors: dict[str, str] = {}
    by_formula = by_table = None
    try:
        by_formula = convert(grade, scheme, rounding)
    except DomainError as exc:
        errors["bavarian"] = exc.message
    if tables.known:
        try:
            by_table = convert_by_tables(grade, scheme, tables)
        except DomainError as exc:
            errors["percentile"] = exc.message
    else:
        errors["percentile"] = tables.missing()
    both = compare(by_formula, by_table) if by_formula and by_table else None
    return by_formula, by_table, both, errors


def side_by_side_view(
    grade: str, scheme: str, rounding: Rounding, tables: CaseTables
) -> dict[str, Any]:
    """``side_by_side`` in the one shape every interface shows (the API's ``ConversionsOut``,
    the case page, ``recog case show``): each conversion or why it failed, the tables used or
    which is missing, the difference and its flag, the grade to suggest and the methods the
    examiner may choose (``conversion=``)."""
    by_formula, by_table, both, errors = side_by_side(grade, scheme, rounding, tables)
    methods = [
        method
        for method, conversion in (("bavarian", by_formula), ("percentile", by_table))
        if conversion is not None
    ]
    return {
        "original": grade,
        "scheme": scheme,
        "bavarian": by_formula.to_dict() if by_formula else None,
        "bavarian_error": errors.get("bavarian"),
        "formula": next((s for s in by_formula.explanation if s.startswith("x = ")), None)
        if by_formula
        else None,
        "percentile": by_table.to_dict() if by_table else None,
        # Missing tables are said by tables_missing; this is a conversion that failed.
        "percentile_error": errors.get("percentile") if tables.known else None,
        "tables_known": tables.known,
        "tables": tables.to_dict(),
        "tables_missing": None if tables.known else tables.missing(),
        # What is missing, for a page to say in its language: the side and what was looked for.
        "tables_wanted": {
            side: dict(tables.wanted.get(side, {}))
            for side, found in (("partner", tables.partner), ("home", tables.home))
            if found is None
        },
        "difference": None if both is None or both.difference is None else str(both.difference),
        "differs": bool(both and both.differs),
        "threshold": str(DIFFERENCE_THRESHOLD),
        "suggested": by_formula.grade if by_formula else None,
        "methods": methods,
    }


def case_side_by_side(
    session: Session, case_id: int, *, actor: Actor | None, rounding: Rounding
) -> dict[str, Any] | None:
    """``side_by_side_view`` of a case's partner grade with the case's own tables, for an
    actor the permission table lets see the office's conversions (not found for a case they
    may not see); None while the case has no partner grade."""
    row = session.execute(
        select(
            Case.id,
            Case.institution_id,
            Case.student_id,
            Case.programme_id,
            Case.examiner_id,
            Case.result,
            Offering.grading_scheme,
        )
        .join(Offering, Offering.id == Case.offering_id)
        .where(Case.id == case_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"case {case_id} not found")
    require(actor, Action.SEE_INTERNALS, row)
    result = row.result or {}
    grade = result.get("grade")
    scheme = result.get("scheme") or row.grading_scheme
    if not grade or not scheme:
        return None
    return side_by_side_view(str(grade), str(scheme), rounding, tables_for_case(session, case_id))


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


# Why an office's transcript upload keeps no table (or ISCED-F code) that others use.
SHARED_NOTE = (
    "used by cases of another home institution; shared partner data are changed by the "
    "operator only"
)


def from_transcript(
    session: Session,
    transcript: Transcript,
    partner: Institution | None,
    *,
    now: dt.datetime,
    filename: str,
    home_institution_id: int | None = None,
) -> list[dict[str, Any]]:
    """Keep what a transcript says about grade distributions: each EWP
    ``gradeConversionTable/iscedTable`` as the partner's table for that ISCED-F field, each
    ELMO ``resultDistribution`` as the table of its course offering, and each course's ISCED-F
    code on an offering that has none yet. Returns one report line per table (stored,
    updated, unchanged or skipped with the reason); never refuses the transcript.

    With ``home_institution_id`` (an office uploads it) nothing is kept that another home
    institution's cases use: such a table or ISCED-F code is skipped, the report says why
    (docs/adr/0014-shared-partner-data.md)."""
    courses = [c for c in transcript.courses if c.result_distribution or c.isced_code]
    if not courses and not transcript.grade_conversion_tables:
        return []
    if partner is None:
        return [
            {
                "table": None,
                "status": "skipped",
                "what": "grading tables",
                "note": f"unknown partner institution {transcript.issuer.schac or '?'}",
            }
        ]
    report: list[dict[str, Any]] = []
    by_code: dict[str, list[_Offering]] = defaultdict(list)
    for found in session.execute(
        select(
            Offering.id,
            Offering.code,
            Offering.term,
            Offering.start_date,
            Offering.grading_scheme,
            Offering.isced_code,
        ).where(Offering.institution_id == partner.id)
    ):
        by_code[found.code].append(_Offering(*found))
    matched: list[tuple[CourseResult, _Offering | None]] = []
    given_field: set[int] = set()
    for course in courses:
        offering = _offering_for(by_code.get(_course_code(course) or "", []), course.result_date)
        matched.append((course, offering))
        if (
            offering is not None
            and course.isced_code
            and offering.isced_code is None
            and offering.id not in given_field
            and ISCED_PATTERN.fullmatch(course.isced_code)
        ):
            given_field.add(offering.id)
            if home_institution_id is not None and offerings_used_by_others(
                session, [offering.id], home_institution_id
            ):
                report.append(
                    {
                        "table": None,
                        "status": "skipped",
                        "what": f"course {offering.code} ({offering.term})",
                        "note": SHARED_NOTE,
                    }
                )
                continue
            session.execute(
                update(Offering)
                .where(Offering.id == offering.id)
                .values(isced_code=course.isced_code)
            )
            report.append(
                {
                    "table": None,
                    "status": "updated",
                    "what": f"course {offering.code} ({offering.term})",
                    "note": f"ISCED-F code {course.isced_code} from the transcript",
                }
            )
    year = transcript.issued_at.year
    all_schemes = sorted({o.grading_scheme for group in by_code.values() for o in group})
    for table in transcript.grade_conversion_tables:
        what = f"EWP table for ISCED-F {table.isced_code}"
        if not ISCED_PATTERN.fullmatch(table.isced_code):
            report.append(
                {
                    "table": None,
                    "status": "skipped",
                    "what": what,
                    "note": f"{table.isced_code!r} is not an ISCED-F code",
                }
            )
            continue
        schemes = (
            sorted(
                {
                    o.grading_scheme
                    for c, o in matched
                    if o is not None and c.isced_code == table.isced_code
                }
            )
            or all_schemes
        )
        rows = [(f.label, f.percentage, None) for f in table.frequencies]
        try:
            scheme, grades = partner_grades(rows, schemes)
        except ValidationFailed as exc:
            report.append({"table": None, "status": "skipped", "what": what, "note": exc.message})
            continue
        if home_institution_id is not None and partner_used_by_others(
            session, partner.id, scheme, home_institution_id
        ):
            report.append({"table": None, "status": "skipped", "what": what, "note": SHARED_NOTE})
            continue
        table_id, status = store_table(
            session,
            kind="partner",
            institution_id=partner.id,
            scheme=scheme,
            reference_year=year,
            source="ewp",
            grades=grades,
            now=now,
            isced_code=table.isced_code,
            filename=filename,
        )
        report.append(
            {"table": table_id, "status": status, "what": f"{what}, scheme {scheme}", "note": None}
        )
    for course, offering in matched:
        distribution = course.result_distribution
        if distribution is None:
            continue
        what = f"result distribution of {_course_code(course) or course.title or '?'}"
        if offering is None:
            report.append(
                {
                    "table": None,
                    "status": "skipped",
                    "what": what,
                    "note": "no course offering of the partner has this code",
                }
            )
            continue
        try:
            counted = from_counts([(c.label, c.count) for c in distribution.categories])
            scheme, grades = partner_grades(counted, [offering.grading_scheme])
        except ValidationFailed as exc:
            report.append({"table": None, "status": "skipped", "what": what, "note": exc.message})
            continue
        if home_institution_id is not None and partner_used_by_others(
            session, partner.id, scheme, home_institution_id, offering.id
        ):
            report.append({"table": None, "status": "skipped", "what": what, "note": SHARED_NOTE})
            continue
        day = course.result_date or transcript.issued_at.date()
        table_id, status = store_table(
            session,
            kind="partner",
            institution_id=partner.id,
            scheme=scheme,
            reference_year=day.year,
            source="result_distribution",
            grades=grades,
            now=now,
            offering_id=offering.id,
            filename=filename,
        )
        report.append(
            {
                "table": table_id,
                "status": status,
                "what": f"{what} ({offering.term}), scheme {scheme}",
                "note": None,
            }
        )
    return report


# --- files entered by the office -------------------------------------------------------------

Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]


class TableRow(BaseModel):
    """One grade of one table in a CSV/JSON file; rows with the same key form a table."""

    model_config = ConfigDict(extra="forbid")

    kind: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^(partner|home)$")]
    institution: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)
    ]
    scheme: Code | None = None
    isced: (
        Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{2,4}$")] | None
    ) = None
    course: Code | None = None
    term: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)] | None
    ) = None
    programme: Code | None = None
    module: Code | None = None
    reference_year: int = Field(ge=1900, le=2999)
    grade: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
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
                raise ValueError(
                    f"a home table is on the German scale: scheme {HOME_SCHEME} (or empty)"
                )
            if self.course or self.term:
                raise ValueError("course and term belong to partner tables")
        if bool(self.course) != bool(self.term):
            raise ValueError("a course offering is named by course and term together")
        groups = [
            g
            for g in (self.isced, self.course, self.programme and not self.module, self.module)
            if g
        ]
        if len(groups) > 1:
            raise ValueError(
                "one reference group per table: isced, course+term, programme "
                "or module (a module may name its programme)"
            )
        return self

    def key(self) -> tuple[Any, ...]:
        return (
            self.kind,
            self.institution,
            (self.scheme or HOME_SCHEME).lower(),
            self.isced,
            self.course,
            self.term,
            self.programme,
            self.module,
            self.reference_year,
        )


@dataclass(frozen=True, slots=True)
class TableImport:
    created: int
    updated: int
    unchanged: int
    tables: list[dict[str, Any]]


def import_file(
    session: Session,
    path: Path,
    *,
    now: dt.datetime,
    home_institution_id: int | None = None,
    filename: str | None = None,
    actor: Actor | None = None,
) -> TableImport:
    """Import partner tables and home distributions from CSV/JSON, one row per grade.

    Every row and every table is checked first; any problem and nothing is imported (the
    errors name file, line and field). A table replaces the one entered by hand before for the
    same institution, scheme, reference group and year. With ``home_institution_id`` (an
    office acting through the web) home distributions of other institutions are refused.
    An office's ``actor`` (it gives the home institution too) may not enter a partner table
    that another home institution's cases would be converted by: partner tables are shared
    by the network, changed by the operator only (docs/adr/0014-shared-partner-data.md)."""
    require(actor, Action.IMPORT_GRADING_TABLES)
    if acting_home(actor) is not None:
        home_institution_id = acting_home(actor)
    name = filename or path.name  # an upload is read from a temporary file
    rows, errors = validate_rows(path, TableRow, name)
    groups: dict[tuple[Any, ...], list[tuple[str, TableRow]]] = defaultdict(list)
    for where, row in rows:
        groups[row.key()].append((where, row))
    institutions = {i.code: i for i in session.scalars(select(Institution))}
    planned: list[dict[str, Any]] = []
    for group in groups.values():
        where, first = group[0]
        inst = institutions.get(first.institution)
        wanted = (
            InstitutionKind.PARTNER.value if first.kind == "partner" else InstitutionKind.HOME.value
        )
        if inst is None:
            errors.append(
                RowError(
                    where,
                    "institution",
                    f"unknown institution "
                    f"{first.institution!r} (add it first: recog institution "
                    "add)",
                )
            )
            continue
        if inst.kind != wanted:
            errors.append(
                RowError(
                    where,
                    "institution",
                    f"{inst.code} is a {inst.kind} "
                    f"institution; a {first.kind} table needs a {wanted} one",
                )
            )
            continue
        if first.kind == "home" and home_institution_id not in (None, inst.id):
            errors.append(
                RowError(
                    where,
                    "institution",
                    f"{inst.code} is not your institution; import only your own grade distribution",
                )
            )
            continue
        target: dict[str, Any] = {"isced_code": first.isced}
        problem = _resolve_group(session, first, inst.id, target)
        if problem is not None:
            errors.append(RowError(where, problem[0], problem[1]))
            continue
        if (
            first.kind == "partner"
            and home_institution_id is not None
            and partner_used_by_others(
                session,
                inst.id,
                first.scheme or "",
                home_institution_id,
                target.get("offering_id"),
            )
        ):
            errors.append(
                RowError(
                    where,
                    "institution",
                    f"cases of another home institution are converted by {inst.code}'s "
                    f"tables on {first.scheme}; a shared partner table is changed by the "
                    "operator only",
                )
            )
            continue
        seen: dict[str, str] = {}
        for row_where, row in group:
            if _key(row.grade) in seen:
                errors.append(
                    RowError(
                        row_where,
                        "grade",
                        f"grade {row.grade} is listed twice "
                        f"in this table (also at {seen[_key(row.grade)]})",
                    )
                )
            seen.setdefault(_key(row.grade), row_where)
        given = [r.count for _, r in group]
        if any(c is None for c in given) and any(c is not None for c in given):
            errors.append(
                RowError(
                    where,
                    "count",
                    "a table gives either percentages or counts in every row, not both",
                )
            )
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
                scheme, grades = partner_grades(
                    share_rows, [(first.scheme or "").lower()], given_scheme=True
                )
            else:
                scheme, grades = HOME_SCHEME, home_grades(share_rows)
        except GradeProblem as exc:  # one grade at fault: name its line
            at = next((w for w, r in group if r.grade == exc.label), where)
            errors.append(RowError(at, "grade", exc.message))
            continue
        except ValidationFailed as exc:
            errors.append(
                RowError(
                    where,
                    "grade" if "grade" in exc.message or "scheme" in exc.message else "percentage",
                    exc.message,
                )
            )
            continue
        planned.append(
            {
                "kind": first.kind,
                "institution_id": inst.id,
                "scheme": scheme,
                "reference_year": first.reference_year,
                "grades": grades,
                "institution": inst.code,
                "where": where,
                **target,
            }
        )
    if errors:
        errors.sort(key=_position)
        raise ImportRejected(name, errors)
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    tables = []
    for plan in planned:
        table_id, status = store_table(
            session,
            kind=plan["kind"],
            institution_id=plan["institution_id"],
            scheme=plan["scheme"],
            reference_year=plan["reference_year"],
            source="manual",
            grades=plan["grades"],
            now=now,
            isced_code=plan.get("isced_code"),
            offering_id=plan.get("offering_id"),
            programme_id=plan.get("programme_id"),
            module_id=plan.get("module_id"),
            filename=name,
        )
        counts[status] += 1
        tables.append(
            {
                "id": table_id,
                "status": status,
                "kind": plan["kind"],
                "institution": plan["institution"],
                "from": plan["where"],
            }
        )
    return TableImport(counts["created"], counts["updated"], counts["unchanged"], tables)


def _position(error: RowError) -> tuple[int, str]:
    number = error.where.rsplit(" ", 1)[-1]
    return (int(number) if number.isdigit() else 0, error.field or "")


def _resolve_group(
    session: Session, row: TableRow, institution_id: int, target: dict[str, Any]
) -> tuple[str, str] | None:
    """Fill ``target`` with the ids of the row's reference group; (field, problem) if it
    names something that does not exist."""
    if row.course and row.term:
        offering_id = session.execute(
            select(Offering.id).where(
                Offering.institution_id == institution_id,
                Offering.code == row.course,
                Offering.term == row.term,
            )
        ).scalar()
        if offering_id is None:
            return "course", (
                f"{row.institution} offers no course {row.course} in term "
                f"{row.term} (import the catalogue first)"
            )
        target["offering_id"] = offering_id
        return None
    programme_id = None
    if row.programme:
        programme_id = session.execute(
            select(Programme.id).where(
                Programme.institution_id == institution_id,
                Programme.code == row.programme,
            )
        ).scalar()
        if programme_id is None:
            return "programme", f"{row.institution} has no programme {row.programme}"
    if row.module:
        query = (
            select(Module.id)
            .join(Programme, Programme.id == Module.programme_id)
            .where(Programme.institution_id == institution_id, Module.code == row.module)
        )
        if programme_id is not None:
            query = query.where(Module.programme_id == programme_id)
        found = list(session.scalars(query))
        if not found:
            return "module", f"{row.institution} has no module {row.module}" + (
                f" in programme {row.programme}" if row.programme else ""
            )
        if len(found) > 1:
            return "programme", (
                f"module {row.module} exists in several programmes; name its programme"
            )
        target["module_id"] = found[0]
        return None
    if programme_id is not None:
        target["programme_id"] = programme_id
    return None


def list_tables(
    session: Session,
    *,
    kind: str | None = None,
    institution: str | None = None,
    actor: Actor | None = None,
) -> list[dict[str, Any]]:
    """Every stored table, newest first within its institution and kind; for an ``actor``,
    the partners' tables (shared by the network) and their own institution's distributions,
    which are the office's own data."""
    require(actor, Action.SEE_GRADING_TABLES)
    query = (
        select(GradingTable, Institution.code)
        .join(Institution, Institution.id == GradingTable.institution_id)
        .order_by(
            GradingTable.kind.desc(),
            Institution.code,
            GradingTable.scheme,
            GradingTable.scope,
            GradingTable.reference_year.desc(),
            GradingTable.id,
        )
    )
    if kind:
        if kind not in KINDS:
            raise ValidationFailed(f"unknown kind {kind!r}; use partner or home")
        query = query.where(GradingTable.kind == kind)
    if institution:
        query = query.where(Institution.code == institution)
    if actor is not None:
        query = query.where(
            (GradingTable.kind == "partner") | (GradingTable.institution_id == actor.institution_id)
        )
    rows = list(session.execute(query))
    names = _labels(session, (r[0] for r in rows))
    found = []
    for row, code in rows:
        table = _stored(row, code, names)
        found.append(
            {
                **table.to_dict(),
                "shares": " · ".join(
                    f"{g.label}: {g.percentage}" + (" (fail)" if g.failing else "")
                    for g in table.grades
                ),
                "filename": row.filename,
                "updated_at": row.updated_at,
            }
        )
    return found


def get_table(session: Session, table_id: int, *, kind: str | None = None) -> StoredTable:
    """One stored table by id (of ``kind``, if given)."""
    row = session.execute(
        select(GradingTable, Institution.code)
        .join(Institution, Institution.id == GradingTable.institution_id)
        .where(GradingTable.id == table_id)
    ).first()
    if row is None or (kind is not None and row[0].kind != kind):
        raise NotFound(f"there is no {kind or 'grading'} table {table_id} (recog grade table list)")
    return _stored(row[0], row[1], _labels(session, [row[0]]))


def delete_table(session: Session, table_id: int) -> None:
    row = session.get(GradingTable, table_id)
    if row is None:
        raise NotFound(f"no grading table {table_id}")
    session.delete(row)
    session.flush()
