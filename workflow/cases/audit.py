"""The tamper-evident audit trail: hash-chaining case events and verifying the chain.

Each event's hash covers the previous event's hash, the ids, the event, both states, the actor
(role and id), the channel, the time and a SHA-256 digest of the event data, but never the data
itself: free text may hold personal data, and erasing it (GDPR) must not break the chain. A
change to a row, a deleted row or a reordering of rows makes ``verify`` name the first event
that no longer fits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Case, CaseEvent

GENESIS = "0" * 64
REDACTED = "__redacted__"


# json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str),
# with the encoder built once instead of per call (the same text: json.dumps builds this).
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
)


def canonical(value: Any) -> str:
    return _CANONICAL.encode(value)


def digest(data: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(data).encode()).hexdigest()


def stamp(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds")


def chain_hash(
    prev_hash: str,
    *,
    case_id: int,
    seq: int,
    event: str,
    from_state: str | None,
    to_state: str,
    actor_role: str,
    actor_id: int | None,
    channel: str,
    at: dt.datetime,
    data_digest: str,
) -> str:
    body = "|".join(
        (
            prev_hash,
            str(case_id),
            str(seq),
            event,
            from_state or "",
            to_state,
            actor_role,
            "" if actor_id is None else str(actor_id),
            channel,
            stamp(at),
            data_digest,
        )
    )
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Breach:
    case_id: int
    seq: int | None
    message: str

    def __str__(self) -> str:
        where = f"case {self.case_id}" + (f", event #{self.seq}" if self.seq else "")
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    cases: int
    events: int
    breaches: list[Breach]

    @property
    def ok(self) -> bool:
        return not self.breaches


def _check_case(case: Any, events: list[Any]) -> Iterator[Breach]:
    prev_hash, prev_state, expected_seq = GENESIS, None, 1
    for ev in events:
        label = f"({ev.event} at {stamp(ev.at)})"
        if ev.seq != expected_seq:
            if ev.seq > expected_seq:
                yield Breach(
                    case.id,
                    expected_seq,
                    f"is missing: the trail jumps from "
                    f"#{expected_seq - 1} to #{ev.seq}; a row was deleted",
                )
            else:
                yield Breach(case.id, ev.seq, f"{label} appears again or out of order")
            return
        data_ok = ev.data.get(REDACTED) is True or digest(ev.data) == ev.data_digest
        if not data_ok:
            yield Breach(case.id, ev.seq, f"{label} its data was changed after it was written")
            return
        recomputed = chain_hash(
            prev_hash,
            case_id=ev.case_id,
            seq=ev.seq,
            event=ev.event,
            from_state=ev.from_state,
            to_state=ev.to_state,
            actor_role=ev.actor_role,
            actor_id=ev.actor_id,
            channel=ev.channel,
            at=ev.at,
            data_digest=ev.data_digest,
        )
        if ev.prev_hash != prev_hash:
            yield Breach(
                case.id,
                ev.seq,
                f"{label} does not follow the event before it; "
                "rows were deleted, inserted or reordered",
            )
            return
        if recomputed != ev.hash:
            yield Breach(case.id, ev.seq, f"{label} was changed after it was written")
            return
        if ev.from_state != prev_state:
            yield Breach(
                case.id,
                ev.seq,
                f"{label} starts from {ev.from_state} but the case was {prev_state}",
            )
            return
        prev_hash, prev_state, expected_seq = ev.hash, ev.to_state, expected_seq + 1
    last = expected_seq - 1
    if case.version != last or case.chain_head != prev_hash:
        yield Breach(
            case.id,
            last + 1 if case.version > last else None,
            f"the case is at version {case.version} but its trail ends at #{last}; "
            "events were deleted or the case row was edited",
        )
    elif case.state != prev_state:
        yield Breach(
            case.id,
            None,
            f"the case says {case.state} but its trail ends in "
            f"{prev_state}; the case row was edited",
        )


def verify(session: Session, case_id: int | None = None) -> VerifyReport:
    """Check every (or one) case's chain, streaming; report the first breach per case."""
    cases_q = select(Case.id, Case.version, Case.chain_head, Case.state).order_by(Case.id)
    events_q = select(CaseEvent).order_by(CaseEvent.case_id, CaseEvent.seq, CaseEvent.id)
    if case_id is not None:
        cases_q = cases_q.where(Case.id == case_id)
        events_q = events_q.where(CaseEvent.case_id == case_id)
    breaches: list[Breach] = []
    n_cases = n_events = 0
    event_rows = iter(session.scalars(events_q.execution_options(yield_per=2000)))
    pending = next(event_rows, None)
    for case in session.execute(cases_q.execution_options(yield_per=2000)):
        n_cases += 1
        mine: list[Any] = []
        while pending is not None and pending.case_id <= case.id:
            if pending.case_id == case.id:
                mine.append(pending)
            else:
                breaches.append(
                    Breach(pending.case_id, pending.seq, "belongs to a case that no longer exists")
                )
            pending = next(event_rows, None)
        n_events += len(mine)
        breaches.extend(_check_case(case, mine))
    return VerifyReport(n_cases, n_events, breaches)
