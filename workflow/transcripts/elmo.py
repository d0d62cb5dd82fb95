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
``no_network=True`` and ``huge_tree=False``, and elements may not nest deeper than ``max_depth``.
The file is streamed once: ``lxml.etree.iterparse`` validates it against the local copy of the
matching schema (``workflow/transcripts/schemas/``; every ``schemaLocation`` is mapped to a local
file, anything else is refused) while it builds the tree, and each chunk is shown first to a second
parser with the same options that builds nothing and only checks the syntax (with a schema attached,
lxml lets syntax errors through: see ``_Tee``). Python sees only the
end of the elements it reads, and what has been read is deleted chunk by chunk, so memory
grows with the parsed results, not with the size of the file. A refused file is read again the
slow way to name the problem exactly: syntax and nesting first (with the innermost open
element), then the schema. Streaming validation in libxml2 reports no line numbers, so an
invalid file of at most 10 MB is validated once more as a whole to name the line.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import dataclasses
import io
import operator
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
from typing import IO, Any, Final, TypeAlias, TypeVar, cast
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
    # One pass validates, reads and proves the file well-formed. Whatever it stumbles on is
    # named by re-reading the file the slow way. A value that only Python cannot take is
    # reported after the schema had its say.
    collector = _Collector(name, version)
    try:
        with _open_checked(source, name, max_bytes) as stream:
            collector.run(stream, max_depth)
    except _Unsure as unsure:
        refusal = unsure.refusal
    else:
        return collector.finish()
    _diagnose(source, name, max_bytes, max_depth, version)
    raise refusal


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


_sourceline: Final[Callable[[etree._Element], int | None]] = operator.attrgetter("sourceline")


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
        for event, element in _pull(stream, **_iterparse_options()):
            if event == "start":
                _opened(element, open_elements, name, max_depth)
                yield event, element
            else:
                yield event, element
                open_elements.pop()


