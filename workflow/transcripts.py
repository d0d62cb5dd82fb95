"""Parse ELMO 1.7 / 2.0 and EWP transcript-of-records files into validated, typed data.

Pure parsing: no database, no web, no network. ``parse_transcript`` takes a path or the bytes
of an uploaded file and returns a whole :class:`Transcript` or raises
:class:`~workflow.errors.ValidationFailed` (as :class:`TranscriptRejected`) naming the file,
the line, the element and what is wrong. Nothing is ever returned partially.

Formats (detected from the content, never from the file name):

- EMREX ELMO v1.7 and v2.0. Both use the namespace
  ``https://github.com/emrex-eu/elmo-schemas/tree/v1``; v2.0 is told apart by its learner
  (``alternativeName`` is required there and ``bday`` became ``dateOfBirth``).
- The EWP Incoming Mobility ToRs get-response (stable-v2), which wraps one ELMO document per
  ``<tor>`` and adds EGRACONS ``gradeConversionTable`` percentages. A response holding more
  than one ``<tor>`` is refused (one mobility per import).

Safety: the input is checked for size before it is read, any DOCTYPE (and so any entity
declaration, the way into billion-laughs and external-entity attacks) is refused before the XML
parser sees it, the parser runs with ``resolve_entities=False``, ``load_dtd=False``,
``no_network=True`` and ``huge_tree=False``, and elements may not nest deeper than
``max_depth``. The file is streamed with ``lxml.etree.iterparse`` twice: once to read it (and
prove it well-formed), once to validate it against the local copy of the matching schema
(``workflow/schemas/``; every ``schemaLocation`` is mapped to a local file, anything else is
refused). Processed elements are cleared, so memory grows with the parsed results, not with
the size of the file. Streaming validation in libxml2 reports no line numbers, so an invalid
file of at most 10 MB is validated once more as a whole to name the line.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import dataclasses
import io
import os
import re
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Final, TypeAlias, cast
from urllib.parse import unquote_to_bytes

from lxml import etree

from workflow.errors import ConfigurationError, ValidationFailed

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "AcademicTerm",
    "Attachment",
    "CourseResult",
    "Credit",
    "DistributionCategory",
    "ElmoVersion",
    "GradeConversionTable",
    "GradeFrequency",
    "Identifier",
    "Institution",
    "Learner",
    "Level",
    "LocalizedText",
    "ResultDistribution",
    "ResultStatus",
    "ShortenedGrading",
    "Transcript",
    "TranscriptFormat",
    "TranscriptRejected",
    "TranscriptSource",
    "TranscriptVersion",
    "detect_version",
    "parse_transcript",
    "pick_text",
]

DEFAULT_MAX_BYTES: Final = 50 * 1024 * 1024
DEFAULT_MAX_DEPTH: Final = 64

ELMO_NS: Final = "https://github.com/emrex-eu/elmo-schemas/tree/v1"
EWP_TORS_NS: Final = (
    "https://github.com/erasmus-without-paper/ewp-specs-api-imobility-tors/blob/stable-v2/"
    "endpoints/get-response.xsd"
)
_XML_LANG: Final = "{http://www.w3.org/XML/1998/namespace}lang"

TranscriptSource: TypeAlias = "str | os.PathLike[str] | bytes"


# --------------------------------------------------------------------------------------------
# Output types
# --------------------------------------------------------------------------------------------


class TranscriptFormat(StrEnum):
    ELMO = "elmo"
    EWP_TORS = "ewp-imobility-tors-get-response"


class ElmoVersion(StrEnum):
    V1_7 = "1.7"
    V2_0 = "2.0"


class ResultStatus(StrEnum):
    """ELMO ``learningOpportunityInstance/status``; an absent status means passed."""

    PASSED = "passed"
    FAILED = "failed"
    IN_PROGRESS = "in-progress"


@dataclass(frozen=True, slots=True)
class TranscriptVersion:
    """What a file is: plain ELMO or the EWP response, and the ELMO version inside."""

    format: TranscriptFormat
    elmo_version: ElmoVersion

    @property
    def schema_label(self) -> str:
        if self.format is TranscriptFormat.EWP_TORS:
            return f"EWP ToR get-response schema (stable-v2, with ELMO {self.elmo_version})"
        return f"ELMO {self.elmo_version} schema"

    def __str__(self) -> str:
        if self.format is TranscriptFormat.EWP_TORS:
            return f"EWP IMobility ToRs get-response (ELMO {self.elmo_version})"
        return f"ELMO {self.elmo_version}"


@dataclass(frozen=True, slots=True)
class LocalizedText:
    text: str
    lang: str | None = None


def pick_text(texts: Iterable[LocalizedText], lang: str = "en") -> str | None:
    """The text in ``lang``, else the one without a language, else the first one."""
    items = list(texts)
    for wanted in (lang, None):
        for item in items:
            if item.lang == wanted:
                return item.text
    return items[0].text if items else None


@dataclass(frozen=True, slots=True)
class Identifier:
    """An ELMO ``identifier``: ``type`` is free text (``local``, ``schac``, ``erasmus``,
    ``pic``, ``esi``, ``nationalIdentifier``, ``ewp-los-id``, ...)."""

    type: str
    value: str


def _first_identifier(identifiers: Iterable[Identifier], type_: str) -> str | None:
    wanted = type_.casefold()
    return next((i.value for i in identifiers if i.type.casefold() == wanted), None)


@dataclass(frozen=True, slots=True)
class Institution:
    """The issuer of a report (for an incoming transcript: the partner institution)."""

    identifiers: tuple[Identifier, ...]
    names: tuple[LocalizedText, ...]
    country: str | None
    url: str | None

    @property
    def schac(self) -> str | None:
        return _first_identifier(self.identifiers, "schac")

    @property
    def erasmus_code(self) -> str | None:
        return _first_identifier(self.identifiers, "erasmus")

    @property
    def pic(self) -> str | None:
        return _first_identifier(self.identifiers, "pic")

    @property
    def name(self) -> str | None:
        return pick_text(self.names)


@dataclass(frozen=True, slots=True)
class Learner:
    identifiers: tuple[Identifier, ...]
    given_names: str
    family_name: str
    birth_date: date | None
    citizenship: str | None
    alternative_name: LocalizedText | None = None  # v2.0 only
    birth_name: str | None = None
    place_of_birth: str | None = None
    gender: int | None = None  # ISO/IEC 5218: 0 unknown, 1 male, 2 female, 9 not applicable

    def identifier(self, type_: str) -> str | None:
        """The first identifier of this type (case-insensitive), e.g. ``esi``."""
        return _first_identifier(self.identifiers, type_)


@dataclass(frozen=True, slots=True)
class AcademicTerm:
    titles: tuple[LocalizedText, ...]
    start: date
    end: date


@dataclass(frozen=True, slots=True)
class Credit:
    scheme: str
    value: Decimal | None
    level: str | None = None  # v1.7 only (Bachelor/Master/PhD), deprecated there


@dataclass(frozen=True, slots=True)
class Level:
    type: str
    value: str | None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class DistributionCategory:
    label: str
    count: int


@dataclass(frozen=True, slots=True)
class ResultDistribution:
    """Histogram of all students' results in this course instance (failed ones included)."""

    categories: tuple[DistributionCategory, ...]
    descriptions: tuple[LocalizedText, ...] = ()


