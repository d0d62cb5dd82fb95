"""Notification e-mails: every template renders in both languages for each recipient it is
written for; students learn what happened, what next, by when and what to do; decisions carry
their modules, reasons, advice and legal remedies; free text is escaped in HTML."""

from __future__ import annotations

import re
from typing import Any

import pytest

from config.settings import get_settings
from tasks.messages import (
    LANGUAGES,
    RECIPIENTS,
    Rendered,
    parts,
    recipients,
    reminders,
    render,
    templates,
)
from tasks.messages import events as procedure_events
from workflow import reminder_kinds

EVENTS = procedure_events()  # the default procedure's, as the tests run with it

DUE = "15.06.2026 24:00"
APPEAL_ENDS = "02.12.2026 24:00"
STATUS_URL = "https://recog.example/s/Zk3v9QeT"
STUDENT_EMAIL = "ada.lovelace@example.org"
DECISION = {
    "outcome": "partially_recognized",
    "modules": [
        {"code": "INF-ML", "title": "Machine Learning", "ects": "6"},
        {"code": "INF-DS", "title": "Data Science", "ects": "1.5"},
    ],
    "grade": "1.7",
    "not_credited": [{"code": "INF-LAB", "title": "ML Lab", "ects": "3"}],
    "reasons": {
        "learning_outcomes": "The course has no laboratory part.",
        "workload": "3 ECTS are missing.",
    },
    "advice": "Take the ML lab at home in the next term.",
}
FULL: dict[str, Any] = {
    "case_id": 4711,
    "student_name": "Ada Lovelace",
    "course_title": "Machine Learning",
    "course_code": "IT-ML",
    "partner_name": "UniTol",
    "term": "2026S",
    "due_at_local": DUE,
    "message": "Please see my attached syllabus.",
    "decision": DECISION,
    "appeal_ends_local": APPEAL_ENDS,
    "status_url": STATUS_URL,
    "office_name": "Prüfungsamt Informatik",
    "office_email": "pruefungsamt@uni-x.de",
    # Facts a caller may pass along that must never reach a text:
    "student_email": STUDENT_EMAIL,
    "email": STUDENT_EMAIL,
    "token": "s3cr3t-t0k3n",
}
HEADINGS = {  # what happened, what next, by when, what to do
    "en": ("What happened", "What happens next", "By when", "What you need to do"),
    "de": ("Was geschehen ist", "Wie es weitergeht", "Bis wann", "Was Sie jetzt tun müssen"),
}
PREFIX = {"en": "[Recog] Case 4711: ", "de": "[Recog] Antrag 4711: "}


def _combinations() -> list[tuple[str, str, str]]:
    """Every template x the recipients it makes sense for x both languages. Events can reach
    any office role (an institution may change who is notified): they get at least a note."""
    out = []
    for template in templates():
        written = recipients(template)
        targets = (
            [r for r in RECIPIENTS if r != "student" or r in written]
            if template in EVENTS
            else written
        )
        out += [(template, r, lang) for r in targets for lang in LANGUAGES]
    return out


COMBINATIONS = _combinations()


def _mail(
    template: str, recipient: str = "student", language: str = "en", **context: Any
) -> Rendered:
    return render(template, recipient=recipient, language=language, context={**FULL, **context})


def test_templates_cover_the_procedure_the_reminders_and_the_status_link() -> None:
    names = templates()
    assert len(names) == len(set(names)) == 31
    assert set(EVENTS) <= set(names)
    assert set(reminders()) <= set(names)
    assert "status_link" in names
    for event in EVENTS:
        assert "student" in recipients(event), event  # every state change is told to students


@pytest.mark.parametrize(("template", "recipient", "language"), COMBINATIONS)
def test_every_template_renders(template: str, recipient: str, language: str) -> None:
    mail = _mail(template, recipient, language)
    assert mail.subject.startswith(PREFIX[language])
    assert "4711" in mail.subject
    assert "\n" not in mail.subject
    assert len(mail.text) > 200
    assert "{{" not in mail.text
    assert "{%" not in mail.text
    assert "None" not in mail.text
    assert mail.html.startswith("<!DOCTYPE html>")
    assert f'<html lang="{language}">' in mail.html
    for secret in (STUDENT_EMAIL, "s3cr3t-t0k3n"):
        assert secret not in mail.text
        assert secret not in mail.html
        assert secret not in mail.subject
    # The status link is the student's secret: office recipients never see it.
    assert (STATUS_URL in mail.text) is (recipient == "student")
    assert (STATUS_URL in mail.html) is (recipient == "student")


