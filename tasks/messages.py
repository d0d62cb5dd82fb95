"""Notification e-mails in English and German: subject, plain text and HTML for each template.

The wording lives in the gettext catalogues (``workflow/locale/<language>/LC_MESSAGES/
recog.po``, message ids ``mail.*``); ``templates/mail/parts.toml`` says which messages exist
and which parts each has for which recipient, and two Jinja2 layouts (``layout.txt``,
``layout.html``) put the parts together. A student learns what happened, what happens next,
by when and what to do now; a decision lists what was credited, and a refusal adds its
reasons, advice and the instructions on legal remedies. Office recipients get a short,
factual note. Dates arrive preformatted in local time (``due_at_local``, through
``workflow.format_datetime``); credits and grades are written as the language writes them
(``workflow.format_credits``, ``format_grade``: "5,0" and "1,7" in German).

Only the facts named in ``render``'s context are ever used (a phrase's ``%(name)s`` can name
only them), so an e-mail address or any other secret passed along by mistake never reaches a
text; ``status_url`` goes to students only.

A procedure whose event names a message that is not here is refused when Recog starts
(``check_procedure``, called by the app, the worker and the commands that send mail), not at
the first delivery.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from config.errors import ConfigurationError
from config.procedure import Procedure, get_procedure
from config.settings import get_settings
from workflow import (
    N_,
    Say,
    criterion_words,
    format_credits,
    format_grade,
    objectionable,
    reminder_kinds,
    say,
)

MAIL_DIR = Path(__file__).with_name("templates") / "mail"
PARTS_FILE = MAIL_DIR / "parts.toml"

LANGUAGES = ("de", "en")
RECIPIENTS = ("student", "clerk", "examiner", "board")
OTHER = ("status_link",)


def legal_remedies() -> frozenset[str]:
    """The events whose student e-mail carries the instructions on the objection (§ 37(6)
    VwVfG, § 58 VwGO): every decision of the office an objection lies against, a full
    recognition too (``workflow.objectionable``); the board's decision on an objection names
    its own remedy, an action, in its notice."""
    return objectionable(get_procedure())


# Free-text and display facts a phrase may use; anything else in the context is ignored.
_TEXT_KEYS = (
    "student_name",
    "course_title",
    "course_code",
    "partner_name",
    "term",
    "due_at_local",
    "due_kind",
    "message",
    "appeal_ends_local",
    "office_name",
    "office_email",
)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def events() -> tuple[str, ...]:
    """The templates of events: a case opened, and every event of the procedure."""
    return ("open", *get_procedure().events)


def reminders() -> tuple[str, ...]:
    """The templates of reminders and escalations: those the deadline sweep plans for the
    clocks the procedure's states run (``workflow.reminder_kinds``)."""
    deadlines = {s.deadline: None for s in get_procedure().states.values() if s.deadline}
    return reminder_kinds(deadlines, get_settings())


def templates() -> list[str]:
    """Every template name ``render`` accepts: the procedure's events, reminders, status link."""
    return [*events(), *reminders(), *OTHER]


def message_of(template: str) -> str:
    """The message a template is worded by: the message its event names in the procedure
    (``message``, its own name unless it says otherwise), else the template."""
    event = get_procedure().events.get(template)
    return event.message if event is not None else template


@functools.cache
def parts() -> dict[str, dict[str, list[str]]]:
    """Every message, with the parts it has for each recipient it has words for
    (``templates/mail/parts.toml``)."""
    with PARTS_FILE.open("rb") as fh:
        return tomllib.load(fh)


def check_procedure(proc: Procedure | None = None) -> None:
    """Refuse a procedure whose event tells someone (``notify``) by a message (``message``,
    the event's own name by default) the e-mails do not have, naming the procedure's file,
    the event and the message (``ConfigurationError``). The app, the worker and the commands
    that send mail call it at start-up, where both the procedure and the e-mails are known
    (config/ does not know tasks/)."""
    proc = proc or get_procedure()
    known = parts()
    for name, event in proc.events.items():
        if event.notify and event.message not in known:
            raise ConfigurationError(
                f"{proc.source}: event {name!r} sends the e-mail message {event.message!r}, "
                f"which the e-mail catalogue does not have (known: {', '.join(sorted(known))}); "
                f"add it to {PARTS_FILE} and its words to both catalogues, or name another "
                "message"
            )