def _pull(
    stream: IO[bytes], *, chunk_size: int, **options: Any
) -> Iterator[tuple[str, etree._Element]]:
    """``iterparse`` that hands out the events the parser produced in a chunk before the
    syntax error it raises for that chunk. (lxml 6.2 raises before handing them out, which
    would leave the refusal without its innermost element.) At the end of a truncated file
    nothing more is handed out: libxml2 then reports closing the elements left open."""
    parser = etree.XMLPullParser(**options)
    events = cast(Callable[[], Iterator[tuple[str, etree._Element]]], parser.read_events)
    while data := stream.read(chunk_size):
        try:
            parser.feed(data)
        except etree.XMLSyntaxError:
            yield from events()
            raise
        yield from events()
    parser.close()
    yield from events()


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
    """Maps every schemaLocation to the copy in ``transcripts/schemas``; refuses anything else.

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
            options = _iterparse_options(events=("end",), tag=_CUTS, schema=schema)
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
    if len(element):  # mixed content (comments and PIs are dropped by the parser)
        return " ".join("".join(cast(Iterator[str], element.itertext())).split())
    text = element.text
    return " ".join(text.split()) if text else ""


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
# The single pass: one parser validates and builds the tree, a second one only checks syntax
# --------------------------------------------------------------------------------------------

_LOS: Final = _e("learningOpportunitySpecification")
_LOI: Final = _e("learningOpportunityInstance")
_SPECIFIES: Final = _e("specifies")
_HAS_PART: Final = _e("hasPart")
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


# Tags compared for every result: module constants (cheaper to load than class attributes).
_T_IDENTIFIER: Final = _e("identifier")
_T_TITLE: Final = _e("title")
_T_TYPE: Final = _e("type")
_T_SUBJECT_AREA: Final = _e("subjectArea")
_T_ISCED_CODE: Final = _e("iscedCode")
_T_STATUS: Final = _e("status")
_T_CREDIT: Final = _e("credit")
_T_SCHEME: Final = _e("scheme")
_T_VALUE: Final = _e("value")
_T_LEVEL: Final = _e("level")
_T_DATE: Final = _e("date")
_T_START: Final = _e("start")
_T_ACADEMIC_TERM: Final = _e("academicTerm")
_T_RESULT_DISTRIBUTION: Final = _e("resultDistribution")
_T_SHORTENED_GRADING: Final = _e("shortenedGrading")
_T_ATTACHMENTS: Final = _e("attachments")
_T_ENGAGEMENT_HOURS: Final = _e("engagementHours")
_T_RESULT_LABEL: Final = _e("resultLabel")
_T_SCHEME_LOCAL_ID: Final = _e("gradingSchemeLocalId")
_T_SCHEME_EXTERNAL_ID: Final = _e("gradingSchemeExternalId")
_T_LANGUAGE: Final = _e("languageOfInstruction")


class _Tag:
    """Qualified ELMO tag names used when reading an aggregate (built once, not per result)."""

    title = _T_TITLE
    type = _T_TYPE
    value = _T_VALUE
    description = _e("description")
    start = _T_START
    end = _e("end")
    category = _e("category")
    percentage_lower = _e("percentageLower")
    percentage_equal = _e("percentageEqual")
    percentage_higher = _e("percentageHigher")
    ref = _e("ref")


# Where the slow re-reading of a refused file (_validate) cuts the stream: at the end of one of
# these the element is cleared and its earlier siblings are deleted.
_CUTS: Final = frozenset(
    {
        _ELMO,
        _EWP_ROOT,
        _LEARNER,
        _ISSUER,
        _LOS,
        _LOI,
        _SPECIFIES,
        _HAS_PART,
        _ATTACHMENT,
        _GRADING_SCHEME,
        _GENERATED_DATE,
        _ISSUE_DATE,
        _RESULT_OF_RECOGNITION,
        _E_REPORT,
        _TOR,
        _ISCED_TABLE,
        _OMOBILITY_ID,
        _e("groups"),
        _e("extension"),
        "{http://www.w3.org/2000/09/xmldsig#}Signature",
        _w("gradeConversionTable"),
    }
)
_ATTACHMENT_SCOPES: Final = {_ELMO: "elmo", _E_REPORT: "report", _SECTION: "diplomaSupplement"}
_STATUSES: Final = {status.value: status for status in ResultStatus}
_ERROR_LEVEL: Final = 2  # libxml2 XML_ERR_ERROR; FATAL is 3, warnings are 1


class _Unsure(Exception):
    """The single pass met something it does not name exactly itself (a complaint of either
    parser or of the schema, nesting past the limit, a second ``<tor>``, a document that never
    closed). ``parse_transcript`` then re-reads the file the slow way, which names file, line
    and element; ``refusal`` is raised if that finds nothing (say, the file changed meanwhile).
    """

    def __init__(self, refusal: TranscriptRejected) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal


class _Discard:
    """A parser target without start/end/data methods: lxml then builds no tree and calls no
    Python per element, so the parser behind it only checks the syntax (in C)."""

    def close(self) -> None:
        return None


class _Tee:
    """The stream ``iterparse`` reads; it shows every chunk to a syntax-only parser first.

    The validating parser cannot be trusted with well-formedness: with a schema attached,
    libxml2's syntax errors never reach lxml's error log, and with ``resolve_entities=False``
    lxml then takes an empty log for "only undeclared entities" and carries on. A truncated
    file, an unterminated comment after the root, an undeclared prefix or a namespaced
    attribute given twice all pass, and after a fatal error the next chunk silently starts a
    new document. (Resolving entities instead is not an option: it gives up a line of defence
    against entity attacks, and this lxml crashes when it substitutes an entity while
    validating.) The second parser runs with the same options and no schema, keeps nothing and
    reports everything; it sees each chunk before the validating parser does.

    Before reading on, the stream calls ``before_read``: every event of the previous chunk has
    been handled by then (lxml asks for more data only then), so that is when the collector
    releases what it has read. ``fresh`` tells the collector that a new chunk has been parsed.
    """

    def __init__(self, raw: IO[bytes], name: str, before_read: Callable[[], None]) -> None:
        self._raw = raw
        self._name = name
        self._before_read = before_read
        # (lxml-stubs 0.5 wants every target method; leaving them out is the point)
        self._check = etree.XMLParser(target=cast(Any, _Discard()), **_PARSER_OPTIONS)
        self.fresh = False
        self.closed = False

    def read(self, size: int | None = -1) -> bytes:
        self._before_read()
        data = self._raw.read(-1 if size is None else size)
        try:
            if data:
                self._check.feed(data)
            elif not self.closed:
                self.closed = True
                self._check.close()  # reports a truncated document
                self._check_log()
        except etree.XMLSyntaxError as exc:
            raise _Unsure(_syntax_refusal(exc, self._name, None)) from None
        self.fresh = True
        return data

    def _check_log(self) -> None:
        # Namespace errors (an undeclared prefix, a namespaced attribute given twice) are not
        # fatal to libxml2, so lxml raises nothing for a target parser: they are in its log.
        for entry in cast(Iterable[Any], self._check.feed_error_log):
            if entry.level >= _ERROR_LEVEL:
                reason = f"not well-formed XML: {entry.message}"
                raise _Unsure(TranscriptRejected(self._name, entry.line or None, None, reason))


def _depth_probe(max_depth: int) -> Callable[[etree._Element], object]:
    """An XPath that is true when the document holds an element deeper than ``max_depth``
    (its steps visit each element of the tree at most once, in C)."""
    return etree.XPath("boolean(" + "/*" * (max_depth + 1) + ")")


_V = TypeVar("_V")


def _cached(
    cache: dict[str, _V], element: etree._Element, parse: Callable[[etree._Element], _V]
) -> _V:
    """``parse(element)`` for a short, often repeated value, shared between results through
    ``cache`` (keyed by the raw text; mixed content is parsed every time)."""
    text = element.text
    if text is None or len(element):
        return parse(element)
    found = cache.get(text)
    if found is None:
        found = cache[text] = parse(element)
    return found


_RESULT_FIELDS: Final = tuple(f.name for f in dataclasses.fields(CourseResult))
# A result is read before its report's grading schemes (they come after the results in the
# file), so it is gathered in a mutable draft with CourseResult's fields and built when the
# report ends.
_ResultDraft: Final[Any] = dataclasses.make_dataclass(
    "_ResultDraft", list(_RESULT_FIELDS), slots=True
)
_draft_values: Final = operator.attrgetter(*_RESULT_FIELDS)


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


def _identifier(element: etree._Element, words: dict[str, str] | None = None) -> Identifier:
    kind = element.get("type") or ""
    if words is None or not kind:
        kind = " ".join(kind.split())
    else:
        found = words.get(kind)
        if found is None:
            found = words[kind] = " ".join(kind.split())
        kind = found
    return Identifier(kind, _token(element))


def _identifier_list(elements: Iterable[etree._Element]) -> tuple[Identifier, ...]:
    return tuple(_identifier(e) for e in elements)


def _in_recognition(element: etree._Element) -> bool:
    """True inside a v2.0 ``resultOfRecognition`` (a decision on a home course, not a result
    of the learner's)."""
    return next(element.iterancestors(_RESULT_OF_RECOGNITION), None) is not None


class _Collector:
    """Turns the end events of one validating ``iterparse`` into a Transcript.

    Python sees only the end of the elements it reads (a tag filter in lxml), reads each one
    whole with a few lxml calls, and deletes what it has read, chunk by chunk, so that the
    tree holds about one chunk of the file however long the file is.
    """

    def __init__(self, name: str, version: TranscriptVersion) -> None:
        self.name = name
        self.version = version
        self.generated_at: datetime | None = None
        self.learner: Learner | None = None
        self.reports: list[_Report] = []
        self.results: list[CourseResult] = []
        # Results of the report being read, as drafts: the description of their grading scheme
        # comes with the end of the report.
        self.pending_results: list[Any] = []
        self.attachments: list[Attachment] = []
        self.tables: list[GradeConversionTable] = []
        self.omobility_id: str | None = None
        self.tors = 0
        # The first value the schema let through but Python could not take. Reported only if
        # the schema has no complaint of its own (that arrives by the end of the stream).
        self.pending: TranscriptRejected | None = None
        self.root: etree._Element | None = None
        self.complete = False  # the end of the root element was seen
        self.report_element: etree._Element | None = None  # the learner's report being read
        # Open specifications of the learner's report with their index in the results, to
        # tell depth and parent of nested ones (lxml hands out one proxy per element while it
        # is referenced, so ``is`` finds them again).
        self.open_specs: list[tuple[etree._Element, int]] = []
        self.last: etree._Element | None = None  # the last element handled
        # Values that repeat from result to result, shared (all of them are immutable).
        self.dates: dict[str, date] = {}
        self.decimals: dict[str, Decimal] = {}
        self.credits: dict[tuple[str, str | None, str | None], Credit] = {}
        self.words: dict[str, str] = {}
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
            _TOR: self._tor,
            _ELMO: self._root_end,
            _EWP_ROOT: self._root_end,
        }

    # -- the pass ----------------------------------------------------------------------------

    def run(self, stream: IO[bytes], max_depth: int) -> None:
        """Stream the document through the handlers (the hot loop: kept lean on purpose)."""
        tee = _Tee(stream, self.name, self._release)
        too_deep = _depth_probe(max_depth)
        handlers = self._handlers
        options = _iterparse_options(
            events=("end",), tag=tuple(handlers), schema=_schema(self.version)
        )
        try:
            for _, element in _iterparse(tee, **options):
                if tee.fresh:  # a chunk was parsed: check it before anything of it is deleted
                    tee.fresh = False
                    root = self.root if self.root is not None else self._begin(element)
                    if too_deep(root):
                        raise _Unsure(
                            TranscriptRejected(
                                self.name,
                                None,
                                None,
                                f"elements are nested deeper than {max_depth} levels",
                            )
                        )
                self.last = element
                handler = handlers[element.tag]
                try:
                    handler(element)
                except _ValueError as exc:
                    if self.pending is None:
                        self.pending = TranscriptRejected(
                            self.name, _line(exc.element), _local(exc.element.tag), exc.reason
                        )
                except (ValueError, TypeError, AttributeError, LookupError, ArithmeticError) as exc:
                    # Content the schema will refuse (its complaint is raised instead); kept in
                    # case it does not, so that nothing odd is ever imported silently.
                    if self.pending is None:
                        self.pending = TranscriptRejected(
                            self.name, _line(element), _local(element.tag), f"cannot be read: {exc}"
                        )
        except etree.XMLSyntaxError as exc:  # the schema's complaint (syntax is the tee's)
            raise _Unsure(_syntax_refusal(exc, self.name, None)) from None
        except _TooLarge:
            raise _too_large(self.name) from None
        finally:
            self.last = None
            self.open_specs.clear()
            self.report_element = self.root = None
        if not (tee.closed and self.complete):  # pragma: no cover - the tee reports it first
            raise _Unsure(
                TranscriptRejected(
                    self.name, None, None, "the file ends before the document is complete"
                )
            )

    def _begin(self, element: etree._Element) -> etree._Element:
        root = element.getroottree().getroot()
        _refuse_doctype(root, self.name)
        if _root_format(root, self.name) is not self.version.format:  # pragma: no cover
            raise _Unsure(
                TranscriptRejected(self.name, None, None, "the file changed while it was read")
            )
        self.root = root
        return root

    def _release(self) -> None:
        """Delete everything before the last element handled (and before its ancestors): all
        of it has been read. Called when lxml wants the next chunk, so no event still refers
        to any of it."""
        node = self.last
        self.last = None
        while node is not None:
            parent = node.getparent()
            if parent is None:
                break
            index = parent.index(node)
            if index:
                del parent[:index]
            node = parent

    # -- handlers ----------------------------------------------------------------------------

    def _root_end(self, element: etree._Element) -> None:
        if element is self.root:
            self.complete = True

    def _tor(self, element: etree._Element) -> None:
        self.tors += 1
        if self.tors > 1:
            raise _Unsure(_second_tor(self.name, element))

    def _learners_report(self, element: etree._Element) -> bool:
        """True for a child of the learner's report (not of a v2.0 recognition report)."""
        parent = element.getparent()
        return parent is not None and parent is self.report_element

    def _generated_date(self, element: etree._Element) -> None:
        if _parent_tag(element) == _ELMO:
            self.generated_at = _datetime(element)

    def _issue_date(self, element: etree._Element) -> None:
        if self._learners_report(element):
            self.reports[-1].issued_at = _datetime(element)

    def _omobility_id(self, element: etree._Element) -> None:
        self.omobility_id = _token(element)

    def _issuer(self, issuer: etree._Element) -> None:
        report = issuer.getparent()
        if report is None or report.tag != _E_REPORT or _parent_tag(report) != _ELMO:
            return  # the issuer of a recognition report
        # The issuer is the first child of a report: the learner's report starts here.
        self.report_element = report
        kids = _group(issuer)
        self.reports.append(
            _Report(
                issuer=Institution(
                    identifiers=_identifier_list(kids.get(_e("identifier"), ())),
                    names=_localized_list(kids.get(_e("title"), ())),
                    country=_one_token(kids, _e("country")),
                    url=_one_token(kids, _e("url")),
                )
            )
        )

    def _learner(self, learner: etree._Element) -> None:
        if _parent_tag(learner) != _ELMO:
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
        if self._learners_report(element):
            local_id = " ".join((element.get("localId") or "").split())
            descriptions = _localized_list(_kids(element, _e("description")), token=False)
            self.reports[-1].grading_schemes[local_id] = descriptions

    def _credit(self, credit: etree._Element) -> Credit:
        words = self.words
        scheme = value = level = None
        for part in credit:
            tag = part.tag
            if tag == _T_SCHEME:
                if scheme is None:
                    scheme = _cached(words, part, _token)
            elif tag == _T_VALUE:
                if value is None:
                    value = part
            elif tag == _T_LEVEL and level is None:
                level = _cached(words, part, _token)
        raw = _cached(words, value, _token) if value is not None else None
        key = (scheme or "", raw, level)
        found = self.credits.get(key)
        if found is None:
            found = self.credits[key] = Credit(
                scheme=key[0],
                value=_cached(self.decimals, value, _decimal) if value is not None else None,
                level=level,
            )
        return found

    def _result(self, loi: etree._Element) -> None:
        # loi is report//learningOpportunitySpecification/specifies/learningOpportunityInstance;
        # the specification's own children before <specifies> are still in the tree (nothing
        # of the chunk being handled is deleted before the next chunk is read).
        specifies = loi.getparent()
        los = specifies.getparent() if specifies is not None else None
        holder = los.getparent() if los is not None else None
        if holder is None or los is None or los.tag != _LOS:
            return  # pragma: no cover - not reachable in a schema-valid document
        specs = self.open_specs
        if holder is self.report_element:
            depth, parent_index = 0, None
            specs.clear()
        elif holder.tag == _HAS_PART:
            outer = holder.getparent()
            position = len(specs) - 1
            while position >= 0 and specs[position][0] is not outer:
                position -= 1
            if position < 0:
                return  # a part of a home course in a v2.0 resultOfRecognition
            del specs[position + 1 :]
            depth, parent_index = position + 1, specs[position][1]
        else:
            return  # a home course in a v2.0 resultOfRecognition: a decision, not a result
        words = self.words

        identifiers: tuple[Identifier, ...] = ()
        titles: tuple[LocalizedText, ...] = ()
        kind = subject_area = isced_code = None
        for child in los:
            tag = child.tag
            if tag == _T_IDENTIFIER:
                identifiers += (_identifier(child, words),)
            elif tag == _T_TITLE:
                titles += (LocalizedText(_token(child), child.get(_XML_LANG)),)
            elif tag == _SPECIFIES:
                break
            elif tag == _T_TYPE:
                if kind is None:
                    kind = _cached(words, child, _token)
            elif tag == _T_SUBJECT_AREA:
                if subject_area is None:
                    subject_area = _cached(words, child, _token)
            elif tag == _T_ISCED_CODE and isced_code is None:
                isced_code = _cached(words, child, _token)

        status_token = grade = scheme_id = scheme_external_id = language = None
        result_date = start_date = hours = academic_term = distribution = shortened = None
        seen_term = seen_shortened = False  # only the first of each counts
        refs: tuple[str, ...] | None = None
        instance_identifiers: tuple[Identifier, ...] = ()
        credits: tuple[Credit, ...] = ()
        levels: tuple[Level, ...] = ()
        for child in loi:
            tag = child.tag
            if tag == _T_CREDIT:
                credits += (self._credit(child),)
            elif tag == _T_RESULT_LABEL:
                if grade is None:
                    grade = _cached(words, child, _token)
            elif tag == _T_DATE:
                if result_date is None:
                    result_date = _cached(self.dates, child, _date)
            elif tag == _T_STATUS:
                if status_token is None:
                    status_token = _cached(words, child, _token)
            elif tag == _T_SCHEME_LOCAL_ID:
                if scheme_id is None:
                    scheme_id = _cached(words, child, _token)
            elif tag == _T_IDENTIFIER:
                instance_identifiers += (_identifier(child, words),)
            elif tag == _T_LEVEL:
                levels += (_level(child),)
            elif tag == _T_LANGUAGE:
                if language is None:
                    language = _cached(words, child, _token)
            elif tag == _T_START:
                if start_date is None:
                    start_date = _cached(self.dates, child, _date)
            elif tag == _T_ENGAGEMENT_HOURS:
                if hours is None:
                    hours = _cached(self.decimals, child, _decimal)
            elif tag == _T_SCHEME_EXTERNAL_ID:
                if scheme_external_id is None:
                    scheme_external_id = _cached(words, child, _token)
            elif tag == _T_ACADEMIC_TERM:
                if not seen_term:
                    seen_term, academic_term = True, _academic_term(child)
            elif tag == _T_RESULT_DISTRIBUTION:
                if distribution is None:
                    distribution = _distribution(child)
            elif tag == _T_SHORTENED_GRADING:
                if not seen_shortened:
                    seen_shortened, shortened = True, _shortened_grading(child)
            elif tag == _T_ATTACHMENTS and refs is None:
                refs = tuple(_token(ref) for ref in _kids(child, _Tag.ref))

        if status_token:
            status = _STATUSES.get(status_token) or ResultStatus(status_token)
        else:
            status = ResultStatus.PASSED
        ects = None
        for credit in credits:
            if credit.scheme.casefold() == "ects":
                ects = credit.value
                break
        eqf = None
        for level in levels:
            if level.type.casefold() == "eqf":
                eqf = level.value
                break
        index = len(self.results) + len(self.pending_results)
        self.pending_results.append(
            _ResultDraft(
                self.reports[-1].issuer,
                identifiers,
                titles,
                kind,
                status,
                status_token is not None,
                grade,
                scheme_id,
                (),  # grading_scheme_description, set when the report ends
                ects,
                credits,
                int(eqf) if eqf is not None and eqf.isdigit() else None,
                levels,
                result_date,
                start_date,
                academic_term,
                language,
                hours,
                distribution,
                shortened,
                subject_area,
                isced_code,
                instance_identifiers,
                refs or (),
                depth,
                parent_index,
                _sourceline(los) or 0,
                scheme_external_id,
            )
        )
        specs.append((los, index))

    def _close_report(self, element: etree._Element) -> None:
        if element is not self.report_element:
            return
        self.report_element = None
        self.open_specs.clear()
        schemes = self.reports[-1].grading_schemes
        results = self.results
        for draft in self.pending_results:
            draft.grading_scheme_description = schemes.get(draft.grading_scheme_id or "", ())
            results.append(CourseResult(*_draft_values(draft)))
        self.pending_results.clear()

    def _attachment(self, attachment: etree._Element) -> None:
        scope = _ATTACHMENT_SCOPES.get(_parent_tag(attachment) or "")
        if scope is None or _in_recognition(attachment):
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
        attachment.clear()  # the embedded document can be large

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


