"""Tests for workflow.transcripts.elmo: ELMO 1.7 / 2.0 and EWP transcripts, and every refusal."""

from __future__ import annotations

import base64
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import FrozenInstanceError
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from workflow.errors import ValidationFailed
from workflow.transcripts import elmo as transcripts
from workflow.transcripts.elmo import (
    ElmoVersion,
    ResultStatus,
    TranscriptFormat,
    TranscriptRejected,
    TranscriptVersion,
    detect_version,
    parse_transcript,
)

REPO = Path(__file__).resolve().parents[2]
REFERENCE = Path(os.environ.get("RECOG_SHARED_DIR", REPO.parent / "shared")) / "reference" / "elmo"
ELMO_EXAMPLE = REFERENCE / "example.xml"
EWP_EXAMPLE = REFERENCE / "ewp-imobility-tors-get-response-example.xml"

ELMO_NS = "https://github.com/emrex-eu/elmo-schemas/tree/v1"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture(scope="module", autouse=True)
def _reference_files() -> None:
    if not ELMO_EXAMPLE.is_file() or not EWP_EXAMPLE.is_file():
        pytest.fail(f"reference examples missing under {REFERENCE} (set RECOG_SHARED_DIR)")


# ---------------------------------------------------------------------------------------------
# Document builders
# ---------------------------------------------------------------------------------------------


def course_v17(
    code: str,
    title: str = "Databases",
    *,
    grade: str = "4",
    ects: str = "5",
    status: str | None = "passed",
    extra_loi: str = "",
) -> str:
    status_xml = f"<status>{status}</status>" if status else ""
    return (
        "<learningOpportunitySpecification>"
        f'<identifier type="local">{code}</identifier>'
        f'<title xml:lang="en">{title}</title><type>Course</type>'
        "<specifies><learningOpportunityInstance>"
        f"<date>2024-01-15</date>{status_xml}<gradingSchemeLocalId>1-5</gradingSchemeLocalId>"
        f"<resultLabel>{grade}</resultLabel>"
        f"<credit><scheme>ects</scheme><value>{ects}</value></credit>"
        f"{extra_loi}"
        "</learningOpportunityInstance></specifies>"
        "</learningOpportunitySpecification>"
    )


def elmo_v17(
    body: str = "", *, report_tail: str = "", elmo_tail: str = "", learner_tail: str = ""
) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<elmo xmlns="{ELMO_NS}" xmlns:xml="http://www.w3.org/XML/1998/namespace">\n'
        "<generatedDate>2024-02-01T09:30:00Z</generatedDate>\n"
        "<learner><citizenship>FI</citizenship>"
        '<identifier type="esi">urn:schac:personalUniqueCode:int:esi:helsinki.fi:123</identifier>'
        f"<givenNames>Aino</givenNames><familyName>Virtanen</familyName>{learner_tail}"
        "<bday>2001-02-03</bday></learner>\n"
        "<report>\n<issuer><country>FI</country>"
        '<identifier type="schac">helsinki.fi</identifier>'
        '<identifier type="erasmus">SF HELSINK01</identifier>'
        '<title xml:lang="en">University of Helsinki</title><url>https://www.helsinki.fi</url>'
        "</issuer>\n"
        f"{body}\n"
        "<issueDate>2024-02-01T09:30:00+02:00</issueDate>\n"
        '<gradingScheme localId="1-5"><description xml:lang="en">1 (lowest pass) to 5</description>'
        "</gradingScheme>\n"
        f"{report_tail}"
        "</report>\n"
        f"{elmo_tail}"
        "</elmo>\n"
    )


def write(tmp_path: Path, text: str | bytes, name: str = "transcript.xml") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def rejected(source: Any, **kwargs: Any) -> TranscriptRejected:
    with pytest.raises(TranscriptRejected) as caught:
        parse_transcript(source, **kwargs)
    assert isinstance(caught.value, ValidationFailed)
    return caught.value


# ---------------------------------------------------------------------------------------------
# Official examples
# ---------------------------------------------------------------------------------------------


