"""Delivering outbox rows: e-mail (SMTP, or .eml files in the embedded default) and signed
webhooks, behind a small protocol with a real and an in-memory implementation.

Delivery is at-least-once with deduplication at the receiver: an e-mail's Message-ID and a
webhook's Idempotency-Key are derived from the outbox row, so a message sent twice (a worker
killed after sending, before recording it) is recognisably the same message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import smtplib
import ssl
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from workflow import (
    NOTICE_EVENTS,
    Addressee,
    Claimed,
    FileStore,
    Notice,
    accounts,
    keep_notice,
    notice_inputs,
    outbox,
    render_notice,
    render_notice_html,
    status_link_for_delivery,
)
from workflow import (
    format_datetime as local_datetime,
)

if TYPE_CHECKING:
    from tasks.messages import Rendered

log = logging.getLogger("recog.delivery")


class DeliveryError(Exception):
    """This attempt failed; the row is retried with backoff (or dead-lettered)."""


class MailTransport(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class WebhookTransport(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str]) -> None: ...


class SmtpTransport:
    """SMTP with one connection per relay batch (opened on the first message, closed by
    ``close``); a failure drops the connection, so the next message starts afresh."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.s
        assert s.smtp_host is not None
        if s.smtp_security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                s.smtp_host,
                s.smtp_port,
                timeout=s.smtp_timeout,
                context=ssl.create_default_context(),
            )
        else:
            smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout)
        if s.smtp_security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        if s.smtp_username and s.smtp_password:
            smtp.login(s.smtp_username, s.smtp_password)
        return smtp

    def send(self, message: EmailMessage) -> None:
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            self._smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise DeliveryError(f"SMTP {self.s.smtp_host}:{self.s.smtp_port}: {exc}") from exc

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()


