"""Decision notices: every decision event renders in German and English with its required parts
(tenor with modules, ECTS and grade and how the grade was converted; reasons per criterion
under the substantial-difference standard; how recognition could still be obtained; legal
remedies with the date the period ends), free text is escaped, the PDF carries the text with
its umlauts, the output is reproducible, and the PDF renderer never loads a URL."""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import shutil
import subprocess
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pytest

from workflow.cases.deadlines import end_of_day
from workflow.decisions import notices
from workflow.decisions.notices import (
    EVENTS,
    LANGUAGES,
    Notice,
    URLRefused,
    format_date,
    html_to_pdf,
    last_day_of_period,
    refusing_url_fetcher,
    render_notice,
    render_notice_html,
)
from workflow.errors import ValidationFailed
from workflow.grading.grades import convert


def _pdf_renderer_loads() -> bool:
    try:
        import weasyprint  # type: ignore[import-untyped]  # noqa: F401
    except OSError:  # Pango (a system library) is missing
        return False
    return True


if not _pdf_renderer_loads():
    if (
        os.environ.get("CI", "").lower() == "true"
        or os.environ.get("RECOG_REQUIRE_SERVICES") == "1"
    ):
        raise RuntimeError("WeasyPrint cannot load Pango; .ci/run installs libpango-1.0-0")
    pytestmark = pytest.mark.skip(
        reason="WeasyPrint cannot load Pango on this machine "
        "(apt-get install libpango-1.0-0 libpangoft2-1.0-0)"
    )

ZONE = ZoneInfo("Europe/Berlin")
# 23:30 UTC on 2 November is already 3 November in Berlin: dates must follow the zone.
ISSUED = dt.datetime(2026, 11, 2, 23, 30, tzinfo=dt.UTC)
APPEAL_ENDS = end_of_day(dt.date(2026, 12, 3), ZONE)  # 24:00 on 3 December, Berlin time
WINDOW_END = {"de": "03.12.2026", "en": "3 December 2026"}
ISSUED_ON = {"de": "03.11.2026", "en": "3 November 2026"}

MODULE = {
    "code": "INF-ML",
    "title": "Maschinelles Lernen",
    "ects": "6.0",
    "regulation_version": "PO 2023",
}
LAB = {
    "code": "INF-LAB",
    "title": "Praktikum Lernende Systeme",
    "ects": "3.0",
    "regulation_version": "PO 2023",
}
CONVERSION = convert("27", "it", "nearest").to_dict()
REASONS = {
    "workload": "Dem Kurs fehlen 3 ECTS-Leistungspunkte gegenüber dem Modul.",
    "learning_outcomes": "Der Kurs enthält keinen Laborteil (Übungen am Gerät).",
}
ADVICE = "Belegen Sie das Praktikum INF-LAB im nächsten Semester an der Heimathochschule."
RECOGNIZED = {
    "outcome": "recognized",
    "decided_at": "2026-11-02T10:00:00+00:00",
    "decided_by": 7,
    "modules": [MODULE],
    "ects": "6.0",
    "grade": "1.7",
    "conversion": CONVERSION,
}
PARTIAL = {
    "outcome": "partially_recognized",
    "decided_at": "2026-11-02T10:00:00+00:00",
    "decided_by": 7,
    "modules": [MODULE],
    "ects": "6.0",
    "grade": "1.7",
    "not_credited": [LAB],
    "reasons": REASONS,
    "advice": ADVICE,
    "conversion": CONVERSION,
}
REJECTED = {
    "outcome": "rejected",
    "decided_at": "2026-10-01T10:00:00+00:00",
    "decided_by": 7,
    "reasons": {
        "level": "Der Kurs liegt auf EQF-Niveau 5, das Modul auf Niveau 7.",
        "quality": "Der Kurs ist nicht qualitätsgesichert.",
    },
    "advice": "Weisen Sie das Niveau durch die Modulbeschreibung nach.",
}
GRANT_REASONS = "Die Lernergebnisse decken sich nach erneuter Prüfung vollständig."
DISMISS_REASONS = "Der Widerspruch bringt keine neuen Tatsachen vor."

CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "recognize": (RECOGNIZED, {}),
    "recognize_partially": (PARTIAL, {}),
    "reject": (REJECTED, {}),
    "grant_appeal": (RECOGNIZED, {"reasons": GRANT_REASONS}),
    "dismiss_appeal": (REJECTED, {"reasons": DISMISS_REASONS}),
}
COURSE = {
    "title": "Machine Learning",
    "code": "IT-ML",
    "partner_name": "Università di Torino",
    "term": "2026S",
    "ects": "6",
    "grade_as_printed": "27",
    "scheme": "it",
}
INSTITUTION = {
    "name": "Universität Xanten",
    "office_email": "pruefungsamt@uni-x.de",
    "address_lines": ["Universitätsstraße 1", "46509 Xanten"],
    "court": {
        "name": "Verwaltungsgericht Düsseldorf",
        "address_lines": ["Bastionstraße 39", "40213 Düsseldorf"],
    },
}


def kwargs(event: str, language: str, **changes: Any) -> dict[str, Any]:
    decision, data = CASES.get(event, CASES["reject"])
    values: dict[str, Any] = {
        "event": event,
        "decision": decision,
        "data": data,
        "language": language,
        "case_id": 4711,
        "student_name": "Jörg Müller-Weiß",
        "matriculation_number": "123456",
        "course": COURSE,
        "institution": INSTITUTION,
        "issued_at": ISSUED,
        "appeal_ends_at": None if event == "dismiss_appeal" else APPEAL_ENDS,
        "zone": ZONE,
    }
    values.update(changes)
    return values