def _message(template: str) -> dict[str, list[str]]:
    message = message_of(template)
    entry = parts().get(message)
    if entry is None:
        raise ValueError(
            f"{template!r} sends the message {message!r}, which {PARTS_FILE} does not list; "
            "add it there (and its words to both catalogues) or name another message in the "
            "procedure"
        )
    return entry


def _deadline_after(template: str) -> str:
    """The deadline kind of the state ``template``'s event leads to (a case opened: the
    initial state's), as the procedure says; "" when none runs there."""
    proc = get_procedure()
    event = proc.events.get(template)
    state = proc.initial if template == "open" else event.dest if event else None
    return (proc.states[state].deadline or "") if state else ""


def recipients(template: str) -> list[str]:
    """The recipients ``template`` has wording of its own for (others get a generic note;
    students never do: a template without student wording refuses a student)."""
    _check(template, "template", templates())
    written = _message(template)
    return [r for r in RECIPIENTS if r in written]


# What an office recipient without words of its own is told.
_GENERIC: dict[str, str] = {
    "happened": N_("mail.generic.office.happened"),
    "action": N_("mail.generic.office.action"),
}

# The by-when sentence by deadline kind (config.procedure.KNOWN_DEADLINES), for students and
# for the office.
_DUE: dict[bool, dict[str, str]] = {
    True: {
        "enrolment": N_("mail.due.student.enrolment"),
        "result": N_("mail.due.student.result"),
        "transcript": N_("mail.due.student.transcript"),
        "retake": N_("mail.due.student.retake"),
        "submission": N_("mail.due.student.submission"),
        "decision": N_("mail.due.student.decision"),
        "info_reply": N_("mail.due.student.info_reply"),
        "appeal_window": N_("mail.due.student.appeal_window"),
        "board_decision": N_("mail.due.student.board_decision"),
        "other": N_("mail.due.student.other"),
    },
    False: {
        "enrolment": N_("mail.due.office.enrolment"),
        "result": N_("mail.due.office.result"),
        "transcript": N_("mail.due.office.transcript"),
        "retake": N_("mail.due.office.retake"),
        "submission": N_("mail.due.office.submission"),
        "decision": N_("mail.due.office.decision"),
        "info_reply": N_("mail.due.office.info_reply"),
        "appeal_window": N_("mail.due.office.appeal_window"),
        "board_decision": N_("mail.due.office.board_decision"),
        "other": N_("mail.due.office.other"),
    },
}


def render(template: str, *, recipient: str, language: str, context: Mapping[str, Any]) -> Rendered:
    """The e-mail ``template`` for ``recipient`` in ``language``, filled from ``context``.

    Raises ValueError for an unknown template, recipient or language, a missing or malformed
    ``case_id``, or a template that has nothing to say to a student.
    """
    _check(language, "language", LANGUAGES)
    _check(template, "template", templates())
    _check(recipient, "recipient", RECIPIENTS)
    entry = _message(template)
    message = message_of(template)
    student = recipient == "student"
    written = entry.get(recipient)
    if written is None and student:
        raise ValueError(
            f"template {template!r} has no wording for students; it is "
            f"written for: {', '.join(recipients(template))}"
        )
    gettext = say(language)
    # The message's parts are named by parts.toml (extract_parts gives their ids to Babel).
    ids = (
        {name: f"mail.{message}.{recipient}.{name}" for name in written}
        if written is not None
        else _GENERIC
    )

    def part(name: str, values: Mapping[str, Any]) -> str:
        msgid = ids.get(name)
        return gettext(msgid, **values).strip() if msgid else ""

    values = _values(template, student, language, gettext, context)
    subject_id = f"mail.{message}.subject"
    values["title"] = part("subject", values) or gettext(subject_id, **values).strip()
    # The generic office note says the state only when there is one.
    values["current_status"] = (
        gettext("mail.current_status", **values) if values["state_label"] else ""
    )
    subject = gettext("mail.subject", **values)
    due = ""
    if values["due_at_local"]:
        by_kind = _DUE[student]
        sentence = by_kind.get(values["due_kind"]) or by_kind["other"]
        if values["due_passed"]:
            sentence = N_("mail.due_passed")  # never "by" a day that is gone
        due = part("due", values) or gettext(sentence, **values).strip()
    layout = {
        "language": language,
        "subject": subject,
        "student": student,
        "_": gettext,
        "greeting": (
            gettext("mail.greeting_named", **values)
            if student and values["student_name"]
            else gettext("mail.greeting_student")
            if student
            else gettext("mail.greeting_office")
        ),
        "happened": part("happened", values),
        "next": part("next", values),
        "due": due,
        "action": part("action", values),
        "message": values["message"],
        "message_heading": part("message_heading", values) or gettext("mail.message"),
        "decision": _decision(context.get("decision"), language, gettext),
        "legal": (
            gettext("mail.legal", **values).strip()
            if student and template in legal_remedies()
            else ""
        ),
        "status_url": values["status_url"] if student else "",
        "office_name": values["office_name"],
        "office_email": values["office_email"],
        "footer": gettext("mail.footer", **values).strip(),
    }
    env = _environment()
    text = env.get_template("layout.txt").render(layout)
    html = env.get_template("layout.html").render(layout)
    return Rendered(subject=subject, text=text.rstrip("\n") + "\n", html=html)


