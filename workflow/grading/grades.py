"""Grade conversion: turn a foreign grade into a German grade (1.0 to 4.0) and record how.

Three methods, each returning a :class:`Conversion` that keeps the original grade, the scheme,
the method, its parameters, the exact value and the steps that led to the result, so it can be
stored with a recognition decision and shown to the examiner and the student:

- the modified Bavarian formula ``x = 1 + 3 (Nmax - Nd) / (Nmax - Nmin)`` (:func:`bavarian`, or
  :func:`convert` with a :class:`GradingScheme`), rounded by a local policy;
- percentile conversion with ECTS grading tables, EGRACONS style (:func:`percentile`);
- pass/fail results, which stay "passed" and get no numeric grade.

Rounding policies (local policy, stored with every decision):

- ``"nearest"``: the nearest German step; a tie goes to the better (lower) grade:
  2.5 -> 2.3, 1.15 -> 1.0, 3.85 -> 3.7.
- ``"truncate"``: the exact value cut to one decimal, and that value is the result even when it is
  not a German step: 1.75 -> 1.7, but 2.80 -> 2.8 (as the reference table does for France).

All arithmetic is :mod:`decimal`; every decision (which step, which band) is taken on exact
products, never on a rounded quotient, so a tie such as 2.5 is recognised as a tie.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import (
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)
from types import MappingProxyType
from typing import Final, Literal, get_args

from workflow.errors import ValidationFailed

Rounding = Literal["nearest", "truncate"]
SchemeKind = Literal["numeric", "letter", "passfail"]
Method = Literal["bavarian", "percentile", "passfail"]
GradeValue = Decimal | int | str
PercentTable = Mapping[str, GradeValue] | Sequence[tuple[str, GradeValue]]

ROUNDINGS: Final[tuple[Rounding, ...]] = get_args(Rounding)
SCHEME_KINDS: Final[tuple[SchemeKind, ...]] = get_args(SchemeKind)

GERMAN_STEPS: Final[tuple[Decimal, ...]] = tuple(
    Decimal(step) for step in ("1.0", "1.3", "1.7", "2.0", "2.3", "2.7", "3.0", "3.3", "3.7", "4.0")
)
PASSED: Final = "passed"
DIFFERENCE_THRESHOLD: Final = Decimal("0.3")

PASS_WORDS: Final[tuple[str, ...]] = (
    "passed",
    "pass",
    "p",
    "bestanden",
    "successful",
    "satisfactory",
)
FAIL_WORDS: Final[tuple[str, ...]] = (
    "failed",
    "fail",
    "f",
    "nicht bestanden",
    "not passed",
    "unsatisfactory",
)
ECTS_FAILING: Final[tuple[str, ...]] = ("FX", "F")

# Decisions are taken on exact products; trapping Inexact turns a silent rounding into a loud
# failure, and the input limits in _number() keep every product far inside 100 digits.
_EXACT: Final = Context(prec=100, traps=[Inexact, InvalidOperation, DivisionByZero, Overflow])
# Quotients that are only displayed or stored (x itself, percentages) may not terminate.
_QUOTIENT: Final = Context(
    prec=28, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
)
_MAX_DIGITS: Final = 20
_MAX_MAGNITUDE: Final = 15
_CODE_PATTERN: Final = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_TENTH: Final = Decimal("0.1")


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    """A cumulative percentile band, best grades first: ``lower`` to ``upper`` percent."""

    label: str
    lower: Decimal
    upper: Decimal

    def to_dict(self) -> dict[str, object]:
        return {"label": self.label, "lower": str(self.lower), "upper": str(self.upper)}


@dataclass(frozen=True)
class PercentileDetails:
    """What the examiner needs to judge a percentile conversion: every band and both choices."""

    band: Band
    midpoint: Decimal
    overlaps: tuple[tuple[str, Decimal], ...]
    by_midpoint: str
    by_largest_overlap: str
    partner_bands: tuple[Band, ...]
    home_bands: tuple[Band, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "band": self.band.to_dict(),
            "midpoint": str(self.midpoint),
            "overlaps": {label: str(points) for label, points in self.overlaps},
            "by_midpoint": self.by_midpoint,
            "by_largest_overlap": self.by_largest_overlap,
            "partner_bands": [band.to_dict() for band in self.partner_bands],
            "home_bands": [band.to_dict() for band in self.home_bands],
        }


@dataclass(frozen=True)
class Conversion:
    """One converted grade and everything needed to justify it later.

    ``grade`` is a German grade such as ``"1.7"`` (or ``"2.8"`` under truncation) or
    ``"passed"``; ``exact`` is the unrounded value (x for the Bavarian formula, the band's
    midpoint for percentiles, ``None`` for pass/fail).
    """

    original: str
    scheme: str | None
    method: Method
    parameters: Mapping[str, object] = field(hash=False)
    exact: Decimal | None
    grade: str
    explanation: tuple[str, ...]
    percentile: PercentileDetails | None = None

    @property
    def numeric_grade(self) -> Decimal | None:
        return None if self.grade == PASSED else Decimal(self.grade)

    def to_dict(self) -> dict[str, object]:
        """A JSON-serialisable copy (Decimals as strings), to be stored with the decision."""
        return {
            "original": self.original,
            "scheme": self.scheme,
            "method": self.method,
            "parameters": _jsonable(self.parameters),
            "exact": None if self.exact is None else str(self.exact),
            "grade": self.grade,
            "explanation": list(self.explanation),
            "percentile": None if self.percentile is None else self.percentile.to_dict(),
        }


@dataclass(frozen=True)
class Comparison:
    """Two conversions of one grade, side by side, and whether the examiner should look twice."""

    first: Conversion
    second: Conversion
    difference: Decimal | None
    differs: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "first": self.first.to_dict(),
            "second": self.second.to_dict(),
            "difference": None if self.difference is None else str(self.difference),
            "differs": self.differs,
        }


def _jsonable(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


# --- numbers -------------------------------------------------------------------------------


def _number(value: object, what: str) -> Decimal:
    """Parse a grade or parameter; a decimal comma is accepted, floats go through their repr."""
    if isinstance(value, bool):
        raise ValidationFailed(f"{what} must be a number, not {value!r}")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip()
        if "," in text and "." not in text:
            text = text.replace(",", ".")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValidationFailed(f"{what} {value!r} is not a number") from None
    else:
        raise ValidationFailed(f"{what} must be a number, not {value!r}")
    if not number.is_finite():
        raise ValidationFailed(f"{what} {value!r} is not a finite number")
    digits = number.as_tuple()
    if (
        len(digits.digits) > _MAX_DIGITS
        or not isinstance(digits.exponent, int)
        or digits.exponent < -_MAX_MAGNITUDE
        or (number and number.adjusted() > _MAX_MAGNITUDE)
    ):
        raise ValidationFailed(f"{what} {value!r} has too many digits to be a grade")
    return number


def _printed(value: object) -> str:
    return value.strip() if isinstance(value, str) else str(value)


def _key(label: str) -> str:
    return " ".join(label.split()).casefold()


def _ordinals(letters: Sequence[str]) -> dict[str, int]:
    return {_key(letter): ordinal for ordinal, letter in enumerate(letters, start=1)}


def _within(value: Decimal, best: Decimal, lowest: Decimal) -> bool:
    return min(best, lowest) <= value <= max(best, lowest)


def _better(a: Decimal, b: Decimal, best: Decimal, lowest: Decimal) -> bool:
    """Whether grade ``a`` is strictly better than ``b`` on a scale running best -> lowest."""
    return a > b if best > lowest else a < b


def _show_exact(value: Decimal) -> str:
    hundredths = value.quantize(Decimal("0.01"))
    if hundredths == value:
        return str(hundredths)
    return f"{value.quantize(Decimal('0.0001'))}…"


def _show_pct(value: Decimal) -> str:
    return str(value.quantize(_TENTH, rounding=ROUND_HALF_UP))


def _show_bands(bands: Sequence[Band]) -> str:
    return ", ".join(f"{b.label}: {_show_pct(b.lower)}–{_show_pct(b.upper)}" for b in bands)


def rounding_policy(value: str) -> Rounding:
    """Check a rounding policy name (from configuration or a command line)."""
    for policy in ROUNDINGS:
        if value == policy:
            return policy
    raise ValidationFailed(f"unknown rounding {value!r}; choose one of: {', '.join(ROUNDINGS)}")


# --- grading schemes -----------------------------------------------------------------------


@dataclass(frozen=True)
class GradingScheme:
    """A foreign grading scale and how its grades map onto the Bavarian formula.

    - ``numeric``: ``best`` (Nmax) and ``lowest_pass`` (Nmin) are numbers as printed; the scale
      may run upwards (Italy 30..18) or downwards (Germany 1.0..4.0).
    - ``letter``: ``letters`` are the passing letters, best first, mapped to ordinals 1, 2, ...;
      ``best`` and ``lowest_pass`` are the first and last of them. ``failing`` lists the failing
      letters so that they are refused as fails rather than as unknown grades.
    - ``passfail``: ``letters`` are the words meaning passed, ``failing`` those meaning failed.

    ``effective_best`` is an optional Nmax used by the formula instead of ``best`` (offices use
    17 for the French 20-scale because 18 to 20 are almost never given); grades between it and
    ``best`` count as the effective best, that is 1.0.
    """

    code: str
    name: str
    kind: SchemeKind
    best: str = ""
    lowest_pass: str = ""
    letters: tuple[str, ...] = ()
    failing: tuple[str, ...] = ()
    effective_best: str | None = None

    def __post_init__(self) -> None:
        _check_scheme(self)


def _scheme_error(scheme: GradingScheme | str, field_name: str, problem: str) -> ValidationFailed:
    code = scheme if isinstance(scheme, str) else scheme.code
    return ValidationFailed(f"grading scheme {code!r}, field {field_name!r}: {problem}")


def _check_scheme(scheme: GradingScheme) -> None:
    if not isinstance(scheme.code, str) or not _CODE_PATTERN.fullmatch(scheme.code):
        raise ValidationFailed(
            f"grading scheme code {scheme.code!r} must be lower-case letters, digits, '.', '_' "
            "or '-'"
        )
    if not isinstance(scheme.name, str) or not scheme.name.strip():
        raise _scheme_error(scheme, "name", "must be a non-empty text")
    if scheme.kind not in SCHEME_KINDS:
        raise _scheme_error(
            scheme, "kind", f"{scheme.kind!r} is not one of {', '.join(SCHEME_KINDS)}"
        )
    for name in ("letters", "failing"):
        labels = getattr(scheme, name)
        if not isinstance(labels, tuple) or not all(
            isinstance(label, str) and label.strip() for label in labels
        ):
            raise _scheme_error(scheme, name, "must be a list of non-empty texts")
    keys = [_key(label) for label in (*scheme.letters, *scheme.failing)]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise _scheme_error(
            scheme, "letters", f"{', '.join(duplicates)} listed more than once (or as both)"
        )
    if scheme.kind == "numeric":
        _check_numeric_scheme(scheme)
    elif scheme.kind == "letter":
        _check_letter_scheme(scheme)
    else:
        _check_passfail_scheme(scheme)


def _check_numeric_scheme(scheme: GradingScheme) -> None:
    for name in ("letters", "failing"):
        if getattr(scheme, name):
            raise _scheme_error(scheme, name, "applies only to letter and passfail schemes")
    nmax = _scheme_number(scheme, "best", scheme.best)
    nmin = _scheme_number(scheme, "lowest_pass", scheme.lowest_pass)
    if nmax == nmin:
        raise _scheme_error(
            scheme, "lowest_pass", f"equals the best grade {scheme.best}: the scale has no range"
        )
    if scheme.effective_best is not None:
        effective = _scheme_number(scheme, "effective_best", scheme.effective_best)
        if not _within(effective, nmax, nmin) or effective == nmin:
            raise _scheme_error(
                scheme,
                "effective_best",
                f"{scheme.effective_best} must lie between the lowest pass {scheme.lowest_pass} "
                f"(excluded) and the best grade {scheme.best}",
            )


def _check_letter_scheme(scheme: GradingScheme) -> None:
    if len(scheme.letters) < 2:
        raise _scheme_error(scheme, "letters", "a letter scale needs at least two passing letters")
    if _key(scheme.best) != _key(scheme.letters[0]):
        raise _scheme_error(
            scheme, "best", f"must be the first passing letter {scheme.letters[0]!r}"
        )
    if _key(scheme.lowest_pass) != _key(scheme.letters[-1]):
        raise _scheme_error(
            scheme,
            "lowest_pass",
            f"must be the last passing letter {scheme.letters[-1]!r} "
            "(failing letters belong in 'failing')",
        )
    if scheme.effective_best is not None:
        raise _scheme_error(scheme, "effective_best", "applies only to numeric schemes")


def _check_passfail_scheme(scheme: GradingScheme) -> None:
    if not scheme.letters:
        raise _scheme_error(scheme, "letters", "list the words that mean passed")
    for name in ("best", "lowest_pass", "effective_best"):
        if getattr(scheme, name):
            raise _scheme_error(scheme, name, "does not apply to a passfail scheme")


def _scheme_number(scheme: GradingScheme, field_name: str, value: str) -> Decimal:
    if not isinstance(value, str) or not value.strip():
        raise _scheme_error(scheme, field_name, "is missing")
    try:
        return _number(value, "value")
    except ValidationFailed as err:
        raise _scheme_error(scheme, field_name, err.message) from None


DEFAULT_SCHEMES: Final[Mapping[str, GradingScheme]] = MappingProxyType(
    {
        scheme.code: scheme
        for scheme in (
            GradingScheme("fi", "Finland 5..1 (0 fail)", "numeric", "5", "1"),
            GradingScheme("it", "Italy 30..18", "numeric", "30", "18"),
            GradingScheme("fr", "France 20..10 (nominal)", "numeric", "20", "10"),
            GradingScheme(
                "fr-eff17",
                "France 20..10, effective best 17",
                "numeric",
                "20",
                "10",
                effective_best="17",
            ),
            GradingScheme("es", "Spain 10..5", "numeric", "10", "5"),
            GradingScheme("nl", "Netherlands 10..6 (6 lowest pass)", "numeric", "10", "6"),
            GradingScheme("pl", "Poland 5..3", "numeric", "5", "3"),
            GradingScheme("de", "Germany 1.0..4.0", "numeric", "1.0", "4.0"),
            GradingScheme(
                "ects",
                "ECTS letters A..E (F, FX fail)",
                "letter",
                "A",
                "E",
                letters=("A", "B", "C", "D", "E"),
                failing=ECTS_FAILING,
            ),
            GradingScheme(
                "passfail", "Pass/fail", "passfail", letters=PASS_WORDS, failing=FAIL_WORDS
            ),
        )
    }
)
"""The documented defaults, keyed by scheme code; offices add or override with load_schemes()."""

_SCHEME_FIELDS: Final = (
    "name",
    "kind",
    "best",
    "lowest_pass",
    "letters",
    "failing",
    "effective_best",
)


# The built-in national scales and the country (ISO 3166-1 alpha-2) whose institutions grade
# on them; the others (``ects``, ``passfail``, an office's own) may be any partner's.
NATIONAL_SCHEMES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "fi": "FI",
        "it": "IT",
        "fr": "FR",
        "fr-eff17": "FR",
        "es": "ES",
        "nl": "NL",
        "pl": "PL",
        "de": "DE",
    }
)


def scheme_misfit(scheme: str, country: str) -> str | None:
    """Why a course of a partner in ``country`` cannot be graded on ``scheme`` (a national
    scale of another country: a French course on the Italian scale), or None if it can."""
    home = NATIONAL_SCHEMES.get(scheme)
    if home is None or home == country.upper():
        return None
    fitting = [code for code, land in NATIONAL_SCHEMES.items() if land == country.upper()]
    return (
        f"grading scheme {scheme!r} is the national scale of {home}, not of the partner's "
        f"country {country}; use {' or '.join([*fitting, 'ects', 'passfail'])}"
    )


def get_scheme(code: str, schemes: Mapping[str, GradingScheme] | None = None) -> GradingScheme:
    """Look a scheme up by code (case-insensitive); the error lists the known codes."""
    known = DEFAULT_SCHEMES if schemes is None else schemes
    scheme = known.get(code.strip().lower()) if isinstance(code, str) else None
    if scheme is None:
        raise ValidationFailed(
            f"unknown grading scheme {code!r}; known schemes: {', '.join(sorted(known))}"
        )
    return scheme


def load_schemes(
    data: Mapping[str, object], base: Mapping[str, GradingScheme] | None = None
) -> dict[str, GradingScheme]:
    """Return ``base`` (default: DEFAULT_SCHEMES) with the schemes in ``data`` added or replaced.

    ``data`` maps a scheme code to its fields, as read from an office's TOML or JSON file::

        [it]                        # override one field of a default scheme
        lowest_pass = 18
        [uk]
        name = "UK degree classes"
        kind = "letter"
        letters = ["First", "2:1", "2:2", "Third"]
        failing = ["Fail"]

    A scheme that overrides one of the same code and kind keeps the fields it does not give;
    one that changes the kind starts from scratch. For letter schemes ``best`` and
    ``lowest_pass`` default to the first and last letter; for passfail schemes the words default
    to PASS_WORDS and FAIL_WORDS. Errors name the scheme and the field.
    """
    if not isinstance(data, Mapping):
        raise ValidationFailed("grading schemes must be a table of scheme code -> fields")
    result = dict(DEFAULT_SCHEMES if base is None else base)
    for raw_code, raw_fields in data.items():
        if not isinstance(raw_code, str) or not raw_code.strip():
            raise ValidationFailed(f"grading scheme code {raw_code!r} must be a non-empty text")
        code = raw_code.strip().lower()
        if not isinstance(raw_fields, Mapping):
            raise ValidationFailed(
                f"grading scheme {code!r}: expected a table of fields, "
                f"got {type(raw_fields).__name__}"
            )
        unknown = sorted(str(name) for name in raw_fields if name not in _SCHEME_FIELDS)
        if unknown:
            raise ValidationFailed(
                f"grading scheme {code!r}: unknown field {', '.join(map(repr, unknown))}; "
                f"known fields: {', '.join(_SCHEME_FIELDS)}"
            )
        result[code] = _scheme_from_fields(code, raw_fields, result.get(code))
    return result


def _scheme_from_fields(
    code: str, given: Mapping[str, object], inherited: GradingScheme | None
) -> GradingScheme:
    values: dict[str, object] = {}
    if inherited is not None and given.get("kind", inherited.kind) == inherited.kind:
        values = {name: getattr(inherited, name) for name in _SCHEME_FIELDS}
    values.update(given)
    for required in ("name", "kind"):
        if values.get(required) is None:
            raise _scheme_error(code, required, "is missing")
    kind = values["kind"]
    letters = _field_labels(code, "letters", values.get("letters"))
    failing = _field_labels(code, "failing", values.get("failing"))
    if kind == "letter" and letters:
        # Letter scales always run from the first to the last passing letter.
        values["best"] = given.get("best") or letters[0]
        values["lowest_pass"] = given.get("lowest_pass") or letters[-1]
    if kind == "passfail":
        letters = letters or PASS_WORDS
        failing = failing or FAIL_WORDS
    return GradingScheme(
        code=code,
        name=_field_text(code, "name", values["name"]),
        kind=_field_kind(code, kind),
        best=_field_grade(code, "best", values.get("best")) or "",
        lowest_pass=_field_grade(code, "lowest_pass", values.get("lowest_pass")) or "",
        letters=letters,
        failing=failing,
        effective_best=_field_grade(code, "effective_best", values.get("effective_best")),
    )


def _field_text(code: str, name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _scheme_error(code, name, f"must be a non-empty text, got {value!r}")
    return value.strip()


def _field_kind(code: str, value: object) -> SchemeKind:
    for kind in SCHEME_KINDS:
        if value == kind:
            return kind
    raise _scheme_error(code, "kind", f"{value!r} is not one of {', '.join(SCHEME_KINDS)}")


def _field_grade(code: str, name: str, value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise _scheme_error(code, name, f"must be a grade (number or text), got {value!r}")
    # repr() of a float is its shortest round-tripping spelling, so 0.1 stays "0.1".
    return repr(value) if isinstance(value, float) else str(value).strip()


def _field_labels(code: str, name: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise _scheme_error(code, name, f"must be a list of texts, got {value!r}")
    labels: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise _scheme_error(code, name, f"must be a list of non-empty texts, got {item!r}")
        labels.append(item.strip())
    return tuple(labels)


# --- the Bavarian formula ------------------------------------------------------------------


def bavarian(
    nd: GradeValue,
    nmax: GradeValue,
    nmin: GradeValue,
    rounding: Rounding,
    *,
    effective_best: GradeValue | None = None,
) -> Conversion:
    """Convert ``nd`` with x = 1 + 3 (Nmax - Nd) / (Nmax - Nmin), then round by ``rounding``.

    ``nmax`` is the best grade, ``nmin`` the lowest pass; the scale may run either way. Grades
    outside [Nmin, Nmax] (a fail, or out of range) and Nmax == Nmin raise ValidationFailed.
    With ``effective_best`` the formula uses it as Nmax and counts better grades as 1.0.
    """
    with localcontext(_QUOTIENT):
        policy = rounding_policy(rounding)
        best = _number(nmax, "best grade")
        lowest = _number(nmin, "lowest pass")
        if best == lowest:
            raise ValidationFailed(
                f"best grade and lowest pass are both {_printed(nmax)}: the scale has no range "
                "to convert (check the scheme configuration)"
            )
        effective = None
        if effective_best is not None:
            effective = _number(effective_best, "effective best")
            if not _within(effective, best, lowest) or effective == lowest:
                raise ValidationFailed(
                    f"effective best {_printed(effective_best)} must lie between the lowest pass "
                    f"{_printed(nmin)} (excluded) and the best grade {_printed(nmax)}"
                )
        return _bavarian(
            original=_printed(nd),
            nd=_number(nd, "grade"),
            nmax=best,
            nmin=lowest,
            rounding=policy,
            effective=effective,
            scheme=None,
            preamble=(),
            extra={},
        )


def _bavarian(
    *,
    original: str,
    nd: Decimal,
    nmax: Decimal,
    nmin: Decimal,
    rounding: Rounding,
    effective: Decimal | None,
    scheme: str | None,
    preamble: tuple[str, ...],
    extra: Mapping[str, object],
) -> Conversion:
    where = "" if scheme is None else f" on scheme {scheme}"
    allowed = f"allowed range: {nmax} (best) to {nmin} (lowest pass)"
    if _better(nmin, nd, nmax, nmin):
        raise ValidationFailed(
            f"grade {original}{where} is a fail (worse than the lowest pass {nmin}) and is not "
            f"converted; {allowed}"
        )
    if _better(nd, nmax, nmax, nmin):
        raise ValidationFailed(
            f"grade {original}{where} is out of range (better than the best grade {nmax}); "
            f"{allowed}"
        )
    steps = list(preamble)
    used_best, used_nd = nmax, nd
    if effective is not None:
        used_best = effective
        steps.append(f"the office uses an effective best grade of {effective} instead of {nmax}")
        if _better(nd, effective, nmax, nmin):
            used_nd = effective
            steps.append(
                f"{original} is better than the effective best {effective}: it counts as "
                f"{effective}"
            )
    with localcontext(_EXACT):
        # Normalising the sign lets one rule serve ascending and descending scales:
        # x = 1 + 3 * ahead / span with 0 <= ahead <= span for every grade in range.
        span = used_best - nmin
        ahead = used_best - used_nd
        if span < 0:
            span, ahead = -span, -ahead
    exact = 1 + 3 * ahead / span
    steps.append(
        f"x = 1 + 3 × ({used_best} − {used_nd}) / ({used_best} − {nmin}) = {_show_exact(exact)}"
    )
    if rounding == "nearest":
        grade, step = _nearest_step(exact, ahead, span)
    else:
        grade, step = _truncate(exact, ahead, span)
    steps.append(step)
    parameters: dict[str, object] = {"nd": used_nd, "nmax": nmax, "nmin": nmin}
    if effective is not None:
        parameters["effective_nmax"] = effective
    parameters["rounding"] = rounding
    parameters.update(extra)
    return Conversion(
        original=original,
        scheme=scheme,
        method="bavarian",
        parameters=MappingProxyType(parameters),
        exact=exact,
        grade=str(grade),
        explanation=tuple(steps),
    )


def _nearest_step(exact: Decimal, ahead: Decimal, span: Decimal) -> tuple[Decimal, str]:
    # span * |x - step| = |span * (1 - step) + 3 * ahead|: comparing these exact products, never
    # a rounded x, is what makes 2.5 a true tie between 2.3 and 2.7.
    with localcontext(_EXACT):
        distances = [abs(span * (1 - step) + 3 * ahead) for step in GERMAN_STEPS]
    chosen = min(range(len(GERMAN_STEPS)), key=lambda index: (distances[index], index))
    grade = GERMAN_STEPS[chosen]
    step = f"nearest German step (a tie goes to the better grade): {_show_exact(exact)} -> {grade}"
    if chosen + 1 < len(GERMAN_STEPS) and distances[chosen + 1] == distances[chosen]:
        step += (
            f" ({_show_exact(exact)} lies exactly between {grade} and {GERMAN_STEPS[chosen + 1]})"
        )
    return grade, step


def _truncate(exact: Decimal, ahead: Decimal, span: Decimal) -> tuple[Decimal, str]:
    with localcontext(_EXACT):
        # Integer division of exact values: floor(10 x), immune to a quotient rounded up to .0.
        tenths = (10 * span + 30 * ahead) // span
        grade = tenths.scaleb(-1)
    step = f"truncated to one decimal: {_show_exact(exact)} -> {grade}"
    if grade not in GERMAN_STEPS:
        step += f" (not a German step; truncation keeps {grade} as it is)"
    return grade, step


# --- conversion through a scheme -----------------------------------------------------------


def convert(
    grade: GradeValue,
    scheme: GradingScheme | str,
    rounding: Rounding,
    *,
    schemes: Mapping[str, GradingScheme] | None = None,
) -> Conversion:
    """Convert a grade as printed on a transcript with a scheme (or scheme code).

    Numeric and letter schemes use the Bavarian formula (letters through their ordinals),
    passfail schemes return "passed". Fails, unknown grades and bad parameters raise
    ValidationFailed with a message naming the grade and the scheme.
    """
    with localcontext(_QUOTIENT):
        policy = rounding_policy(rounding)
        resolved = scheme if isinstance(scheme, GradingScheme) else get_scheme(scheme, schemes)
        original = _printed(grade)
        if not original:
            raise ValidationFailed(f"no grade given for scheme {resolved.code!r}")
        if resolved.kind == "passfail":
            return _pass_fail(original, resolved)
        if resolved.kind == "letter":
            return _letter(original, resolved, policy)
        return _numeric(original, grade, resolved, policy)


def _describe(scheme: GradingScheme) -> str:
    return f"scheme {scheme.code} ({scheme.name})"


def _numeric(
    original: str, grade: GradeValue, scheme: GradingScheme, rounding: Rounding
) -> Conversion:
    try:
        nd = _number(grade, "grade")
    except ValidationFailed as err:
        hint = "; pass/fail results use the scheme 'passfail'" if _is_word(original) else ""
        raise ValidationFailed(f"{err.message} on scheme {scheme.code}{hint}") from None
    nmax = _number(scheme.best, "best grade")
    nmin = _number(scheme.lowest_pass, "lowest pass")
    effective = None
    if scheme.effective_best is not None:
        effective = _number(scheme.effective_best, "effective best")
    return _bavarian(
        original=original,
        nd=nd,
        nmax=nmax,
        nmin=nmin,
        rounding=rounding,
        effective=effective,
        scheme=scheme.code,
        preamble=(f"{_describe(scheme)}: best {nmax}, lowest pass {nmin}",),
        extra={},
    )


def _is_word(text: str) -> bool:
    return any(character.isalpha() for character in text)


def _letter(original: str, scheme: GradingScheme, rounding: Rounding) -> Conversion:
    ordinals = _ordinals(scheme.letters)
    key = _key(original)
    passing = f"{scheme.letters[0]} (best) to {scheme.letters[-1]} (lowest pass)"
    if key in {_key(letter) for letter in scheme.failing}:
        raise ValidationFailed(
            f"grade {original} on scheme {scheme.code} is a fail and is not converted; "
            f"passing grades: {passing}"
        )
    if key not in ordinals:
        failing = f"; failing: {', '.join(scheme.failing)}" if scheme.failing else ""
        raise ValidationFailed(
            f"grade {original!r} is not a grade of scheme {scheme.code}; passing grades: "
            f"{', '.join(scheme.letters)}{failing}"
        )
    nd = ordinals[key]
    lowest = len(scheme.letters)
    mapping = ", ".join(f"{letter} = {ordinal}" for ordinal, letter in enumerate(scheme.letters, 1))
    return _bavarian(
        original=original,
        nd=Decimal(nd),
        nmax=Decimal(1),
        nmin=Decimal(lowest),
        rounding=rounding,
        effective=None,
        scheme=scheme.code,
        preamble=(
            f"{_describe(scheme)}: letters as ordinals, {mapping}",
            f"{original} is ordinal {nd}; Nmax = 1, Nmin = {lowest}",
        ),
        extra={"ordinals": {letter: n for n, letter in enumerate(scheme.letters, 1)}},
    )


def _pass_fail(original: str, scheme: GradingScheme) -> Conversion:
    key = _key(original)
    if key in {_key(word) for word in scheme.failing}:
        raise ValidationFailed(
            f"grade {original!r} on scheme {scheme.code} is a fail and is not converted"
        )
    if key not in {_key(word) for word in scheme.letters}:
        raise ValidationFailed(
            f"grade {original!r} is not a pass/fail result of scheme {scheme.code}; "
            f"passed: {', '.join(scheme.letters)}; failed: {', '.join(scheme.failing)}"
        )
    return Conversion(
        original=original,
        scheme=scheme.code,
        method="passfail",
        parameters=MappingProxyType({"passed_words": scheme.letters}),
        exact=None,
        grade=PASSED,
        explanation=(
            f"{_describe(scheme)}: {original!r} means passed",
            "a pass/fail result gets no numeric grade; it stays 'passed'",
        ),
    )


# --- percentile conversion (ECTS grading tables, EGRACONS) ---------------------------------


def percentile(
    grade: str,
    partner_table: PercentTable,
    home_table: PercentTable,
    *,
    failing: Collection[str] = ECTS_FAILING,
    scheme: str | None = None,
) -> Conversion:
    """Convert ``grade`` by comparing where it lies in the partner's and the home distribution.

    ``partner_table`` maps each partner grade, best first, to the percentage of passing
    results it received in the reference group; labels in ``failing`` are left out and the
    rest renormalised to 100 %. ``home_table`` maps German steps to percentages the same way.
    The grade's cumulative band is compared with each home band.

    The result is the home grade whose band holds the midpoint of the foreign band (a midpoint
    on a boundary goes to the better grade). The midpoint is chosen over the largest overlap
    because it is where the middle holder of the foreign grade sits, so the answer does not
    depend on how wide the neighbouring home bands happen to be, and a band straddling two home
    bands equally needs no extra tie rule. The largest-overlap grade is computed too
    (``percentile.by_largest_overlap``, ties to the better grade) and every overlap is kept,
    because the guide asks that the examiner see the whole overlapping range.
    """
    with localcontext(_QUOTIENT):
        return _percentile(_printed(grade), partner_table, home_table, failing, scheme)


def _table_rows(table: PercentTable, what: str) -> list[tuple[str, Decimal]]:
    items = table.items() if isinstance(table, Mapping) else table
    rows: list[tuple[str, Decimal]] = []
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise ValidationFailed(f"{what}: each row must be a (grade, percentage) pair")
        label, share = item
        text = _printed(label)
        if not text or _key(text) in seen:
            raise ValidationFailed(f"{what}: grade {text!r} is empty or listed more than once")
        seen.add(_key(text))
        value = _number(share, f"{what}: percentage of {text}")
        if value < 0:
            raise ValidationFailed(f"{what}: percentage of {text} is negative ({share})")
        rows.append((text, value))
    return rows


def _home_rows(table: PercentTable) -> list[tuple[Decimal, Decimal]]:
    rows: list[tuple[Decimal, Decimal]] = []
    for label, share in _table_rows(table, "home table"):
        step = _number(label, "home table grade")
        if step not in GERMAN_STEPS or step in (existing for existing, _ in rows):
            raise ValidationFailed(
                f"home table: {label!r} is not a German step (once each): "
                f"{', '.join(map(str, GERMAN_STEPS))}"
            )
        # Stored as the canonical step so that "2" and "2.0" name the same band.
        rows.append((GERMAN_STEPS[GERMAN_STEPS.index(step)], share))
    rows.sort()
    return rows


def _bands(
    rows: Sequence[tuple[str, Decimal]], scale: Decimal
) -> list[tuple[str, Decimal, Decimal]]:
    bands: list[tuple[str, Decimal, Decimal]] = []
    with localcontext(_EXACT):
        cumulative = Decimal(0)
        for label, share in rows:
            lower = cumulative * scale
            cumulative += share
            bands.append((label, lower, cumulative * scale))
    return bands


def _percentile(
    original: str,
    partner_table: PercentTable,
    home_table: PercentTable,
    failing: Collection[str],
    scheme: str | None,
) -> Conversion:
    partner_rows = _table_rows(partner_table, "partner table")
    failing_keys = {_key(label) for label in failing}
    excluded = [(label, share) for label, share in partner_rows if _key(label) in failing_keys]
    passing = [(label, share) for label, share in partner_rows if _key(label) not in failing_keys]
    key = _key(original)
    if key in failing_keys:
        raise ValidationFailed(
            f"grade {original} is a fail and is not converted (failing grades "
            f"{', '.join(failing)} are left out of the percentile table)"
        )
    labels = [label for label, _ in passing]
    if key not in {_key(label) for label in labels}:
        raise ValidationFailed(
            f"grade {original!r} is not in the partner's table; its passing grades: "
            f"{', '.join(labels) or '(none)'}"
        )
    home_rows = _home_rows(home_table)
    with localcontext(_EXACT):
        partner_total = sum((share for _, share in passing), Decimal(0))
        home_total = sum((share for _, share in home_rows), Decimal(0))
        if not partner_total or not home_total:
            which = "partner" if not partner_total else "home"
            raise ValidationFailed(f"the {which} table has no passing grades above 0 %")
        whole = partner_total * home_total
    # Both distributions are put on the common scale partner_total * home_total (100 % each),
    # so every comparison below is between exact products, never between rounded percentages.
    partner = _bands(passing, home_total)
    home = _bands([(str(step), share) for step, share in home_rows], partner_total)
    label, lower, upper = next(band for band in partner if _key(band[0]) == key)
    with localcontext(_EXACT):
        twice_mid = lower + upper
        overlaps = [
            (name, max(Decimal(0), min(upper, high) - max(lower, low))) for name, low, high in home
        ]
        holding = next(band for band in home if band[2] > band[1] and twice_mid <= 2 * band[2])
    by_midpoint = holding[0]
    by_overlap = by_midpoint
    largest = max((points for _, points in overlaps), default=Decimal(0))
    if largest > 0:
        by_overlap = next(name for name, points in overlaps if points == largest)

    def pct(value: Decimal) -> Decimal:
        return value * 100 / whole

    band = Band(label, pct(lower), pct(upper))
    midpoint = pct(twice_mid) / 2
    shown_overlaps = tuple((name, pct(points)) for name, points in overlaps if points > 0)
    details = PercentileDetails(
        band=band,
        midpoint=midpoint,
        overlaps=shown_overlaps,
        by_midpoint=by_midpoint,
        by_largest_overlap=by_overlap,
        partner_bands=tuple(Band(name, pct(low), pct(high)) for name, low, high in partner),
        home_bands=tuple(Band(name, pct(low), pct(high)) for name, low, high in home),
    )
    steps: list[str] = []
    if excluded:
        left_out = ", ".join(f"{name} ({share} %)" for name, share in excluded)
        steps.append(
            f"failing grades left out: {left_out}; the remaining {partner_total} % are "
            "renormalised to 100 %"
        )
    steps.append(f"partner bands, best first: {_show_bands(details.partner_bands)}")
    steps.append(f"{label} covers the band {_show_pct(band.lower)} to {_show_pct(band.upper)}")
    steps.append(f"home bands: {_show_bands(details.home_bands)}")
    if shown_overlaps:
        listed = ", ".join(f"{name} by {_show_pct(points)}" for name, points in shown_overlaps)
        steps.append(f"{label} overlaps {listed} points")
    else:
        steps.append(f"{label} has a share of 0 %: its band is the point {_show_pct(band.lower)}")
    on_boundary = twice_mid == 2 * holding[2]
    steps.append(
        f"its midpoint {_show_pct(midpoint)} lies in the home band of {by_midpoint}"
        + (
            " (on the boundary with the next grade; a boundary goes to the better)"
            if on_boundary
            else ""
        )
        + f": {label} converts to {by_midpoint}"
    )
    if by_overlap == by_midpoint:
        steps.append(f"the largest overlap gives the same grade {by_overlap}")
    else:
        steps.append(f"the largest overlap gives {by_overlap}, not {by_midpoint}: look at both")
    return Conversion(
        original=original,
        scheme=scheme,
        method="percentile",
        parameters=MappingProxyType(
            {
                "partner_table": dict(partner_rows),
                "home_table": {str(step): share for step, share in home_rows},
                "failing": list(failing),
                "choice": "midpoint",
            }
        ),
        exact=midpoint,
        grade=by_midpoint,
        explanation=tuple(steps),
        percentile=details,
    )


# --- side by side --------------------------------------------------------------------------


def compare(
    first: Conversion, second: Conversion, *, threshold: Decimal = DIFFERENCE_THRESHOLD
) -> Comparison:
    """Put two conversions of one grade side by side; ``differs`` when they are >= 0.3 apart.

    A numeric grade against "passed" cannot be measured, so it counts as differing unless both
    are "passed".
    """
    a, b = first.numeric_grade, second.numeric_grade
    if a is None or b is None:
        return Comparison(first, second, None, differs=first.grade != second.grade)
    difference = abs(a - b)
    return Comparison(first, second, difference, differs=difference >= threshold)