def test_official_v17_example_is_detected_as_v17_and_imports() -> None:
    assert detect_version(ELMO_EXAMPLE) == TranscriptVersion(
        TranscriptFormat.ELMO, ElmoVersion.V1_7
    )

    transcript = parse_transcript(ELMO_EXAMPLE)

    assert str(transcript.version) == "ELMO 1.7"
    assert transcript.filename == "example.xml"
    assert transcript.generated_at == datetime(
        2015, 10, 31, 12, tzinfo=timezone(timedelta(hours=2))
    )
    learner = transcript.learner
    assert (learner.given_names, learner.family_name) == ("Wojciech Łukasz", "Rygielski")
    assert learner.birth_date == date(1983, 4, 12)
    assert learner.citizenship == "PL"
    assert learner.identifier("nationalIdentifier") == "83041200000"
    issuer = transcript.issuer
    assert (issuer.schac, issuer.erasmus_code, issuer.pic) == (
        "uw.edu.pl",
        "PL WARSZAW01",
        "999572294",
    )
    assert issuer.name == "University of Warsaw"
    assert issuer.country == "PL"

    # Degree > course, course > 2 classes, and a course without type: six specifications.
    assert len(transcript.results) == 6
    assert [r.type for r in transcript.results] == [
        "Degree Programme",
        "Course",
        "Course",
        "Class",
        "Class",
        None,
    ]
    degree, external, compilers, lecture, _lab, untyped = transcript.results
    assert [c.title for c in transcript.courses] == [
        "Identifying ectomycorrhizal fungi (University of Copenhagen)",
        "Compiler construction",
        "The importance of <br> in HTML",
    ]

    assert degree.local_code == "MNM2-BIO"
    assert degree.ects_credits == Decimal("120")
    assert degree.status is ResultStatus.PASSED
    assert not degree.status_stated
    assert (external.depth, external.parent_index) == (1, 0)
    assert external.local_code == "EKSTERN"
    assert external.grade == "Innpasset"
    assert external.ects_credits == Decimal("15")
    assert external.academic_term is not None
    assert external.academic_term.end == date(2010, 7, 2)

    assert compilers.local_code == "1000-217bMRJ"
    assert compilers.title == "Compiler construction"
    assert compilers.grade == "45.1"
    assert compilers.ects_credits == Decimal("6")
    assert compilers.eqf_level == 5
    assert compilers.result_date == date(2015, 3, 17)
    assert compilers.language_of_instruction == "pl"
    assert compilers.isced_code == "0612"
    assert compilers.passed
    assert compilers.status_stated
    assert compilers.institution.schac == "uw.edu.pl"
    assert compilers.grading_scheme_id == "0-100"
    assert compilers.grading_scheme_description[0].text.startswith("A number of the scale")
    assert compilers.shortened_grading is not None
    assert compilers.shortened_grading.percentage_lower == Decimal("62.3")
    assert compilers.result_distribution is not None
    assert [(c.label, c.count) for c in compilers.result_distribution.categories][:2] == [
        ("Less than 20", 43),
        ("20-39.9", 193),
    ]
    assert (lecture.depth, lecture.parent_index, lecture.local_code) == (1, 2, "2829051")
    assert untyped.grade == "C"
    assert untyped.attachment_refs == ("12345678", "87654321")

    # The example's attachments are placeholders ("iiNhz6QfDnnDybjHLBF2..."): kept, flagged.
    assert len(transcript.attachments) == 6
    assert {a.scope for a in transcript.attachments} == {"elmo", "report", "diplomaSupplement"}
    assert all(a.data is None and a.problem for a in transcript.attachments)


def test_official_v17_example_is_invalid_v20_so_detection_matters() -> None:
    v20 = transcripts._schema(TranscriptVersion(TranscriptFormat.ELMO, ElmoVersion.V2_0))
    v17 = transcripts._schema(TranscriptVersion(TranscriptFormat.ELMO, ElmoVersion.V1_7))
    document = etree.parse(str(ELMO_EXAMPLE))
    assert v17.validate(document)
    assert not v20.validate(document)


