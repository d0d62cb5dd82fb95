"""Numbers and dates for people: German writes a decimal comma ("1,7", "5,0 ECTS",
"07.12.2026"), English a decimal point ("1.7", "5.0 ECTS", "7 December 2026"); what is not a
number stays as given."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from workflow.texts import (
    format_credits,
    format_date,
    format_datetime,
    format_decimal,
    format_ects,
    format_grade,
)


@pytest.mark.parametrize(
    ("value", "de", "en"),
    [
        ("1.7", "1,7", "1.7"),
        ("1.70", "1,7", "1.7"),
        (Decimal("1.3"), "1,3", "1.3"),
        (1.7, "1,7", "1.7"),
        (2, "2,0", "2.0"),
        ("5.0", "5,0", "5.0"),
        ("1.25", "1,25", "1.25"),
        ("passed", "passed", "passed"),
        ("B+", "B+", "B+"),
        ("", "", ""),
    ],
)
def test_grades(value: object, de: str, en: str) -> None:
    assert format_grade(value, "de") == de
    assert format_grade(value, "en") == en


@pytest.mark.parametrize(
    ("value", "de", "en"),
    [
        ("5", "5,0 ECTS", "5.0 ECTS"),
        (Decimal("7.5"), "7,5 ECTS", "7.5 ECTS"),
        ("2.25", "2,25 ECTS", "2.25 ECTS"),
        (30, "30,0 ECTS", "30.0 ECTS"),
        (None, "", ""),
    ],
)
def test_ects(value: object, de: str, en: str) -> None:
    assert format_ects(value, "de") == de
    assert format_ects(value, "en") == en
    assert format_credits(value, "de") == de.removesuffix(" ECTS")


def test_decimals_keep_their_places_and_mark_a_cut() -> None:
    assert format_decimal("0.3", "de") == "0,3"
    assert format_decimal("0.3", "en") == "0.3"
    assert format_decimal("10", "de") == "10"
    assert format_decimal("1.234567", "de", max_places=4) == "1,2346…"
    assert format_decimal("1.5", "de", max_places=4) == "1,5"
    assert format_decimal("NaN", "de") == "NaN"


def test_dates() -> None:
    day = dt.date(2026, 12, 7)
    assert format_date(day, "de") == "07.12.2026"
    assert format_date(day, "en") == "7 December 2026"
    assert format_date(dt.date(2026, 3, 2), "en") == "2 March 2026"


def test_date_times() -> None:
    # What a person reads on pages and in e-mails: the local date as the language writes it and
    # the time; midnight, the end of a deadline, is 24:00 of the day before.
    berlin = ZoneInfo("Europe/Berlin")
    afternoon = dt.datetime(2026, 12, 7, 14, 30, tzinfo=berlin)
    assert format_datetime(afternoon, "de") == "07.12.2026 14:30"
    assert format_datetime(afternoon, "en") == "7 December 2026 14:30"
    midnight = dt.datetime(2026, 12, 8, 0, 0, tzinfo=berlin)
    assert format_datetime(midnight, "de") == "07.12.2026 24:00"
    assert format_datetime(midnight, "en") == "7 December 2026 24:00"
