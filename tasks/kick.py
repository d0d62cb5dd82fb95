"""Ask a worker to deliver new notifications right after the transaction that wrote them
commits. Best effort: if the broker is down, the periodic outbox sweep delivers them."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

log = logging.getLogger("recog.kick")
FLAG = "recog_outbox_written"


def wrote_outbox(session: Session) -> bool:
    return bool(session.info.pop(FLAG, False))


def relay_soon() -> bool:
    """Queue one relay task; False (and a log line) if the broker cannot be reached."""
    try:
        from tasks.jobs import relay_outbox

        relay_outbox.apply_async(retry=False)
    except Exception as exc:
        log.warning(
            "could not queue the outbox relay (%s); the periodic sweep will deliver",
            type(exc).__name__,
        )
        return False
    return True