def test_ewp_example_parses_with_its_grade_conversion_table() -> None:
    transcript = parse_transcript(EWP_EXAMPLE)

    assert transcript.version == TranscriptVersion(TranscriptFormat.EWP_TORS, ElmoVersion.V1_7)
    assert transcript.format is TranscriptFormat.EWP_TORS
    assert transcript.omobility_id == "b1ab0888-a5ce-45e8-8c51-e3c6f677b58f"
    assert transcript.learner.family_name == "Kowalski"
    assert transcript.issuer.schac == "uw.edu.pl"
    [result] = transcript.results
    assert result.grade == "C"
    assert result.isced_code == "0612"
    table = transcript.grade_conversion_table("0612")
    assert table is not None
    assert table.percentage("C") == Decimal("36.3")
    assert [f.label for f in table.frequencies] == ["F", "E", "D", "C", "B", "A"]
    assert sum(f.percentage for f in table.frequencies) == Decimal("100.0")


def test_schemas_load_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the transcript parser tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(transcripts, "_schema_cache", {})
    for version in (ElmoVersion.V1_7, ElmoVersion.V2_0):
        for fmt in TranscriptFormat:
            assert transcripts._schema(TranscriptVersion(fmt, version)) is not None
    assert parse_transcript(EWP_EXAMPLE).results


# ---------------------------------------------------------------------------------------------
# Built documents
# ---------------------------------------------------------------------------------------------


def elmo_v20() -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<elmo xmlns="{ELMO_NS}" xmlns:xml="http://www.w3.org/XML/1998/namespace">
  <generatedDate>2025-07-01T08:00:00Z</generatedDate>
  <learner>
    <citizenship>IT</citizenship>
    <identifier type="esi">urn:schac:personalUniqueCode:int:esi:unibo.it:998877</identifier>
    <givenNames>Giulia</givenNames>
    <familyName>Rossi</familyName>
    <alternativeName xml:lang="en">Julia Rossi</alternativeName>
    <dateOfBirth>2002-05-06</dateOfBirth>
  </learner>
  <report>
    <issuer>
      <country>IT</country>
      <identifier type="schac">unibo.it</identifier>
      <identifier type="erasmus">I BOLOGNA01</identifier>
      <title xml:lang="it">Università di Bologna</title>
      <title xml:lang="en">University of Bologna</title>
      <url>https://www.unibo.it</url>
    </issuer>
    <learningOpportunitySpecification>
      <identifier type="local">LM-18</identifier>
      <title xml:lang="en">Computer Science</title>
      <type>Degree Programme</type>
      <specifies><learningOpportunityInstance><status>in-progress</status>
      </learningOpportunityInstance></specifies>
      <hasPart>
        <learningOpportunitySpecification>
          <identifier type="local">91254</identifier>
          <title xml:lang="en">Machine Learning</title>
          <type>Course</type>
          <iscedCode>0613</iscedCode>
          <specifies>
            <learningOpportunityInstance>
              <date>2025-06-20</date>
              <status>passed</status>
              <gradingSchemeLocalId>IT-30</gradingSchemeLocalId>
              <gradingSchemeExternalId>https://example.org/grading/it-30</gradingSchemeExternalId>
              <resultLabel>28</resultLabel>
              <credit><scheme>ects</scheme><value>6.0</value></credit>
              <level><type>EQF</type><value>7</value></level>
              <languageOfInstruction>en</languageOfInstruction>
            </learningOpportunityInstance>
          </specifies>
        </learningOpportunitySpecification>
      </hasPart>
      <hasPart>
        <learningOpportunitySpecification>
          <identifier type="local">91255</identifier>
          <title xml:lang="en">Distributed Systems</title>
          <type>Course</type>
          <specifies>
            <learningOpportunityInstance>
              <date>2025-06-27</date>
              <status>failed</status>
              <resultLabel>15</resultLabel>
              <credit><scheme>ects</scheme><value>6</value></credit>
            </learningOpportunityInstance>
          </specifies>
        </learningOpportunitySpecification>
      </hasPart>
    </learningOpportunitySpecification>
    <resultOfRecognition>
      <title xml:lang="en">Recognition of an earlier course</title>
      <status>Positive</status>
      <decisionDate>2025-03-01</decisionDate>
      <recognitionResult>
        <learningOpportunitySpecification>
          <identifier type="local">HOME-1</identifier>
          <title xml:lang="en">A home course credited earlier</title>
          <specifies><learningOpportunityInstance><resultLabel>30</resultLabel>
          </learningOpportunityInstance></specifies>
        </learningOpportunitySpecification>
      </recognitionResult>
    </resultOfRecognition>
    <issueDate>2025-07-01T08:00:00Z</issueDate>
    <gradingScheme localId="IT-30">
      <description xml:lang="en">18 (lowest pass) to 30 e lode</description>
    </gradingScheme>
  </report>
