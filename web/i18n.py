"""How a request's language is chosen, the pages' number filters, and the pages' words
looked up by kind (states, events, deadlines, ...): the words themselves are the procedure's
(config/procedure.toml) or the catalogues' (workflow/locale, through ``workflow.say``)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from config.procedure import get_procedure
from workflow import N_, Say, format_credits, format_date, format_decimal, format_grade, say

LANGUAGES = ("en", "de")
# The pages' Jinja2 filters for numbers people read: ``{{ grade | grade(lang) }}`` ("1,7"),
# ``{{ ects | credits(lang) }}`` ("5,0"), ``{{ value | decimal(lang) }}``. Form values and
# ``value=""`` attributes keep the stored number with its point.
# ``{{ birth_date | day(lang) }}``: a calendar day ("07.12.2026", "7 December 2026"); instants
# go through the pages' ``local()`` (the institution's zone). ``<time datetime>`` keeps ISO.
NUMBER_FILTERS: dict[str, Callable[..., str]] = {
    "grade": format_grade,
    "credits": format_credits,
    "decimal": format_decimal,
}


def day(value: object, language: str) -> str:
    """A calendar day, given as a date or an ISO string, as ``language`` writes it."""
    if isinstance(value, dt.date):
        return format_date(value, language)
    try:
        return format_date(dt.date.fromisoformat(str(value)), language)
    except ValueError:
        return "" if value is None else str(value)


NUMBER_FILTERS["day"] = day


def pick_language(*, cookie: str | None, preferred: str | None, accept_language: str | None) -> str:
    """An explicit choice (cookie) wins, then the account's setting, then the browser."""
    for choice in (cookie, preferred):
        if choice in LANGUAGES:
            return choice
    best, best_q = "en", -1.0
    for part in (accept_language or "").split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        base = tag.strip().lower()[:2]
        if base in LANGUAGES and q > best_q:
            best, best_q = base, q
    return best


def translator(language: str) -> Say:
    """``_(msgid, **values)`` in ``language`` (English for a language Recog does not have)."""
    return say(language if language in LANGUAGES else "en")


def states(language: str) -> dict[str, str]:
    """The label of every state of the procedure in ``language``."""
    return {name: st.labels[language] for name, st in get_procedure().states.items()}


def student_todo(language: str) -> dict[str, str]:
    """What the student should do now, by state."""
    return {name: st.todo[language] for name, st in get_procedure().states.items()}


def events(language: str) -> dict[str, str]:
    """What one can do: the procedure's events (their action) and the record events."""
    _ = translator(language)
    # The record events are no events of the procedure: their words are the catalogues'.
    record = {
        "open": _("record.open"),
        "assign_examiner": _("record.assign_examiner"),
        "set_targets": _("record.set_targets"),
        "attach_document": _("record.attach_document"),
        "record_result_date": _("record.record_result_date"),
    }
    return {**record, **{n: e.labels[language] for n, e in get_procedure().events.items()}}


def timeline(language: str) -> dict[str, str]:
    """What happened: the procedure's events (as done) and the record events."""
    _ = translator(language)
    record = {
        "open": _("record.open.done"),
        "assign_examiner": _("record.assign_examiner.done"),
        "set_targets": _("record.set_targets.done"),
        "attach_document": _("record.attach_document.done"),
        "record_result_date": _("record.record_result_date.done"),
    }
    return {**record, **{n: e.done[language] for n, e in get_procedure().events.items()}}


# The words of values the code knows (criteria, deadline kinds, document kinds, methods, ...),
# each written out so that extraction finds its message id; a page shows the value itself for
# one not listed here.


def deadlines(_: Say) -> dict[str, str]:
    """The deadline kinds (config.procedure.KNOWN_DEADLINES)."""
    return {
        "enrolment": _("deadline.enrolment"),
        "result": _("deadline.result"),
        "transcript": _("deadline.transcript"),
        "retake": _("deadline.retake"),
        "submission": _("deadline.submission"),
        "decision": _("deadline.decision"),
        "info_reply": _("deadline.info_reply"),
        "appeal_window": _("deadline.appeal_window"),
        "board_decision": _("deadline.board_decision"),
    }


def document_kinds(_: Say) -> dict[str, str]:
    """The document kinds (workflow.DOCUMENT_KINDS)."""
    return {
        "transcript": _("document.transcript"),
        "evidence": _("document.evidence"),
        "notice": _("document.notice"),
        "correspondence": _("document.correspondence"),
    }


def words(_: Say) -> dict[str, dict[str, str]]:
    """The pages' words of other values, by kind: conversion methods and roundings, outcomes,
    grading-table sides, groups and sources, actors, why a percentile is missing, and how an
    imported result was matched."""
    return {
        "method": {
            "bavarian": _("page.m_bavarian"),
            "percentile": _("page.m_percentile"),
            "passfail": _("page.m_passfail"),
        },
        "rounding": {
            "nearest": _("page.rounding_nearest"),
            "truncate": _("page.rounding_truncate"),
        },
        "outcome": {"credited": _("page.o_credited"), "not_credited": _("page.o_not_credited")},
        "table": {"partner": _("page.table_partner"), "home": _("page.table_home")},
        "group": {
            "isced": _("page.group_isced"),
            "offering": _("page.group_offering"),
            "module": _("page.group_module"),
            "programme": _("page.group_programme"),
            "all": _("page.group_all"),
        },
        "source": {
            "ewp": _("page.source_ewp"),
            "result_distribution": _("page.source_result_distribution"),
            "manual": _("page.source_manual"),
        },
        "actor": {
            "student": _("page.actor_student"),
            "office": _("page.actor_office"),
            "examiner": _("page.actor_examiner"),
            "board": _("page.actor_board"),
            "timer": _("page.actor_timer"),
            "import": _("page.actor_import"),
            "clerk": _("page.actor_clerk"),
            "admin": _("page.actor_admin"),
        },
        "missing": {
            "partner": _("page.cohort_missing_partner"),
            "home": _("page.cohort_missing_home"),
            "both": _("page.cohort_missing_both"),
        },
        "match": {
            "matched": _("page.r_matched"),
            "unmatched": _("page.r_unmatched"),
            "ambiguous": _("page.r_ambiguous"),
            "resolved": _("page.r_resolved"),
            "skipped": _("page.r_skipped"),
        },
    }


# What the transcript import notes about a result (workflow.transcripts.importing: kept in
# English for the CLI and the API), as the pages say it in their language. A note not listed
# here is shown as it is.
_IMPORT_NOTES = (
    (re.compile(r"unknown partner institution (?P<code>.+)"), N_("page.note_unknown_partner")),
    (
        re.compile(r"no student of this institution matches the learner"),
        N_("page.note_no_student"),
    ),
    (
        re.compile(r"no case of this student waits for this course's result"),
        N_("page.note_no_case"),
    ),
    (re.compile(r"(?P<n>\d+) cases could take this result"), N_("page.note_several_cases")),
    (re.compile(r"already imported"), N_("page.note_already_imported")),
    (
        re.compile(r"matched by hand by user (?P<user>\d+): (?P<events>.+)"),
        N_("page.note_matched_by_hand"),
    ),
    # A refusal of the case's events: the domain's sentence, as every page shows refusals.
    (re.compile(r"case (?P<case>\d+): (?P<reason>.+)"), N_("page.note_refused")),
)


def import_note(note: str | None, _: Say) -> str | None:
    """A transcript result's import note in the page's language."""
    if not note:
        return note
    for pattern, msgid in _IMPORT_NOTES:
        found = pattern.fullmatch(note)
        if found:
            return _(msgid, **found.groupdict())
    return note