@pytest.mark.parametrize(("template", "recipient", "language"), COMBINATIONS)
def test_every_template_renders_with_only_a_case_id(
    template: str, recipient: str, language: str
) -> None:
    mail = render(template, recipient=recipient, language=language, context={"case_id": 7})
    assert "7" in mail.subject
    assert len(mail.text) > 100
    for broken in ("None", "“”", "„“", "()", " .", " ,", "  "):
        assert broken not in mail.text, broken


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("event", EVENTS)
def test_students_learn_what_happened_what_next_by_when_and_what_to_do(
    event: str, language: str
) -> None:
    mail = _mail(event, "student", language)
    happened, next_, by_when, action = HEADINGS[language]
    for part in (mail.text, mail.html):
        for heading in (happened, next_, by_when, action):
            assert heading in part
        assert DUE in part
    # Each section has a sentence, not just a heading.
    for heading in (happened, next_, action):
        body = mail.text.split(heading + "\n", 1)[1].split("\n", 1)[0]
        assert len(body) > 5, (heading, body)


@pytest.mark.parametrize("language", LANGUAGES)
def test_without_a_deadline_there_is_no_by_when(language: str) -> None:
    mail = _mail("close", "student", language, due_at_local=None)
    assert HEADINGS[language][2] not in mail.text
    assert HEADINGS[language][1] in mail.text


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", ["submit", "start_review", "provide_info"])
def test_the_decision_clock_is_named_for_students(template: str, language: str) -> None:
    mail = _mail(template, "student", language, due_kind="decision")
    sentence = {
        "en": f"The decision on your request is due by {DUE}.",
        "de": f"Über Ihren Antrag wird bis zum {DUE} entschieden.",
    }[language]
    assert sentence in mail.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_examiner_is_told_a_case_waits_and_when_the_decision_is_due(language: str) -> None:
    mail = _mail("start_review", "examiner", language, due_kind="decision")
    assert {"en": "waiting for your review", "de": "wartet auf Ihre Prüfung"}[
        language
    ] in mail.subject
    assert DUE in mail.text
    assert len(mail.text) < 1200  # office notes stay short


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", ["recognize", "recognize_partially", "grant_appeal"])
@pytest.mark.parametrize("recipient", ["student", "clerk"])
def test_decisions_list_modules_ects_and_grade(
    template: str, recipient: str, language: str
) -> None:
    mail = _mail(template, recipient, language)
    comma = language == "de"
    for part in (mail.text, mail.html):
        assert "INF-ML" in part
        assert "INF-DS" in part
        assert "Machine Learning" in part
        assert ("7,5 ECTS" if comma else "7.5 ECTS") in part  # the total
        assert ("1,5" if comma else "1.5") in part
        assert ("1,7" if comma else "1.7") in part


@pytest.mark.parametrize(
    ("language", "module", "total", "grade"),
    [
        ("de", "INF-ML Machine Learning, 5,0 ECTS", "Insgesamt: 5,0 ECTS", "Note: 1,7"),
        ("en", "INF-ML Machine Learning, 5.0 ECTS", "Total: 5.0 ECTS", "Grade: 1.7"),
    ],
)
def test_numbers_stored_as_numbers_read_as_the_language_writes_them(
    language: str, module: str, total: str, grade: str
) -> None:
    decision = {
        "outcome": "recognized",
        "modules": [{"code": "INF-ML", "title": "Machine Learning", "ects": 5}],
        "grade": 1.7,
    }
    mail = _mail("recognize", "student", language, decision=decision)
    assert module in mail.text
    assert total in mail.text
    assert grade in mail.text
    assert ("5,0" if language == "de" else "5.0") in mail.html
    assert ("1,7" if language == "de" else "1.7") in mail.html


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_pass_fail_result_stays_passed(language: str) -> None:
    mail = _mail(
        "recognize",
        "student",
        language,
        decision={"modules": [{"code": "INF-ML", "ects": 6}], "grade": "passed"},
    )
    assert {"en": "Grade: passed", "de": "Note: bestanden"}[language] in mail.text
    # A whole number of credits keeps its one decimal, as the office writes credits.
    assert {"en": "Total: 6.0 ECTS", "de": "Insgesamt: 6,0 ECTS"}[language] in mail.text


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", ["reject", "recognize_partially"])
def test_refusals_carry_reasons_advice_and_legal_remedies(template: str, language: str) -> None:
    mail = _mail(template, "student", language)
    criteria = {
        "en": ("Learning outcomes", "Workload"),
        "de": ("Lernergebnisse", "Arbeitsaufwand"),
    }[language]
    legal = {"en": "Instructions on legal remedies", "de": "Rechtsbehelfsbelehrung"}[language]
    for part in (mail.text, mail.html):
        for label in criteria:
            assert label in part
        assert "The course has no laboratory part." in part
        assert "3 ECTS are missing." in part
        assert "Take the ML lab at home in the next term." in part
        assert legal in part
        assert APPEAL_ENDS in part
        assert "Widerspruch" in part
        assert {"en": "within one month", "de": "innerhalb eines Monats"}[language] in part
        assert {"en": "in writing or for the record", "de": "schriftlich oder zur Niederschrift"}[
            language
        ] in part
    assert "INF-LAB" in mail.text  # what was not credited


