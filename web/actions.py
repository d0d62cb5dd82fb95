"""What an actor may do to a case, shared by the API and the pages: the events open to them
in the case's state, and form fields turned into event data (which ``fire`` then checks
against the fields the procedure declares)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from config.procedure import EventDef, get_procedure
from workflow import CRITERIA as CRITERIA
from workflow import Actor, acting_role, why_no_objection

# Event data is checked by the workflow (``fire``, against the procedure's fields), so the
# API, the pages, the CLI and the imports refuse the same fields with the same words.
STRUCTURED_REASONS = ("recognize_partially", "reject")
DECISIONS = ("recognize", "recognize_partially", "reject")


def open_events(
    actor: Actor, case: dict[str, Any], examiner_id: int | None, now: dt.datetime
) -> list[EventDef]:
    """The events ``actor`` may fire on ``case`` now: the procedure's events from its state,
    for the actor's role, minus those whose cheap guards already say no (another examiner's
    case, a closed or still open appeal window)."""
    proc = get_procedure()
    appeal_ends = case.get("appeal_ends_at")
    result = []
    for ev in proc.allowed_from(case["state"]):
        if acting_role(actor, ev) is None:
            continue
        if "assigned_examiner" in ev.guards and examiner_id != actor.id:
            continue
        if "inside_appeal_window" in ev.guards and (appeal_ends is None or now >= appeal_ends):
            continue
        # The workflow's own rule (the zone only words its refusal, which is not shown here).
        if "objection_open" in ev.guards and why_no_objection(
            proc, case.get("decision"), appeal_ends, now, dt.UTC
        ):
            continue
        if "appeal_window_over" in ev.guards and appeal_ends is not None and now < appeal_ends:
            continue
        result.append(ev)
    return result


def form_data(event: str, form: Any) -> dict[str, Any]:
    """Event data from a submitted form: empty fields are left out, ``reasons.X`` becomes a
    per-criterion mapping, module checkboxes become lists."""
    data: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    for key in set(form.keys()):
        if key in ("csrf", "event", "version"):
            continue
        if key in ("modules", "not_credited"):
            values = [str(v).strip() for v in form.getlist(key) if str(v).strip()]
            if values:
                data[key] = values
            continue
        value = str(form.get(key) or "").strip()
        if not value:
            continue
        if key.startswith("reasons."):
            reasons[key.removeprefix("reasons.")] = value
        else:
            data[key] = value
    if reasons:
        data["reasons"] = reasons
    return data