class FileTransport:
    """The embedded default: each e-mail becomes ``<mail_dir>/<message-id>.eml``; a message
    written twice overwrites itself, as a receiving server would deduplicate it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = message["Message-ID"].strip("<>").split("@")[0] + ".eml"
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".part")
        with os.fdopen(fd, "wb") as fh:
            fh.write(bytes(message))
        os.replace(tmp, self.directory / name)


class HttpWebhooks:
    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        if not url.startswith(("https://", "http://")):
            raise DeliveryError(f"webhook URL {url!r} is not http(s)")
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310  scheme checked above
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                if response.status >= 300:
                    raise DeliveryError(f"webhook {url}: HTTP {response.status}")
        except OSError as exc:
            raise DeliveryError(f"webhook {url}: {exc}") from exc


@dataclass
class MemoryTransport:
    """Keeps what was sent: for tests and benchmarks that exercise the real code path."""

    mails: list[EmailMessage] = field(default_factory=list)
    posts: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)

    def send(self, message: EmailMessage) -> None:
        self.mails.append(message)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        self.posts.append((url, body, headers))


def message_id(item: Claimed, settings: Settings) -> str:
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or "recog.invalid"
    digest = hashlib.sha256(item.dedup_key.encode()).hexdigest()[:40]
    return f"<recog.{digest}@{domain}>"


def _local(instant: Any, zone: Any, language: str) -> str | None:
    """A deadline in local time as the mail's language writes it: "15.06.2026 24:00" in
    German, "15 June 2026 24:00" in English."""
    if not isinstance(instant, dt.datetime):
        return None
    # A deadline at 00:00 is the end of the day before: "24:00" of that day, as the law says.
    return local_datetime(instant.astimezone(zone), language)


def compose(
    item: Claimed,
    to: Addressee,
    facts: dict[str, Any],
    settings: Settings,
    attachments: tuple[tuple[str, bytes, str], ...] = (),
) -> EmailMessage:
    from zoneinfo import ZoneInfo

    from config.procedure import get_procedure
    from tasks.messages import render

    zone = ZoneInfo(facts.get("timezone") or settings.timezone)
    proc = get_procedure()
    state = facts["state"]
    # Whether the deadline had passed at the message's moment (an event's, or, for a
    # reminder, now): the words then say it has, never "by" a day that is gone.
    moment = facts.get("moment") or dt.datetime.now(dt.UTC)
    due = facts.get("due_at")
    context = {
        **facts,
        "due_passed": isinstance(due, dt.datetime) and due <= moment,
        "state_label": proc.states[state].label if state in proc.states else state,
        "due_at_local": _local(facts.get("due_at"), zone, to.language),
        "appeal_ends_local": _local(facts.get("appeal_ends_at"), zone, to.language),
    }
    rendered = render(
        item.template, recipient=item.recipient, language=to.language, context=context
    )
    msg = _email(item, settings, rendered, to.email)
    msg["X-Recog-Case"] = str(item.case_id)
    for filename, content, media in attachments:
        maintype, _, subtype = media.partition("/")
        msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return msg


def _email(item: Claimed, settings: Settings, rendered: Rendered, to: str | None) -> EmailMessage:
    """The e-mail of an outbox row: its rendered words (plain text and HTML), its sender and
    addressee, and the Message-ID derived from the row, so a repeated delivery repeats it."""
    msg = EmailMessage()
    msg["Subject"] = rendered.subject
    msg["From"] = settings.mail_from
    msg["To"] = to or ""
    msg["Message-ID"] = message_id(item, settings)
    msg["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    return msg


def webhook_request(
    item: Claimed,
    facts: dict[str, Any],
    secret: str,
) -> tuple[bytes, dict[str, str]]:
    """The JSON body (ids and states, no personal data) and its signed headers."""
    body = json.dumps(
        {
            "id": item.dedup_key,
            "case_id": item.case_id,
            "seq": item.event_seq,
            "event": facts.get("event") or item.template,
            "state": facts["state"],
        },
        sort_keys=True,
    ).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {
        "Content-Type": "application/json",
        "Idempotency-Key": item.dedup_key,
        "X-Recog-Signature": f"sha256={signature}",
    }


@dataclass
class Transports:
    mail: MailTransport
    webhooks: WebhookTransport

    @classmethod
    def from_settings(cls, settings: Settings) -> Transports:
        mail: MailTransport = (
            SmtpTransport(settings) if settings.smtp_host else FileTransport(settings.mail_dir)
        )
        return cls(mail=mail, webhooks=HttpWebhooks())


def deliver(
    item: Claimed,
    to: Addressee,
    facts: dict[str, Any],
    institution: str | None,
    transports: Transports,
    settings: Settings,
    attachments: tuple[tuple[str, bytes, str], ...] = (),
) -> None:
    if item.channel == "email":
        if not to.email:
            raise DeliveryError(
                f"no e-mail address for the {item.recipient} of case {item.case_id}"
            )
        transports.mail.send(compose(item, to, facts, settings, attachments))
    elif item.channel == "webhook":
        urls = settings.webhooks.get(institution or "", [])
        if urls and not settings.webhook_secret:
            raise DeliveryError("webhooks are configured but RECOG_WEBHOOK_SECRET is not set")
        for url in urls:
            body, headers = webhook_request(item, facts, settings.webhook_secret or "")
            transports.webhooks.post(url, body, headers)
    else:
        raise DeliveryError(f"unknown channel {item.channel!r}")


@dataclass
class RelayResult:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    # Claimed but not started before the relay's time was up: due again at once.
    released: int = 0
    # Claimed, but another relay holds the row by the time this one came to it.
    taken_over: int = 0


def relay(
    factory: sessionmaker[Session],
    *,
    settings: Settings,
    transports: Transports,
    ids: list[int] | None = None,
    limit: int = 100,
) -> RelayResult:
    """Claim up to ``limit`` due rows (one transaction), then one row at a time: renew its
    lease and read what its message needs (one transaction), deliver, record the outcome
    (one transaction). A crash leaves the row to be tried again after its lease.

    No row is started later than half a lease after the claim; the rest are released for
    the next relay (``RelayResult.released``). A row in the batch thus always has half a
    lease left when its turn comes, and its renewal gives it a full lease for its own
    delivery, however slow the mail server: a batch never outlives its lease. A row whose
    lease passed to another relay all the same (this process stood still) is skipped.
    """
    started = time.monotonic()
    budget = settings.outbox_lease_seconds / 2
    with factory() as session, session.begin():
        claimed = outbox.claim(
            session, now=dt.datetime.now(dt.UTC), settings=settings, limit=limit, ids=ids
        )
    result = RelayResult()
    try:
        for index, item in enumerate(claimed):
            if index and time.monotonic() - started > budget:  # the first: always progress
                with factory() as session, session.begin():
                    result.released = outbox.release(
                        session, claimed[index:], now=dt.datetime.now(dt.UTC)
                    )
                break
            _relay_one(factory, item, settings, transports, result)
    finally:
        close = getattr(transports.mail, "close", None)
        if close is not None:
            close()
    return result


def _relay_one(
    factory: sessionmaker[Session],
    item: Claimed,
    settings: Settings,
    transports: Transports,
    result: RelayResult,
) -> None:
    """Renew the lease of one claimed row and read its message's facts while it is ours,
    then deliver it and record the outcome (only if it is still ours)."""
    try:
        with factory() as session, session.begin():
            now = dt.datetime.now(dt.UTC)
            if not outbox.renew(session, item, now=now, settings=settings):
                log.warning(
                    "outbox %s (case %s): another relay holds it now", item.id, item.case_id
                )
                result.taken_over += 1
                return
            if item.template == accounts.INVITATION_TEMPLATE:
                invitation = _prepare_invitation(session, item, settings, now)
            else:
                invitation = None
                to, facts, institution = outbox.context(session, item)
                facts["status_url"] = _status_url(session, item, facts, settings, now)
                notice_inputs_ = _notice_inputs(session, item, to, settings)
        if invitation is not None:  # an office user's invitation, composed while the row is ours
            if isinstance(invitation, Exception):
                raise invitation
            if not invitation["To"]:
                raise DeliveryError(f"no e-mail address for the invited {item.recipient}")
            transports.mail.send(invitation)
        else:
            attachments = _notice(factory, item, notice_inputs_, settings)
            deliver(item, to, facts, institution, transports, settings, attachments)
    except Exception as exc:  # recorded on the row and logged: never lost, never silent
        if isinstance(exc, DeliveryError):
            log.warning(
                "outbox %s (case %s, %s) failed: %s", item.id, item.case_id, item.channel, exc
            )
        else:  # a bug (e.g. in a template): keep the traceback for the operator
            log.exception("outbox %s (case %s) could not be composed", item.id, item.case_id)
        with factory() as session, session.begin():
            status = outbox.mark_failed(
                session,
                item,
                now=dt.datetime.now(dt.UTC),
                error=f"{type(exc).__name__}: {exc}",
                settings=settings,
            )
        if status is None:
            result.taken_over += 1
        else:
            result.failed += 1
            result.dead += status == "dead"
        return
    with factory() as session, session.begin():
        held = outbox.mark_sent(session, item, now=dt.datetime.now(dt.UTC))
    if held:
        result.sent += 1
    else:  # one delivery outlasted a whole lease: the new holder sends it again
        log.warning(
            "outbox %s (case %s) was delivered after its lease had passed to another relay; "
            "it may arrive twice, under the same Message-ID or Idempotency-Key",
            item.id,
            item.case_id,
        )
        result.taken_over += 1


def _prepare_invitation(
    session: Session, item: Claimed, settings: Settings, now: dt.datetime
) -> EmailMessage | Exception:
    """An office user's invitation: the link is minted now (as a status link is); a failure
    to prepare it is recorded on the row like a failed delivery, never raised past the claim."""
    from zoneinfo import ZoneInfo

    from tasks.messages import render_invitation

    try:
        with session.begin_nested():
            mail = accounts.invitation_for_delivery(
                session, item.payload, now=now, public_url=settings.link_base
            )
        zone = ZoneInfo(mail.timezone or settings.timezone)
        rendered = render_invitation(
            mail.language,
            name=mail.name,
            username=mail.username,
            url=mail.url,
            expires_local=local_datetime(mail.expires_at.astimezone(zone), mail.language),
            office_name=mail.office_name,
            office_email=mail.office_email,
        )
    except Exception as exc:  # recorded on the row like a failed delivery
        return exc
    return _email(item, settings, rendered, mail.email)


def _status_url(
    session: Session, item: Claimed, facts: dict[str, Any], settings: Settings, now: dt.datetime
) -> str | None:
    """A student's e-mail carries a fresh personal status link, minted now (only its hash is
    stored; see docs/adr/0002-web-auth.md), on the configured public address only."""
    if item.recipient != "student" or item.channel != "email":
        return None
    return status_link_for_delivery(
        session, facts["student_id"], link_base=settings.link_base, now=now
    )


def _notice_inputs(
    session: Session,
    item: Claimed,
    to: Addressee,
    settings: Settings,
) -> dict[str, Any] | None:
    """A student's decision e-mail carries the decision's notice (workflow/decisions/notices.py)."""
    if (
        item.recipient != "student"
        or item.channel != "email"
        or item.event_seq is None
        or item.case_id is None
        or item.template not in NOTICE_EVENTS
    ):
        return None
    return notice_inputs(
        session, item.case_id, item.event_seq, language=to.language, settings=settings
    )


def _notice(
    factory: sessionmaker[Session], item: Claimed, inputs: dict[str, Any] | None, settings: Settings
) -> tuple[tuple[str, bytes, str], ...]:
    """Render the notice outside any transaction (it takes a while), keep it with the case."""
    if inputs is None or item.case_id is None:
        return ()
    media = "application/pdf"
    try:
        notice = render_notice(**inputs)
    except OSError as exc:  # WeasyPrint's system libraries (Pango) are not installed
        log.error("notice for case %s sent as HTML: no PDF renderer (%s)", item.case_id, exc)
        html = render_notice_html(**inputs)
        notice = Notice(
            html=html,
            pdf=b"",
            language=inputs["language"],
            filename=f"notice-{item.case_id}-{inputs['event']}.html",
        )
        media = "text/html"
    with factory() as session, session.begin():
        keep_notice(
            session,
            item.case_id,
            notice,
            store=FileStore(settings.documents_dir),
            now=dt.datetime.now(dt.UTC),
            media_type=media,
        )
    content = notice.pdf if media == "application/pdf" else notice.html.encode()
    return ((notice.filename, content, media),)