</elmo>
"""


def test_v20_document_is_detected_validated_and_parsed(tmp_path: Path) -> None:
    path = write(tmp_path, elmo_v20())
    assert detect_version(path) == TranscriptVersion(TranscriptFormat.ELMO, ElmoVersion.V2_0)

    transcript = parse_transcript(path)

    assert str(transcript.version) == "ELMO 2.0"
    assert transcript.generated_at == datetime(2025, 7, 1, 8, tzinfo=UTC)
    learner = transcript.learner
    assert learner.birth_date == date(2002, 5, 6)
    assert learner.alternative_name is not None
    assert learner.alternative_name.text == "Julia Rossi"
    assert learner.identifier("ESI") == "urn:schac:personalUniqueCode:int:esi:unibo.it:998877"
    # The home course inside resultOfRecognition is a decision, not one of the learner's results.
    assert [r.local_code for r in transcript.results] == ["LM-18", "91254", "91255"]
    degree, ml, ds = transcript.results
    assert degree.status is ResultStatus.IN_PROGRESS
    assert [c.local_code for c in transcript.courses] == ["91254", "91255"]
    assert (ml.grade, ml.ects_credits, ml.eqf_level) == ("28", Decimal("6.0"), 7)
    assert ml.grading_scheme_external_id == "https://example.org/grading/it-30"
    assert ml.grading_scheme_description[0].text == "18 (lowest pass) to 30 e lode"
    assert ml.institution.name == "University of Bologna"
    assert (ml.depth, ml.parent_index) == (1, 0)
    assert ds.status is ResultStatus.FAILED
    assert not ds.passed


def test_v17_attachment_yields_the_pdf_bytes(tmp_path: Path) -> None:
    pdf_uri = "data:application/pdf;base64," + base64.b64encode(PDF).decode()
    wrapped = "\n".join(pdf_uri[i : i + 60] for i in range(0, len(pdf_uri), 60))
    fake_uri = "data:application/pdf;base64," + base64.b64encode(b"<html>no</html>").decode()
    document = elmo_v17(
        course_v17("DB-1", extra_loi="<attachments><ref>tor-pdf</ref></attachments>"),
        report_tail=(
            '<attachment><identifier type="internal">tor-pdf</identifier>'
            '<title xml:lang="en">Transcript of Records</title><type>Transcript of Records</type>'
            f"<content>{wrapped}</content></attachment>"
            f"<attachment><title>Not a PDF</title><content>{fake_uri}</content></attachment>"
        ),
        elmo_tail=(
            "<attachment><title>Link</title><content>https://example.org/tor.pdf</content>"
            "</attachment>"
        ),
    )

    transcript = parse_transcript(write(tmp_path, document))

    pdf, fake, link = transcript.attachments
    assert pdf.data == PDF
    assert pdf.is_pdf
    assert pdf.problem is None
    assert pdf.media_type == "application/pdf"
    assert (pdf.type, pdf.title, pdf.scope) == (
        "Transcript of Records",
        "Transcript of Records",
        "report",
    )
    assert transcript.results[0].attachment_refs == ("tor-pdf",)
    assert pdf.identifiers[0].value == "tor-pdf"
    assert fake.data is None
    assert fake.problem is not None
    assert "%PDF" in fake.problem
    assert link.data is None
    assert link.scope == "elmo"
    assert link.problem is not None
    assert "not fetched" in link.problem


def test_bytes_input_uses_the_given_filename() -> None:
    transcript = parse_transcript(elmo_v17(course_v17("A-1")).encode(), filename="upload-17.xml")
    assert transcript.filename == "upload-17.xml"
    [result] = transcript.results
    assert (result.local_code, result.grade, result.ects_credits) == ("A-1", "4", Decimal("5"))
    assert result.result_date == date(2024, 1, 15)


# ---------------------------------------------------------------------------------------------
# Refusals: each names the file, the line and the element
# ---------------------------------------------------------------------------------------------

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<elmo xmlns="https://github.com/emrex-eu/elmo-schemas/tree/v1" a="&lol9;">&lol9;</elmo>
"""