@dataclass(frozen=True, slots=True)
class ShortenedGrading:
    """Share of the course's students graded lower / the same / higher than the learner."""

    percentage_lower: Decimal
    percentage_equal: Decimal
    percentage_higher: Decimal


@dataclass(frozen=True, slots=True)
class CourseResult:
    """One learning opportunity (``learningOpportunitySpecification`` with its instance).

    Nested specifications (a degree programme with its courses, a course with its classes)
    each give one result, in document order; ``depth`` and ``parent_index`` (an index into
    ``Transcript.results``) keep the tree.
    """

    institution: Institution
    identifiers: tuple[Identifier, ...]
    titles: tuple[LocalizedText, ...]
    type: str | None  # "Degree Programme", "Module", "Course", "Class", or None/unknown
    status: ResultStatus
    status_stated: bool  # False: no <status>, ELMO says to assume passed
    grade: str | None  # resultLabel: the grade as printed
    grading_scheme_id: str | None  # gradingSchemeLocalId, only valid within this file
    grading_scheme_description: tuple[LocalizedText, ...]  # from report/gradingScheme
    ects_credits: Decimal | None
    credits: tuple[Credit, ...]
    eqf_level: int | None
    levels: tuple[Level, ...]
    result_date: date | None  # instance/date: when the learner finished (final exam)
    start_date: date | None
    academic_term: AcademicTerm | None
    language_of_instruction: str | None
    engagement_hours: Decimal | None
    result_distribution: ResultDistribution | None
    shortened_grading: ShortenedGrading | None
    subject_area: str | None
    isced_code: str | None
    instance_identifiers: tuple[Identifier, ...]
    attachment_refs: tuple[str, ...]  # identifiers of Transcript.attachments
    depth: int
    parent_index: int | None
    line: int  # line of the learningOpportunitySpecification in the file
    grading_scheme_external_id: str | None = None  # v2.0 only

    @property
    def local_code(self) -> str | None:
        """The partner's own course code (identifier of type ``local``)."""
        return _first_identifier(self.identifiers, "local")

    @property
    def title(self) -> str | None:
        return pick_text(self.titles)

    @property
    def passed(self) -> bool:
        return self.status is ResultStatus.PASSED


@dataclass(frozen=True, slots=True)
class Attachment:
    """One ``content`` of an ELMO ``attachment`` (an attachment in two languages gives two).

    ``data`` holds the decoded bytes of a ``data:`` URI; it is ``None`` and ``problem`` says
    why when the content is not an embedded document (an external URL is never fetched), is
    not valid base64, or is declared ``application/pdf`` without the ``%PDF-`` magic number.
    """

    identifiers: tuple[Identifier, ...]
    titles: tuple[LocalizedText, ...]
    type: str | None  # "Transcript of Records", "Diploma Supplement", ...
    descriptions: tuple[LocalizedText, ...]
    language: str | None
    media_type: str | None
    data: bytes | None
    problem: str | None
    scope: str  # "elmo", "report" or "diplomaSupplement"
    line: int

    @property
    def title(self) -> str | None:
        return pick_text(self.titles)

    @property
    def is_pdf(self) -> bool:
        return self.data is not None and _is_pdf(self.data)


@dataclass(frozen=True, slots=True)
class GradeFrequency:
    label: str
    percentage: Decimal


@dataclass(frozen=True, slots=True)
class GradeConversionTable:
    """EWP ``gradeConversionTable/iscedTable``: EGRACONS percentages for one ISCED-F code."""

    isced_code: str
    frequencies: tuple[GradeFrequency, ...]

    def percentage(self, label: str) -> Decimal | None:
        return next((f.percentage for f in self.frequencies if f.label == label), None)


@dataclass(frozen=True, slots=True)
class Transcript:
    version: TranscriptVersion
    filename: str
    generated_at: datetime
    learner: Learner
    issuers: tuple[Institution, ...]  # one per report, in order
    issued_at: datetime  # issueDate of the first report
    results: tuple[CourseResult, ...]
    attachments: tuple[Attachment, ...]
    grade_conversion_tables: tuple[GradeConversionTable, ...] = ()  # EWP only
    omobility_id: str | None = None  # EWP only

    @property
    def format(self) -> TranscriptFormat:
        return self.version.format

    @property
    def issuer(self) -> Institution:
        return self.issuers[0]

    @property
    def courses(self) -> tuple[CourseResult, ...]:
        """Results that can be credited: everything but degree programmes and classes."""
        return tuple(r for r in self.results if r.type not in _NOT_COURSES)

    def grade_conversion_table(self, isced_code: str) -> GradeConversionTable | None:
        return next((t for t in self.grade_conversion_tables if t.isced_code == isced_code), None)


_NOT_COURSES: Final = frozenset({"Degree Programme", "Class"})