def _level(level: etree._Element) -> Level:
    parts = _group(level)
    description = _one(parts, _Tag.description)
    return Level(
        type=_one_token(parts, _Tag.type) or "",
        value=_one_token(parts, _Tag.value),
        description=_text(description).strip() if description is not None else None,
    )


def _academic_term(term: etree._Element) -> AcademicTerm | None:
    parts = _group(term)
    start, end = _one(parts, _Tag.start), _one(parts, _Tag.end)
    if start is None or end is None:
        return None
    return AcademicTerm(_localized_list(parts.get(_Tag.title, ())), _date(start), _date(end))


def _distribution(histogram: etree._Element) -> ResultDistribution:
    parts = _group(histogram)
    return ResultDistribution(
        categories=tuple(
            DistributionCategory(" ".join((c.get("label") or "").split()), int(c.get("count") or 0))
            for c in parts.get(_Tag.category, ())
        ),
        descriptions=_localized_list(parts.get(_Tag.description, ()), token=False),
    )


def _shortened_grading(short: etree._Element) -> ShortenedGrading | None:
    parts = _group(short)
    lower = _one(parts, _Tag.percentage_lower)
    equal = _one(parts, _Tag.percentage_equal)
    higher = _one(parts, _Tag.percentage_higher)
    if lower is None or equal is None or higher is None:
        return None
    return ShortenedGrading(_decimal(lower), _decimal(equal), _decimal(higher))