def test_billion_laughs_is_refused_before_expansion(tmp_path: Path) -> None:
    path = write(tmp_path, BILLION_LAUGHS, "bomb.xml")
    started = time.perf_counter()
    error = rejected(path)
    assert time.perf_counter() - started < 1
    assert str(error).startswith("bomb.xml, line 2, element <!DOCTYPE>: ")
    assert "DOCTYPE" in error.reason
    assert "billion laughs" in error.reason
    with pytest.raises(TranscriptRejected, match="line 2"):
        detect_version(path)


@pytest.mark.parametrize(
    "template",
    [
        '<!DOCTYPE elmo [<!ENTITY xxe SYSTEM "{url}">]>\n<elmo xmlns="{ns}">&xxe;</elmo>',
        '<!DOCTYPE elmo [<!ENTITY xxe SYSTEM "{url}">]>\n<elmo xmlns="{ns}" a="&xxe;"/>',
        '<!DOCTYPE elmo [<!ENTITY % pe SYSTEM "{url}"> %pe;]>\n<elmo xmlns="{ns}"/>',
        '<!DOCTYPE elmo SYSTEM "{url}">\n<elmo xmlns="{ns}"/>',
        '<!-- a comment first -->\n<?pi x?>\n<!DOCTYPE elmo [<!ENTITY x SYSTEM "{url}">]>'
        '\n<elmo xmlns="{ns}">&x;</elmo>',
    ],
    ids=["entity-in-text", "entity-in-attribute", "parameter-entity", "external-dtd", "late"],
)
def test_external_entity_is_refused_and_the_file_never_read(tmp_path: Path, template: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-4711\n")
    document = '<?xml version="1.0"?>\n' + template.format(url=secret.as_uri(), ns=ELMO_NS)

    for source in (write(tmp_path, document, "xxe.xml"), document.encode()):
        error = rejected(source, filename="xxe.xml")
        assert str(error).startswith("xxe.xml, line ")
        assert "element <!DOCTYPE>" in str(error)
        assert "TOP-SECRET" not in str(error)
        assert "TOP-SECRET" not in repr(error.__cause__) + repr(error.__context__)


def test_utf16_doctype_is_refused(tmp_path: Path) -> None:
    document = '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE elmo>\n<elmo/>'
    error = rejected(write(tmp_path, document.encode("utf-16"), "wide.xml"))
    assert str(error).startswith("wide.xml, line 2, element <!DOCTYPE>")


def test_oversize_file_is_refused_unread(tmp_path: Path) -> None:
    path = write(tmp_path, elmo_v17(course_v17("A-1")), "big.xml")
    size = path.stat().st_size
    error = rejected(path, max_bytes=size - 1)
    assert str(error) == (
        f"big.xml: the file has {size:,} bytes, more than the limit of {size - 1:,}"
    )
    assert "more than the limit" in rejected(path.read_bytes(), max_bytes=100).reason


def test_too_deep_nesting_is_refused(tmp_path: Path) -> None:
    deep = '<x xmlns="urn:ext">' * 70 + "</x>" * 70
    document = elmo_v17(course_v17("A-1", extra_loi=f"<extension>{deep}</extension>"))
    error = rejected(write(tmp_path, document, "deep.xml"))
    assert str(error) == "deep.xml, line 7, element <x>: elements are nested deeper than 64 levels"
    # elmo/report/issuer/country is the first element four levels deep (line 6).
    shallow = rejected(elmo_v17().encode(), filename="s.xml", max_depth=3)
    assert (
        str(shallow) == "s.xml, line 6, element <country>: elements are nested deeper than 3 levels"
    )


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    text = ELMO_EXAMPLE.read_text(encoding="utf-8")
    cut = text[: text.index("<resultLabel>45.1")]
    error = rejected(write(tmp_path, cut, "cut.xml"))
    last_line = cut.count("\n") + 1
    assert str(error).startswith(
        f"cut.xml, line {last_line}, element <learningOpportunityInstance>"
    )
    assert "truncated" in error.reason


def test_not_well_formed_is_refused(tmp_path: Path) -> None:
    document = elmo_v17(course_v17("A-1")).replace("</familyName>", "</familyname>")
    error = rejected(write(tmp_path, document, "broken.xml"))
    assert str(error).startswith("broken.xml, line 4, element <familyName>: not well-formed XML")
    assert "mismatch" in error.reason


def test_schema_invalid_document_is_refused_with_the_schemas_complaint(tmp_path: Path) -> None:
    # Line 7: a specification without a title (required by both versions).
    document = elmo_v17(course_v17("A-1").replace('<title xml:lang="en">Databases</title>', ""))
    error = rejected(write(tmp_path, document))
    assert str(error).startswith(
        "transcript.xml, line 7, element <type>: not valid against the ELMO 1.7 schema: "
    )
    assert "Expected is one of ( identifier, title )" in error.reason
    assert (error.filename, error.line, error.element) == ("transcript.xml", 7, "type")


def test_invalid_enumeration_is_refused(tmp_path: Path) -> None:
    document = elmo_v17(course_v17("A-1", status="passed-with-honours"))
    error = rejected(write(tmp_path, document))
    assert error.line == 7
    assert error.element == "status"
    assert "not valid against the ELMO 1.7 schema" in error.reason


def test_v20_learner_with_v17_content_is_checked_against_v20(tmp_path: Path) -> None:
    # alternativeName makes it v2.0; then bday (v1.7 only) is what the v2.0 schema rejects.
    document = elmo_v17(
        course_v17("A-1"), learner_tail="<alternativeName>Aino V.</alternativeName>"
    )
    error = rejected(write(tmp_path, document))
    assert error.element == "bday"
    assert "not valid against the ELMO 2.0 schema" in error.reason


def test_unknown_root_is_refused(tmp_path: Path) -> None:
    error = rejected(write(tmp_path, '<?xml version="1.0"?>\n\n<transcript xmlns="urn:x"/>'))
    assert str(error).startswith("transcript.xml, line 3, element <transcript>: unknown root")
    assert "urn:x" in error.reason
    plain = rejected(b"<elmo><learner/></elmo>", filename="plain.xml")
    assert str(plain).startswith("plain.xml, line 1, element <elmo>: unknown root element")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty.xml: the file is empty"),
        (b"  \n\t\n", "empty.xml: the file contains no XML element"),
        (
            b'<?xml version="1.0"?>\n<!-- nothing -->\n',
            "empty.xml: the file contains no XML element",
        ),
    ],
    ids=["zero-bytes", "whitespace", "prolog-only"],
)
def test_empty_file_is_refused(tmp_path: Path, content: bytes, message: str) -> None:
    assert str(rejected(write(tmp_path, content, "empty.xml"))) == message


