"""The one settings object: every knob of Recog, read once from the environment (``RECOG_*``).

A wrong value stops start-up with a message that names the variable and what it accepts
(see :func:`load_settings`); nothing reads ``os.environ`` anywhere else.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import os
from collections import Counter
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.errors import ConfigurationError

PLACEHOLDERS = {"", "changeme", "change-me", "secret", "password", "xxx", "todo"}

# Where `make run` / `recog up` serve the web in development, and so what e-mailed links point
# at there when RECOG_PUBLIC_URL is not set.
DEVELOPMENT_URL = "http://127.0.0.1:8000"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")

# A secret Recog itself checks with (RECOG_SECRET_KEY, RECOG_WEBHOOK_SECRET): at least this
# long, and at least this many bits by the estimate of ``secret_bits``.
SECRET_MIN_LENGTH = 32
SECRET_MIN_BITS = 128


def secret_bits(value: str) -> float:
    """Estimated entropy of a secret: its length times the Shannon entropy of its own
    character frequencies. Repetition (``changeme1changeme1...``) and small alphabets score
    low, whatever the words; a random ``secrets.token_urlsafe(32)`` scores about 210."""
    if not value:
        return 0.0
    n = len(value)
    per_char = -sum(c / n * math.log2(c / n) for c in Counter(value).values())
    return max(0.0, n * per_char)


def weak_secret(value: str) -> str | None:
    """Why a secret is too weak, or None. The rule is length and estimated entropy, not a
    list of words (docs: README, Configuration)."""
    if len(value) < SECRET_MIN_LENGTH:
        return (
            f"is too short ({len(value)} characters; at least {SECRET_MIN_LENGTH}); "
            "generate one, e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    bits = secret_bits(value)
    if bits < SECRET_MIN_BITS:
        return (
            f"is too predictable (about {bits:.0f} bits of entropy estimated from its "
            f"characters; at least {SECRET_MIN_BITS}); generate one, e.g. "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return None


class Settings(BaseSettings):
    """Recog's configuration. Every field is ``RECOG_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="RECOG_", extra="ignore", frozen=True)

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Field(
        default=Path("var"),
        description="Where the embedded database, broker, documents and mail files live.",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file <data_dir>/recog.sqlite3."
    )
    broker_url: str | None = Field(
        default=None,
        description="Celery broker; default: "
        "SQLite file <data_dir>/broker.sqlite3 (kombu SQLAlchemy).",
    )
    timezone: str = Field(
        default="Europe/Berlin",
        description="Time zone in which calendar "
        "deadlines are counted (institutions may override).",
    )
    procedure_file: Path | None = Field(
        default=None,
        description="A TOML procedure replacing the built-in one (config/procedure.toml).",
    )

    # Deadline lengths (days unless the name says otherwise). Counted per § 187/188 BGB:
    # the day of the triggering event does not count; the period ends at 24:00 local time.
    enrolment_grace_days: int = Field(
        default=14,
        ge=0,
        description="Days after the course starts before an un-enrolled case lapses.",
    )
    result_grace_days: int = Field(
        default=28,
        ge=0,
        description="Days after the exam before a missing partner result is chased.",
    )
    transcript_due_days: int = Field(
        default=35,
        ge=1,
        description="Days after the exam by which the transcript of records is due.",
    )
    retake_window_days: int = Field(
        default=180,
        ge=1,
        description="Days a failed course may still be retaken before the case lapses.",
    )
    submission_due_days: int = Field(
        default=56,
        ge=1,
        description="Days after the transcript "
        "arrives by which the student must request recognition.",
    )
    decision_due_days: int = Field(
        default=42,
        ge=1,
        description="Days from a complete "
        "submission to the decision (paused during info requests).",
    )
    info_reply_days: int = Field(
        default=14, ge=1, description="Days the student has to answer a request for information."
    )
    appeal_window_months: int = Field(
        default=1,
        ge=1,
        description="Months after the notice in which the student may object (Widerspruch).",
    )
    board_decision_days: int = Field(
        default=56, ge=1, description="Days the examination board has to decide an appeal."
    )
    skip_non_working_days: bool = Field(
        default=True,
        description="A period ending on a "
        "weekend or public holiday ends on the next working "
        "day (§ 193 BGB).",
    )
    holiday_region: str = Field(
        default="DE-NW",
        description="Public holidays for deadlines: "
        "country code, optionally -subdivision (holidays package).",
    )

    precedent_validity_days: int = Field(
        default=1825,
        ge=1,
        description="Days a decision "
        "serves as a precedent (it also ends when the "
        "module's regulations change).",
    )
    grade_rounding: Literal["nearest", "truncate"] = Field(
        default="nearest",
        description="Rounding of converted grades: the nearest German "
        "step (ties to the better grade) or truncation to one decimal.",
    )

    # Reminders and escalations (sent at reminder_hour local time on the day they fall due).
    reminder_hour: int = Field(
        default=9,
        ge=0,
        le=23,
        description="Local hour at which reminders and escalations are sent.",
    )
    transcript_escalation_days: int = Field(
        default=7,
        ge=0,
        description="Days after a missing transcript's reminder before the office is told.",
    )
    submission_reminder_days: int = Field(
        default=7,
        ge=0,
        description="Days before the request deadline that the student is reminded.",
    )
    info_reply_reminder_days: int = Field(
        default=3,
        ge=0,
        description="Days before an information request's deadline that the student is reminded.",
    )

    public_url: str | None = Field(
        default=None,
        description="The address students and staff "
        "open Recog at (e.g. https://recog.uni-x.de); student "
        "e-mails then carry a fresh personal status link.",
    )
    invitation_days: int = Field(
        default=7,
        ge=1,
        le=90,
        description="Days an office user's e-mailed invitation to set a password stays valid.",
    )

    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="JSON list of host names the web answers to (the Host header); default: "
        "the host of RECOG_PUBLIC_URL, plus 127.0.0.1 and localhost outside production.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="JSON list of proxy addresses or networks (CIDR) whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed; default: none.",
    )
    secret_key: str | None = Field(
        default=None,
        description="Key that signs the login's device cookies; required in production; "
        "elsewhere a random key is kept in <data_dir>/secret_key.",
    )

    # Delivery of notifications.
    smtp_host: str | None = Field(
        default=None,
        description="SMTP server; unset: e-mails are written as .eml files into <data_dir>/mail.",
    )
    smtp_port: int = Field(default=587, ge=1, le=65535, description="SMTP port.")
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        default="starttls", description="SMTP transport security."
    )
    smtp_username: str | None = Field(default=None, description="SMTP user name.")
    smtp_password: str | None = Field(default=None, description="SMTP password.")
    smtp_timeout: float = Field(
        default=30.0, gt=0, description="Seconds before an SMTP attempt counts as failed."
    )
    mail_from: str = Field(default="Recog <recog@localhost>", description="Sender address.")
    webhooks: dict[str, list[str]] = Field(
        default_factory=dict, description="JSON: institution code -> webhook URLs."
    )
    webhook_secret: str | None = Field(
        default=None,
        description="HMAC-SHA256 key for signing webhook bodies (required if webhooks are set).",
    )
    outbox_max_attempts: int = Field(
        default=8, ge=1, description="Delivery attempts before a notification is dead-lettered."
    )
    outbox_backoff_seconds: int = Field(
        default=30, ge=1, description="First retry delay; doubles with every attempt."
    )
    outbox_lease_seconds: int = Field(
        default=300,
        ge=5,
        description="How long a claimed notification is reserved for the worker sending it.",
    )
    sweep_interval_seconds: int = Field(
        default=60, ge=1, description="How often beat runs the deadline sweep and the outbox sweep."
    )
    sweep_batch: int = Field(
        default=10_000, ge=1, description="Due reminders claimed per sweep transaction."
    )
    broker_visibility_timeout: int = Field(
        default=3600,
        ge=60,
        description="Redis: seconds before an unacknowledged task is redelivered.",
    )

    max_document_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1024,
        description="Largest document a case takes (an upload is refused with 413 while it is "
        "read, as soon as its body passes this plus 64 KiB for the form around it).",
    )
    max_transcript_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1024,
        description="Largest transcript of records uploaded for import (ELMO or EWP XML).",
    )
    max_import_bytes: int = Field(
        default=5 * 1024 * 1024,
        ge=1024,
        description="Largest catalogue or grading-table import file uploaded.",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body of any other route (forms, JSON).",
    )
    retry_after_seconds: int = Field(
        default=120,
        ge=1,
        description="Retry-After of a 503 answered when the disk is full or the database "
        "read-only.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin"
            ) from exc
        return value

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError(f"{value!r} is not an http(s) address")
        return value.rstrip("/") if value else value

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)"
                ) from None
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, value: list[str]) -> list[str]:
        for item in value:
            if not item or any(c in item for c in "/:@ []"):
                raise ValueError(
                    f"{item!r} is not a host name (e.g. recog.uni-x.de or *.uni-x.de; "
                    "no scheme, port or path)"
                )
        return [item.lower() for item in value]

    @field_validator("database_url", "broker_url")
    @classmethod
    def _url_has_scheme(cls, value: str | None) -> str | None:
        if value is not None and "://" not in value:
            raise ValueError(
                f"{value!r} is not a URL; expected e.g. "
                "postgresql+psycopg://user@host/db or sqlite:///var/recog.sqlite3"
            )
        return value

    @field_validator("holiday_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        import holidays

        country, _, subdiv = value.partition("-")
        try:
            holidays.country_holidays(country, subdiv=subdiv or None)
        except NotImplementedError as exc:
            raise ValueError(
                f"unknown holiday region {value!r}; use e.g. DE-NW, DE-BY, AT ({exc})"
            ) from None
        return value

    @field_validator("smtp_password", "webhook_secret", "secret_key")
    @classmethod
    def _not_placeholder(cls, value: str | None) -> str | None:
        if value is not None and value.lower() in PLACEHOLDERS:
            raise ValueError("is a placeholder; set the real secret")
        return value

    @model_validator(mode="after")
    def _production_and_webhooks(self) -> Settings:
        problems = []
        if self.webhooks and not self.webhook_secret:
            # Refused at start-up, not at the first delivery (an unsigned webhook would fail
            # there, or worse, be accepted by a receiver that does not check).
            problems.append(
                "RECOG_WEBHOOK_SECRET: required when RECOG_WEBHOOKS is set (the bodies are "
                "signed with it)"
            )
        if self.environment == "production":
            # Secrets Recog checks against are ours to choose: weak ones are refused. (The
            # SMTP password is the mail provider's; only placeholders are refused there.)
            for name in ("secret_key", "webhook_secret"):
                value = getattr(self, name)
                why = weak_secret(value) if value is not None else None
                if why:
                    problems.append(f"RECOG_{name.upper()}: {why}")
            if self.secret_key is None:
                problems.append(
                    "RECOG_SECRET_KEY: required in production (it signs the login's device "
                    "cookies; every web process must have the same)"
                )
            if self.public_url is None:
                problems.append(
                    "RECOG_PUBLIC_URL: required in production (e-mailed links are built "
                    "from it and from nothing else)"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def link_base(self) -> str | None:
        """The only base of links in e-mails: RECOG_PUBLIC_URL; in development without it,
        where `make run` serves. Never the Host header of a request."""
        if self.public_url:
            return self.public_url
        return DEVELOPMENT_URL if self.environment == "development" else None

    @property
    def trusted_hosts(self) -> list[str] | None:
        """The Host header values the web answers to; None: any (the test environment
        without RECOG_ALLOWED_HOSTS, where test clients name their own hosts)."""
        if self.allowed_hosts:
            return list(self.allowed_hosts)
        if self.environment == "test":
            return None
        hosts = []
        if self.link_base:
            hosts.append((urlsplit(self.link_base).hostname or "").lower())
        if self.environment != "production":
            hosts.extend(LOOPBACK_HOSTS)
        return [h for h in dict.fromkeys(hosts) if h]

    def signing_key(self) -> bytes:
        """The key that signs device cookies: RECOG_SECRET_KEY (required in production), else
        a random key kept in ``<data_dir>/secret_key``, made on first use, so that every
        process of one installation signs alike and `make run` needs no setting."""
        if self.secret_key:
            return self.secret_key.encode()
        path = self.data_dir / "secret_key"
        try:
            return path.read_bytes().strip()
        except FileNotFoundError:
            pass
        import secrets

        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return path.read_bytes().strip()
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
        return path.read_bytes().strip()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'recog.sqlite3'}"

    @property
    def broker(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{self.data_dir / 'broker.sqlite3'}"

    @property
    def documents_dir(self) -> Path:
        return self.data_dir / "documents"

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; turn pydantic's complaint into one actionable sentence."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]  # overrides are validated here
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(part) for part in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            # A rule over several settings names its variables itself.
            problems.append(f"RECOG_{field.upper()}: {msg}" if field else msg)
        raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from None


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read on first use (never at import time)."""
    return load_settings()
