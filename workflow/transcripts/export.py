"""Export a recognition decision as an EMREX ELMO v2.0 document (``resultOfRecognition``).

The document is issued by the home institution and is meant for the student (to carry to other
systems) and for partner systems (to learn what became of their course):

``elmo``
  ``generatedDate``; the ``learner`` (names, the full name as ``alternativeName``, the
  matriculation number as a ``local`` identifier, optional date of birth and more identifiers);
``report`` (issuer: the home institution, SCHAC and Erasmus codes)
  one ``learningOpportunitySpecification`` per credited home module (type ``Module``, status
  passed, the converted grade as ``resultLabel``, its ECTS credits): what the student now holds
  at home; a rejection has none;
  ``resultOfRecognition``: title and a plain-text description in English and German (the
  decision, credited and not credited modules, ECTS, grade, how the grade was converted, the
  substantial differences per criterion, how recognition could still be obtained), ``status``
  (``Positive``, ``Partially Positive``, ``Negative``), ``decisionDate`` (in the institution's
  zone), ``recognitionBasis`` with a ``recognitionReport`` issued by the partner that holds the
  foreign achievement (course code and title, the grade as printed, grading scheme, ECTS, EQF
  level, date), one ``recognitionResult`` per credited module, and a ``recognitionMapping`` from
  the foreign course to the home modules (``local`` identifiers, as the schema says);
  optionally the notice PDF as an ``attachment`` the recognition refers to;
  ``issueDate`` and the grading schemes used.

Every document is validated before it is returned, with the schema loading of
:mod:`workflow.transcripts.elmo` (local copies only, no network). Reading the export back with
:func:`workflow.transcripts.elmo.parse_transcript` gives the learner, the home institution as
issuer, the credited modules as results and the notice as attachment; the parser deliberately skips
the learning opportunities inside ``resultOfRecognition``.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Final
from zoneinfo import ZoneInfo

from lxml import etree

from workflow.catalogues import N_, say
from workflow.decisions.notices import CRITERIA, decision_date
from workflow.errors import ValidationFailed
from workflow.texts import format_decimal, format_ects, format_grade
from workflow.transcripts.elmo import (
    ELMO_NS,
    ElmoVersion,
    TranscriptFormat,
    TranscriptVersion,
    _schema,
)

__all__ = ["ELMO_STATUS", "export_decision"]

# The decision's outcome as ELMO v2.0 ResultOfRecognition/status.
ELMO_STATUS: Final[Mapping[str, str]] = {
    "recognized": "Positive",
    "partially_recognized": "Partially Positive",
    "rejected": "Negative",
}

_XML_LANG: Final = "{http://www.w3.org/XML/1998/namespace}lang"
_GERMAN_SCHEME: Final = "de-1.0-4.0"
_PASSFAIL_SCHEME: Final = "passfail"
# Characters XML 1.0 cannot carry (lxml refuses them); free text is cleaned of them.
_NOT_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_COUNTRY: Final = re.compile(r"[A-Z]{2}")

_OUTCOMES: Final = {
    "recognized": N_("export.outcome.recognized"),
    "partially_recognized": N_("export.outcome.partially_recognized"),
    "rejected": N_("export.outcome.rejected"),
}
_CRITERIA: Final = {
    "level": N_("export.criterion.level"),
    "workload": N_("export.criterion.workload"),
    "learning_outcomes": N_("export.criterion.learning_outcomes"),
    "profile": N_("export.criterion.profile"),
    "quality": N_("export.criterion.quality"),
}


def export_decision(
    *,
    decision: Mapping[str, Any] | None,
    case_id: int,
    student_name: str,
    matriculation_number: str,
    course: Mapping[str, Any],
    institution: Mapping[str, Any],
    partner: Mapping[str, Any],
    issued_at: dt.datetime,
    zone: ZoneInfo,
    given_names: str | None = None,
    family_name: str | None = None,
    date_of_birth: dt.date | None = None,
    citizenship: str | None = None,
    learner_identifiers: Mapping[str, str] | None = None,
    notice_pdf: bytes | None = None,
    notice_language: str | None = None,
) -> bytes:
    """The case's decision as a schema-valid ELMO v2.0 document (UTF-8 bytes).

    ``course`` is the partner course as in the notice (``title``, ``code``, ``term``,
    ``ects``, ``grade_as_printed``, ``scheme``; optionally ``eqf_level``, ``language``,
    ``date`` and ``transcript_issued_at``). ``institution`` and ``partner`` carry ``name``,
    ``schac`` (or ``code``), and optionally ``erasmus_code``, ``country`` (ISO 3166-1 alpha-2)
    and ``url``. ``given_names``/``family_name`` default to ``student_name`` split at its last
    space (the full name always goes into ``alternativeName``). ``learner_identifiers`` adds
    identifiers by type (e.g. ``{"esi": "urn:schac:personalUniqueCode:int:esi:..."}``).
    ``notice_pdf`` embeds the notice as an attachment of the recognition. ``issued_at`` (aware)
    is the document's generation and issue time, so the same inputs give the same bytes.

    Raises ``ValidationFailed`` for a case without a decision or with incomplete data.
    """
    if not decision:
        raise ValidationFailed(
            f"case {case_id} has no decision yet; only a decided case can be exported as ELMO"
        )
    stored_outcome = decision.get("outcome")
    if not isinstance(stored_outcome, str) or stored_outcome not in ELMO_STATUS:
        raise ValidationFailed(
            f"case {case_id}: decision outcome {stored_outcome!r} cannot be exported; expected "
            f"one of {', '.join(ELMO_STATUS)}"
        )
    outcome = stored_outcome
    if issued_at.tzinfo is None:
        raise ValidationFailed("issued_at must be a timezone-aware instant")
    modules = _modules(decision.get("modules"))
    if outcome != "rejected" and not modules:
        raise ValidationFailed(f"case {case_id}: a recognition names no home module")
    course_code = _clean(course.get("code"))
    course_title = _clean(course.get("title"))
    if not course_code or not course_title:
        raise ValidationFailed(
            f"case {case_id}: the partner course needs a code and a title for the ELMO export"
        )
    name = _clean(student_name)
    if not name:
        raise ValidationFailed(f"case {case_id}: the student's name is required")
    if given_names is None and family_name is None:
        given, _, family = name.rpartition(" ")
    else:
        given, family = _clean(given_names), _clean(family_name)

    home = _issuer_fields(institution, "institution")
    foreign = _issuer_fields(partner, "partner")
    decided_on = decision_date(decision.get("decided_at"), zone)
    grade = _clean(decision.get("grade"))

    root = _el("elmo")
    _sub(root, "generatedDate", _datetime(issued_at))

    learner = _sub(root, "learner")
    if citizenship:
        _sub(learner, "citizenship", _country(citizenship, "citizenship"))
    if _clean(matriculation_number):
        _sub(learner, "identifier", _clean(matriculation_number), type="local")
    for type_, value in (learner_identifiers or {}).items():
        if _clean(value):
            _sub(learner, "identifier", _clean(value), type=_clean(type_) or "other")
    _sub(learner, "givenNames", given)
    _sub(learner, "familyName", family)
    _sub(learner, "alternativeName", name)
    if date_of_birth is not None:
        _sub(learner, "dateOfBirth", date_of_birth.isoformat())

    report = _sub(root, "report")
    _issuer(report, home)
    for module in modules:
        _home_los(report, module, grade, decided_on)

    recognition = _sub(report, "resultOfRecognition")
    for lang in ("en", "de"):
        _sub(recognition, "title", _title(course_title, foreign["name"], lang), lang=lang)
    for lang in ("en", "de"):
        text = _description(decision, outcome, modules, course, home["name"], case_id, lang)
        _sub(recognition, "description", text, lang=lang)
    _sub(recognition, "status", ELMO_STATUS[outcome])
    if decided_on is not None:
        _sub(recognition, "decisionDate", decided_on.isoformat())

    basis = _sub(_sub(recognition, "recognitionBasis"), "recognitionReport")
    _issuer(basis, foreign)
    _foreign_los(basis, course, course_code, course_title)
    _sub(basis, "issueDate", _datetime(_transcript_issued_at(course, issued_at)))
    foreign_scheme = _clean(course.get("scheme"))
    if foreign_scheme:
        scheme = _sub(basis, "gradingScheme", localId=foreign_scheme)
        for lang, text in _foreign_scheme_descriptions(foreign_scheme, decision.get("conversion")):
            _sub(scheme, "description", text, lang=lang)

    for module in modules:
        _home_los(_sub(recognition, "recognitionResult"), module, grade, decided_on)
    if modules:
        mapping = _sub(_sub(recognition, "recognitionMapping"), "mapping")
        _sub(_sub(mapping, "fromMapping"), "ref", course_code)
        to = _sub(mapping, "toMapping")
        for module in modules:
            _sub(to, "ref", module["code"])
    attachment_id = f"notice-{case_id}"
    if notice_pdf is not None:
        _sub(_sub(recognition, "attachments"), "ref", attachment_id)

    _sub(report, "issueDate", _datetime(issued_at))
    if modules:
        scheme_id = _PASSFAIL_SCHEME if grade.lower() == "passed" else _GERMAN_SCHEME
        scheme = _sub(report, "gradingScheme", localId=scheme_id)
        for lang, text in _scheme_descriptions(scheme_id):
            _sub(scheme, "description", text, lang=lang)
    if notice_pdf is not None:
        _notice_attachment(report, attachment_id, notice_pdf, notice_language, case_id)

    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    _validate(data, case_id)
    return data


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


def _q(local: str) -> str:
    return f"{{{ELMO_NS}}}{local}"


def _el(local: str) -> etree._Element:
    return etree.Element(_q(local), nsmap={None: ELMO_NS})  # type: ignore[dict-item]


def _sub(
    parent: etree._Element,
    local: str,
    text: str | None = None,
    *,
    lang: str | None = None,
    **attributes: str,
) -> etree._Element:
    element = etree.SubElement(parent, _q(local))
    for key, value in attributes.items():
        element.set(key, value)
    if lang is not None:
        element.set(_XML_LANG, lang)
    if text is not None:
        element.text = text
    return element


def _clean(value: object) -> str:
    """Free text as XML can carry it: no control characters, outer whitespace stripped."""
    if value is None:
        return ""
    return _NOT_XML.sub("", str(value)).strip()


def _datetime(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _country(value: object, what: str) -> str:
    code = _clean(value).upper()
    if not _COUNTRY.fullmatch(code):
        raise ValidationFailed(f"{what} must be an ISO 3166-1 alpha-2 country code, not {value!r}")
    return code


def _issuer_fields(mapping: Mapping[str, Any], what: str) -> dict[str, str]:
    schac = _clean(mapping.get("schac") or mapping.get("code"))
    name = _clean(mapping.get("name"))
    if not schac or not name:
        raise ValidationFailed(f"the {what} needs a name and a SCHAC code for the ELMO export")
    country = mapping.get("country")
    return {
        "name": name,
        "schac": schac,
        "erasmus": _clean(mapping.get("erasmus_code") or mapping.get("erasmus")),
        "country": _country(country, f"the {what}'s country") if country else "",
        "url": _clean(mapping.get("url")),
    }


def _issuer(parent: etree._Element, fields: Mapping[str, str]) -> None:
    issuer = _sub(parent, "issuer")
    if fields["country"]:
        _sub(issuer, "country", fields["country"])
    _sub(issuer, "identifier", fields["schac"], type="schac")
    if fields["erasmus"]:
        _sub(issuer, "identifier", fields["erasmus"], type="erasmus")
    _sub(issuer, "title", fields["name"])
    _sub(issuer, "url", fields["url"])  # required by the schema; empty when unknown


def _modules(value: object) -> list[dict[str, str]]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    modules = []
    for item in value:
        if isinstance(item, Mapping) and _clean(item.get("code")):
            modules.append(
                {
                    "code": _clean(item.get("code")),
                    "title": _clean(item.get("title")) or _clean(item.get("code")),
                    "ects": _clean(item.get("ects")),
                    "regulation_version": _clean(item.get("regulation_version")),
                }
            )
    return modules


def _decimal(value: object) -> str | None:
    text = _clean(value).replace(",", ".")
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return text if number.is_finite() else None


def _transcript_issued_at(course: Mapping[str, Any], fallback: dt.datetime) -> dt.datetime:
    value = course.get("transcript_issued_at")
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value
    if isinstance(value, str) and value.strip():
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            return fallback
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)
    return fallback


def _home_los(
    parent: etree._Element, module: Mapping[str, str], grade: str, decided_on: dt.date | None
) -> None:
    los = _sub(parent, "learningOpportunitySpecification")
    _sub(los, "identifier", module["code"], type="local")
    _sub(los, "title", module["title"])
    _sub(los, "type", "Module")
    instance = _sub(_sub(los, "specifies"), "learningOpportunityInstance")
    if decided_on is not None:
        _sub(instance, "date", decided_on.isoformat())
    _sub(instance, "status", "passed")
    passed = grade.lower() == "passed"
    _sub(instance, "gradingSchemeLocalId", _PASSFAIL_SCHEME if passed else _GERMAN_SCHEME)
    if grade:
        _sub(instance, "resultLabel", grade)
    ects = _decimal(module["ects"])
    if ects is not None:
        credit = _sub(instance, "credit")
        _sub(credit, "scheme", "ects")
        _sub(credit, "value", ects)


def _foreign_los(parent: etree._Element, course: Mapping[str, Any], code: str, title: str) -> None:
    los = _sub(parent, "learningOpportunitySpecification")
    _sub(los, "identifier", code, type="local")
    _sub(los, "title", title)
    _sub(los, "type", "Course")
    instance = _sub(_sub(los, "specifies"), "learningOpportunityInstance")
    day = course.get("date")
    if isinstance(day, dt.date):
        _sub(instance, "date", day.isoformat())
    elif isinstance(day, str) and day.strip():
        try:
            _sub(instance, "date", dt.date.fromisoformat(day.strip()).isoformat())
        except ValueError:
            raise ValidationFailed(f"the course date {day!r} is not YYYY-MM-DD") from None
    _sub(instance, "status", "passed")
    if _clean(course.get("scheme")):
        _sub(instance, "gradingSchemeLocalId", _clean(course.get("scheme")))
    if _clean(course.get("grade_as_printed")):
        _sub(instance, "resultLabel", _clean(course.get("grade_as_printed")))
    ects = _decimal(course.get("ects"))
    if ects is not None:
        credit = _sub(instance, "credit")
        _sub(credit, "scheme", "ects")
        _sub(credit, "value", ects)
    eqf = _clean(course.get("eqf_level"))
    if eqf:
        level = _sub(instance, "level")
        _sub(level, "type", "EQF")
        _sub(level, "value", eqf)
    if _clean(course.get("language")):
        _sub(instance, "languageOfInstruction", _clean(course.get("language")))


def _notice_attachment(
    report: etree._Element, identifier: str, pdf: bytes, language: str | None, case_id: int
) -> None:
    if not pdf.startswith(b"%PDF-"):
        raise ValidationFailed(f"case {case_id}: the notice to attach is not a PDF")
    attachment = _sub(report, "attachment")
    _sub(attachment, "identifier", identifier, type="local")
    _sub(attachment, "title", "Notice of decision on recognition", lang="en")
    _sub(attachment, "title", "Bescheid über die Anerkennung", lang="de")
    _sub(attachment, "type", "Other")
    uri = "data:application/pdf;base64," + base64.b64encode(pdf).decode("ascii")
    _sub(attachment, "content", uri, lang=language)


def _scheme_descriptions(scheme_id: str) -> Iterable[tuple[str, str]]:
    if scheme_id == _PASSFAIL_SCHEME:
        return (
            ("en", "Pass/fail: the achievement is credited as passed, without a grade."),
            (
                "de",
                "Bestanden/nicht bestanden: die Leistung wird ohne Note als bestanden angerechnet.",
            ),
        )
    return (
        (
            "en",
            "German grading scale: 1.0 (best) to 4.0 (lowest pass) in the steps 1.0 1.3 "
            "1.7 2.0 2.3 2.7 3.0 3.3 3.7 4.0; 5.0 is a fail.",
        ),
        (
            "de",
            "Deutsche Notenskala: 1,0 (beste Note) bis 4,0 (niedrigste Bestehensnote) in den "
            "Stufen 1,0 1,3 1,7 2,0 2,3 2,7 3,0 3,3 3,7 4,0; 5,0 ist nicht bestanden.",
        ),
    )


def _foreign_scheme_descriptions(code: str, conversion: object) -> Iterable[tuple[str, str]]:
    """The partner's scheme as the home institution knows it (its code, and the best and
    lowest passing grade its conversion used)."""
    parameters = conversion.get("parameters") if isinstance(conversion, Mapping) else None
    best = lowest = ""
    if isinstance(parameters, Mapping) and "ordinals" not in parameters:
        best, lowest = _clean(parameters.get("nmax")), _clean(parameters.get("nmin"))
    described = []
    for lang in ("en", "de"):
        _ = say(lang)
        if best and lowest:
            text = _(
                "export.scheme_range",
                code=code,
                best=format_decimal(best, lang),
                lowest=format_decimal(lowest, lang),
            )
        else:
            text = _("export.scheme", code=code)
        described.append((lang, text))
    return described


def _title(course_title: str, partner_name: str, lang: str) -> str:
    _ = say(lang)
    return _("export.title", course=course_title, partner=partner_name)


def _module_list(modules: Sequence[Mapping[str, str]], lang: str) -> str:
    return "; ".join(f"{m['code']} {m['title']} ({format_ects(m['ects'], lang)})" for m in modules)


def _description(
    decision: Mapping[str, Any],
    outcome: str,
    modules: Sequence[Mapping[str, str]],
    course: Mapping[str, Any],
    home_name: str,
    case_id: int,
    lang: str,
) -> str:
    _ = say(lang)
    course_ref = f"{_clean(course.get('title'))} ({_clean(course.get('code'))})"
    lines = [
        _(
            "export.decided",
            home=home_name,
            case_id=case_id,
            course=course_ref,
            outcome=_(_OUTCOMES[outcome]),
        )
    ]
    if modules:
        grade = _clean(decision.get("grade"))
        shown_grade = _("export.passed") if grade.lower() == "passed" else format_grade(grade, lang)
        total = format_ects(_clean(decision.get("ects")), lang)
        lines.append(
            _(
                "export.credited",
                modules=_module_list(modules, lang),
                total=total,
                grade=shown_grade,
            )
        )
    conversion = decision.get("conversion")
    if isinstance(conversion, Mapping):
        parameters = conversion.get("parameters")
        shown = ""
        if isinstance(parameters, Mapping):
            shown = ", ".join(
                f"{key} = {format_decimal(_clean(value), lang, max_places=4)}"
                for key, value in parameters.items()
                if not isinstance(value, Mapping | list | tuple)
            )
        exact = format_decimal(_clean(conversion.get("exact")), lang, max_places=4)
        steps = f" ({shown})" if shown else ""
        result = f", x = {exact}" if exact else ""
        lines.append(
            _(
                "export.conversion",
                original=_clean(conversion.get("original")),
                scheme=_clean(conversion.get("scheme")),
                method=_clean(conversion.get("method")),
                parameters=steps,
                exact=result,
                grade=format_grade(_clean(conversion.get("grade")), lang),
            )
        )
    not_credited = _modules(decision.get("not_credited"))
    if not_credited:
        lines.append(_("export.not_credited", modules=_module_list(not_credited, lang)))
    reasons = decision.get("reasons")
    if isinstance(reasons, Mapping) and reasons:
        ordered = [c for c in CRITERIA if c in reasons] + sorted(
            str(k) for k in reasons if k not in CRITERIA
        )
        lines.append(_("export.differences"))
        lines.extend(
            f"- {_(_CRITERIA[c]) if c in _CRITERIA else c}: {_clean(reasons[c])}" for c in ordered
        )
    advice = _clean(decision.get("advice"))
    if advice:
        lines.append(_("export.advice", advice=advice))
    return "\n".join(lines)


def _validate(data: bytes, case_id: int) -> None:
    """Parse the document back against the ELMO 2.0 schema (local copy, no network)."""
    schema = _schema(TranscriptVersion(TranscriptFormat.ELMO, ElmoVersion.V2_0))
    parser = etree.XMLParser(
        schema=schema, resolve_entities=False, load_dtd=False, no_network=True, huge_tree=False
    )
    try:
        etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise ValidationFailed(
            f"case {case_id}: the ELMO export is not valid against the ELMO 2.0 schema: {exc}"
        ) from None