def test_not_xml_at_all_is_refused(tmp_path: Path) -> None:
    error = rejected(write(tmp_path, PDF, "scan.pdf"))
    assert str(error).startswith("scan.pdf, line 1: not well-formed XML")


def test_value_python_cannot_hold_is_refused_after_validation(tmp_path: Path) -> None:
    # xs:date allows year 12024; Python's date does not. Valid XML, still refused whole.
    document = elmo_v17(course_v17("A-1")).replace("2024-01-15", "12024-01-15")
    error = rejected(write(tmp_path, document))
    assert str(error) == (
        "transcript.xml, line 7, element <date>: '12024-01-15' is not a supported date"
    )


def test_invalid_ewp_response_is_refused_against_the_ewp_schema(tmp_path: Path) -> None:
    text = EWP_EXAMPLE.read_text(encoding="utf-8").replace(
        'percentage="36.3"', 'percentage="a lot"'
    )
    error = rejected(write(tmp_path, text, "ewp.xml"))
    line = text[: text.index('percentage="a lot"')].count("\n") + 1
    assert str(error).startswith(f"ewp.xml, line {line}, element <gradeFrequency>: ")
    assert "not valid against the EWP ToR get-response schema (stable-v2, with ELMO 1.7)" in str(
        error
    )
    assert "'a lot' is not a valid value of the atomic type 'xs:decimal'" in error.reason


