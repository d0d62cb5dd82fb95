"""ELMO v2.0 export of a decision: valid against the v2.0 schema, carrying the foreign
achievement and the home institution's resultOfRecognition, readable by our own importer, and
refused for a case without a decision."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from lxml import etree

from workflow.errors import ValidationFailed
from workflow.grading.grades import convert
from workflow.transcripts.elmo import (
    ELMO_NS,
    ElmoVersion,
    ResultStatus,
    TranscriptFormat,
    TranscriptVersion,
    _schema,
    detect_version,
    parse_transcript,
)
from workflow.transcripts.export import ELMO_STATUS, export_decision

ZONE = ZoneInfo("Europe/Berlin")
ISSUED = dt.datetime(2026, 11, 3, 8, 0, tzinfo=dt.UTC)
NS = {"e": ELMO_NS}
ML = {
    "code": "INF-ML",
    "title": "Maschinelles Lernen",
    "ects": "6.0",
    "regulation_version": "PO 2023",
}
DS = {"code": "INF-DS", "title": "Data Science", "ects": "1.5", "regulation_version": "PO 2023"}
LAB = {"code": "INF-LAB", "title": "Praktikum", "ects": "3.0", "regulation_version": "PO 2023"}
CONVERSION = convert("27", "it", "nearest").to_dict()
# 23:30 UTC on 2 November is 3 November in Berlin.
DECIDED_AT = "2026-11-02T23:30:00+00:00"
RECOGNIZED = {
    "outcome": "recognized",
    "decided_at": DECIDED_AT,
    "decided_by": 7,
    "modules": [ML, DS],
    "ects": "7.5",
    "grade": "1.7",
    "conversion": CONVERSION,
}
PARTIAL = {
    "outcome": "partially_recognized",
    "decided_at": DECIDED_AT,
    "decided_by": 7,
    "modules": [ML],
    "ects": "6.0",
    "grade": "1.7",
    "not_credited": [LAB],
    "reasons": {"learning_outcomes": "No lab part."},
    "advice": "Take the lab at home.",
    "conversion": CONVERSION,
}
REJECTED = {
    "outcome": "rejected",
    "decided_at": DECIDED_AT,
    "decided_by": 7,
    "reasons": {"level": "EQF 5 instead of 7.", "quality": "Not quality assured."},
    "advice": "Show the level with the module description.",
}
COURSE = {
    "title": "Machine Learning",
    "code": "IT-ML",
    "partner_name": "Università di Torino",
    "term": "2026S",
    "ects": "6",
    "grade_as_printed": "27",
    "scheme": "it",
    "eqf_level": 7,
    "language": "en",
    "date": "2026-06-20",
}
HOME = {
    "name": "Universität Xanten",
    "schac": "uni-x.de",
    "erasmus_code": "D  XANTEN01",
    "country": "DE",
    "url": "https://www.uni-x.de",
}
PARTNER = {
    "name": "Università di Torino",
    "schac": "unito.it",
    "erasmus_code": "I TORINO01",
    "country": "IT",
}
PDF = b"%PDF-1.7\n% a notice\n%%EOF\n"


def export(decision: Any = RECOGNIZED, **changes: Any) -> bytes:
    values: dict[str, Any] = {
        "decision": decision,
        "case_id": 4711,
        "student_name": "Jörg Müller-Weiß",
        "matriculation_number": "123456",
        "course": COURSE,
        "institution": HOME,
        "partner": PARTNER,
        "issued_at": ISSUED,
        "zone": ZONE,
        "date_of_birth": dt.date(2001, 2, 3),
    }
    values.update(changes)
    return export_decision(**values)


def tree(data: bytes) -> etree._Element:
    return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))


def texts(root: etree._Element, path: str) -> list[str]:
    nodes = cast(list[Any], root.xpath(path, namespaces=NS))
    return [str(node.text) for node in nodes]


@pytest.mark.parametrize(
    "decision", [RECOGNIZED, PARTIAL, REJECTED], ids=["recognized", "partial", "rejected"]
)
def test_export_is_valid_elmo_2_0(decision: dict[str, Any]) -> None:
    data = export(decision, notice_pdf=PDF, notice_language="de")

    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    schema = _schema(TranscriptVersion(TranscriptFormat.ELMO, ElmoVersion.V2_0))
    assert schema.validate(tree(data)), schema.error_log
    assert detect_version(data) == TranscriptVersion(TranscriptFormat.ELMO, ElmoVersion.V2_0)
    root = tree(data)
    assert texts(root, "e:report/e:resultOfRecognition/e:status") == [
        ELMO_STATUS[decision["outcome"]]
    ]
    assert texts(root, "e:report/e:resultOfRecognition/e:decisionDate") == ["2026-11-03"]


def test_export_carries_the_decision_and_the_foreign_achievement() -> None:
    root = tree(export(RECOGNIZED))

    assert texts(root, "e:generatedDate") == ["2026-11-03T08:00:00Z"]
    assert texts(root, "e:learner/e:identifier[@type='local']") == ["123456"]
    assert texts(root, "e:learner/e:givenNames") == ["Jörg"]
    assert texts(root, "e:learner/e:familyName") == ["Müller-Weiß"]
    assert texts(root, "e:learner/e:alternativeName") == ["Jörg Müller-Weiß"]
    assert texts(root, "e:learner/e:dateOfBirth") == ["2001-02-03"]
    report = root.find("e:report", NS)
    assert report is not None
    assert texts(report, "e:issuer/e:identifier[@type='schac']") == ["uni-x.de"]
    assert texts(report, "e:issuer/e:identifier[@type='erasmus']") == ["D  XANTEN01"]
    assert texts(report, "e:issuer/e:title") == ["Universität Xanten"]
    # The credited home modules with the converted grade and their ECTS.
    for where in (
        "e:learningOpportunitySpecification",
        "e:resultOfRecognition/e:recognitionResult/e:learningOpportunitySpecification",
    ):
        assert texts(report, f"{where}/e:identifier[@type='local']") == ["INF-ML", "INF-DS"]
        assert texts(report, f"{where}//e:resultLabel") == ["1.7", "1.7"]
        assert texts(report, f"{where}//e:credit/e:value") == ["6.0", "1.5"]
        assert texts(report, f"{where}//e:gradingSchemeLocalId") == ["de-1.0-4.0"] * 2
    assert report.xpath("e:gradingScheme/@localId", namespaces=NS) == ["de-1.0-4.0"]
    # The foreign achievement, issued by the partner, as the basis of the recognition.
    basis = report.find("e:resultOfRecognition/e:recognitionBasis/e:recognitionReport", NS)
    assert basis is not None
    assert texts(basis, "e:issuer/e:identifier[@type='schac']") == ["unito.it"]
    assert texts(basis, "e:issuer/e:identifier[@type='erasmus']") == ["I TORINO01"]
    assert texts(basis, "e:issuer/e:country") == ["IT"]
    foreign = "e:learningOpportunitySpecification"
    assert texts(basis, f"{foreign}/e:identifier[@type='local']") == ["IT-ML"]
    assert texts(basis, f"{foreign}/e:title") == ["Machine Learning"]
    assert texts(basis, f"{foreign}//e:resultLabel") == ["27"]
    assert texts(basis, f"{foreign}//e:gradingSchemeLocalId") == ["it"]
    assert texts(basis, f"{foreign}//e:credit/e:value") == ["6"]
    assert texts(basis, f"{foreign}//e:level/e:value") == ["7"]
    assert texts(basis, f"{foreign}//e:date") == ["2026-06-20"]
    assert texts(basis, "e:gradingScheme/e:description[@xml:lang='en']") == [
        "Grading scheme it: best grade 30, lowest pass 18."
    ]
    # The mapping from the foreign course to the home modules.
    mapping = "e:resultOfRecognition/e:recognitionMapping/e:mapping"
    assert texts(report, f"{mapping}/e:fromMapping/e:ref") == ["IT-ML"]
    assert texts(report, f"{mapping}/e:toMapping/e:ref") == ["INF-ML", "INF-DS"]
    # The description says what was decided and how the grade was converted.
    english, german = texts(report, "e:resultOfRecognition/e:description")
    assert "case 4711: Machine Learning (IT-ML) is recognised." in english
    assert "INF-ML Maschinelles Lernen (6.0 ECTS); INF-DS Data Science (1.5 ECTS)" in english
    assert "total 7.5 ECTS; grade: 1.7" in english
    assert "original grade 27 (scheme it), method bavarian" in english
    assert "nmax = 30, nmin = 18" in english
    assert "x = 1.75 -> 1.7" in english
    assert "Antrag 4711: Machine Learning (IT-ML) wird anerkannt." in german
    # The German text writes its numbers with a decimal comma; the values above keep the point.
    assert "INF-ML Maschinelles Lernen (6,0 ECTS); INF-DS Data Science (1,5 ECTS)" in german
    assert "insgesamt 7,5 ECTS; Note: 1,7." in german
    assert "x = 1,75 → 1,7." in german
    assert "1.7" not in german
    assert "7.5" not in german


def test_refusals_carry_their_reasons_and_advice_but_no_credited_module() -> None:
    root = tree(export(REJECTED))
    report = root.find("e:report", NS)
    assert report is not None
    assert report.findall("e:learningOpportunitySpecification", NS) == []
    assert report.findall("e:resultOfRecognition/e:recognitionResult", NS) == []
    assert report.findall("e:resultOfRecognition/e:recognitionMapping", NS) == []
    english = texts(report, "e:resultOfRecognition/e:description[@xml:lang='en']")[0]
    assert "is refused" in english
    assert "- level: EQF 5 instead of 7." in english
    assert "- quality: Not quality assured." in english
    assert "How recognition could still be obtained: Show the level" in english

    partial = tree(export(PARTIAL)).find("e:report", NS)
    assert partial is not None
    assert texts(partial, "e:learningOpportunitySpecification/e:identifier") == ["INF-ML"]
    german = texts(partial, "e:resultOfRecognition/e:description[@xml:lang='de']")[0]
    assert "teilweise anerkannt" in german
    assert "Nicht anerkannt: INF-LAB Praktikum (3,0 ECTS)." in german
    assert "- Lernergebnisse: No lab part." in german


def test_export_round_trips_through_the_transcript_parser() -> None:
    transcript = parse_transcript(
        export(
            PARTIAL,
            notice_pdf=PDF,
            notice_language="en",
            learner_identifiers={"esi": "urn:schac:x:123456"},
        ),
        filename="export.xml",
    )

    assert transcript.version == TranscriptVersion(TranscriptFormat.ELMO, ElmoVersion.V2_0)
    assert transcript.generated_at == ISSUED
    assert transcript.issued_at == ISSUED
    learner = transcript.learner
    assert (learner.given_names, learner.family_name) == ("Jörg", "Müller-Weiß")
    assert learner.alternative_name is not None
    assert learner.alternative_name.text == "Jörg Müller-Weiß"
    assert learner.identifier("local") == "123456"
    assert learner.identifier("esi") == "urn:schac:x:123456"
    assert learner.birth_date == dt.date(2001, 2, 3)
    issuer = transcript.issuer
    assert (issuer.schac, issuer.name, issuer.country) == ("uni-x.de", "Universität Xanten", "DE")
    assert issuer.erasmus_code == "D XANTEN01"  # xs:token collapses the double space
    # What comes back is what the student now holds at home: the credited module with the
    # converted grade. The foreign course inside resultOfRecognition is not a result of
    # this learner's report (the parser skips recognition content by design).
    [module] = transcript.results
    assert module.local_code == "INF-ML"
    assert module.title == "Maschinelles Lernen"
    assert module.type == "Module"
    assert module.status is ResultStatus.PASSED
    assert module.grade == "1.7"
    assert module.ects_credits == Decimal("6.0")
    assert module.result_date == dt.date(2026, 11, 3)
    assert module.grading_scheme_id == "de-1.0-4.0"
    assert module.grading_scheme_description[0].text.startswith("German grading scale")
    assert module.institution.schac == "uni-x.de"
    [notice] = transcript.attachments
    assert notice.data == PDF
    assert notice.is_pdf
    assert notice.language == "en"
    assert notice.scope == "report"

    assert parse_transcript(export(REJECTED)).results == ()


def test_pass_fail_recognition_uses_a_pass_fail_scheme() -> None:
    decision = dict(
        RECOGNIZED, grade="passed", conversion=convert("pass", "passfail", "nearest").to_dict()
    )
    [module, _] = parse_transcript(export(decision)).results
    assert module.grade == "passed"
    assert module.grading_scheme_id == "passfail"
    assert module.grading_scheme_description[0].text.startswith("Pass/fail")


def test_same_inputs_give_the_same_bytes_and_free_text_is_safe() -> None:
    assert export(PARTIAL) == export(PARTIAL)
    nasty = dict(
        PARTIAL,
        reasons={"profile": "<b>&amp;</b>\x00\x1b ]]> <!DOCTYPE x>"},
        modules=[dict(ML, title="ML <script>")],
    )
    data = export(nasty, course=dict(COURSE, title="Deep & <Wide> \x07Learning"))
    root = tree(data)
    assert b"<script>" not in data
    assert b"<!DOCTYPE" not in data
    assert texts(root, "e:report/e:learningOpportunitySpecification/e:title") == ["ML <script>"]
    english = texts(root, "e:report/e:resultOfRecognition/e:description[@xml:lang='en']")[0]
    assert "- profile: <b>&amp;</b> ]]> <!DOCTYPE x>" in english
    assert texts(root, "e:report/e:resultOfRecognition/e:title[@xml:lang='en']") == [
        "Recognition: Deep & <Wide> Learning (Università di Torino)"
    ]


def test_explicit_names_win_over_the_split_full_name() -> None:
    root = tree(
        export(
            given_names="Ludwig", family_name="van Beethoven", student_name="Ludwig van Beethoven"
        )
    )
    assert texts(root, "e:learner/e:givenNames") == ["Ludwig"]
    assert texts(root, "e:learner/e:familyName") == ["van Beethoven"]


@pytest.mark.parametrize("decision", [None, {}], ids=["none", "empty"])
def test_a_case_without_a_decision_is_refused(decision: Any) -> None:
    with pytest.raises(ValidationFailed, match="case 4711 has no decision yet"):
        export(decision)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"decision": {"outcome": "maybe"}}, "outcome 'maybe' cannot be exported"),
        ({"decision": dict(RECOGNIZED, modules=[])}, "names no home module"),
        ({"course": dict(COURSE, code="")}, "needs a code and a title"),
        ({"partner": {"name": "UniTo"}}, "partner needs a name and a SCHAC code"),
        ({"institution": dict(HOME, country="Germany")}, "ISO 3166-1 alpha-2"),
        ({"issued_at": ISSUED.replace(tzinfo=None)}, "timezone-aware"),
        ({"notice_pdf": b"<html>"}, "not a PDF"),
        # Passes the checks here but not the schema (no such Europass country): the schema says so.
        ({"partner": dict(PARTNER, country="XX")}, "not valid against the ELMO 2.0 schema"),
    ],
)
def test_incomplete_data_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationFailed, match=re.escape(message)):
        export(**changes)