@pytest.mark.parametrize("language", LANGUAGES)
def test_reasons_may_be_a_single_text(language: str) -> None:
    mail = _mail(
        "reject",
        "student",
        language,
        decision={"reasons": "Level differs.", "advice": "Ask for a bridge module."},
    )
    assert "Level differs." in mail.text
    assert "Ask for a bridge module." in mail.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_appeal_window_defaults_to_the_current_deadline(language: str) -> None:
    mail = _mail("reject", "student", language, appeal_ends_local=None, due_kind="appeal_window")
    legal = mail.text.split(
        {"en": "Instructions on legal remedies", "de": "Rechtsbehelfsbelehrung"}[language], 1
    )[1]
    assert DUE in legal


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_full_recognition_carries_the_instructions_on_the_objection(language: str) -> None:
    # An administrative act like a refusal: its grade or credits may be contested (ADR 0015).
    mail = _mail("recognize", "student", language)
    legal = {"en": "Instructions on legal remedies", "de": "Rechtsbehelfsbelehrung"}[language]
    assert legal in mail.text
    assert "Widerspruch" in mail.text.split(legal, 1)[1]
    assert APPEAL_ENDS in mail.text.split(legal, 1)[1]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", ["grant_appeal", "submit", "appeal", "waive_appeal"])
def test_only_the_offices_decisions_carry_the_instructions_on_the_objection(
    template: str, language: str
) -> None:
    # The board's decision on an objection names its own remedy (an action) in its notice.
    mail = _mail(template, "student", language)
    assert "Instructions on legal remedies" not in mail.text
    assert "Rechtsbehelfsbelehrung\n" not in mail.text


@pytest.mark.parametrize("recipient", ["clerk", "examiner", "board"])
def test_office_recipients_never_get_legal_remedies_or_the_student_salutation(
    recipient: str,
) -> None:
    mail = _mail("reject", recipient)
    assert "Instructions on legal remedies" not in mail.text
    assert "Dear Ada" not in mail.text
    assert "Case 4711" in mail.text


@pytest.mark.parametrize(
    ("template", "recipient", "wording"),
    [
        ("transcript.remind", "student", "has not arrived yet"),
        ("transcript.remind", "student", "upload it on your status page"),
        ("transcript.escalate", "clerk", "is overdue"),
        ("decision.escalate", "clerk", "decision on the course"),
        ("decision.escalate", "clerk", "is overdue"),
        ("decision.remind50", "examiner", "half of the time"),
        ("decision.remind80", "examiner", "80 %"),
        ("info_reply.remind", "student", "Answer the question on your status page by " + DUE),
        ("info_reply.passed", "examiner", "not answered"),
        ("board_decision.escalate", "board", "overdue"),
        ("result.missing", "clerk", "Ask the partner for the result"),
        ("submission.remind", "student", "Request recognition on your status page by " + DUE),
        ("status_link", "student", STATUS_URL),
    ],
)
def test_reminders_have_their_own_wording(template: str, recipient: str, wording: str) -> None:
    assert wording in _mail(template, recipient).text


def test_reminder_subjects_differ_by_kind() -> None:
    subjects = {_mail(kind, recipients(kind)[0]).subject for kind in reminders()}
    assert len(subjects) == len(reminders())


def test_the_reminders_are_those_the_procedures_clocks_plan() -> None:
    """Derived from the deadlines the procedure's states run and what ``schedule`` plans for
    each (a lapse or close is the timer firing an event, which has its own message)."""
    assert reminders() == (
        "result.missing",
        "transcript.remind",
        "transcript.escalate",
        "submission.remind",
        "decision.remind50",
        "decision.remind80",
        "decision.escalate",
        "info_reply.remind",
        "info_reply.passed",
        "board_decision.escalate",
    )
    settings = get_settings()
    assert reminder_kinds(["transcript"], settings) == ("transcript.remind", "transcript.escalate")
    assert reminder_kinds(["enrolment", "appeal_window"], settings) == ()