def test_schema_error_in_a_large_file_names_the_element_without_a_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transcripts, "_LOCATE_LIMIT", 100)
    document = elmo_v17(course_v17("A-1", status="passed-with-honours"))
    error = rejected(write(tmp_path, document))
    assert error.line is None
    assert error.element == "status"
    assert str(error).startswith("transcript.xml, element <status>: not valid against")
    assert "line not located: the file is larger than 100 bytes" in error.reason


def test_ewp_response_with_two_transcripts_is_refused(tmp_path: Path) -> None:
    text = EWP_EXAMPLE.read_text(encoding="utf-8")
    start, end = text.index("<tor>"), text.index("</tor>") + len("</tor>")
    doubled = text[:end] + "\n" + text[start:end] + text[end:]
    error = rejected(write(tmp_path, doubled, "tors.xml"))
    assert str(error).startswith("tors.xml, line ")
    assert "element <tor>" in str(error)
    assert "more than one mobility" in error.reason


# ---------------------------------------------------------------------------------------------
# Streaming
# ---------------------------------------------------------------------------------------------


def write_many(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        head, tail = elmo_v17("@@").split("@@")
        out.write(head)
        for index in range(count):
            out.write(course_v17(f"C{index:05d}", f"Course {index}", grade=str(1 + index % 5)))
            out.write("\n")
        out.write(tail)


def test_ten_thousand_results_stream_in_bounded_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "many.xml"
    write_many(path, 10_000)

    # Watch the tree iterparse builds: it must stay small however many results go by.
    real = transcripts._iterparse
    largest = 0

    def watched(*args: Any, **kwargs: Any) -> Iterator[tuple[str, etree._Element]]:
        nonlocal largest
        events = real(*args, **kwargs)
        for number, (event, element) in enumerate(events):
            if number % 5_000 == 0:
                root = element.getroottree().getroot()
                largest = max(largest, sum(1 for _ in root.iter()))
            yield event, element

    monkeypatch.setattr(transcripts, "_iterparse", watched)
    started = time.perf_counter()
    transcript = parse_transcript(path)
    elapsed = time.perf_counter() - started

    assert len(transcript.results) == 10_000
    assert transcript.results[-1].local_code == "C09999"
    assert transcript.results[-1].grading_scheme_description[0].text == "1 (lowest pass) to 5"
    # The parser reads 64 KB ahead of the events; the tree never holds more than that chunk's
    # elements, against about 130,000 elements in the file.
    assert largest < 5_000, f"the parsed tree grew to {largest} elements"
    # About 2 s on the project's 2-core machine (two streaming passes); the bound only catches
    # a quadratic slip, which would take minutes.
    assert elapsed < 15


def test_results_are_frozen() -> None:
    result = parse_transcript(EWP_EXAMPLE).results[0]
    field = "grade"
    with pytest.raises(FrozenInstanceError):
        setattr(result, field, "A")


# ---------------------------------------------------------------------------------------------
# The single pass: what the validating parser alone would let through
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            elmo_v17(
                course_v17("A-1", extra_loi='<extension><x:y xmlns:x="urn:x" q:a="1"/></extension>')
            ),
            "ns.xml, line 7: not well-formed XML: Namespace prefix q for a on y is not defined",
        ),
        (
            elmo_v17(
                course_v17(
                    "A-1",
                    extra_loi='<extension><x:y xmlns:x="urn:x" xmlns:z="urn:x" x:a="1" z:a="2"/>'
                    "</extension>",
                )
            ),
            "ns.xml, line 7: not well-formed XML: Namespaced Attribute a in 'urn:x' redefined",
        ),
        (
            elmo_v17(course_v17("A-1")) + "<!-- never closed",
            "ns.xml, line 12: not well-formed XML: Comment not terminated",
        ),
        (
            elmo_v17(course_v17("A-1")) + "<?pi never closed",
            "ns.xml, line 12: not well-formed XML: ParsePI: PI pi never end ...",
        ),
    ],
    ids=["undeclared-prefix", "attribute-twice", "comment-after-root", "pi-after-root"],
)
def test_errors_the_schema_validating_parser_swallows_are_refused(
    tmp_path: Path, document: str, message: str
) -> None:
    # With a schema attached (and entities left unresolved) lxml reports none of these.
    assert str(rejected(write(tmp_path, document, "ns.xml"))) == message


