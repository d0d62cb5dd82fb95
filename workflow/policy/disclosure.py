"""What a viewer sees of a case's audit trail and of the case list: one function each for every
interface (the API's history, the pages' timeline, ``recog case history --actor``; the case
list of the API, the pages and ``recog case list --actor``).

The office sees the trail as it is. Whoever may not see the office's internals
(``Action.SEE_INTERNALS``: the student) sees what happened and when, and which role acted,
but not who in the office acted (their user ids), not the event data beyond the messages
addressed to them (an examiner's name or id, conversions and precedents stay inside the
office, as everywhere else), and not the chain hashes (a hash over an actor id and a data
digest would let one test guesses of both).
"""

from __future__ import annotations

from typing import Any

from models import Role
from workflow.policy.actors import Actor
from workflow.policy.permissions import Action, allowed

# The event data a student may read in the timeline: the messages exchanged with them
# (request_info, provide_info, appeal, withdraw).
STUDENT_DATA = ("message",)


def disclosed_history(actor: Actor | None, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``entries`` (the audit trail's rows as dicts: seq, at, event, from, to, actor_role,
    actor_id, channel, data, hash) as ``actor`` may see them."""
    if allowed(actor, Action.SEE_INTERNALS):
        return entries
    return [
        {
            **entry,
            # The student's own actions may name them; an office member is a role, no more.
            "actor_id": entry["actor_id"] if entry["actor_role"] == Role.STUDENT.value else None,
            "data": {k: v for k, v in (entry["data"] or {}).items() if k in STUDENT_DATA},
            "hash": None,
        }
        for entry in entries
    ]


def disclosed_cases(actor: Actor | None, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Case-list rows as ``actor`` may see them: the examiner (id and name) only for those who
    may see the office's internals, as on the case page."""
    if allowed(actor, Action.SEE_INTERNALS):
        return items
    return [{**item, "examiner_id": None, "examiner": None} for item in items]
