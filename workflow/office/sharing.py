"""Which partner data another home institution depends on (docs/adr/0014-shared-partner-data.md).

A partner's course offerings and grading tables are the partner's, one copy for the whole
network: every home institution's cases on a course use the same offering (its title, status,
grading scheme, ECTS) and are converted by the same partner tables. So an office may enter
partner data and change what only its own cases use; once another home institution's cases
use a row, that office may no longer change it, and the operator (``recog`` on the server,
without ``--actor``) does. These two reads tell the imports which rows are shared so.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Case, Offering, Role
from workflow.policy.actors import Actor


def acting_home(actor: Actor | None) -> int | None:
    """The home institution an import acts for: none for the operator and the system actors
    (they act for the network), the office's own for its users."""
    if actor is None or actor.role in (Role.IMPORT, Role.TIMER):
        return None
    return actor.institution_id


def offerings_used_by_others(
    session: Session, offering_ids: Iterable[int], home_id: int
) -> set[int]:
    """Of ``offering_ids``, those that cases of a home institution other than ``home_id`` use."""
    ids = list(offering_ids)
    if not ids:
        return set()
    return set(
        session.scalars(
            select(Case.offering_id)
            .where(Case.offering_id.in_(ids), Case.institution_id != home_id)
            .distinct()
        )
    )


def partner_used_by_others(
    session: Session,
    partner_id: int,
    scheme: str,
    home_id: int,
    offering_id: int | None = None,
) -> bool:
    """Whether cases of another home institution than ``home_id`` could be converted by a
    table of partner ``partner_id`` on ``scheme`` (for the offering ``offering_id`` only, if
    the table is that offering's): the lookup takes the partner's tables on the case's scheme
    (docs/adr/0004-grading-tables.md), so any such case depends on them."""
    query = (
        select(func.count())
        .select_from(Case)
        .join(Offering, Offering.id == Case.offering_id)
        .where(
            Offering.institution_id == partner_id,
            func.lower(Offering.grading_scheme) == scheme.lower(),
            Case.institution_id != home_id,
        )
    )
    if offering_id is not None:
        query = query.where(Offering.id == offering_id)
    return bool(session.scalar(query))
