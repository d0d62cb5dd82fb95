"""What an actor may do to a case, shared by the API and the pages: the events open to them
in the case's state, the fields each event accepts, and form fields turned into event data.

A field an event does not take is refused (422) before anything is touched: event data ends
up in the audit trail, so nobody may smuggle keys into it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from config.procedure import EventDef, get_procedure
from workflow.actors import Actor, acting_role
from workflow.errors import ValidationFailed

EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "enrol": (),
    "retake": (),
    "receive_transcript": (),
    "submit": (),
    "close": (),
    "lapse": (),
    "pass_course": ("date", "grade", "scheme", "ects", "eqf_level", "language"),
    "fail_course": ("date", "grade", "scheme"),
    "start_review": ("examiner",),
    "request_info": ("message",),
    "provide_info": ("message",),
    "appeal": ("message",),
    "withdraw": ("message",),
    "recognize": ("modules", "grade", "ects", "conversion"),
    "recognize_partially": (
        "modules",
        "not_credited",
        "grade",
        "ects",
        "reasons",
        "advice",
        "conversion",
    ),
    "reject": ("reasons", "advice"),
    "grant_appeal": ("modules", "grade", "ects", "reasons", "conversion"),
    "dismiss_appeal": ("reasons",),
}
CRITERIA = ("level", "workload", "learning_outcomes", "profile", "quality")
STRUCTURED_REASONS = ("recognize_partially", "reject")
DECISIONS = ("recognize", "recognize_partially", "reject")


def check_fields(event: str, data: dict[str, Any]) -> None:
    allowed = EVENT_FIELDS.get(event)
    if allowed is None:
        return  # an unknown event: fire() names the known ones
    extra = sorted(set(data) - set(allowed))
    if extra:
        raise ValidationFailed(
            f"{', '.join(extra)} cannot be set with {event}; it takes "
            f"{', '.join(allowed) if allowed else 'no data'}"
        )


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
        if (
            "appeal_window_over" in ev.guards
            and case["state"] != "recognized"
            and appeal_ends is not None
            and now < appeal_ends
        ):
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
