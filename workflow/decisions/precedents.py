"""Precedents: every decision is remembered per (partner course, home module, regulation
version), shown for new cases of the same pair, and checked for consistency.

A precedent expires after ``RECOG_PRECEDENT_VALIDITY_DAYS`` or as soon as the module's
examination regulations change (its ``regulation_version`` differs from the precedent's).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, aliased

from config.procedure import get_procedure
from config.settings import Settings
from models import Case, Institution, Module, Offering, Precedent, Programme, case_targets
from workflow.cases.guards import decision_events
from workflow.cases.storage import insert_ignoring_duplicates
from workflow.policy.actors import Actor, case_scope
from workflow.policy.permissions import Action, require

# The statements ``record`` runs on every decision, built once: building a statement with
# SQLAlchemy costs more than running it (about 1 ms of the 2-3 ms a decision spent here).
_CASES = (
    select(Case.id, Case.institution_id, Offering.institution_id, Offering.code)
    .join(Offering, Offering.id == Case.offering_id)
    .where(Case.id.in_(bindparam("ids", expanding=True)))
)
_CASES_AND_DECISIONS = _CASES.add_columns(Case.decision)
_TARGETS = (
    select(case_targets.c.case_id, Module.code)
    .join(Module, Module.id == case_targets.c.module_id)
    .where(case_targets.c.case_id.in_(bindparam("ids", expanding=True)))
)
_MODULES = (
    select(Module.id, Module.code, Module.regulation_version, Programme.institution_id)
    .join(Programme, Programme.id == Module.programme_id)
    .where(
        Programme.institution_id.in_(bindparam("homes", expanding=True)),
        Module.code.in_(bindparam("codes", expanding=True)),
    )
)


# A decision replaced later in the same case (a rejection overturned on appeal, whose grant is
# the case's decision now) is no precedent: only each case's latest deciding event counts. Its
# rows stay (nothing is lost; the audit trail tells the story); the reads skip them.
_LATER = aliased(Precedent)
_CURRENT = ~(
    select(_LATER.id)
    .where(_LATER.case_id == Precedent.case_id, _LATER.event_seq > Precedent.event_seq)
    .exists()
)


def record(
    session: Session,
    fired: list[Any],
    *,
    settings: Settings,
    decisions: Mapping[int, Any] | None = None,
) -> int:
    """Write the precedents of decision events (one row per module decided). ``decisions``:
    the decision each case was just given, by case id (read from the cases unless given for
    every one of them)."""
    deciding = decision_events(get_procedure())
    by_case = {f.case_id: f for f in fired if f.event in deciding}
    if not by_case:
        return 0
    if decisions is not None and not all(case_id in decisions for case_id in by_case):
        decisions = None
    # Core on the session's connection (no ORM entities are loaded here): this runs inside
    # every decision's transaction.
    conn = session.connection()
    ids = {"ids": list(by_case)}
    cases = conn.execute(_CASES if decisions is not None else _CASES_AND_DECISIONS, ids).all()
    decided = {row[0]: (row[4] if decisions is None else decisions[row[0]]) or {} for row in cases}
    targets: dict[int, list[str]] = defaultdict(list)
    if any(d.get("outcome") == "rejected" for d in decided.values()):
        for case_id, code in conn.execute(_TARGETS, ids):
            targets[case_id].append(code)
    # Per case, the module codes credited and not credited (a rejection: all its targets).
    outcomes: dict[int, tuple[tuple[str, list[str]], ...]] = {}
    for case_id, decision in decided.items():
        credited = [m["code"] for m in decision.get("modules", [])]
        refused = [m["code"] for m in decision.get("not_credited", [])]
        if decision.get("outcome") == "rejected":
            refused = targets[case_id]
        outcomes[case_id] = (("credited", credited), ("not_credited", refused))
    decided_codes = {code for pairs in outcomes.values() for _, codes in pairs for code in codes}
    homes = {home for _, home, *_ in cases}
    module_ids = (
        {
            (inst, code): (mid, version)
            for mid, code, version, inst in conn.execute(
                _MODULES, {"homes": list(homes), "codes": sorted(decided_codes)}
            )
        }
        if decided_codes
        else {}
    )
    rows = []
    for case_id, home, partner, course, *_ in cases:
        fired_event = by_case[case_id]
        decision = decided[case_id]
        for outcome, codes in outcomes[case_id]:
            for code in codes:
                if (home, code) not in module_ids:
                    continue
                mid, version = module_ids[(home, code)]
                rows.append(
                    {
                        "institution_id": home,
                        "partner_id": partner,
                        "course_code": course,
                        "module_id": mid,
                        "regulation_version": version,
                        "outcome": outcome,
                        "grade": decision.get("grade") if outcome == "credited" else None,
                        "case_id": case_id,
                        "event_seq": fired_event.seq,
                        "decided_at": fired_event.at,
                        "expires_at": fired_event.at
                        + dt.timedelta(days=settings.precedent_validity_days),
                    }
                )
    insert_ignoring_duplicates(session.connection(), Precedent.__table__, rows)
    return len(rows)


def for_case(session: Session, case_id: int, *, now: dt.datetime) -> dict[str, Any]:
    """The valid precedents for a case's (partner course, target module) pairs, and the
    decision they suggest per module (the most recent one). A decision its case replaced
    (overturned on appeal) is none: the decision that replaced it is."""
    case = session.execute(
        select(Case.institution_id, Offering.institution_id, Offering.code)
        .join(Offering, Offering.id == Case.offering_id)
        .where(Case.id == case_id)
    ).one()
    home, partner, course = case
    query = (
        select(
            Precedent.case_id,
            Precedent.outcome,
            Precedent.grade,
            Precedent.decided_at,
            Precedent.regulation_version,
            Module.code,
            Module.regulation_version.label("current_version"),
            Precedent.expires_at,
        )
        .join(Module, Module.id == Precedent.module_id)
        .join(case_targets, case_targets.c.module_id == Precedent.module_id)
        .where(
            case_targets.c.case_id == case_id,
            Precedent.institution_id == home,
            Precedent.partner_id == partner,
            Precedent.course_code == course,
            Precedent.case_id != case_id,
            _CURRENT,
        )
        .order_by(Precedent.decided_at.desc())
    )
    valid, expired = [], []
    for row in session.execute(query):
        entry = {
            "case": row.case_id,
            "module": row.code,
            "outcome": row.outcome,
            "grade": row.grade,
            "decided_at": row.decided_at,
            "regulation_version": row.regulation_version,
        }
        if row.expires_at <= now:
            expired.append({**entry, "why": "older than the validity period"})
        elif row.regulation_version != row.current_version:
            expired.append({**entry, "why": f"regulations changed to {row.current_version}"})
        else:
            valid.append(entry)
    suggestion: dict[str, dict[str, Any]] = {}
    for entry in valid:
        suggestion.setdefault(entry["module"], entry)
    return {"valid": valid, "expired": expired, "suggestion": suggestion}


def inconsistent(
    session: Session, *, actor: Actor | None, now: dt.datetime
) -> list[dict[str, Any]]:
    """Pairs (partner course, module, regulation version) decided differently by valid
    precedents: credited in one case, not credited in another, or with different grades.
    Each case counts with its standing decision only (not one overturned on appeal).
    Only who may check precedents asks (the permission table), and sees the precedents of
    the cases they may see (``case_scope``: an office its institution's, an examiner their
    programmes'); ``actor=None`` is the operator's view of all."""
    require(actor, Action.CHECK_PRECEDENTS)
    query = (
        select(
            Precedent.partner_id,
            Institution.code,
            Precedent.course_code,
            Module.code,
            Precedent.regulation_version,
            Precedent.outcome,
            Precedent.grade,
            Precedent.case_id,
        )
        .join(Module, Module.id == Precedent.module_id)
        .join(Institution, Institution.id == Precedent.partner_id)
        .where(
            Precedent.expires_at > now,
            Precedent.regulation_version == Module.regulation_version,
            _CURRENT,
        )
        .order_by(Precedent.id)
    )
    if actor is not None:
        query = query.join(Case, Case.id == Precedent.case_id).where(case_scope(actor))
    rows = session.execute(query)
    pairs: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for r in rows:
        pairs[(r[1], r[2], r[3], r[4])].append(r)
    found = []
    for (partner, course, module, version), items in pairs.items():
        outcomes = {i.outcome for i in items}
        if len(outcomes) > 1:
            found.append(
                {
                    "partner": partner,
                    "course": course,
                    "module": module,
                    "regulation_version": version,
                    "decisions": [
                        {"case": i.case_id, "outcome": i.outcome, "grade": i.grade} for i in items
                    ],
                }
            )
    return found


__all__ = ["Offering", "for_case", "inconsistent", "record"]
