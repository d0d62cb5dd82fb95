"""Deadlines: when each clock of a case runs out, counted as the law counts periods.

A period of days, weeks or months starts the day after the triggering event and ends at 24:00
local time of its last day (§§ 187(1), 188 BGB; the same rule governs the one-month appeal
window of § 70 VwGO). "Local" is the institution's time zone, so a deadline stays at midnight
across daylight-saving changes. Instants are stored as aware UTC.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from config.settings import Settings


def end_of_day(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """The instant at which ``day`` ends in ``zone`` (24:00, i.e. the next day's 00:00), UTC."""
    nxt = day + dt.timedelta(days=1)
    return dt.datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone).astimezone(dt.UTC)


def local_date(instant: dt.datetime, zone: ZoneInfo) -> dt.date:
    return instant.astimezone(zone).date()


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day number ``months`` later; the month's last day if it has no such day
    (§ 188(3) BGB: a notice of 31 January gives a window ending 28/29 February)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def days_after(start: dt.date, days: int, zone: ZoneInfo) -> dt.datetime:
    return end_of_day(start + dt.timedelta(days=days), zone)


@dataclass(frozen=True, slots=True)
class Clocks:
    """Every clock column of a case, as the workflow keeps them."""

    due_at: dt.datetime | None = None
    due_kind: str | None = None
    decision_due_at: dt.datetime | None = None
    decision_paused_seconds: int | None = None
    appeal_ends_at: dt.datetime | None = None


def next_clocks(
    kind: str | None,
    *,
    before: Clocks,
    now: dt.datetime,
    zone: ZoneInfo,
    settings: Settings,
    start_date: dt.date,
    course_end: dt.date,
    result_date: dt.date | None = None,
) -> Clocks:
    """The clocks of a case entering a state whose deadline is ``kind`` (None: no deadline).

    The decision clock starts on submission, keeps running in review, pauses while the
    student is asked for information (the time left is kept) and resumes with that time.
    """
    today = local_date(now, zone)
    decision_due, paused = before.decision_due_at, before.decision_paused_seconds
    appeal_ends = before.appeal_ends_at
    due: dt.datetime | None
    if kind == "enrolment":
        due = days_after(start_date, settings.enrolment_grace_days, zone)
    elif kind == "result":
        due = days_after(course_end, settings.result_grace_days, zone)
    elif kind == "transcript":
        due = days_after(result_date or course_end, settings.transcript_due_days, zone)
    elif kind == "retake":
        due = days_after(today, settings.retake_window_days, zone)
    elif kind == "submission":
        due = days_after(today, settings.submission_due_days, zone)
    elif kind == "decision":
        if paused is not None:
            decision_due, paused = now + dt.timedelta(seconds=paused), None
        elif decision_due is None:
            decision_due = days_after(today, settings.decision_due_days, zone)
        due = decision_due
    elif kind == "info_reply":
        if decision_due is not None:
            paused = max(0, int((decision_due - now).total_seconds()))
            decision_due = None
        due = days_after(today, settings.info_reply_days, zone)
    elif kind == "appeal_window":
        decision_due = paused = None
        appeal_ends = end_of_day(add_months(today, settings.appeal_window_months), zone)
        due = appeal_ends
    elif kind == "board_decision":
        due = days_after(today, settings.board_decision_days, zone)
    elif kind is None:
        due = None
        decision_due = paused = None
    else:  # the procedure loader refuses unknown kinds; this is a programming error
        raise ValueError(f"unknown deadline kind {kind!r}")
    return Clocks(due, kind if due is not None else None, decision_due, paused, appeal_ends)
