"""Decision notices (Bescheide): the formal letter a recognition decision is issued with.

``render_notice`` turns a case's decision into the notice the student receives, in German or
English, as HTML and PDF. Every notice states the decision (tenor) with the home modules, the
ECTS credits and the grade, and how a foreign grade was converted; its reasons, per
substantial-difference criterion, with the legal standard (Lisbon Recognition Convention
art. V.1 and III.3(5), § 63a HG NRW: recognition unless the institution shows a substantial
difference); for a refusal, full or partial, how recognition could still be obtained; and the
instructions on legal remedies (Rechtsbehelfsbelehrung) with the date the period ends.

The wording lives in the gettext catalogues (``notice.*`` in ``workflow/locale``), put together
by one Jinja2 template (``templates/notice/notice.html``, built on ``base.html``) rendered with
the language's words; this module prepares every value it shows (dates in the institution's
zone, numbers in the language's notation), so the same inputs always give the same HTML. Free
text is autoescaped, and so is every value a sentence of the catalogue is filled with.

The PDF is rendered by WeasyPrint from that HTML alone: ``base_url=None`` and a URL fetcher that
refuses every URL (file, http, data, anything), so neither a template nor injected text can make
the renderer read a file or reach the network. The fonts come from the system's fontconfig
(DejaVu). The PDF is tagged (PDF/UA-1, for screen readers), and its creation date is the
notice's issue date, so the same inputs give the same PDF bytes.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from workflow.catalogues import N_, Say, say, translations
from workflow.errors import ValidationFailed
from workflow.texts import format_credits, format_date, format_decimal, format_grade

__all__ = [
    "CRITERIA",
    "EVENTS",
    "LANGUAGES",
    "TEMPLATE_DIR",
    "Notice",
    "URLRefused",
    "criterion_labels",
    "format_date",
    "html_to_pdf",
    "last_day_of_period",
    "refusing_url_fetcher",
    "render_notice",
    "render_notice_html",
]

TEMPLATE_DIR: Final = Path(__file__).resolve().parent / "templates" / "notice"
LANGUAGES: Final = ("de", "en")
EVENTS: Final = ("recognize", "recognize_partially", "reject", "grant_appeal", "dismiss_appeal")
# The criteria of a substantial difference, in the order a notice discusses them.
CRITERIA: Final = ("level", "workload", "learning_outcomes", "profile", "quality")

# The outcome each event's decision must have (dismiss_appeal leaves the decision standing:
# a refusal, or a full recognition whose grade or credits the student contested, ADR 0015).
_OUTCOMES: Final[Mapping[str, frozenset[str]]] = {
    "recognize": frozenset({"recognized"}),
    "recognize_partially": frozenset({"partially_recognized"}),
    "reject": frozenset({"rejected"}),
    "grant_appeal": frozenset({"recognized"}),
    "dismiss_appeal": frozenset({"rejected", "partially_recognized", "recognized"}),
}

_FORMULA: Final = "x = 1 + 3 × (Nmax − Nd) / (Nmax − Nmin)"
_MIDNIGHT: Final = dt.time(0, 0)
_UNSAFE_FILENAME: Final = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Notice:
    """A rendered notice: the HTML (the document of record) and its PDF."""

    html: str
    pdf: bytes
    language: str
    filename: str


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def render_notice(
    *,
    event: str,
    decision: Mapping[str, Any] | None,
    data: Mapping[str, Any],
    language: str,
    case_id: int,
    student_name: str,
    matriculation_number: str,
    course: Mapping[str, Any],
    institution: Mapping[str, Any],
    issued_at: dt.datetime,
    appeal_ends_at: dt.datetime | None,
    zone: ZoneInfo,
) -> Notice:
    """Render the notice of ``event`` for one case in ``language`` (``de`` or ``en``).

    ``decision`` is the case's decision as the guards store it (for ``grant_appeal`` the new
    recognition; for ``dismiss_appeal`` the decision that stands, or ``None``); ``data`` is the
    event data (the board's ``reasons`` for the appeal events). ``course`` has ``title``,
    ``code``, ``partner_name``, ``term``, ``ects``, ``grade_as_printed`` and ``scheme``;
    ``institution`` has ``name`` and ``office_email`` and optionally ``office_name``,
    ``address_lines``, ``court`` (``name``, ``address_lines``: the administrative court for
    the action against a decision on an objection), ``statute`` (default ``§ 63a HG NRW``)
    and ``signatory`` (a name; ``data["signatory"]`` wins). ``appeal_ends_at`` is the
    instant the remedy period ends (24:00 local time of its last day, i.e. 00:00 of the next
    day); the notice names that last day. Raises ``ValidationFailed`` for anything it cannot
    turn into a lawful notice.
    """
    html = render_notice_html(
        event=event,
        decision=decision,
        data=data,
        language=language,
        case_id=case_id,
        student_name=student_name,
        matriculation_number=matriculation_number,
        course=course,
        institution=institution,
        issued_at=issued_at,
        appeal_ends_at=appeal_ends_at,
        zone=zone,
    )
    issued_on = issued_at.astimezone(zone).date()
    filename = _UNSAFE_FILENAME.sub(
        "-",
        f"{'bescheid' if language == 'de' else 'notice'}-{case_id}-{event}-"
        f"{issued_on.isoformat()}-{language}.pdf",
    )
    return Notice(html=html, pdf=html_to_pdf(html), language=language, filename=filename)


def render_notice_html(
    *,
    event: str,
    decision: Mapping[str, Any] | None,
    data: Mapping[str, Any],
    language: str,
    case_id: int,
    student_name: str,
    matriculation_number: str,
    course: Mapping[str, Any],
    institution: Mapping[str, Any],
    issued_at: dt.datetime,
    appeal_ends_at: dt.datetime | None,
    zone: ZoneInfo,
) -> str:
    """The notice as HTML only (what :func:`render_notice` hands to the PDF renderer)."""
    context = _context(
        event=event,
        decision=decision,
        data=data,
        language=language,
        case_id=case_id,
        student_name=student_name,
        matriculation_number=matriculation_number,
        course=course,
        institution=institution,
        issued_at=issued_at,
        appeal_ends_at=appeal_ends_at,
        zone=zone,
    )
    return _environment().get_template("notice.html").render(context)


class URLRefused(ValueError):
    """The notice renderer was asked to load a URL; it never loads any."""


def refusing_url_fetcher() -> Any:
    """A WeasyPrint URL fetcher that refuses every URL (file, http(s), data, anything)."""
    return _fetcher_class()()


def html_to_pdf(html: str, *, url_fetcher: Any = None) -> bytes:
    """Render ``html`` to PDF with WeasyPrint, never reading a file or the network.

    ``url_fetcher`` defaults to :func:`refusing_url_fetcher` (tests pass a recording wrapper
    around it). WeasyPrint logs a refused resource and leaves it out; the notices' own
    templates reference none.
    """
    # Imported on first use: importing WeasyPrint loads pango, which HTML rendering never needs.
    import weasyprint  # type: ignore[import-untyped]

    fetcher = url_fetcher if url_fetcher is not None else refusing_url_fetcher()
    document = weasyprint.HTML(string=html, base_url=None, url_fetcher=fetcher)
    # PDF/UA-1: a tagged, accessible PDF (title, language, structure), as public bodies owe.
    pdf = document.write_pdf(pdf_variant="pdf/ua-1")
    if not isinstance(pdf, bytes):  # pragma: no cover - write_pdf() without target returns bytes
        raise TypeError("WeasyPrint returned no PDF bytes")
    return pdf


def last_day_of_period(ends_at: dt.datetime, zone: ZoneInfo) -> dt.date:
    """The last day of a period that ends at ``ends_at``: a period ends at 24:00 local time,
    stored as 00:00 of the next day, which belongs to the day before (§ 188 BGB)."""
    if ends_at.tzinfo is None:
        raise ValidationFailed("the end of the remedy period must be a timezone-aware instant")
    local = ends_at.astimezone(zone)
    if local.time() == _MIDNIGHT:
        return local.date() - dt.timedelta(days=1)
    return local.date()


# --------------------------------------------------------------------------------------------
# PDF rendering
# --------------------------------------------------------------------------------------------


@functools.cache
def _fetcher_class() -> type[Any]:
    from weasyprint.urls import URLFetcher  # type: ignore[import-untyped]

    class RefusingURLFetcher(URLFetcher):  # type: ignore[misc]
        """Refuses every URL; WeasyPrint then leaves the resource out."""

        def fetch(self, url: str, headers: Any = None) -> Any:
            raise URLRefused(f"notices load no external resources; refused {url[:200]!r}")

        def open(self, url: Any, data: Any = None, timeout: Any = None) -> Any:
            raise URLRefused("notices load no external resources")

    return RefusingURLFetcher


# --------------------------------------------------------------------------------------------
# Context: every value the templates show, formatted
# --------------------------------------------------------------------------------------------


@functools.cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=select_autoescape(["html"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )


def _html_gettext(language: str) -> Say:
    """The template's ``_``: the catalogue's sentence (the catalogues are the project's own
    text, written as the HTML shows it) with its values escaped as they go in (a value already
    safe, such as a sentence made by ``_``, is kept), as Jinja2's new-style gettext does under
    autoescaping."""
    gettext = translations(language).gettext

    def _(msgid: str, /, **values: object) -> Markup:
        # The sentence is the project's (a reviewed catalogue); the values are escaped by %.
        return Markup(gettext(msgid)) % values  # noqa: S704

    return _


def _context(
    *,
    event: str,
    decision: Mapping[str, Any] | None,
    data: Mapping[str, Any],
    language: str,
    case_id: int,
    student_name: str,
    matriculation_number: str,
    course: Mapping[str, Any],
    institution: Mapping[str, Any],
    issued_at: dt.datetime,
    appeal_ends_at: dt.datetime | None,
    zone: ZoneInfo,
) -> dict[str, Any]:
    if language not in LANGUAGES:
        raise ValidationFailed(
            f"no notice in language {language!r}; available: {', '.join(LANGUAGES)}"
        )
    if event not in EVENTS:
        raise ValidationFailed(
            f"event {event!r} issues no decision notice; notices exist for {', '.join(EVENTS)}"
        )
    if issued_at.tzinfo is None:
        raise ValidationFailed("issued_at must be a timezone-aware instant")
    if decision is None and event != "dismiss_appeal":
        raise ValidationFailed(f"case {case_id} has no decision; a {event} notice needs one")
    if decision is not None:
        outcome = decision.get("outcome")
        if outcome not in _OUTCOMES[event]:
            raise ValidationFailed(
                f"a {event} notice needs a decision with outcome "
                f"{' or '.join(sorted(_OUTCOMES[event]))}, not {outcome!r}"
            )
    name = _required_text(institution, "name", "the institution's name")
    office_email = _required_text(institution, "office_email", "the examination office's e-mail")
    if not student_name.strip():
        raise ValidationFailed("the student's name is required for a notice")

    lang = language
    decision = decision or {}
    outcome = decision.get("outcome")
    board_reasons = data.get("reasons") if event in ("grant_appeal", "dismiss_appeal") else None
    if event in ("grant_appeal", "dismiss_appeal") and not _is_text(board_reasons):
        raise ValidationFailed(f"a {event} notice needs the board's reasons (reasons=...)")
    refusal = outcome in ("rejected", "partially_recognized")
    advice = _text(decision.get("advice"))
    if refusal and not advice:
        raise ValidationFailed(
            "a refusal must say how recognition could still be obtained (advice is missing)"
        )
    reasons = _reasons(decision.get("reasons"), lang)
    if refusal and not reasons:
        raise ValidationFailed(
            "a refusal must state the substantial differences per criterion (reasons missing)"
        )

    window_end = None
    if appeal_ends_at is not None:
        window_end = format_date(last_day_of_period(appeal_ends_at, zone), lang)
    # The remedy: an objection (Widerspruch) against the office's decision; against the
    # board's decision on an objection, an action (Klage) at the administrative court.
    remedy = "action" if event in ("grant_appeal", "dismiss_appeal") else "objection"
    court = institution.get("court")
    court_context = None
    if isinstance(court, Mapping) and _text(court.get("name")):
        court_context = {
            "name": _text(court.get("name")),
            "address_lines": _lines(court.get("address_lines", court.get("address"))),
        }

    return {
        "lang": lang,
        "_": _html_gettext(lang),
        "event": event,
        "outcome": outcome,
        "refusal": refusal,
        "remedy": remedy,
        # A full recognition aggrieves nobody but in details (e.g. the grade): a short note.
        "short_remedy": outcome == "recognized",
        "window_end": window_end,
        "court": court_context,
        "case_id": str(case_id),
        "issued_on": format_date(issued_at.astimezone(zone).date(), lang),
        "created": issued_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "student_name": student_name.strip(),
        "matriculation_number": matriculation_number.strip(),
        "institution": {
            "name": name,
            "office_name": _text(institution.get("office_name")),
            "office_email": office_email,
            "address_lines": _lines(institution.get("address_lines", institution.get("address"))),
            "statute": _text(institution.get("statute")) or "§ 63a HG NRW",
        },
        "course": {
            "title": _text(course.get("title")),
            "code": _text(course.get("code")),
            "partner_name": _text(course.get("partner_name")),
            "term": _text(course.get("term")),
            "ects": format_credits(_text(course.get("ects")), lang),
            "grade": _text(course.get("grade_as_printed")),
            "scheme": _text(course.get("scheme")),
        },
        "decided_on": _decided_on(decision.get("decided_at"), zone, lang),
        "modules": _modules(decision.get("modules"), lang),
        "ects_total": format_credits(_text(decision.get("ects")), lang),
        "grade": _grade(decision.get("grade"), lang),
        "grade_is_passed": str(decision.get("grade", "")).strip().lower() == "passed",
        "not_credited": _modules(decision.get("not_credited"), lang),
        "reasons": reasons,
        "advice": advice,
        "conversion": _conversion(decision.get("conversion"), lang),
        "board_reasons": _text(board_reasons),
        "signatory": _text(data.get("signatory")) or _text(institution.get("signatory")),
    }


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _text(value: object) -> str:
    if value is None:
        return ""
    return str(value).strip()


def _required_text(mapping: Mapping[str, Any], key: str, what: str) -> str:
    value = _text(mapping.get(key))
    if not value:
        raise ValidationFailed(f"{what} is required for a notice ({key} is missing)")
    return value


def _lines(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [line.strip() for line in value.splitlines() if line.strip()]
    if isinstance(value, Sequence):
        return [str(line).strip() for line in value if str(line).strip()]
    return [str(value).strip()]


def _grade(value: object, lang: str) -> str:
    text = _text(value)
    if text.lower() == "passed":
        _ = say(lang)
        return _("notice.passed")
    return format_grade(text, lang)


def decision_date(value: object, zone: ZoneInfo) -> dt.date | None:
    """The local day of a stored ``decided_at`` (an aware datetime or ISO text; naive is UTC)."""
    if isinstance(value, dt.datetime):
        instant = value
    elif isinstance(value, str) and value.strip():
        try:
            instant = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValidationFailed(f"decided_at {value!r} is not an ISO date-time") from None
    else:
        return None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=dt.UTC)  # stored instants are UTC
    return instant.astimezone(zone).date()


def _decided_on(value: object, zone: ZoneInfo, lang: str) -> str:
    day = decision_date(value, zone)
    return "" if day is None else format_date(day, lang)


def _modules(value: object, lang: str) -> list[dict[str, str]]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    modules = []
    for item in value:
        if not isinstance(item, Mapping):
            continue
        modules.append(
            {
                "code": _text(item.get("code")),
                "title": _text(item.get("title")),
                "ects": format_credits(_text(item.get("ects")), lang),
                "regulation_version": _text(item.get("regulation_version")),
            }
        )
    return modules


def _reasons(value: object, lang: str) -> list[dict[str, str]]:
    """Per criterion, in the canonical order; unknown criteria follow under their own name."""
    if not isinstance(value, Mapping):
        return []
    labels = _criteria(say(lang))
    ordered = [c for c in CRITERIA if c in value] + sorted(k for k in value if k not in CRITERIA)
    return [
        {"criterion": str(key), "label": labels.get(str(key), str(key)), "text": _text(value[key])}
        for key in ordered
        if _text(value[key])
    ]


def _show(value: object, lang: str) -> str:
    """A stored conversion number for display: at most four decimals, ``…`` if cut."""
    return format_decimal(_text(value), lang, max_places=4)


def criterion_labels(language: str) -> dict[str, str]:
    """The criteria as a notice in ``language`` names them."""
    return _criteria(say(language))


def _criteria(_: Say) -> dict[str, str]:
    """The criteria as a notice names them (with what each measures)."""
    return {
        "level": _("notice.criterion.level"),
        "workload": _("notice.criterion.workload"),
        "learning_outcomes": _("notice.criterion.learning_outcomes"),
        "profile": _("notice.criterion.profile"),
        "quality": _("notice.criterion.quality"),
    }


_METHODS: Final = {
    "bavarian": N_("notice.method.bavarian"),
    "percentile": N_("notice.method.percentile"),
    "passfail": N_("notice.method.passfail"),
}
_ROUNDING: Final = {
    "nearest": N_("notice.rounding.nearest"),
    "truncate": N_("notice.rounding.truncate"),
}
_GROUPS: Final = {
    "isced": N_("notice.group.isced"),
    "offering": N_("notice.group.offering"),
    "module": N_("notice.group.module"),
    "programme": N_("notice.group.programme"),
    "all": N_("notice.group.all"),
}


def _table_line(table: object, side: str, lang: str) -> str:
    """Which grade distribution a percentile conversion used: its reference group and year."""
    if not isinstance(table, Mapping):
        return ""
    _ = say(lang)
    kind = _text(table.get("scope")).split(":", 1)[0]
    label = _(_GROUPS[kind]) if kind in _GROUPS else kind
    group = " ".join(part for part in (label, _text(table.get("group"))) if part)
    year = _text(table.get("reference_year"))
    if side == "partner":
        return _("notice.table.partner", group=group, year=year)
    return _("notice.table.home", group=group, year=year)


def _conversion(value: object, lang: str) -> dict[str, Any] | None:
    """What the notice says about the grade conversion, as lines in ``lang``."""
    if not isinstance(value, Mapping):
        return None
    _ = say(lang)
    method = _text(value.get("method"))
    raw_parameters = value.get("parameters")
    parameters: Mapping[str, Any] = raw_parameters if isinstance(raw_parameters, Mapping) else {}
    lines: list[str] = []
    if method == "bavarian":
        nmax, nmin, nd = (_text(parameters.get(k)) for k in ("nmax", "nmin", "nd"))
        effective = _text(parameters.get("effective_nmax"))
        best = effective or nmax
        ordinals = parameters.get("ordinals")
        if isinstance(ordinals, Mapping) and ordinals:
            mapping = ", ".join(f"{k} = {v}" for k, v in ordinals.items())
            lines.append(_("notice.conversion.ordinals", mapping=mapping))
        lines.append(
            _(
                "notice.conversion.parameters",
                nmax=_show(nmax, lang),
                nmin=_show(nmin, lang),
                nd=_show(nd, lang),
            )
        )
        if effective:
            lines.append(
                _(
                    "notice.conversion.effective",
                    effective=_show(effective, lang),
                    nmax=_show(nmax, lang),
                )
            )
        exact = value.get("exact")
        formula = (
            f"{_FORMULA} = 1 + 3 × ({_show(best, lang)} − {_show(nd, lang)}) / "
            f"({_show(best, lang)} − {_show(nmin, lang)})"
        )
        if _text(exact):
            formula += f" = {_show(exact, lang)}"
        lines.append(formula)
        rounding = _text(parameters.get("rounding"))
        if rounding:
            step = _(_ROUNDING[rounding]) if rounding in _ROUNDING else rounding
            if _text(exact):
                step += f": {_show(exact, lang)} → {_grade(value.get('grade'), lang)}"
            lines.append(step)
    elif method == "percentile":
        details = value.get("percentile")
        if isinstance(details, Mapping):
            band = details.get("band")
            if isinstance(band, Mapping):
                lines.append(
                    _(
                        "notice.conversion.band",
                        label=_text(band.get("label")),
                        lower=_show(band.get("lower"), lang),
                        upper=_show(band.get("upper"), lang),
                    )
                )
            lines.append(
                _(
                    "notice.conversion.midpoint",
                    midpoint=_show(details.get("midpoint"), lang),
                    grade=_grade(details.get("by_midpoint"), lang),
                )
            )
            lines.append(
                _(
                    "notice.conversion.overlap",
                    grade=_grade(details.get("by_largest_overlap"), lang),
                )
            )
        tables = parameters.get("tables")
        if isinstance(tables, Mapping):
            shown = [_table_line(tables.get(side), side, lang) for side in ("partner", "home")]
            lines.extend(line for line in shown if line)
    elif method == "passfail":
        lines.append(_("notice.conversion.passfail"))
    if not lines:
        # A method this notice does not describe itself: the conversion's own record of its
        # steps (kept in English with the decision).
        explanation = value.get("explanation")
        if isinstance(explanation, Sequence) and not isinstance(explanation, str):
            lines.extend(_text(step) for step in explanation if _text(step))
    return {
        "original": _text(value.get("original")),
        "scheme": _text(value.get("scheme")),
        "method": _(_METHODS[method]) if method in _METHODS else method,
        "grade": _grade(value.get("grade"), lang),
        "lines": lines,
    }