class TranscriptRejected(ValidationFailed):
    """A transcript file was refused; the message names file, line and element."""

    def __init__(self, filename: str, line: int | None, element: str | None, reason: str) -> None:
        where = [filename]
        if line:
            where.append(f"line {line}")
        if element:
            where.append(f"element <{element}>")
        super().__init__(f"{', '.join(where)}: {reason}")
        self.filename = filename
        self.line = line
        self.element = element
        self.reason = reason


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def parse_transcript(
    source: TranscriptSource,
    *,
    filename: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Transcript:
    """Parse, validate and convert a transcript file (a path, or the bytes of an upload).

    ``filename`` is the name used in error messages (default: the path's base name).
    Raises :class:`TranscriptRejected` (a ``ValidationFailed``) for any refusal.
    """
    name = _display_name(source, filename)
    version = detect_version(source, filename=name, max_bytes=max_bytes, max_depth=max_depth)
    # Pass 1 reads the data and proves the file well-formed (lxml's parser reports truncation
    # and other syntax errors reliably only when no schema is attached to it). Pass 2
    # validates. A value that only Python cannot take is reported after the schema had its say.
    collector = _Collector(name, version)
    with _open_checked(source, name, max_bytes) as stream:
        collector.run(stream, max_depth)
    _validate(source, name, max_bytes, version)
    return collector.finish()


def detect_version(
    source: TranscriptSource,
    *,
    filename: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> TranscriptVersion:
    """Tell the format from the root element and, for ELMO, the learner's children.

    Reads only the head of the file (up to the end of the first ``learner``), under the same
    safety rules as :func:`parse_transcript`; it does not validate.
    """
    name = _display_name(source, filename)
    fmt: TranscriptFormat | None = None
    elmo_version = ElmoVersion.V1_7
    with _open_checked(source, name, max_bytes) as stream:
        events = _events(stream, name, max_depth)
        try:
            for event, element in events:
                tag = element.tag
                if fmt is None:
                    fmt = _root_format(element, name)
                if event == "start":
                    if tag in _V2_LEARNER_MARKERS and _parent_tag(element) == _LEARNER:
                        elmo_version = ElmoVersion.V2_0
                        break
                    if tag in (_E_BDAY, _E_REPORT):
                        break
                elif tag == _LEARNER:
                    break
        finally:
            events.close()
    if fmt is None:  # pragma: no cover - _events refuses a document without elements
        raise TranscriptRejected(name, None, None, "the file contains no XML element")
    return TranscriptVersion(fmt, elmo_version)


# --------------------------------------------------------------------------------------------
# Input handling and safe streaming
# --------------------------------------------------------------------------------------------


def _e(local: str) -> str:
    return f"{{{ELMO_NS}}}{local}"


def _w(local: str) -> str:
    return f"{{{EWP_TORS_NS}}}{local}"


_ELMO: Final = _e("elmo")
_LEARNER: Final = _e("learner")
_E_REPORT: Final = _e("report")
_E_BDAY: Final = _e("bday")
_V2_LEARNER_MARKERS: Final = frozenset({_e("alternativeName"), _e("dateOfBirth")})
_EWP_ROOT: Final = _w("imobility-tors-get-response")

# Everything the parser is told. No DTD is loaded, no entity resolved, nothing fetched.
_PARSER_OPTIONS: Final[dict[str, Any]] = {
    "resolve_entities": False,
    "load_dtd": False,
    "dtd_validation": False,
    "attribute_defaults": False,
    "no_network": True,
    "huge_tree": False,
    "recover": False,
    "remove_comments": True,
    "remove_pis": True,
    "strip_cdata": True,
}
_CHUNK: Final = 64 * 1024
_PROLOG_WINDOW: Final = 1024 * 1024

# lxml-stubs 0.5 does not declare iterparse (it comes through as Any); give it its type.
_iterparse: Callable[..., Iterator[tuple[str, etree._Element]]] = etree.iterparse


class _TooLarge(Exception):
    pass


class _LimitedReader:
    """A binary stream that refuses to deliver more than ``limit`` bytes (a file that grows
    while it is read cannot slip past the size check)."""

    def __init__(self, raw: IO[bytes], limit: int) -> None:
        self._raw = raw
        self._limit = limit
        self._count = 0

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self._limit + 1 - self._count
        data = self._raw.read(min(size, self._limit + 1 - self._count))
        self._count += len(data)
        if self._count > self._limit:
            raise _TooLarge
        return data


def _display_name(source: TranscriptSource, filename: str | None) -> str:
    if filename:
        return filename
    if isinstance(source, bytes | bytearray | memoryview):
        return "uploaded file"
    return Path(os.fspath(source)).name


@contextmanager
def _open_checked(source: TranscriptSource, name: str, max_bytes: int) -> Iterator[IO[bytes]]:
    """Open the source after the size, emptiness and prolog (DOCTYPE) checks."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        _check_size(len(data), name, max_bytes)
        _check_prolog(data[:_PROLOG_WINDOW], len(data) <= _PROLOG_WINDOW, name)
        yield cast(IO[bytes], _LimitedReader(io.BytesIO(data), max_bytes))
        return
    path = Path(os.fspath(source))
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise TranscriptRejected(name, None, None, f"cannot be read ({exc.strerror})") from None
    with handle:
        size = os.fstat(handle.fileno()).st_size
        _check_size(size, name, max_bytes)
        head = handle.read(_PROLOG_WINDOW)
        _check_prolog(head, len(head) < _PROLOG_WINDOW or size <= _PROLOG_WINDOW, name)
        handle.seek(0)
        yield cast(IO[bytes], _LimitedReader(handle, max_bytes))


def _check_size(size: int, name: str, max_bytes: int) -> None:
    if size == 0:
        raise TranscriptRejected(name, None, None, "the file is empty")
    if size > max_bytes:
        raise TranscriptRejected(
            name, None, None, f"the file has {size:,} bytes, more than the limit of {max_bytes:,}"
        )


def _too_large(name: str) -> TranscriptRejected:
    return TranscriptRejected(name, None, None, "the file grew past the size limit while read")


def _decode_head(head: bytes) -> str:
    """Enough of a decoding to find markup in the prolog (for ASCII-compatible encodings the
    exact one does not matter: only ``<``, ``!``, ``?``, ``-`` and letters are looked at)."""
    for bom, codec in (
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
        (codecs.BOM_UTF8, "latin-1"),
    ):
        if head.startswith(bom):
            return head[len(bom) :].decode(codec, errors="replace")
    if head.startswith(b"\x00<"):
        return head.decode("utf-16-be", errors="replace")
    if head.startswith(b"<\x00") and not head.startswith(b"<\x00\x00"):
        return head.decode("utf-16-le", errors="replace")
    return head.decode("latin-1")


_DECLARATION: Final = re.compile(r"<!([A-Za-z]*)")


def _check_prolog(head: bytes, complete: bool, name: str) -> None:
    """Refuse a DOCTYPE (with its entity declarations) before the XML parser sees it.

    Walks the prolog (XML declaration, comments, processing instructions) up to the root
    element's start tag. ``complete`` says whether ``head`` is the whole file.
    """
    text = _decode_head(head)
    pos = 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos >= len(text):
            if complete:
                raise TranscriptRejected(name, None, None, "the file contains no XML element")
            break
        if text.startswith("<?", pos) or text.startswith("<!--", pos):
            closer = "?>" if text[pos + 1] == "?" else "-->"
            end = text.find(closer, pos + 2)
            if end < 0:
                if complete:
                    return  # unterminated: the parser reports it with its position
                break
            pos = end + len(closer)
            continue
        if text.startswith("<!", pos):
            line = text.count("\n", 0, pos) + 1
            keyword = _DECLARATION.match(text, pos)
            raise TranscriptRejected(
                name,
                line,
                "!" + (keyword.group(1) if keyword else ""),
                "document type declarations (DOCTYPE, DTD, ENTITY) are refused: they are the "
                "way into entity-expansion (billion laughs) and external-entity attacks, and "
                "ELMO/EWP documents never need one",
            )
        return  # the root element (or text the parser will refuse with its position)
    raise TranscriptRejected(
        name,
        None,
        None,
        f"no root element within the first {_PROLOG_WINDOW:,} bytes "
        "(the prolog before it is too long)",
    )


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _line(element: etree._Element) -> int:
    line = cast(Any, element).sourceline
    return int(line) if line else 0


def _parent_tag(element: etree._Element) -> str | None:
    parent = element.getparent()
    return parent.tag if parent is not None else None


def _root_format(root: etree._Element, name: str) -> TranscriptFormat:
    if root.tag == _ELMO:
        return TranscriptFormat.ELMO
    if root.tag == _EWP_ROOT:
        return TranscriptFormat.EWP_TORS
    ns, _, local = root.tag.rpartition("}")
    namespace = ns.lstrip("{") or "no namespace"
    raise TranscriptRejected(
        name,
        _line(root),
        local,
        f"unknown root element (namespace {namespace}); expected <elmo> in {ELMO_NS} "
        f"(EMREX ELMO) or <imobility-tors-get-response> in {EWP_TORS_NS} (EWP)",
    )


def _events(
    stream: IO[bytes], name: str, max_depth: int
) -> Generator[tuple[str, etree._Element], None, None]:
    """``iterparse`` start/end events with the depth limit, the DOCTYPE re-check and every
    parser complaint turned into a :class:`TranscriptRejected`."""
    open_elements: list[etree._Element] = []  # ancestors of the current event, for messages
    with _refusing(name, open_elements):
        for event, element in _iterparse(stream, **_iterparse_options()):
            if event == "start":
                _opened(element, open_elements, name, max_depth)
                yield event, element
            else:
                yield event, element
                open_elements.pop()


def _iterparse_options(**extra: Any) -> dict[str, Any]:
    etree.clear_error_log()  # the exception's log is per thread; start it afresh
    return dict(_PARSER_OPTIONS, events=("start", "end"), chunk_size=_CHUNK) | extra


def _opened(
    element: etree._Element, open_elements: list[etree._Element], name: str, max_depth: int
) -> None:
    """Bookkeeping for a start event: DOCTYPE re-check at the root, then the depth limit."""
    if not open_elements:
        _refuse_doctype(element, name)
    open_elements.append(element)
    if len(open_elements) > max_depth:
        raise TranscriptRejected(
            name,
            _line(element),
            _local(element.tag),
            f"elements are nested deeper than {max_depth} levels",
        )


@contextmanager
def _refusing(name: str, open_elements: list[etree._Element]) -> Iterator[None]:
    """Turn the parser's complaints (and an overlong stream) into a TranscriptRejected."""
    try:
        yield
    except etree.XMLSyntaxError as exc:
        innermost = _local(open_elements[-1].tag) if open_elements else None
        raise _syntax_refusal(exc, name, innermost) from None
    except _TooLarge:
        raise _too_large(name) from None


def _refuse_doctype(root: etree._Element, name: str) -> None:
    # Second line of defence behind _check_prolog (e.g. an encoding it could not read).
    info = cast(Any, root.getroottree().docinfo)
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise TranscriptRejected(
            name, _line(root), _local(root.tag), "document type declarations are refused"
        )


_ELEMENT_IN_MESSAGE: Final = re.compile(r"Element '(?:\{[^}]*\})?([^']+)'")
_NAMESPACE_IN_MESSAGE: Final = re.compile(r"\{[^}]*\}")
_TRUNCATION: Final = ("Premature end of data", "EndTag: '</' not found")


def _syntax_refusal(
    exc: etree.XMLSyntaxError, name: str, element: str | None
) -> TranscriptRejected:
    entries = [e for e in cast(Iterable[Any], exc.error_log) if e.level_name in ("ERROR", "FATAL")]
    if entries:
        line, message = entries[0].line, str(entries[0].message).strip()
    else:
        line, message = cast(Any, exc).lineno, str(cast(Any, exc).msg)
    if any(marker in message for marker in _TRUNCATION):
        reason = f"the file ends before the document is complete (truncated?): {message}"
    elif "Text node too long" in message or "Resource limit exceeded" in message:
        reason = (
            "a text node exceeds the parser's safety limit of 10 MB (an embedded attachment "
            f"that large cannot be imported): {message}"
        )
    else:
        reason = f"not well-formed XML: {message}"
    return TranscriptRejected(name, line or None, element, reason)


# --------------------------------------------------------------------------------------------
# Schemas (local copies, no network)
# --------------------------------------------------------------------------------------------

_SCHEMA_DIR: Final = Path(__file__).resolve().parent / "schemas"
_ELMO_SCHEMA: Final = {
    ElmoVersion.V1_7: _SCHEMA_DIR / "elmo-1.7" / "schema.xsd",
    ElmoVersion.V2_0: _SCHEMA_DIR / "elmo-2.0" / "schema.xsd",
}
_EWP_SCHEMA: Final = _SCHEMA_DIR / "ewp-tors" / "ewp-imobility-tors-get-response.xsd"
_ELMO_V1_URL: Final = "https://raw.githubusercontent.com/emrex-eu/elmo-schemas/v1/schema.xsd"
_RAW_GH: Final = "https://raw.githubusercontent.com/"
_SCHEMA_LOCATIONS: Final = {
    "http://www.w3.org/2001/03/xml.xsd": "references/w3c/xml.xsd",
    "https://www.w3.org/2001/03/xml.xsd": "references/w3c/xml.xsd",
    _RAW_GH + "emrex-eu/elmo-schemas/v1/references/xmldsig-core-schema.xsd": (
        "references/xmldsig-core-schema.xsd"
    ),
    _RAW_GH + "emrex-eu/elmo-schemas/v1/references/EUROPASS_ISOCountries_V1.1.xsd": (
        "references/EUROPASS_ISOCountries_V1.1.xsd"
    ),
    _RAW_GH + "erasmus-without-paper/ewp-specs-types-address/stable-v1/schema.xsd": (
        "references/ewp/ewp-specs-types-address-schema.xsd"
    ),
    _RAW_GH + "erasmus-without-paper/ewp-specs-architecture/stable-v1/common-types.xsd": (
        "references/ewp/ewp-specs-architecture-common-types.xsd"
    ),
}


class _LocalSchemaResolver(etree.Resolver):
    """Maps every schemaLocation to the copy in ``workflow/schemas``; refuses anything else.

    The EWP response imports "the" ELMO v1 schema by URL; it is mapped to the version that
    was detected inside the response.
    """

    def __init__(self, elmo_schema: Path) -> None:
        super().__init__()
        self._elmo_schema = elmo_schema

    def resolve(  # type: ignore[override]  # lxml-stubs 0.5 lacks the context argument
        self, system_url: str, public_id: str | None, context: object
    ) -> object:
        if system_url == _ELMO_V1_URL:
            target = self._elmo_schema
        elif system_url in _SCHEMA_LOCATIONS:
            target = _SCHEMA_DIR / _SCHEMA_LOCATIONS[system_url]
        elif Path(system_url).resolve().is_relative_to(_SCHEMA_DIR):
            target = Path(system_url)  # the schema document itself, loaded by path
        else:
            raise ConfigurationError(
                f"schema import {system_url!r} has no local copy in {_SCHEMA_DIR}; "
                "the transcript parser never fetches schemas from the network"
            )
        resolve_filename = cast(Any, self).resolve_filename  # not in lxml-stubs 0.5
        return resolve_filename(str(target), context)


_schema_cache: dict[TranscriptVersion, etree.XMLSchema] = {}
_schema_lock = threading.Lock()


def _schema(version: TranscriptVersion) -> etree.XMLSchema:
    """The compiled schema for a version (compiled once; the compiled schema is read-only and
    every parse gets its own validation context, so sharing it between threads is safe)."""
    with _schema_lock:
        cached = _schema_cache.get(version)
        if cached is None:
            elmo = _ELMO_SCHEMA[version.elmo_version]
            main = _EWP_SCHEMA if version.format is TranscriptFormat.EWP_TORS else elmo
            parser = etree.XMLParser(
                resolve_entities=False, load_dtd=False, no_network=True, huge_tree=False
            )
            parser.resolvers.add(_LocalSchemaResolver(elmo))
            document = etree.parse(str(main), parser)
            cached = _schema_cache[version] = etree.XMLSchema(document)
        return cached


_LOCATE_LIMIT: Final = 10 * 1024 * 1024
_locate_lock = threading.Lock()


def _validate(
    source: TranscriptSource, name: str, max_bytes: int, version: TranscriptVersion
) -> None:
    """Validate in a stream against the detected version's schema (the document is already
    known to be well-formed, so every complaint here is the schema's)."""
    schema = _schema(version)
    with _open_checked(source, name, max_bytes) as stream:
        try:
            options = _iterparse_options(events=("end",), tag=_ENDS, schema=schema)
            for _, element in _iterparse(stream, **options):
                parent = element.getparent()
                element.clear()
                if parent is not None:
                    while element.getprevious() is not None:
                        del parent[0]
            return
        except etree.XMLSyntaxError as exc:
            complaints = [
                str(e.message)
                for e in cast(Iterable[Any], exc.error_log)
                if e.domain_name == "SCHEMASV"
            ]
            complaint = complaints[0] if complaints else str(cast(Any, exc).msg)
        except _TooLarge:
            raise _too_large(name) from None
    line, complaint = _locate(source, schema, complaint)
    found = _ELEMENT_IN_MESSAGE.search(complaint)
    message = _NAMESPACE_IN_MESSAGE.sub("", complaint).strip()
    if line is None:
        message += f" (line not located: the file is larger than {_LOCATE_LIMIT:,} bytes)"
    raise TranscriptRejected(
        name,
        line,
        found.group(1) if found else None,
        f"not valid against the {version.schema_label}: {message}",
    )


def _locate(
    source: TranscriptSource, schema: etree.XMLSchema, complaint: str
) -> tuple[int | None, str]:
    """The line of the first schema error. Streaming validation in libxml2 reports none, so a
    file that failed is validated once more as a whole tree, only when it is small enough
    (a tree takes roughly ten times the file's size)."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        path = Path(os.fspath(source))
        if path.stat().st_size > _LOCATE_LIMIT:
            return None, complaint
        data = path.read_bytes()
    if len(data) > _LOCATE_LIMIT:
        return None, complaint
    parser = etree.XMLParser(**_PARSER_OPTIONS)
    document = etree.parse(io.BytesIO(data), parser)
    with _locate_lock:  # the validator's error log is shared by its users
        if schema.validate(document):  # pragma: no cover - the streaming pass disagreed
            return None, complaint
        errors = [e for e in cast(Iterable[Any], schema.error_log) if e.line]
    if not errors:  # pragma: no cover
        return None, complaint
    return int(errors[0].line), str(errors[0].message)


# --------------------------------------------------------------------------------------------
# Reading values
# --------------------------------------------------------------------------------------------


class _ValueError(Exception):
    """A value the schema accepted but Python cannot represent (e.g. year 10000)."""

    def __init__(self, element: etree._Element, reason: str) -> None:
        super().__init__(reason)
        self.element = element
        self.reason = reason


def _text(element: etree._Element) -> str:
    if len(element) == 0:  # simple content (comments and PIs are dropped by the parser)
        return element.text or ""
    return "".join(cast(Iterator[str], element.itertext()))  # str for parsed text


def _token(element: etree._Element) -> str:
    return " ".join(_text(element).split())


def _kids(parent: etree._Element, tag: str) -> Iterator[etree._Element]:
    return (child for child in parent if child.tag == tag)


def _decimal(element: etree._Element) -> Decimal:
    try:
        value = Decimal(_token(element))
    except InvalidOperation:
        raise _ValueError(element, f"{_token(element)!r} is not a decimal number") from None
    if not value.is_finite():
        raise _ValueError(element, f"{_token(element)!r} is not a finite decimal number")
    return value


_DATE: Final = re.compile(r"(-?\d{4,})-(\d\d)-(\d\d)(Z|[+-]\d\d:\d\d)?")
_DATETIME: Final = re.compile(
    r"(-?\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?"
)


def _date(element: etree._Element) -> date:
    """xs:date; a time zone suffix (allowed by XML Schema) is dropped."""
    match = _DATE.fullmatch(_token(element))
    try:
        if match is None:
            raise ValueError
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise _ValueError(element, f"{_token(element)!r} is not a supported date") from None


def _datetime(element: etree._Element) -> datetime:
    """xs:dateTime: aware when the document gives a time zone, naive otherwise."""
    match = _DATETIME.fullmatch(_token(element))
    try:
        if match is None:
            raise ValueError
        zone = match[8]
        tz: timezone | None = None
        if zone == "Z":
            tz = UTC
        elif zone:
            sign = -1 if zone[0] == "-" else 1
            tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        hour, extra = int(match[4]), timedelta()
        if hour == 24:  # xs:dateTime allows 24:00:00, the end of the day
            hour, extra = 0, timedelta(days=1)
        micro = int(((match[7] or "") + "000000")[:6])
        return (
            datetime(
                int(match[1]),
                int(match[2]),
                int(match[3]),
                hour,
                int(match[5]),
                int(match[6]),
                micro,
                tzinfo=tz,
            )
            + extra
        )
    except (ValueError, OverflowError):
        raise _ValueError(element, f"{_token(element)!r} is not a supported date-time") from None


def _is_pdf(data: bytes) -> bool:
    return b"%PDF-" in data[:1024]  # the header may follow a little junk (PDF 1.7, 7.5.2)


def _decode_content(uri: str) -> tuple[str | None, bytes | None, str | None]:
    """(media type, bytes, problem) of an attachment ``content`` (a data: URI)."""
    if not uri.lower().startswith("data:"):
        return None, None, "not an embedded document (data: URI); external links are not fetched"
    header, comma, payload = uri[5:].partition(",")
    if not comma:
        return None, None, "malformed data: URI (no comma)"
    params = [p.strip() for p in header.split(";")]
    media_type = params[0].lower() or "text/plain"
    try:
        if params[-1].lower() == "base64":
            data = base64.b64decode("".join(payload.split()), validate=True)
        else:
            data = unquote_to_bytes(payload)
    except (binascii.Error, ValueError):
        return media_type, None, "content is not valid base64"
    if media_type == "application/pdf" and not _is_pdf(data):
        return media_type, None, "declared application/pdf but has no %PDF- header"
    return media_type, data, None


# --------------------------------------------------------------------------------------------
# The collector: turns the event stream into a Transcript, clearing what it has read
# --------------------------------------------------------------------------------------------

_LOS: Final = _e("learningOpportunitySpecification")
_LOI: Final = _e("learningOpportunityInstance")
_ISSUER: Final = _e("issuer")
_ATTACHMENT: Final = _e("attachment")
_GRADING_SCHEME: Final = _e("gradingScheme")
_GENERATED_DATE: Final = _e("generatedDate")
_ISSUE_DATE: Final = _e("issueDate")
_SECTION: Final = _e("section")
_RESULT_OF_RECOGNITION: Final = _e("resultOfRecognition")  # v2.0: a decision, not a result
_TOR: Final = _w("tor")
_ISCED_TABLE: Final = _w("iscedTable")
_OMOBILITY_ID: Final = _w("omobility-id")


class _Tag:
    """Qualified ELMO tag names used when reading an aggregate (built once, not per result)."""

    identifier = _e("identifier")
    title = _e("title")
    type = _e("type")
    subject_area = _e("subjectArea")
    isced_code = _e("iscedCode")
    specifies = _e("specifies")
    status = _e("status")
    credit = _e("credit")
    scheme = _e("scheme")
    value = _e("value")
    level = _e("level")
    description = _e("description")
    academic_term = _e("academicTerm")
    start = _e("start")
    end = _e("end")
    date = _e("date")
    result_distribution = _e("resultDistribution")
    category = _e("category")
    shortened_grading = _e("shortenedGrading")
    percentage_lower = _e("percentageLower")
    percentage_equal = _e("percentageEqual")
    percentage_higher = _e("percentageHigher")
    attachments = _e("attachments")
    ref = _e("ref")
    engagement_hours = _e("engagementHours")
    result_label = _e("resultLabel")
    grading_scheme_local_id = _e("gradingSchemeLocalId")
    grading_scheme_external_id = _e("gradingSchemeExternalId")
    language_of_instruction = _e("languageOfInstruction")


# Elements read as a whole at their end event; their descendants are kept until then.
_AGGREGATES: Final = frozenset(
    {_LEARNER, _ISSUER, _LOI, _ATTACHMENT, _GRADING_SCHEME, _ISCED_TABLE}
)
_STARTS: Final = _AGGREGATES | {_LOS, _RESULT_OF_RECOGNITION, _E_REPORT, _TOR}
# Where the stream is cut: at the end of one of these (outside an aggregate) the element is
# cleared and its earlier siblings are deleted. Everything else (a specification's
# identifiers and titles, signature and extension content, ...) goes with its ancestor.
_ENDS: Final = _STARTS | {
    _GENERATED_DATE,
    _ISSUE_DATE,
    _OMOBILITY_ID,
    _ELMO,
    _e("specifies"),
    _e("hasPart"),
    _e("groups"),
    _e("extension"),
    "{http://www.w3.org/2000/09/xmldsig#}Signature",
    _w("gradeConversionTable"),
}
_ATTACHMENT_SCOPES: Final = {_ELMO: "elmo", _E_REPORT: "report", _SECTION: "diplomaSupplement"}


@dataclass
class _OpenSpec:
    line: int
    skip: bool  # inside a v2.0 resultOfRecognition: not one of the learner's results
    index: int | None = None


@dataclass
class _Report:
    issuer: Institution | None = None
    issued_at: datetime | None = None
    grading_schemes: dict[str, tuple[LocalizedText, ...]] = dataclasses.field(default_factory=dict)


def _group(parent: etree._Element, stop: str | None = None) -> dict[str, list[etree._Element]]:
    """The children of ``parent`` by tag, in one pass (up to the first ``stop`` child)."""
    groups: dict[str, list[etree._Element]] = {}
    for child in parent:
        tag = child.tag
        if tag == stop:
            break
        groups.setdefault(tag, []).append(child)
    return groups


def _one(groups: dict[str, list[etree._Element]], tag: str) -> etree._Element | None:
    found = groups.get(tag)
    return found[0] if found else None


def _one_token(groups: dict[str, list[etree._Element]], tag: str) -> str | None:
    found = groups.get(tag)
    return _token(found[0]) if found else None


def _localized_list(
    elements: Iterable[etree._Element], *, token: bool = True
) -> tuple[LocalizedText, ...]:
    return tuple(
        LocalizedText(_token(e) if token else _text(e).strip(), e.get(_XML_LANG)) for e in elements
    )


def _identifier_list(elements: Iterable[etree._Element]) -> tuple[Identifier, ...]:
    return tuple(Identifier(" ".join((e.get("type") or "").split()), _token(e)) for e in elements)


class _Collector:
    def __init__(self, name: str, version: TranscriptVersion) -> None:
        self.name = name
        self.version = version
        self.generated_at: datetime | None = None
        self.learner: Learner | None = None
        self.reports: list[_Report] = []
        self.results: list[CourseResult] = []
        self.pending_results: list[dict[str, Any]] = []  # of the report being read
        self.attachments: list[Attachment] = []
        self.tables: list[GradeConversionTable] = []
        self.omobility_id: str | None = None
        self.tors = 0
        self.specs: list[_OpenSpec] = []
        self.in_aggregate = 0
        self.in_recognition = 0
        # The first value the schema let through but Python could not take. Reported only if
        # the schema has no complaint of its own (that arrives when the stream ends).
        self.pending: TranscriptRejected | None = None
        self._handlers: dict[str, Callable[[etree._Element], None]] = {
            _LOI: self._result,
            _GENERATED_DATE: self._generated_date,
            _LEARNER: self._learner,
            _ISSUER: self._issuer,
            _ISSUE_DATE: self._issue_date,
            _GRADING_SCHEME: self._grading_scheme,
            _ATTACHMENT: self._attachment,
            _E_REPORT: self._close_report,
            _OMOBILITY_ID: self._omobility_id,
            _ISCED_TABLE: self._table,
        }

    # -- dispatch ----------------------------------------------------------------------------

    def run(self, stream: IO[bytes], max_depth: int) -> None:
        """Stream the document through the handlers (the hot loop: kept lean on purpose)."""
        open_elements: list[etree._Element] = []
        pop = open_elements.pop
        with _refusing(self.name, open_elements):
            push = open_elements.append
            for event, element in _iterparse(stream, **_iterparse_options()):
                if event == "start":
                    if len(open_elements) >= max_depth or not open_elements:
                        _opened(element, open_elements, self.name, max_depth)  # raises if deep
                    else:
                        push(element)
                    tag = element.tag
                    if tag in _STARTS:
                        self._start(tag, element)
                else:
                    pop()
                    tag = element.tag
                    if tag in _ENDS:  # others are read and released with an ancestor
                        self._end(tag, element)

    def _end(self, tag: str, element: etree._Element) -> None:
        if tag in _AGGREGATES:
            self.in_aggregate -= 1
        elif tag == _RESULT_OF_RECOGNITION:
            self.in_recognition -= 1
        handler = self._handlers.get(tag)
        if handler is not None and self.pending is None:
            try:
                handler(element)
            except _ValueError as exc:
                self.pending = TranscriptRejected(
                    self.name, _line(exc.element), _local(exc.element.tag), exc.reason
                )
            except (ValueError, TypeError, AttributeError, LookupError, ArithmeticError) as exc:
                # Content the schema will refuse (its complaint is reported instead); kept in
                # case it does not, so that nothing odd is ever imported silently.
                self.pending = TranscriptRejected(
                    self.name, _line(element), _local(tag), f"cannot be read: {exc}"
                )
        if tag == _LOS:
            self.specs.pop()
        if self.in_aggregate == 0:
            # Drop what has been read so memory does not grow with the file.
            parent = element.getparent()
            if parent is not None:
                element.clear()
                while element.getprevious() is not None:
                    del parent[0]

    def _start(self, tag: str, element: etree._Element) -> None:
        if tag in _AGGREGATES:
            self.in_aggregate += 1
        elif tag == _LOS:
            self.specs.append(_OpenSpec(_line(element), skip=self.in_recognition > 0))
        elif tag == _RESULT_OF_RECOGNITION:
            self.in_recognition += 1
        elif tag == _E_REPORT:
            if self.in_recognition == 0:
                self.reports.append(_Report())
        elif tag == _TOR:
            self.tors += 1
            if self.tors > 1:
                raise TranscriptRejected(
                    self.name,
                    _line(element),
                    "tor",
                    "the EWP response holds transcripts for more than one mobility; "
                    "import them one at a time",
                )

    def _top_level(self, element: etree._Element, parent_tag: str) -> bool:
        """True for an element of the learner's own report (not of a v2.0 recognition)."""
        return self.in_recognition == 0 and _parent_tag(element) == parent_tag

    # -- handlers ----------------------------------------------------------------------------

    def _generated_date(self, element: etree._Element) -> None:
        if self._top_level(element, _ELMO):
            self.generated_at = _datetime(element)

    def _issue_date(self, element: etree._Element) -> None:
        if self.reports and self._top_level(element, _E_REPORT):
            self.reports[-1].issued_at = _datetime(element)

    def _omobility_id(self, element: etree._Element) -> None:
        self.omobility_id = _token(element)

    def _issuer(self, issuer: etree._Element) -> None:
        if not self.reports or not self._top_level(issuer, _E_REPORT):
            return
        kids = _group(issuer)
        self.reports[-1].issuer = Institution(
            identifiers=_identifier_list(kids.get(_e("identifier"), ())),
            names=_localized_list(kids.get(_e("title"), ())),
            country=_one_token(kids, _e("country")),
            url=_one_token(kids, _e("url")),
        )

    def _learner(self, learner: etree._Element) -> None:
        if self.in_recognition:
            return  # pragma: no cover - learner only occurs under elmo
        kids = _group(learner)
        alternative = _one(kids, _e("alternativeName"))
        gender = _one_token(kids, _e("gender"))
        birth = _one(kids, _e("bday"))  # v1.7
        if birth is None:
            birth = _one(kids, _e("dateOfBirth"))  # v2.0
        self.learner = Learner(
            identifiers=_identifier_list(kids.get(_e("identifier"), ())),
            given_names=_one_token(kids, _e("givenNames")) or "",
            family_name=_one_token(kids, _e("familyName")) or "",
            birth_date=_date(birth) if birth is not None else None,
            citizenship=_one_token(kids, _e("citizenship")),
            alternative_name=(
                LocalizedText(_text(alternative).strip(), alternative.get(_XML_LANG))
                if alternative is not None
                else None
            ),
            birth_name=_one_token(kids, _e("birthName")),
            place_of_birth=_one_token(kids, _e("placeOfBirth")),
            gender=int(gender) if gender and gender.lstrip("+-").isdigit() else None,
        )

    def _grading_scheme(self, element: etree._Element) -> None:
        if self.reports and self._top_level(element, _E_REPORT):
            local_id = " ".join((element.get("localId") or "").split())
            descriptions = _localized_list(_kids(element, _e("description")), token=False)
            self.reports[-1].grading_schemes[local_id] = descriptions

    def _result(self, loi: etree._Element) -> None:
        # loi is report//learningOpportunitySpecification/specifies/learningOpportunityInstance;
        # the specification's own children before <specifies> are still in the tree.
        if not self.specs or self.specs[-1].skip or not self.reports:
            return
        specifies = loi.getparent()
        los = specifies.getparent() if specifies is not None else None
        if los is None or los.tag != _LOS:
            return  # pragma: no cover - not reachable in a schema-valid document
        t = _Tag
        spec = self.specs[-1]
        ancestors = [s for s in self.specs[:-1] if not s.skip and s.index is not None]
        head = _group(los, stop=t.specifies)
        kids = _group(loi)

        status_token = _one_token(kids, t.status)
        status = ResultStatus(status_token) if status_token else ResultStatus.PASSED

        credits = []
        for credit in kids.get(t.credit, ()):
            parts = _group(credit)
            value = _one(parts, t.value)
            credits.append(
                Credit(
                    scheme=_one_token(parts, t.scheme) or "",
                    value=_decimal(value) if value is not None else None,
                    level=_one_token(parts, t.level),
                )
            )
        ects = next((c.value for c in credits if c.scheme.casefold() == "ects"), None)

        levels = []
        for level in kids.get(t.level, ()):
            parts = _group(level)
            description = _one(parts, t.description)
            levels.append(
                Level(
                    type=_one_token(parts, t.type) or "",
                    value=_one_token(parts, t.value),
                    description=_text(description).strip() if description is not None else None,
                )
            )
        eqf = next((lv.value for lv in levels if lv.type.casefold() == "eqf"), None)

        academic_term = None
        term = _one(kids, t.academic_term)
        if term is not None:
            parts = _group(term)
            start, end = _one(parts, t.start), _one(parts, t.end)
            if start is not None and end is not None:
                titles = _localized_list(parts.get(t.title, ()))
                academic_term = AcademicTerm(titles, _date(start), _date(end))

        distribution = None
        histogram = _one(kids, t.result_distribution)
        if histogram is not None:
            parts = _group(histogram)
            distribution = ResultDistribution(
                categories=tuple(
                    DistributionCategory(
                        " ".join((c.get("label") or "").split()), int(c.get("count") or 0)
                    )
                    for c in parts.get(t.category, ())
                ),
                descriptions=_localized_list(parts.get(t.description, ()), token=False),
            )

        shortened = None
        short = _one(kids, t.shortened_grading)
        if short is not None:
            parts = _group(short)
            lower = _one(parts, t.percentage_lower)
            equal = _one(parts, t.percentage_equal)
            higher = _one(parts, t.percentage_higher)
            if lower is not None and equal is not None and higher is not None:
                shortened = ShortenedGrading(_decimal(lower), _decimal(equal), _decimal(higher))

        refs = _one(kids, t.attachments)
        date_, start_, hours = (
            _one(kids, t.date),
            _one(kids, t.start),
            _one(kids, t.engagement_hours),
        )
        # Built into a CourseResult when the report ends: its gradingScheme elements follow.
        self.pending_results.append(
            {
                "identifiers": _identifier_list(head.get(t.identifier, ())),
                "titles": _localized_list(head.get(t.title, ())),
                "type": _one_token(head, t.type),
                "status": status,
                "status_stated": status_token is not None,
                "grade": _one_token(kids, t.result_label),
                "grading_scheme_id": _one_token(kids, t.grading_scheme_local_id),
                "ects_credits": ects,
                "credits": tuple(credits),
                "eqf_level": int(eqf) if eqf is not None and eqf.isdigit() else None,
                "levels": tuple(levels),
                "result_date": _date(date_) if date_ is not None else None,
                "start_date": _date(start_) if start_ is not None else None,
                "academic_term": academic_term,
                "language_of_instruction": _one_token(kids, t.language_of_instruction),
                "engagement_hours": _decimal(hours) if hours is not None else None,
                "result_distribution": distribution,
                "shortened_grading": shortened,
                "subject_area": _one_token(head, t.subject_area),
                "isced_code": _one_token(head, t.isced_code),
                "instance_identifiers": _identifier_list(kids.get(t.identifier, ())),
                "attachment_refs": (
                    tuple(_token(r) for r in _kids(refs, t.ref)) if refs is not None else ()
                ),
                "depth": len(ancestors),
                "parent_index": ancestors[-1].index if ancestors else None,
                "line": spec.line,
                "grading_scheme_external_id": _one_token(kids, t.grading_scheme_external_id),
            }
        )
        spec.index = len(self.results) + len(self.pending_results) - 1

    def _close_report(self, element: etree._Element) -> None:
        if not self.reports or not self._top_level(element, _ELMO):
            return
        report = self.reports[-1]
        institution = report.issuer or Institution((), (), None, None)
        schemes = report.grading_schemes
        self.results.extend(
            CourseResult(
                institution=institution,
                grading_scheme_description=schemes.get(fields["grading_scheme_id"] or "", ()),
                **fields,
            )
            for fields in self.pending_results
        )
        self.pending_results.clear()

    def _attachment(self, attachment: etree._Element) -> None:
        scope = _ATTACHMENT_SCOPES.get(_parent_tag(attachment) or "")
        if scope is None or self.in_recognition:
            return
        kids = _group(attachment)
        common: dict[str, Any] = {
            "identifiers": _identifier_list(kids.get(_e("identifier"), ())),
            "titles": _localized_list(kids.get(_e("title"), ())),
            "type": _one_token(kids, _e("type")),
            "descriptions": _localized_list(kids.get(_e("description"), ()), token=False),
            "scope": scope,
        }
        contents = kids.get(_e("content"), [])
        if not contents:
            self.attachments.append(
                Attachment(
                    **common,
                    language=None,
                    media_type=None,
                    data=None,
                    problem="the attachment has no content",
                    line=_line(attachment),
                )
            )
        for content in contents:
            media_type, data, problem = _decode_content(_token(content))
            self.attachments.append(
                Attachment(
                    **common,
                    language=content.get(_XML_LANG),
                    media_type=media_type,
                    data=data,
                    problem=problem,
                    line=_line(content),
                )
            )

    def _table(self, table: etree._Element) -> None:
        frequencies = []
        for frequency in _kids(table, _w("gradeFrequency")):
            try:
                percentage = Decimal(" ".join((frequency.get("percentage") or "").split()))
            except InvalidOperation:
                raise _ValueError(frequency, "percentage is not a decimal number") from None
            label = " ".join((frequency.get("label") or "").split())
            frequencies.append(GradeFrequency(label, percentage))
        code = " ".join((table.get("iscedCode") or "").split())
        self.tables.append(GradeConversionTable(code, tuple(frequencies)))

    # -- result ------------------------------------------------------------------------------

    def finish(self) -> Transcript:
        if self.pending is not None:
            raise self.pending
        if self.version.format is TranscriptFormat.EWP_TORS and self.tors == 0:
            raise TranscriptRejected(
                self.name, None, "imobility-tors-get-response", "the response holds no <tor>"
            )
        reports = [r for r in self.reports if r.issuer is not None]
        # Only reachable when a schema is not enforced; kept so a bug cannot return a half
        # transcript.
        if self.generated_at is None or self.learner is None or not reports:
            raise TranscriptRejected(  # pragma: no cover
                self.name, None, "elmo", "generatedDate, learner or report is missing"
            )
        issued_at = reports[0].issued_at
        if issued_at is None:  # pragma: no cover - required by both schemas
            raise TranscriptRejected(self.name, None, "report", "issueDate is missing")
        return Transcript(
            version=self.version,
            filename=self.name,
            generated_at=self.generated_at,
            learner=self.learner,
            issuers=tuple(cast(Institution, r.issuer) for r in reports),
            issued_at=issued_at,
            results=tuple(self.results),
            attachments=tuple(self.attachments),
            grade_conversion_tables=tuple(self.tables),
            omobility_id=self.omobility_id,
        )
