"""The gettext catalogues: every word a person reads on a page, in an e-mail or in a notice,
in German and English, loaded once per process and language.

The catalogues are ``workflow/locale/<language>/LC_MESSAGES/recog.po`` (template:
``workflow/locale/recog.pot``; ``make messages`` re-extracts and updates them). A message id is
a stable key such as ``page.dashboard`` or ``mail.submit.student.happened``, never English
text, so both catalogues carry real words and a missing translation is a missing entry
(``tests/workflow/test_catalogues.py``). Placeholders are Python's named ones, ``%(date)s``;
a literal percent sign is written ``%%`` (every message is formatted, as Jinja2's new-style
gettext does).

The ``.po`` files are compiled in memory on first use (Babel's ``read_po`` and ``write_mo``,
a few milliseconds), so a fresh clone, an installed wheel and ``make run`` need no build step
and no compiled ``.mo`` file can go stale beside its source (docs/adr/0009-catalogues.md).
The procedure's own words (states, events, the student's next step) are not here: they are the
procedure's (config/procedure.toml, ADR 0007).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from pathlib import Path
from typing import Final

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

__all__ = [
    "DOMAIN",
    "LANGUAGES",
    "LOCALE_DIR",
    "N_",
    "Say",
    "catalogue_path",
    "say",
    "translations",
]

LOCALE_DIR: Final = Path(__file__).resolve().parent / "locale"
DOMAIN: Final = "recog"
LANGUAGES: Final = ("de", "en")

Say = Callable[..., str]


def catalogue_path(language: str) -> Path:
    """The ``.po`` file of ``language``."""
    if language not in LANGUAGES:
        raise ValueError(f"no catalogue for language {language!r}; available: de, en")
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(language: str) -> Translations:
    """The compiled catalogue of ``language``, built once per process (fuzzy entries are left
    out, as ``msgfmt`` does; the catalogue test refuses them anyway)."""
    with catalogue_path(language).open("rb") as fh:
        catalog = read_po(fh, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def say(language: str) -> Say:
    """``_(msgid, **values)`` for ``language``: the translation with its named placeholders
    filled (``%(name)s``). Only the values named are used, so nothing else the caller holds
    can reach a text."""
    gettext = translations(language).gettext

    def _(msgid: str, /, **values: object) -> str:
        return gettext(msgid) % values

    return _


def N_(msgid: str) -> str:
    """Mark ``msgid`` as a message id for extraction, to be translated later."""
    return msgid


def criteria(_: Say) -> dict[str, str]:
    """The criteria of a substantial difference (``workflow.CRITERIA``) as the pages and the
    e-mails name them (notices and exports say more: their own ids)."""
    return {
        "level": _("criterion.level"),
        "workload": _("criterion.workload"),
        "learning_outcomes": _("criterion.learning_outcomes"),
        "profile": _("criterion.profile"),
        "quality": _("criterion.quality"),
    }