def test_a_document_restarted_after_a_broken_chunk_is_refused(tmp_path: Path) -> None:
    # After a syntax error lxml's validating feed parser starts a new document with the next
    # chunk: a valid document there must not be read as if it were the file.
    broken = elmo_v17("".join(course_v17(f"C{i}") for i in range(300))).replace(
        "</familyName>", "</familyname>"
    )
    padding = " " * (65_536 - len(broken.encode()) % 65_536)
    document = broken + padding + elmo_v17(course_v17("B-1"))
    error = rejected(write(tmp_path, document, "twice.xml"))
    assert str(error).startswith("twice.xml, line 4, element <familyName>: not well-formed XML")


def test_a_degree_programme_with_many_parts_streams_in_bounded_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = "".join(
        f"<hasPart>{course_v17(f'P{index:04d}', f'Part {index}')}</hasPart>\n"
        for index in range(3_000)
    )
    degree = (
        '<learningOpportunitySpecification><identifier type="local">DEG</identifier>'
        '<title xml:lang="en">Computer Science</title><type>Degree Programme</type>'
        "<specifies><learningOpportunityInstance><status>in-progress</status>"
        "</learningOpportunityInstance></specifies>\n"
        f"{parts}</learningOpportunitySpecification>"
    )
    path = write(tmp_path, elmo_v17(degree + course_v17("AFTER")), "degree.xml")

    real = transcripts._iterparse
    largest = 0

    def watched(*args: Any, **kwargs: Any) -> Iterator[tuple[str, etree._Element]]:
        nonlocal largest
        for number, (event, element) in enumerate(real(*args, **kwargs)):
            if number % 500 == 0:
                root = element.getroottree().getroot()
                largest = max(largest, sum(1 for _ in root.iter()))
            yield event, element

    monkeypatch.setattr(transcripts, "_iterparse", watched)
    transcript = parse_transcript(path)

    degree_result, *courses, after = transcript.results
    assert (degree_result.local_code, degree_result.depth, degree_result.parent_index) == (
        "DEG",
        0,
        None,
    )
    assert degree_result.status is ResultStatus.IN_PROGRESS
    assert len(courses) == 3_000
    assert {(c.depth, c.parent_index) for c in courses} == {(1, 0)}
    assert [c.local_code for c in courses[:2]] == ["P0000", "P0001"]
    assert courses[-1].title == "Part 2999"
    assert courses[-1].grading_scheme_description[0].text == "1 (lowest pass) to 5"
    assert (after.local_code, after.depth, after.parent_index) == ("AFTER", 0, None)
    # The parts are released while the degree programme is still open.
    assert largest < 5_000, f"the parsed tree grew to {largest} elements"


def test_results_are_plain_frozen_course_results() -> None:
    import dataclasses

    result = parse_transcript(EWP_EXAMPLE).results[0]
    assert type(result) is transcripts.CourseResult
    assert type(result.identifiers[0]) is transcripts.Identifier
    assert type(result.titles[0]) is transcripts.LocalizedText
    assert dataclasses.replace(result) == result
    assert hash(dataclasses.replace(result)) == hash(result)
    with pytest.raises(FrozenInstanceError):
        result.titles[0].text = "changed"  # type: ignore[misc]