# --------------------------------------------------------------------------------------------
# Naming a refusal exactly: the slow way, only for files the single pass did not take
# --------------------------------------------------------------------------------------------


def _second_tor(name: str, tor: etree._Element) -> TranscriptRejected:
    return TranscriptRejected(
        name,
        _line(tor),
        "tor",
        "the EWP response holds transcripts for more than one mobility; import them one at a time",
    )


def _diagnose(
    source: TranscriptSource, name: str, max_bytes: int, max_depth: int, version: TranscriptVersion
) -> None:
    """Re-read a file the single pass refused and raise what is wrong with it, in the order
    and the words of a separate syntax pass and validation pass: syntax errors, nesting and a
    second ``<tor>`` first (with the innermost open element), then the schema's complaint with
    its line. Returns if it finds nothing."""
    with _open_checked(source, name, max_bytes) as stream:
        events = _events(stream, name, max_depth)
        tors = 0
        try:
            for event, element in events:
                if event == "start":
                    if element.tag == _TOR:
                        tors += 1
                        if tors > 1:
                            raise _second_tor(name, element)
                    continue
                parent = element.getparent()
                if parent is not None:
                    element.clear()
                    while element.getprevious() is not None:
                        del parent[0]
        finally:
            events.close()
    _validate(source, name, max_bytes, version)