def _check(value: str, what: str, allowed: tuple[str, ...] | list[str]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; allowed: {', '.join(allowed)}")


@functools.cache
def _environment() -> Environment:
    # The layouts are files: the HTML one escapes everything it inserts, the text one nothing.
    return Environment(
        loader=FileSystemLoader(MAIL_DIR),
        autoescape=select_autoescape(["html"], default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def extract_parts(fileobj: Any, keywords: Any, comment_tags: Any, options: Any) -> Any:
    """Babel's extraction method for ``parts.toml`` (babel.cfg): the message ids of every
    message's subject and parts, so ``make messages`` and the catalogue test know them."""
    listed: dict[str, dict[str, list[str]]] = tomllib.loads(fileobj.read().decode("utf-8"))
    for message, by_recipient in listed.items():
        yield 0, None, f"mail.{message}.subject", []
        for recipient, names in by_recipient.items():
            for name in names:
                yield 0, None, f"mail.{message}.{recipient}.{name}", []


def _case_id(context: Mapping[str, Any]) -> int:
    raw = context.get("case_id")
    if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0:
        return raw
    if isinstance(raw, str) and raw.isascii() and raw.isdigit():
        return int(raw)
    raise ValueError(f"context needs case_id, a positive whole number (got {raw!r})")


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _values(
    template: str, student: bool, language: str, _: Say, context: Mapping[str, Any]
) -> dict[str, Any]:
    """The facts every phrase may use: all defined, empty strings where unknown."""
    values: dict[str, Any] = {key: _text(context.get(key)) for key in _TEXT_KEYS}
    values["case_id"] = _case_id(context)
    # The deadline had passed when the message's moment came (``tasks.delivery.compose``).
    values["due_passed"] = context.get("due_passed") is True
    if not values["due_kind"]:
        head = template.partition(".")[0]
        values["due_kind"] = head if "." in template else _deadline_after(template)
    if not values["appeal_ends_local"] and values["due_kind"] == "appeal_window":
        values["appeal_ends_local"] = values["due_at_local"]
    # The procedure's label in the mail's language wins for a known state, so a German mail
    # never shows the English label; a state the procedure does not know keeps the caller's.
    state = _text(context.get("state"))
    known = get_procedure().states.get(state)
    values["state_label"] = known.labels[language] if known else _text(context.get("state_label"))
    values["todo"] = known.todo[language] if known else ""
    url = _text(context.get("status_url"))
    values["status_url"] = url if student and url.startswith(("https://", "http://")) else ""

    title, code, term = values["course_title"], values["course_code"], values["term"]
    details = ", ".join(part for part in (code, term) if part)
    quoted = _("mail.quote_open") + title + _("mail.quote_close") if title else ""
    course = " ".join(
        part for part in (quoted, f"({details})" if details and title else details) if part
    )
    values["course_ref"] = f" {course}" if course else ""
    values["partner_ref"] = ""
    values["by_due"] = values["by_appeal_end"] = ""
    values["time_limit"] = values["office_ref"] = values["status_ref"] = ""
    # These are phrases themselves, each said only when its fact is known; render them after
    # the facts they use are set.
    if values["partner_name"]:
        values["partner_ref"] = _("mail.partner_ref", **values)
    if values["due_at_local"]:
        values["by_due"] = _(
            N_("mail.by_due_passed") if values["due_passed"] else N_("mail.by_due"), **values
        )
    if values["appeal_ends_local"]:
        values["by_appeal_end"] = _("mail.by_appeal_end", **values)
        values["time_limit"] = _("mail.time_limit", **values)
    if values["office_name"]:
        values["office_ref"] = _("mail.office_ref", **values)
    if values["state_label"]:
        values["status_ref"] = _("mail.status_ref", **values)
    return values


def _module(raw: Any, language: str) -> dict[str, str]:
    if isinstance(raw, Mapping):
        name = " ".join(p for p in (_text(raw.get("code")), _text(raw.get("title"))) if p)
        ects = format_credits(_text(raw.get("ects")), language)
    else:
        name, ects = _text(raw), ""
    return {"name": name, "ects": ects, "label": f"{name}, {ects} ECTS" if ects else name}


def _modules(raw: Any, language: str) -> list[dict[str, str]]:
    if raw is None or raw == "":
        return []
    items = raw if isinstance(raw, list | tuple) else [raw]
    return [m for m in (_module(item, language) for item in items) if m["name"]]


def _total(raw: Mapping[str, Any], language: str) -> str:
    if _text(raw.get("ects")):
        return format_credits(_text(raw.get("ects")), language)
    modules = raw.get("modules")
    if not isinstance(modules, list | tuple) or not modules:
        return ""
    try:
        total = sum((Decimal(_text(m.get("ects"))) for m in modules), Decimal(0))
    except (AttributeError, InvalidOperation):
        return ""  # not every module states its credits: show none rather than a wrong sum
    return format_credits(total, language)


def _decision(raw: Any, language: str, _: Say) -> dict[str, Any] | None:
    """The decision as the layouts show it, or None when there is nothing to show."""
    if not isinstance(raw, Mapping):
        return None
    reasons_raw = raw.get("reasons")
    criteria = criterion_words(_)
    reasons: list[tuple[str, str]]
    if isinstance(reasons_raw, Mapping):
        reasons = [
            (criteria.get(str(k)) or str(k).replace("_", " ").capitalize(), _text(v))
            for k, v in reasons_raw.items()
            if _text(v)
        ]
    elif isinstance(reasons_raw, list | tuple):
        reasons = [("", _text(v)) for v in reasons_raw if _text(v)]
    else:
        reasons = [("", _text(reasons_raw))] if _text(reasons_raw) else []
    grade = _text(raw.get("grade"))
    shown = {
        "modules": _modules(raw.get("modules"), language),
        "ects": _total(raw, language),
        "grade": _("mail.passed") if grade.lower() == "passed" else format_grade(grade, language),
        "not_credited": _modules(raw.get("not_credited"), language),
        "reasons": reasons,
        "advice": _text(raw.get("advice")),
    }
    return shown if any(shown.values()) else None


def render_invitation(
    language: str,
    *,
    name: str,
    username: str,
    url: str,
    expires_local: str,
    office_name: str,
    office_email: str | None,
) -> Rendered:
    """The e-mail inviting an office user to set their password through a one-time link.
    Concerning no case, it has none of a case message's parts; its words are ``mail.invitation.*``
    in the catalogues."""
    from html import escape

    _check(language, "language", LANGUAGES)
    _ = say(language)
    values = {"name": name, "username": username, "office_name": office_name}
    subject = _("mail.invitation.subject")
    paragraphs = [
        _("mail.invitation.greeting", **values),
        _("mail.invitation.happened", **values),
        _("mail.invitation.action"),
    ]
    after = [
        _("mail.invitation.expires", expires=expires_local),
        _("mail.invitation.ignore"),
    ]
    closing = [_("mail.sign_off"), office_name, *([office_email] if office_email else [])]
    text = "\n\n".join([*paragraphs, url, *after, "\n".join(closing)]) + "\n"
    html = (
        f'<!DOCTYPE html>\n<html lang="{language}"><head><meta charset="utf-8">'
        f"<title>{escape(subject)}</title></head><body>\n"
        + "".join(f"<p>{escape(p)}</p>\n" for p in paragraphs)
        + f'<p><a href="{escape(url)}">{escape(url)}</a></p>\n'
        + "".join(f"<p>{escape(p)}</p>\n" for p in after)
        + "<p>"
        + "<br>\n".join(escape(line) for line in closing)
        + "</p>\n</body></html>\n"
    )
    return Rendered(subject=subject, text=text, html=html)