def flat(text: str) -> str:
    """Text with tags removed and whitespace collapsed, for phrase checks on HTML."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())


# --- reading text out of a PDF -------------------------------------------------------------

_OBJECT = re.compile(rb"(\d+) 0 obj(.*?)endobj", re.S)
_STREAM = re.compile(rb"stream\r?\n(.*)\r?\nendstream", re.S)


def pdf_objects(pdf: bytes) -> dict[int, tuple[bytes, bytes]]:
    """Object number -> (dictionary, decoded stream), including objects kept in object
    streams (/ObjStm), which is where WeasyPrint puts its font dictionaries."""
    objects: dict[int, tuple[bytes, bytes]] = {}
    for number, body in _OBJECT.findall(pdf):
        stream = b""
        found = _STREAM.search(body)
        head = body[: found.start()] if found else body
        if found:
            stream = found.group(1)
            if b"/FlateDecode" in head:
                stream = zlib.decompress(stream)
        objects[int(number)] = (head, stream)
        if b"/ObjStm" in head:
            first = int(re.search(rb"/First (\d+)", head).group(1))  # type: ignore[union-attr]
            numbers = [int(n) for n in stream[:first].split()]
            offsets = list(zip(numbers[::2], numbers[1::2], strict=True))
            for index, (inner, offset) in enumerate(offsets):
                end = offsets[index + 1][1] if index + 1 < len(offsets) else len(stream) - first
                objects[inner] = (stream[first + offset : first + end], b"")
    return objects


def pdf_text(pdf: bytes) -> str:
    """The text of a WeasyPrint PDF: glyphs mapped through each font's ToUnicode CMap.

    pdftotext (poppler-utils) is used where installed; otherwise this small reader handles
    what WeasyPrint writes (Type0 fonts, Identity-H, [<gid>...] TJ), whitespace collapsed.
    """
    if shutil.which("pdftotext"):
        done = subprocess.run(
            ["pdftotext", "-enc", "UTF-8", "-", "-"], input=pdf, capture_output=True, check=True
        )
        return " ".join(done.stdout.decode().split())
    objects = pdf_objects(pdf)
    cmaps: dict[int, dict[int, str]] = {}
    for number, (head, _) in objects.items():
        unicode_ref = re.search(rb"/ToUnicode (\d+) 0 R", head)
        if b"/Type0" in head and unicode_ref:
            cmap_stream = objects[int(unicode_ref.group(1))][1]
            cmaps[number] = {
                int(glyph, 16): bytes.fromhex(code.decode()).decode("utf-16-be")
                for glyph, code in re.findall(rb"<([0-9a-f]{4})> <([0-9a-f]+)>", cmap_stream)
            }
    names = {
        name: cmaps[int(ref)]
        for head, _ in objects.values()
        for name, ref in re.findall(rb"/([\w.+-]+) (\d+) 0 R", head)
        if int(ref) in cmaps
    }
    words: list[str] = []
    contents = [
        int(ref)
        for head, _ in objects.values()
        for ref in re.findall(rb"/Contents (\d+) 0 R", head)
    ]
    for number in contents:
        stream = objects[number][1]
        cmap: dict[int, str] = {}
        for token in re.finditer(rb"/([\w.+-]+) [\d.]+ Tf|<([0-9a-f]+)>|( Tm\b|\bET\b)", stream):
            if token.group(1):
                cmap = names.get(token.group(1), {})
            elif token.group(2):
                hexa = token.group(2).decode()
                words.extend(
                    cmap.get(int(hexa[i : i + 4], 16), "?") for i in range(0, len(hexa), 4)
                )
            else:
                words.append(" ")
    return " ".join("".join(words).split())


# --- rendered notices, once per event and language ------------------------------------------


@pytest.fixture(scope="module")
def rendered() -> dict[tuple[str, str], Notice]:
    return {
        (event, lang): render_notice(**kwargs(event, lang))
        for event in EVENTS
        for lang in LANGUAGES
    }


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("event", EVENTS)
def test_every_event_renders_the_required_parts(
    rendered: dict[tuple[str, str], Notice], event: str, language: str
) -> None:
    notice = rendered[(event, language)]
    text = flat(notice.html)
    de = language == "de"
    decision, _ = CASES[event]

    assert notice.language == language
    assert notice.filename == (
        f"{'bescheid' if de else 'notice'}-4711-{event}-2026-11-03-{language}.pdf"
    )
    assert f'<html lang="{language}">' in notice.html
    assert (
        "Bescheid über die Anerkennung von Studien- und Prüfungsleistungen"
        if de
        else "Notice of decision on the recognition of study and examination achievements"
    ) in text
    # Letterhead, addressee, the achievement applied for; dates in the institution's zone.
    assert "Universität Xanten" in text
    assert "Jörg Müller-Weiß" in text
    assert "123456" in text
    assert ISSUED_ON[language] in text
    assert "Machine Learning (IT-ML)" in text
    assert "Università di Torino" in text
    # The legal standard: substantial difference, burden of proof on the institution.
    if de:
        assert "kein wesentlicher Unterschied" in text
        assert (
            "Die Beweislast dafür, dass ein wesentlicher Unterschied besteht, liegt bei der "
            "Hochschule" in text
        )
        assert "Art. V.1" in text
        assert "Lissabon-Konvention" in text
    else:
        assert "unless there is a substantial difference" in text
        assert (
            "The burden of proof that a substantial difference exists lies with the "
            "institution" in text
        )
        assert "Article V.1" in text
        assert "Lisbon Recognition Convention" in text
    assert "§ 63a HG NRW" in text

    # The tenor: modules, ECTS, grade and the conversion.
    if decision["outcome"] in ("recognized", "partially_recognized") and event != "dismiss_appeal":
        assert "INF-ML" in text
        assert "Maschinelles Lernen" in text
        assert (
            "Angerechnet werden 6,0 ECTS-Leistungspunkte" if de else "6.0 ECTS credits are credited"
        ) in text
        assert ("Die Note lautet 1,7" if de else "The grade is 1.7") in text
        assert (
            "Originalnote 27 (Notenskala: it)" if de else "Original grade 27 (grading scale: it)"
        ) in text
        assert ("modifizierte bayerische Formel" if de else "modified Bavarian formula") in text
        assert (
            "x = 1 + 3 × (Nmax − Nd) / (Nmax − Nmin) = 1 + 3 × (30 − 27) / (30 − 18) = "
            + ("1,75" if de else "1.75")
            in text
        )
        assert (
            "Nmax (beste Note) = 30, Nmin (niedrigste Bestehensnote) = 18, Nd (erzielte Note) = 27"
            if de
            else "Nmax (best grade) = 30, Nmin (lowest pass) = 18, Nd (grade achieved) = 27"
        ) in text
        assert ("nächste Notenstufe" if de else "nearest German grade step") in text
    if event == "recognize_partially":
        assert (
            "Im Übrigen wird der Antrag abgelehnt"
            if de
            else "For the rest, the application is refused"
        ) in text
        assert "INF-LAB" in text
        assert "Praktikum Lernende Systeme" in text
    if event == "reject":
        assert (
            "Der Antrag auf Anerkennung wird abgelehnt"
            if de
            else "The application for recognition is refused"
        ) in text
    if event == "grant_appeal":
        assert ("Dem Widerspruch wird stattgegeben" if de else "Your objection is granted") in text
        assert GRANT_REASONS in text
    if event == "dismiss_appeal":
        assert (
            "Der Widerspruch wird zurückgewiesen. Die Entscheidung vom 01.10.2026 bleibt bestehen"
            if de
            else "Your objection is dismissed. The decision of 1 October 2026 stands"
        ) in text
        assert DISMISS_REASONS in text

    # Reasons per criterion and how recognition could still be obtained, for every refusal.
    if decision["outcome"] in ("partially_recognized", "rejected"):
        labels = notices.criterion_labels(language)
        for criterion, reason in decision["reasons"].items():
            assert f"{labels[criterion]} {reason}" in text
        assert "wesentliche" in text if de else "substantial differences" in text
        assert (
            "Wie Sie die Anerkennung noch erreichen können"
            if de
            else "How recognition could still be obtained"
        ) in text
        assert decision["advice"] in text
    else:
        assert ("noch erreichen" if de else "could still be obtained") not in text

    # Instructions on legal remedies with the date the period ends.
    assert ("Rechtsbehelfsbelehrung" if de else "Instructions on legal remedies") in text
    if event in ("recognize", "recognize_partially", "reject"):
        assert (
            "innerhalb eines Monats nach seiner Bekanntgabe"
            if de
            else "within one month of its notification"
        ) in text
        assert ("Widerspruch erhoben werden" if de else "objection (Widerspruch)") in text
        assert (
            "schriftlich oder zur Niederschrift beim Prüfungsamt der Universität Xanten "
            "(Universitätsstraße 1, 46509 Xanten)"
            if de
            else "in writing or for the record at the Examination Office of Universität Xanten "
            "(Universitätsstraße 1, 46509 Xanten)"
        ) in text
        assert WINDOW_END[language] in text
        assert "Klage" not in text
    else:
        assert (
            "Klage beim Verwaltungsgericht Düsseldorf (Bastionstraße 39, 40213 Düsseldorf)"
            if de
            else "action (Klage)"
        ) in text
        assert (
            "innerhalb eines Monats nach seiner Zustellung"
            if de
            else "within one month of its service"
        ) in text
        assert ("§ 55a" if de else "section 55a") in text
    if event in ("recognize_partially", "reject"):
        assert (
            f"Die Widerspruchsfrist endet am {WINDOW_END['de']} um 24:00 Uhr"
            if de
            else f"The period for the objection ends on {WINDOW_END['en']} at 24:00"
        ) in text
        assert (
            "Über den Widerspruch entscheidet der Prüfungsausschuss"
            if de
            else "The examination board decides on the objection"
        ) in text
    if event == "recognize":  # a full recognition: the short note, still with date and place
        assert (
            f"also bis zum {WINDOW_END['de']}, schriftlich oder zur Niederschrift"
            if de
            else f"that is by {WINDOW_END['en']}, in writing or for the record"
        ) in text
    if event == "grant_appeal":
        assert WINDOW_END[language] in text
    if event == "dismiss_appeal":
        assert (
            "Ein Widerspruch ist nicht mehr gegeben"
            if de
            else "A further objection is not available"
        ) in text


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("event", EVENTS)
def test_pdf_carries_the_notice_text(
    rendered: dict[tuple[str, str], Notice], event: str, language: str
) -> None:
    notice = rendered[(event, language)]
    assert notice.pdf.startswith(b"%PDF-")
    assert notice.pdf.rstrip().endswith(b"%%EOF")
    assert len(notice.pdf) > 10_000
    fonts = [head for head, _ in pdf_objects(notice.pdf).values() if b"/FontFile2" in head]
    assert fonts
    assert all(b"DejaVu" in head for head in fonts)  # embedded DejaVu, nothing substituted
    catalog = next(head for head, _ in pdf_objects(notice.pdf).values() if b"/Catalog" in head)
    assert b"/StructTreeRoot" in catalog  # tagged (PDF/UA-1) for screen readers
    assert f"/Lang ({language})".encode() in catalog
    text = pdf_text(notice.pdf)
    de = language == "de"
    assert "Jörg Müller-Weiß" in text  # umlauts and ß survive into the PDF
    assert "Università di Torino" in text
    assert (
        "Bescheid über die Anerkennung von Studien- und Prüfungsleistungen"
        if de
        else "Notice of decision on the recognition of study and examination"
    ) in text
    assert ("Rechtsbehelfsbelehrung" if de else "Instructions on legal remedies") in text
    if event == "dismiss_appeal":
        assert "Klage" in text
    else:
        assert WINDOW_END[language] in text
    if de:
        assert "Widerspruch" in text
    if event in ("recognize_partially", "reject"):
        assert CASES[event][0]["advice"] in text


def test_pdf_renderer_is_given_the_notice_html_and_the_refusing_fetcher(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import weasyprint  # type: ignore[import-untyped]

    calls: list[dict[str, Any]] = []
    real = weasyprint.HTML

    def spy(**given: Any) -> Any:
        calls.append(given)
        return real(**given)

    monkeypatch.setattr(weasyprint, "HTML", spy)
    notice = render_notice(**kwargs("reject", "de"))

    assert len(calls) == 1
    assert calls[0]["string"] == notice.html
    assert calls[0]["base_url"] is None
    with pytest.raises(URLRefused):
        calls[0]["url_fetcher"].fetch("file:///etc/passwd")


def test_same_inputs_give_the_same_html_and_pdf() -> None:
    first = render_notice(**kwargs("recognize_partially", "en"))
    second = render_notice(**kwargs("recognize_partially", "en"))
    assert first == second
    # The PDF's creation date is the notice's issue date, not the time of rendering.
    assert '<meta name="dcterms.created" content="2026-11-02T23:30:00Z">' in first.html
    later = render_notice(
        **kwargs("recognize_partially", "en", issued_at=ISSUED + dt.timedelta(minutes=1))
    )
    assert later.pdf != first.pdf


# --- escaping and the URL fetcher ---------------------------------------------------------

INJECTED = '<img src="file:///etc/passwd"><img src="http://127.0.0.1:1/x">'


def test_free_text_is_escaped_and_nothing_is_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[str] = []
    refusing = notices._fetcher_class()

    class Recording(refusing):  # type: ignore[misc, valid-type]
        def fetch(self, url: str, headers: Any = None) -> Any:
            attempts.append(url)
            return super().fetch(url, headers)

    monkeypatch.setattr(notices, "refusing_url_fetcher", Recording)
    decision = dict(
        PARTIAL,
        reasons={"profile": f"{INJECTED} <script>alert(1)</script>"},
        advice=f"<link rel=stylesheet href='file:///etc/passwd'>{INJECTED}",
        modules=[dict(MODULE, title=INJECTED)],
    )
    notice = render_notice(
        **kwargs(
            "recognize_partially",
            "en",
            decision=decision,
            student_name=f"Eve {INJECTED}",
            course=dict(COURSE, title="<b>ML</b> & <i>more</i>"),
            institution=dict(INSTITUTION, name='Uni "X" <style>', address_lines=[INJECTED]),
        )
    )

    assert "<img" not in notice.html
    assert "<script" not in notice.html
    assert "<link" not in notice.html
    assert "&lt;img src=&#34;file:///etc/passwd&#34;&gt;" in notice.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in notice.html
    assert "&lt;b&gt;ML&lt;/b&gt; &amp; &lt;i&gt;more&lt;/i&gt;" in notice.html
    assert "Uni &#34;X&#34; &lt;style&gt;" in notice.html
    assert attempts == []  # escaped text leads the renderer to no URL at all
    assert '<img src="file:///etc/passwd">' in pdf_text(notice.pdf)  # shown as text


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "FILE:///etc/passwd",
        "http://127.0.0.1:1/x",
        "https://example.org/a.png",
        "data:text/css,body{color:red}",
        "data:image/png;base64,iVBORw0KGgo=",
        "ftp://example.org/x",
        "/etc/passwd",
        "relative.css",
    ],
)
def test_the_fetcher_refuses_every_url(url: str) -> None:
    fetcher = refusing_url_fetcher()
    with pytest.raises(URLRefused):
        fetcher.fetch(url)
    with pytest.raises(URLRefused):
        fetcher(url)
    with pytest.raises(URLRefused):
        fetcher.open(url)


class _Recorder(BaseHTTPRequestHandler):
    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        body = b"body::after { content: 'LEAKED-HTTP'; }"
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    _Recorder.paths = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.paths
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def hostile_html(base: str, secret_css: Path) -> str:
    return f"""<!DOCTYPE html><html><head>
