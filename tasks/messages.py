"""Notification e-mails in English and German: subject, plain text and HTML for each template.

The wording lives in one phrase catalogue per language (``templates/mail/en.toml`` and
``de.toml``, the same keys in both); two Jinja2 layouts (``layout.txt``, ``layout.html``) put
the phrases together. A student learns what happened, what happens next, by when and what to do
now; a decision lists what was credited, and a refusal adds its reasons, advice and the
instructions on legal remedies. Office recipients get a short, factual note. Dates arrive
preformatted in local time (``due_at_local``); credits and grades are written as the language
writes them (``workflow.format_credits``, ``format_grade``: "5,0" and "1,7" in German).

Only the facts named in ``render``'s context are ever used, so an e-mail address or any other
secret passed along by mistake never reaches a text; ``status_url`` goes to students only.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, select_autoescape

from config.procedure import get_procedure
from config.settings import get_settings
from workflow import format_credits, format_grade, reminder_kinds

MAIL_DIR = Path(__file__).with_name("templates") / "mail"

LANGUAGES = ("de", "en")
RECIPIENTS = ("student", "clerk", "examiner", "board")
OTHER = ("status_link",)

# Decisions that refuse something carry the instructions on legal remedies (§ 37(6) VwVfG,
# § 58 VwGO; recognition law: a refusal states how recognition could still be obtained).
LEGAL_REMEDIES = frozenset({"reject", "recognize_partially"})

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
    """The catalogue entry a template is worded by: the message its event names in the
    procedure (``message``, its own name unless it says otherwise), else the template."""
    event = get_procedure().events.get(template)
    return event.message if event is not None else template


def _entry(catalogue: Mapping[str, Any], template: str, language: str) -> dict[str, Any]:
    message = message_of(template)
    entry: dict[str, Any] | None = catalogue["messages"].get(message)
    if entry is None:
        raise ValueError(
            f"{template!r} sends the message {message!r}, which {MAIL_DIR / language}.toml "
            "does not word; add [messages.<id>] there or name another message in the procedure"
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
    written = _entry(_catalogue("en"), template, "en")
    return [r for r in RECIPIENTS if r in written]


def render(template: str, *, recipient: str, language: str, context: Mapping[str, Any]) -> Rendered:
    """The e-mail ``template`` for ``recipient`` in ``language``, filled from ``context``.

    Raises ValueError for an unknown template, recipient or language, a missing or malformed
    ``case_id``, or a template that has nothing to say to a student.
    """
    _check(language, "language", LANGUAGES)
    _check(template, "template", templates())
    _check(recipient, "recipient", RECIPIENTS)
    catalogue = _catalogue(language)
    entry = _entry(catalogue, template, language)
    student = recipient == "student"
    wording: dict[str, str] | None = entry.get(recipient)
    if wording is None:
        if student:
            raise ValueError(
                f"template {template!r} has no wording for students; it is "
                f"written for: {', '.join(recipients(template))}"
            )
        wording = catalogue["generic"]["office"]

    values = _values(template, student, language, catalogue, context)
    values["title"] = _say(wording.get("subject") or entry["subject"], values)
    subject = _say(catalogue["text"]["subject"], values)
    due = ""
    if values["due_at_local"]:
        kind = values["due_kind"]
        by_kind = catalogue["due"]["student" if student else "office"]
        due = _say(wording.get("due") or by_kind.get(kind) or by_kind["other"], values)
    text_labels: dict[str, str] = catalogue["text"]
    layout = {
        "language": language,
        "subject": subject,
        "student": student,
        "t": text_labels,
        "greeting": _say(
            text_labels["greeting_named"]
            if student and values["student_name"]
            else text_labels["greeting_student"]
            if student
            else text_labels["greeting_office"],
            values,
        ),
        "happened": _say(wording["happened"], values),
        "next": _say(wording.get("next", ""), values),
        "due": due,
        "action": _say(wording["action"], values),
        "message": values["message"],
        "message_heading": wording.get("message_heading") or text_labels["message"],
        "decision": _decision(context.get("decision"), language, catalogue),
        "legal": (
            _say(text_labels["legal"], values) if student and template in LEGAL_REMEDIES else ""
        ),
        "status_url": values["status_url"] if student else "",
        "office_name": values["office_name"],
        "office_email": values["office_email"],
        "footer": _say(text_labels["footer"], values),
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
    # Phrases are compiled with from_string and produce plain text, so string templates are
    # not escaped (default_for_string=False); the HTML layout escapes everything it inserts.
    return Environment(
        loader=FileSystemLoader(MAIL_DIR),
        autoescape=select_autoescape(["html"], default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@functools.cache
def _catalogue(language: str) -> dict[str, Any]:
    with (MAIL_DIR / f"{language}.toml").open("rb") as fh:
        return tomllib.load(fh)


@functools.cache
def _phrase(source: str) -> Template:
    return _environment().from_string(source)


def _say(source: str, values: Mapping[str, Any]) -> str:
    return _phrase(source).render(values).strip() if source else ""


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
    template: str,
    student: bool,
    language: str,
    catalogue: Mapping[str, Any],
    context: Mapping[str, Any],
) -> dict[str, Any]:
    """The facts every phrase may use: all defined, empty strings where unknown."""
    text_labels = catalogue["text"]
    values: dict[str, Any] = {key: _text(context.get(key)) for key in _TEXT_KEYS}
    values["case_id"] = _case_id(context)
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
    quoted = f"{text_labels['quote_open']}{title}{text_labels['quote_close']}" if title else ""
    course = " ".join(
        part for part in (quoted, f"({details})" if details and title else details) if part
    )
    values["course_ref"] = f" {course}" if course else ""
    values["partner_ref"] = ""
    values["by_due"] = values["by_appeal_end"] = ""
    # These three are phrases themselves; render them after the facts they use are set.
    if values["partner_name"]:
        values["partner_ref"] = _phrase(text_labels["partner_ref"]).render(values)
    if values["due_at_local"]:
        values["by_due"] = _phrase(text_labels["by_due"]).render(values)
    if values["appeal_ends_local"]:
        values["by_appeal_end"] = _phrase(text_labels["by_appeal_end"]).render(values)
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


def _decision(raw: Any, language: str, catalogue: Mapping[str, Any]) -> dict[str, Any] | None:
    """The decision as the layouts show it, or None when there is nothing to show."""
    if not isinstance(raw, Mapping):
        return None
    reasons_raw = raw.get("reasons")
    criteria: Mapping[str, str] = catalogue["criteria"]
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
        "grade": catalogue["text"]["passed"]
        if grade.lower() == "passed"
        else format_grade(grade, language),
        "not_credited": _modules(raw.get("not_credited"), language),
        "reasons": reasons,
        "advice": _text(raw.get("advice")),
    }
    return shown if any(shown.values()) else None
