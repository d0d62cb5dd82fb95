"""Deadlines in e-mails are written as the mail's language writes a date: "03.12.2026 24:00"
in German, "3 December 2026 24:00" in English (a deadline at 00:00 is 24:00 of the day before)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tasks.delivery import _local

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("instant", "de", "en"),
    [
        pytest.param(
            dt.datetime(2026, 12, 3, 23, 0, tzinfo=dt.UTC),
            "03.12.2026 24:00",
            "3 December 2026 24:00",
            id="end-of-day",
        ),
        pytest.param(
            dt.datetime(2026, 6, 15, 12, 30, tzinfo=dt.UTC),
            "15.06.2026 14:30",
            "15 June 2026 14:30",
            id="with-time",
        ),
    ],
)
def test_deadlines_read_as_the_language_writes_dates(
    instant: dt.datetime, de: str, en: str
) -> None:
    assert _local(instant, BERLIN, "de") == de
    assert _local(instant, BERLIN, "en") == en


def test_no_deadline_is_none() -> None:
    assert _local(None, BERLIN, "de") is None