<link rel="stylesheet" href="{secret_css.as_uri()}">
<link rel="stylesheet" href="{base}/linked.css">
<link rel="stylesheet" href="data:text/css,body::before{{content:'LEAKED-DATA'}}">
<style>@import url("{base}/imported.css"); html {{ background: url("{base}/bg.png"); }}
@font-face {{ font-family: Evil; src: url("{base}/font.woff"); }}</style>
</head><body style="font-family: 'DejaVu Sans'">
<p>Harmless text</p>
<img src="file:///etc/passwd"><img src="http://127.0.0.1:1/x"><img src="{base}/img.png">
<object data="{secret_css.as_uri()}"></object><iframe src="{base}/frame"></iframe>
</body></html>"""


def test_the_pdf_renderer_reads_no_file_and_reaches_no_server(
    tmp_path: Path, http_server: tuple[str, list[str]]
) -> None:
    base, requests = http_server
    secret = tmp_path / "secret.css"
    secret.write_text("body::after { content: 'LEAKED-FILE'; }", encoding="utf-8")
    attempts: list[str] = []

    class Recording(notices._fetcher_class()):  # type: ignore[misc]
        def fetch(self, url: str, headers: Any = None) -> Any:
            attempts.append(url)
            try:
                return super().fetch(url, headers)
            except URLRefused:
                attempts.append("refused")
                raise

    pdf = html_to_pdf(hostile_html(base, secret), url_fetcher=Recording())

    text = pdf_text(pdf)
    assert "Harmless text" in text
    assert "LEAKED" not in text
    assert requests == []
    # WeasyPrint did ask, for files, the network and data: URLs alike, and was refused each time.
    asked = [a for a in attempts if a != "refused"]
    assert attempts.count("refused") == len(asked)
    assert secret.as_uri() in asked
    assert "file:///etc/passwd" in asked
    assert f"{base}/linked.css" in asked
    assert f"{base}/img.png" in asked
    assert any(a.startswith("data:text/css") for a in asked)


def test_the_hostile_page_does_leak_with_weasyprints_default_fetcher(
    tmp_path: Path, http_server: tuple[str, list[str]]
) -> None:
    """Control: the test above would notice a fetch (so its silence means something)."""
    import weasyprint

    base, requests = http_server
    secret = tmp_path / "secret.css"
    secret.write_text("body::before { content: 'LEAKED-FILE'; }", encoding="utf-8")
    page = (
        f'<html><head><link rel="stylesheet" href="{secret.as_uri()}">'
        f'<link rel="stylesheet" href="{base}/linked.css"></head>'
        "<body style=\"font-family: 'DejaVu Sans'\"><p>Harmless text</p></body></html>"
    )

    pdf = weasyprint.HTML(string=page, base_url=None).write_pdf()

    text = pdf_text(pdf)
    assert "LEAKED-FILE" in text
    assert "LEAKED-HTTP" in text
    assert requests == ["/linked.css"]


# --- dates, refusals ------------------------------------------------------------------------


def test_the_period_ends_on_the_day_before_a_stored_midnight() -> None:
    assert last_day_of_period(end_of_day(dt.date(2026, 12, 3), ZONE), ZONE) == dt.date(2026, 12, 3)
    summer = end_of_day(dt.date(2026, 7, 31), ZONE)
    assert summer == dt.datetime(2026, 7, 31, 22, 0, tzinfo=dt.UTC)
    assert last_day_of_period(summer, ZONE) == dt.date(2026, 7, 31)
    # An instant that is not a midnight belongs to its own local day.
    assert last_day_of_period(dt.datetime(2026, 12, 3, 12, tzinfo=dt.UTC), ZONE) == dt.date(
        2026, 12, 3
    )
    assert format_date(dt.date(2026, 3, 5), "de") == "05.03.2026"
    assert format_date(dt.date(2026, 3, 5), "en") == "5 March 2026"


@pytest.mark.parametrize(
    ("language", "credited", "grade", "course_credits", "module_row"),
    [
        (
            "de",
            "Angerechnet werden 5,0 ECTS-Leistungspunkte",
            "Die Note lautet 1,7",
            "5,0 ECTS",
            "INF-ML Maschinelles Lernen 5,0 PO 2023",
        ),
        (
            "en",
            "5.0 ECTS credits are credited",
            "The grade is 1.7",
            "5.0 ECTS",
            "INF-ML Maschinelles Lernen 5.0 PO 2023",
        ),
    ],
)
def test_numbers_and_dates_are_written_as_the_language_writes_them(
    language: str, credited: str, grade: str, course_credits: str, module_row: str
) -> None:
    """Grades and credits stored as numbers (an int 5, a float 1.7, a Decimal with two
    places) still read "5,0" and "1,7" in German and "5.0" and "1.7" in English."""
    from decimal import Decimal

    decision = dict(
        RECOGNIZED, ects=5, grade=Decimal("1.70"), modules=[dict(MODULE, ects=Decimal("5"))]
    )
    text = flat(
        render_notice_html(
            **kwargs("recognize", language, decision=decision, course=dict(COURSE, ects=5))
        )
    )
    assert credited in text
    assert grade in text
    assert course_credits in text
    assert module_row in text
    assert ISSUED_ON[language] in text
    assert WINDOW_END[language] in text
    assert ("1.7" if language == "de" else "1,7") not in text


def test_pass_fail_and_percentile_conversions_are_explained() -> None:
    passed = dict(
        RECOGNIZED, grade="passed", conversion=convert("passed", "passfail", "nearest").to_dict()
    )
    text = flat(render_notice_html(**kwargs("recognize", "de", decision=passed)))
    assert "Die Leistung wird ohne Note mit „bestanden“ angerechnet" in text
    assert "Bestanden/nicht bestanden (keine Umrechnung)" in text

    from workflow.grading.grades import percentile

    by_table = percentile(
        "B",
        {"A": 10, "B": 25, "C": 30, "D": 25, "E": 10},
        {
            "1.0": 5,
            "1.3": 10,
            "1.7": 15,
            "2.0": 15,
            "2.3": 15,
            "2.7": 15,
            "3.0": 10,
            "3.3": 5,
            "3.7": 5,
            "4.0": 5,
        },
        scheme="ects",
    ).to_dict()
    text = flat(
        render_notice_html(
            **kwargs("recognize", "en", decision=dict(RECOGNIZED, conversion=by_table))
        )
    )
    assert "percentile method (ECTS grading tables, EGRACONS)" in text
    assert "range of the grade B in the partner's grade distribution: 10 % to 35 %" in text
    assert "midpoint 22.5 %: corresponds to 1.7" in text


def test_dismissal_without_a_standing_decision_and_without_a_window() -> None:
    text = flat(
        render_notice_html(
            **kwargs(
                "dismiss_appeal", "de", decision=None, institution=dict(INSTITUTION, court=None)
            )
        )
    )
    assert "Der Widerspruch wird zurückgewiesen" in text
    assert "beim örtlich zuständigen Verwaltungsgericht" in text
    assert "Klagefrist endet" not in text


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"language": "fr"}, "no notice in language 'fr'"),
        ({"event": "close"}, "issues no decision notice"),
        ({"decision": None}, "has no decision"),
        ({"decision": RECOGNIZED}, "needs a decision with outcome rejected"),
        ({"decision": dict(REJECTED, advice="")}, "how recognition could still be obtained"),
        ({"decision": dict(REJECTED, reasons={})}, "per criterion"),
        ({"issued_at": ISSUED.replace(tzinfo=None)}, "timezone-aware"),
        ({"institution": {"name": "Uni X"}}, "office_email is missing"),
    ],
)
def test_what_cannot_make_a_lawful_notice_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationFailed, match=re.escape(message)):
        render_notice_html(**kwargs(**{"event": "reject", "language": "de", **changes}))


def test_appeal_notices_need_the_boards_reasons() -> None:
    with pytest.raises(ValidationFailed, match="board's reasons"):
        render_notice_html(**kwargs("dismiss_appeal", "en", data={}))


@pytest.mark.parametrize("language", ["de", "en"])
def test_an_objection_to_a_full_recognition_dismissed_leaves_the_recognition_standing(
    language: str,
) -> None:
    """A full recognition may be contested (its grade, ADR 0015); the board's dismissal keeps
    it and instructs on the action at court, as far as the student is aggrieved."""
    text = flat(
        render_notice_html(
            **kwargs(
                "dismiss_appeal",
                language,
                decision=RECOGNIZED,
                appeal_ends_at=APPEAL_ENDS,
            )
        )
    )
    assert (
        "Der Widerspruch wird zurückgewiesen" if language == "de" else "Your objection is dismissed"
    ) in text
    assert ("Klage" if language == "de" else "action (Klage)") in text
    assert "Widerspruch (" not in text
