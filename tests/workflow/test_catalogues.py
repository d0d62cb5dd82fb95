"""The gettext catalogues: every message the code, the page templates, the e-mail layouts and
the notice use has words in German and in English; no catalogue keeps an entry nothing uses;
both languages fill the same placeholders; and the committed files are what `make messages`
makes of the code. A procedure whose event names an e-mail message that does not exist is
refused when Recog starts, not at the first delivery."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from config.errors import ConfigurationError
from config.procedure import DEFAULT_PROCEDURE, get_procedure, load_procedure
from config.settings import get_settings
from tasks.messages import check_procedure, parts
from workflow.catalogues import LANGUAGES, LOCALE_DIR, catalogue_path, say

ROOT = Path(__file__).resolve().parents[2]
# A named placeholder, or a literal percent sign; any other "%" is a mistake.
PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")


def used_ids() -> set[str]:
    """The message ids extraction finds, over the same mapping as `make messages`."""
    with (ROOT / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    return {
        message if isinstance(message, str) else message[0]
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map
        )
    }


def catalogue(language: str) -> Catalog:
    with catalogue_path(language).open("rb") as fh:
        return read_po(fh, locale=language)


@pytest.fixture(scope="module")
def used() -> set[str]:
    return used_ids()


@pytest.fixture(scope="module")
def catalogues() -> dict[str, Catalog]:
    return {language: catalogue(language) for language in LANGUAGES}


def placeholders(text: str) -> set[str]:
    return {m.group(1) for m in PLACEHOLDER.finditer(text) if m.group(1)}


def test_extraction_finds_every_interface(used: set[str]) -> None:
    # Pages (templates and code), e-mails (layouts, code and parts.toml) and notices.
    for msgid in (
        "page.login",
        "page.cohort_changed",
        "deadline.decision",
        "mail.happened",
        "mail.due.student.decision",
        "mail.submit.student.happened",
        "notice.remedy.objection",
        "notice.method.bavarian",
    ):
        assert msgid in used, msgid


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_used_message_is_translated(
    language: str, used: set[str], catalogues: dict[str, Catalog]
) -> None:
    entries = {m.id: m for m in catalogues[language] if m.id}
    missing = sorted(used - set(entries))
    assert not missing, f"{catalogue_path(language)} lacks {missing}; run `make messages`"
    empty = sorted(m for m in used if not entries[m].string)
    assert not empty, f"{catalogue_path(language)}: no words for {empty}"
    fuzzy = sorted(m for m in used if entries[m].fuzzy)
    assert not fuzzy, f"{catalogue_path(language)}: fuzzy (unchecked) entries {fuzzy}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_catalogue_keeps_an_entry_nothing_uses(
    language: str, used: set[str], catalogues: dict[str, Catalog]
) -> None:
    entries = {m.id for m in catalogues[language] if m.id}
    unused = sorted(entries - used)
    assert not unused, f"{catalogue_path(language)} has entries no code uses: {unused}"
    assert not catalogues[language].obsolete, sorted(catalogues[language].obsolete)


def test_both_languages_fill_the_same_placeholders(catalogues: dict[str, Catalog]) -> None:
    de = {m.id: str(m.string) for m in catalogues["de"] if m.id}
    en = {m.id: str(m.string) for m in catalogues["en"] if m.id}
    differing = {
        msgid: (sorted(placeholders(en[msgid])), sorted(placeholders(de[msgid])))
        for msgid in de.keys() & en.keys()
        if placeholders(de[msgid]) != placeholders(en[msgid]) or placeholders(msgid)
    }
    assert not differing, f"placeholders differ (en, de): {differing}"
    stray = sorted(
        f"{language}: {msgid}"
        for language, texts in (("de", de), ("en", en))
        for msgid, text in texts.items()
        if "%" in PLACEHOLDER.sub("", text)
    )
    assert not stray, f"a literal % must be written %%: {stray}"
    # Each formats with exactly its placeholders (what the pages, e-mails and notices pass).
    for texts in (de, en):
        for text in texts.values():
            text % dict.fromkeys(placeholders(text), "x")


def test_the_committed_catalogues_are_what_make_messages_makes(tmp_path: Path) -> None:
    copy = tmp_path / "locale"
    shutil.copytree(LOCALE_DIR, copy)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run([str(ROOT / "scripts" / "messages"), str(copy)], check=True, env=env)
    for name in ("recog.pot", *(f"{lang}/LC_MESSAGES/recog.po" for lang in LANGUAGES)):
        assert (copy / name).read_bytes() == (LOCALE_DIR / name).read_bytes(), (
            f"workflow/locale/{name} is not current: run `make messages` and translate"
        )


def test_a_placeholder_is_filled_and_a_percent_sign_kept() -> None:
    assert say("de")("page.login_slow", seconds=5) == (
        "Zu viele Fehlversuche. Bitte in 5 Sekunden erneut versuchen."
    )
    assert say("en")("page.band", lower="10", upper="20", mid="15") == (
        "band 10 to 20 %, midpoint 15 %"
    )


# --- the procedure's e-mail messages are checked at start-up -------------------------------


@pytest.fixture
def unknown_message_procedure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The default procedure with ``submit`` sending a message no catalogue words."""
    text = DEFAULT_PROCEDURE.read_text(encoding="utf-8")
    marker = 'name = "submit"\n'
    assert marker in text
    path = tmp_path / "office-procedure.toml"
    path.write_text(text.replace(marker, marker + 'message = "submitted_v2"\n', 1), "utf-8")
    monkeypatch.setenv("RECOG_PROCEDURE_FILE", str(path))
    get_settings.cache_clear()
    get_procedure.cache_clear()
    yield path
    monkeypatch.delenv("RECOG_PROCEDURE_FILE")
    get_settings.cache_clear()
    get_procedure.cache_clear()


def test_the_default_procedure_names_only_messages_that_exist() -> None:
    check_procedure(load_procedure(DEFAULT_PROCEDURE))
    assert "state_changed" in parts()


def test_a_procedure_naming_an_unknown_message_is_refused(unknown_message_procedure: Path) -> None:
    with pytest.raises(ConfigurationError) as refused:
        check_procedure()
    said = str(refused.value)
    assert str(unknown_message_procedure) in said
    assert "'submit'" in said
    assert "'submitted_v2'" in said


def test_the_app_does_not_start_with_it(unknown_message_procedure: Path) -> None:
    from web.app import create_app

    with pytest.raises(ConfigurationError, match="submitted_v2"):
        create_app()


def test_the_worker_does_not_start_with_it(unknown_message_procedure: Path) -> None:
    from tasks import jobs

    with pytest.raises(ConfigurationError, match="submitted_v2"):
        jobs._check_procedure()


def test_the_commands_that_send_mail_refuse_it(cli: Any, unknown_message_procedure: Path) -> None:
    env = {"RECOG_PROCEDURE_FILE": str(unknown_message_procedure)}
    for command in (("outbox", "relay"), ("remind",)):
        result = cli(*command, check=False, **env)
        assert result.code == 1, command
        assert "event 'submit' sends the e-mail message 'submitted_v2'" in result.err
        assert str(unknown_message_procedure) in result.err.replace("\n", "")
