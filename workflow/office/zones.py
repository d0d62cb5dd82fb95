"""The institution's time zone: every time Recog shows a person (a refusal, the command line,
a page, an e-mail, a notice) is in the zone of the institution whose case it is, which is the
zone its deadlines are counted in (``Institution.timezone``, else ``RECOG_TIMEZONE``)."""

from __future__ import annotations

from collections.abc import Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.settings import Settings
from models import Case, Institution


def zone_named(name: str | None, settings: Settings) -> ZoneInfo:
    """The zone ``name`` (an institution's own), else the installation's."""
    return ZoneInfo(name) if name else settings.zone


def institution_zone(session: Session, institution_id: int | None, settings: Settings) -> ZoneInfo:
    """The zone of institution ``institution_id`` (the installation's for none)."""
    if institution_id is None:
        return settings.zone
    name = session.scalar(select(Institution.timezone).where(Institution.id == institution_id))
    return zone_named(name, settings)


def case_zones(
    session: Session, case_ids: Iterable[int], settings: Settings
) -> dict[int, ZoneInfo]:
    """The zone of each case's (home) institution, by case id, in one query."""
    ids = sorted(set(case_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(Case.id, Institution.timezone)
        .join(Institution, Institution.id == Case.institution_id)
        .where(Case.id.in_(ids))
    )
    return {case_id: zone_named(name, settings) for case_id, name in rows}
