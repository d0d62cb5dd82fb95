"""Deadlines: when each clock of a case runs out, counted as the law counts periods, and the
reminders and escalations scheduled around them.

A period of days, weeks or months starts the day after the triggering event and ends at 24:00
local time of its last day (§§ 187(1), 188 BGB; the same rule governs the one-month appeal
window of § 70 VwGO); a period whose last day is a Saturday, Sunday or public holiday ends on
the next working day (§ 193 BGB; ``RECOG_SKIP_NON_WORKING_DAYS``, ``RECOG_HOLIDAY_REGION``).
"Local" is the institution's time zone, so a deadline stays at midnight across daylight-saving
changes. Instants are stored as aware UTC.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from config.procedure import KNOWN_DEADLINES
from config.settings import Settings


@functools.cache
def _holidays(region: str) -> Any:
    # Imported on first use: the package loads every calendar it knows (about 0.2 s), which
    # a command that computes no deadline should not pay.
    import holidays

    country, _, subdiv = region.partition("-")
    return holidays.country_holidays(country, subdiv=subdiv or None)


def last_day(day: dt.date, settings: Settings) -> dt.date:
    """The day a period really ends on: ``day``, or the next working day (§ 193 BGB)."""
    if not settings.skip_non_working_days:
        return day
    calendar_ = _holidays(settings.holiday_region)
    while day.weekday() >= 5 or day in calendar_:
        day += dt.timedelta(days=1)
    return day


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


def days_after(start: dt.date, days: int, zone: ZoneInfo, settings: Settings) -> dt.datetime:
    return end_of_day(last_day(start + dt.timedelta(days=days), settings), zone)


DAY_SECONDS = 86_400


def paused_days(due: dt.datetime, today: dt.date, zone: ZoneInfo) -> int:
    """The whole days a decision clock that ends at ``due`` still had when it paused on
    ``today`` (local): the days after ``today`` up to the period's last day. The day the
    pause begins counts as paused, like the day it ends (§ 209 BGB: the time of the
    suspension is not counted; a period is counted in whole days, § 187(1))."""
    last = local_date(due - dt.timedelta(microseconds=1), zone)
    return max(0, (last - today).days)


def resumed(paused_seconds: int, today: dt.date, zone: ZoneInfo, settings: Settings) -> dt.datetime:
    """The decision deadline when the clock resumes on ``today`` with the time it had left:
    the days left run from the day after, and the period ends at 24:00 local time of its
    last day (§ 188 BGB), on a working day (§ 193), like every other period; never at the
    minute the pause ended. ``paused_seconds`` is kept in whole days (``paused_days``);
    a clock paused before that was so is rounded down to whole days."""
    return days_after(today, paused_seconds // DAY_SECONDS, zone, settings)


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
        due = days_after(start_date, settings.enrolment_grace_days, zone, settings)
    elif kind == "result":
        due = days_after(course_end, settings.result_grace_days, zone, settings)
    elif kind == "transcript":
        due = days_after(result_date or course_end, settings.transcript_due_days, zone, settings)
    elif kind == "retake":
        due = days_after(today, settings.retake_window_days, zone, settings)
    elif kind == "submission":
        due = days_after(today, settings.submission_due_days, zone, settings)
    elif kind == "decision":
        if paused is not None:
            decision_due, paused = resumed(paused, today, zone, settings), None
        elif decision_due is None:
            decision_due = days_after(today, settings.decision_due_days, zone, settings)
        due = decision_due
    elif kind == "info_reply":
        if decision_due is not None:
            paused = paused_days(decision_due, today, zone) * DAY_SECONDS
            decision_due = None
        due = days_after(today, settings.info_reply_days, zone, settings)
    elif kind == "appeal_window":
        decision_due = paused = None
        appeal_ends = end_of_day(
            last_day(add_months(today, settings.appeal_window_months), settings), zone
        )
        due = appeal_ends
    elif kind == "board_decision":
        due = days_after(today, settings.board_decision_days, zone, settings)
    elif kind is None:
        due = None
        decision_due = paused = None
    else:  # the procedure loader refuses unknown kinds; this is a programming error
        raise ValueError(f"unknown deadline kind {kind!r}")
    return Clocks(due, kind if due is not None else None, decision_due, paused, appeal_ends)


@dataclass(frozen=True, slots=True)
class Scheduled:
    """One reminder, escalation or timer event planned for a case: at most once per
    (case, kind, due time)."""

    kind: str
    due_at: dt.datetime
    action: str  # "notify" or "fire"
    recipient: str | None = None  # for notify
    event: str | None = None  # for fire


def at_reminder_hour(instant: dt.datetime, zone: ZoneInfo, hour: int) -> dt.datetime:
    """The first ``hour``:00 local at or after ``instant``: people are reminded in office
    hours, not at midnight."""
    local = instant.astimezone(zone)
    candidate = dt.datetime.combine(local.date(), dt.time(hour), tzinfo=zone)
    if candidate < local:
        candidate = dt.datetime.combine(
            local.date() + dt.timedelta(days=1), dt.time(hour), tzinfo=zone
        )
    return candidate.astimezone(dt.UTC)


def schedule(
    clocks: Clocks,
    *,
    now: dt.datetime,
    zone: ZoneInfo,
    settings: Settings,
) -> list[Scheduled]:
    """What the deadline sweep must do for a case whose clocks are ``clocks``: reminders
    before and at the deadline, escalations after it, and the timer's lapse or close.
    A deadline that has already passed when the case enters the state (a case opened for a
    course that began months ago) is due at once: its lapse, close, escalation or reminder at
    the deadline is planned for ``now``, and the sweep's next run does it. A reminder *before*
    the deadline whose moment has already passed is not planned (nobody is reminded of a
    50 % mark that lay in the past when the clock started; once the deadline itself has
    passed, what is planned for it speaks instead)."""
    due, kind = clocks.due_at, clocks.due_kind
    if due is None or kind is None:
        return []
    hour = settings.reminder_hour

    def remind(name: str, when: dt.datetime, recipient: str) -> Scheduled:
        return Scheduled(name, at_reminder_hour(when, zone, hour), "notify", recipient=recipient)

    day = dt.timedelta(days=1)
    plan: list[Scheduled]
    if kind in ("enrolment", "retake"):
        plan = [Scheduled(f"{kind}.lapse", due, "fire", event="lapse")]
    elif kind == "result":
        plan = [remind("result.missing", due, "clerk")]
    elif kind == "transcript":
        plan = [
            remind("transcript.remind", due, "student"),
            remind("transcript.escalate", due + settings.transcript_escalation_days * day, "clerk"),
        ]
    elif kind == "submission":
        plan = [
            remind("submission.remind", due - settings.submission_reminder_days * day, "student"),
            Scheduled("submission.lapse", due, "fire", event="lapse"),
        ]
    elif kind == "decision":
        period = settings.decision_due_days * day
        plan = [
            remind("decision.remind50", due - period / 2, "examiner"),
            remind("decision.remind80", due - period / 5, "examiner"),
            remind("decision.escalate", due, "clerk"),
        ]
    elif kind == "info_reply":
        plan = [
            remind("info_reply.remind", due - settings.info_reply_reminder_days * day, "student"),
            remind("info_reply.passed", due, "examiner"),
        ]
    elif kind == "appeal_window":
        plan = [Scheduled("appeal_window.close", due, "fire", event="close")]
    elif kind == "board_decision":
        plan = [remind("board_decision.escalate", due, "clerk")]
    else:
        raise ValueError(f"unknown deadline kind {kind!r}")
    return [
        item if item.due_at > now else dataclasses.replace(item, due_at=now)
        for item in plan
        if item.due_at > now or item.due_at >= due
    ]


def reminder_kinds(deadlines: Iterable[str], settings: Settings) -> tuple[str, ...]:
    """The reminders and escalations (``notify`` items) ``schedule`` plans for these deadline
    kinds, each once, in the order planned: the e-mail templates a procedure whose states
    run these clocks needs. Derived from ``schedule`` itself, like ``superseded_kinds``."""
    start = dt.datetime(2000, 1, 3, tzinfo=dt.UTC)
    kinds: dict[str, None] = {}
    for deadline in deadlines:
        plan = schedule(
            Clocks(start + dt.timedelta(days=3650), deadline),
            now=start,
            zone=ZoneInfo("UTC"),
            settings=settings,
        )
        kinds.update((item.kind, None) for item in plan if item.action == "notify")
    return tuple(kinds)


def superseded_kinds(settings: Settings) -> frozenset[str]:
    """The reminder kinds ``schedule`` plans before (or with) another reminder of the same
    deadline (the kind's part before the dot) to the same recipient, e.g. the 50 % reminder
    of a decision before the 80 % one. If both have fallen due when a sweep runs (it did not
    run for a while), only the latest is sent; the sweep checks only these kinds for a later
    one. Derived from ``schedule`` itself, so it follows when the plans change."""
    start = dt.datetime(2000, 1, 3, tzinfo=dt.UTC)
    kinds: set[str] = set()
    for deadline in KNOWN_DEADLINES:
        plan = schedule(
            Clocks(start + dt.timedelta(days=3650), deadline),
            now=start,
            zone=ZoneInfo("UTC"),
            settings=settings,
        )
        notes = [item for item in plan if item.action == "notify"]
        for item in notes:
            family = item.kind.partition(".")[0]
            if any(
                other is not item
                and other.recipient == item.recipient
                and other.kind.partition(".")[0] == family
                and other.due_at >= item.due_at
                for other in notes
            ):
                kinds.add(item.kind)
    return frozenset(kinds)


def overtaken_kinds(settings: Settings) -> dict[str, str | None]:
    """The reminders ``schedule`` plans *before* a deadline, each with what it becomes when
    a sweep finds its deadline already passed (the sweep did not run for a while): the
    deadline's first message at or after it ("the answer is overdue"), sent to the same
    recipient; None when the deadline has no message (its lapse tells). Its own words ("3
    days left") would be untrue by then. Derived from ``schedule`` itself."""
    start = dt.datetime(2000, 1, 3, tzinfo=dt.UTC)
    due = start + dt.timedelta(days=3650)
    kinds: dict[str, str | None] = {}
    for deadline in KNOWN_DEADLINES:
        plan = schedule(Clocks(due, deadline), now=start, zone=ZoneInfo("UTC"), settings=settings)
        after = [i.kind for i in plan if i.action == "notify" and i.due_at >= due]
        for item in plan:
            if item.action == "notify" and item.due_at < due:
                kinds[item.kind] = after[0] if after else None
    return kinds