@pytest.mark.parametrize("language", LANGUAGES)
def test_html_escapes_free_text(language: str) -> None:
    attack = "<script>alert('x')</script>"
    mail = _mail(
        "appeal",
        "board",
        language,
        message=attack,
        student_name=attack,
        decision={"reasons": {"level": attack}, "advice": attack},
    )
    assert "<script>" not in mail.html
    assert "&lt;script&gt;" in mail.html
    assert attack in mail.text  # the plain-text part keeps the text as written
    student = _mail(
        "reject",
        "student",
        language,
        student_name=attack,
        decision={"reasons": {"level": attack}, "advice": attack},
    )
    assert "<script>" not in student.html
    assert student.html.count("&lt;script&gt;") == 3


def test_a_status_url_that_is_not_a_web_address_is_left_out() -> None:
    mail = _mail("status_link", status_url="javascript:alert(1)")
    assert "javascript:" not in mail.html
    assert "javascript:" not in mail.text


def test_german_uses_umlauts_and_sz() -> None:
    # (The office's own e-mail address may well be ASCII-only: leave it out here.)
    texts = [
        _mail(t, r, "de", office_email=None).text for t, r, lang in COMBINATIONS if lang == "de"
    ]
    joined = "\n".join(texts)
    assert re.search("[äöüÄÖÜß]", joined)
    assert "Grüßen" in joined
    transliterated = (
        "fuer",
        "Pruef",
        "pruef",
        "muess",
        "koenn",
        "Gruess",
        "gruess",
        "waehr",
        "ueber",
        "Ueber",
        "zurueck",
        "Rueck",
        "rueck",
        "moeglich",
        "faellig",
        "bestaetig",
        "Bestaetig",
        "persoenlich",
        "naechst",
        "Naechst",
        "schliess",
        "Haelfte",
        "eroeffn",
        "Glueck",
        "haendig",
    )
    for word in transliterated:
        assert word not in joined, word
    joined.encode("utf-8")  # and it is all representable as UTF-8


def test_german_subjects_and_state_labels_are_german() -> None:
    mail = _mail("reject", "student", "de", state="rejected", state_label="Rejected")
    assert mail.subject == "[Recog] Antrag 4711: Anerkennung abgelehnt"
    assert "Stand: Abgelehnt" in mail.text
    assert "Rejected" not in mail.text


def test_an_unknown_state_keeps_the_callers_label() -> None:
    mail = _mail("close", "student", "en", state="archived", state_label="Archived")
    assert "status: Archived" in mail.text


def test_unknown_template_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown template 'nope'; allowed: open, enrol") as err:
        _mail("nope")
    assert "status_link" in str(err.value)
    assert "decision.remind80" in str(err.value)


def test_unknown_language_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown language 'fr'; allowed: de, en"):
        _mail("submit", language="fr")


def test_unknown_recipient_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"allowed: student, clerk, examiner, board"):
        _mail("submit", recipient="admin")


def test_a_template_without_student_wording_refuses_a_student() -> None:
    with pytest.raises(ValueError, match=r"no wording for students.*examiner"):
        _mail("decision.remind50", "student")


@pytest.mark.parametrize("case_id", [None, "", "4711\nBcc: x@example.org", -1, True, 1.5])
def test_case_id_is_required_and_a_whole_number(case_id: Any) -> None:
    with pytest.raises(ValueError, match="case_id"):
        render("submit", recipient="student", language="en", context={"case_id": case_id})


def test_a_missing_case_id_is_refused() -> None:
    with pytest.raises(ValueError, match="case_id"):
        render("submit", recipient="student", language="en", context={})


def test_every_template_has_a_message() -> None:
    # The words of each part are in both gettext catalogues (tests/workflow/test_catalogues.py
    # fails on one missing in either); "state_changed" words events an office adds (message =).
    assert set(parts()) == {*templates(), "state_changed"}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    ("template", "recipient"),
    [("transcript.remind", "student"), ("decision.remind80", "examiner"), ("open", "student")],
)
def test_a_message_whose_deadline_has_passed_never_says_by_it(
    template: str, recipient: str, language: str
) -> None:
    """Sent after its deadline (a reminder at 9:00 after a deadline at 24:00, a late sweep, a
    case opened after the enrolment period): the words say the deadline has passed."""
    on_time = _mail(template, recipient, language, due_passed=False).text
    late = _mail(template, recipient, language, due_passed=True).text
    passed = {"en": f"the deadline was {DUE}", "de": f"endete am {DUE}"}[language]
    assert passed.lower() not in on_time.lower()
    assert passed.lower() in late.lower()
    by = {"en": f"by {DUE}", "de": f"bis zum {DUE}"}[language]
    assert by in on_time
    assert by not in late
