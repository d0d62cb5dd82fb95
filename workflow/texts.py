"""Numbers and dates as a person reads them, in German or English, through Babel.

Every text for a person (decision notices, e-mails, the human-readable parts of exports, the
pages) writes a grade, ECTS credits, another decimal or a date through these functions, so a
German text says "1,7" and "5,0 ECTS" and an English one "1.7" and "5.0 ECTS". Machine-readable
values (ELMO ``resultLabel`` and credit values, CSV, JSON) keep the decimal point and do not come
here.

A value that is not a finite number is returned as given (e.g. a grade "passed" or a partner's
letter grade "B+"), so callers may pass what they stored.
"""

from __future__ import annotations

import datetime as dt
from datetime import tzinfo
from decimal import Decimal, InvalidOperation
from typing import Final

from babel.dates import format_date as _babel_date
from babel.numbers import format_decimal as _babel_decimal

# The locale each language writes in; English as in Britain and Ireland ("7 December 2026").
_LOCALES: Final = {"de": "de_DE", "en": "en_GB"}
# German notices date their letters "07.12.2026"; English ones "7 December 2026".
_DATE_FORMATS: Final = {"de": "medium", "en": "long"}
# Grades: at least one decimal, as the German steps are written (1,0 1,3 1,7 …), never cut.
_GRADE_PATTERN: Final = "0.0##"
# ECTS credits: "5,0", "7,5", "2,25".
_ECTS_PATTERN: Final = "0.0#"


def _locale(language: str) -> str:
    return _LOCALES.get(language, _LOCALES["en"])


def _as_decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        value = repr(value)  # 1.7, not 1.6999999999999999555910790149937
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _pattern(value: object, language: str, pattern: str) -> str:
    number = _as_decimal(value)
    if number is None:
        return "" if value is None else str(value).strip()
    return _babel_decimal(number, format=pattern, locale=_locale(language))


def format_decimal(value: object, language: str, *, max_places: int | None = None) -> str:
    """A decimal with as many places as it has ("0.3" -> "0,3", "10" -> "10" in German).

    With ``max_places`` the value is rounded to that many places and "…" marks the cut.
    """
    number = _as_decimal(value)
    if number is None:
        return "" if value is None else str(value).strip()
    exponent = number.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    cut = max_places is not None and places > max_places
    if cut and max_places is not None:
        places = max_places
    pattern = "0." + "0" * places if places else "0"
    text = _babel_decimal(number, format=pattern, locale=_locale(language))
    return text + "…" if cut else text


def format_grade(value: object, language: str) -> str:
    """A grade: "1,7" in German, "1.7" in English; "2" is "2,0", "1.70" is "1,7"."""
    return _pattern(value, language, _GRADE_PATTERN)


def format_credits(value: object, language: str) -> str:
    """ECTS credits as a number: "5,0" in German, "5.0" in English."""
    return _pattern(value, language, _ECTS_PATTERN)


def format_ects(value: object, language: str) -> str:
    """ECTS credits with their unit: "5,0 ECTS" in German, "5.0 ECTS" in English."""
    shown = format_credits(value, language)
    return f"{shown} ECTS" if shown else ""


def format_date(day: dt.date, language: str) -> str:
    """A calendar day (a local date; convert instants first): "07.12.2026" / "7 December 2026"."""
    return _babel_date(day, format=_DATE_FORMATS.get(language, "long"), locale=_locale(language))


def format_datetime(local: dt.datetime, language: str) -> str:
    """A local date and time (convert an instant to the institution's zone first):
    "15.06.2026 14:30" in German, "15 June 2026 14:30" in English. 00:00 is written as 24:00
    of the day before, as a deadline that ends at midnight is counted and read."""
    if local.hour == 0 and local.minute == 0:
        return f"{format_date((local - dt.timedelta(days=1)).date(), language)} 24:00"
    return f"{format_date(local.date(), language)} {local:%H:%M}"


def format_instant(instant: dt.datetime, zone: tzinfo) -> str:
    """An instant in a sentence of the command line or a refusal, in the institution's zone
    with the zone's abbreviation: "2026-06-15 14:30 CEST". A deadline at 00:00 is written
    as 24:00 of the day before ("2026-06-15 24:00 CEST"), as the period is counted."""
    local = instant.astimezone(zone)
    if local.hour == 0 and local.minute == 0 and local.second == 0:
        return f"{local - dt.timedelta(days=1):%Y-%m-%d} 24:00 {local:%Z}"
    return f"{local:%Y-%m-%d %H:%M %Z}"
