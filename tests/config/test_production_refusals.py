"""Production mode refuses what would be unsafe there, at start-up and with the setting named:
the demo (its users have published passwords), weak secrets (judged by length and estimated
entropy, not by a word list), webhooks without a signing secret, and a missing public URL or
secret key."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from config.errors import ConfigurationError
from config.settings import SECRET_MIN_BITS, load_settings, secret_bits, weak_secret
from workflow import ValidationFailed, refuse_demo_in_production

STRONG = "Zq3v9QeT-kL2xN8mR4pW7sY1bH6jD0fGc5uA"  # 36 characters, ~180 bits by the estimate
PRODUCTION = {
    "RECOG_ENVIRONMENT": "production",
    "RECOG_SECRET_KEY": STRONG,
    "RECOG_PUBLIC_URL": "https://recog.uni-x.example",
}


def production(**overrides: object) -> Any:
    values: dict[str, object] = {
        "environment": "production",
        "secret_key": STRONG,
        "public_url": "https://recog.uni-x.example",
    }
    return load_settings(**{**values, **overrides})


def test_a_strong_production_configuration_starts() -> None:
    s = production(webhooks={"uni-x.de": ["https://campus.example/hook"]}, webhook_secret=STRONG)
    assert s.signing_key() == STRONG.encode()
    assert s.trusted_hosts == ["recog.uni-x.example"]  # no loopback names in production


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("changeme1", "too short (9 characters; at least 32)"),
        ("changeme1" * 4, "too predictable"),  # long, but a repeated word
        ("a" * 64, "too predictable"),
        ("0101" * 16, "too predictable"),  # a two-letter alphabet
        ("correcthorse" * 3, "too predictable"),
    ],
)
@pytest.mark.parametrize("setting", ["secret_key", "webhook_secret"])
def test_weak_secrets_are_refused_by_length_and_entropy(setting: str, value: str, why: str) -> None:
    extra: dict[str, object] = {setting: value}
    if setting == "webhook_secret":
        extra["webhooks"] = {"uni-x.de": ["https://campus.example/hook"]}
    with pytest.raises(ConfigurationError) as err:
        production(**extra)
    assert f"RECOG_{setting.upper()}: is {why}" in str(err.value)
    assert "secrets.token_urlsafe(32)" in str(err.value)  # and how to make a good one


def test_the_entropy_estimate_follows_the_characters_not_a_word_list() -> None:
    assert weak_secret(STRONG) is None
    assert secret_bits("a" * 64) == 0
    # Generated keys pass with room to spare, in every one of many draws.
    assert min(secret_bits(secrets.token_urlsafe(32)) for _ in range(500)) > SECRET_MIN_BITS + 40
    # A word nobody listed is refused when it is weak all the same.
    assert weak_secret("hunter2hunter2hunter2hunter2hunter2") is not None


def test_weak_secrets_pass_outside_production_but_placeholders_never() -> None:
    assert load_settings(environment="development", secret_key="dev-key").secret_key == "dev-key"
    with pytest.raises(ConfigurationError, match="RECOG_SECRET_KEY: is a placeholder"):
        load_settings(environment="development", secret_key="changeme")


def test_production_requires_its_key_and_public_url() -> None:
    with pytest.raises(ConfigurationError) as err:
        load_settings(environment="production")
    assert "RECOG_SECRET_KEY: required in production" in str(err.value)
    assert "RECOG_PUBLIC_URL: required in production" in str(err.value)


@pytest.mark.parametrize("environment", ["development", "test", "production"])
def test_webhooks_without_a_secret_are_refused_at_start_up(environment: str) -> None:
    extra: dict[str, object] = {"webhooks": {"uni-x.de": ["https://campus.example/hook"]}}
    make = production if environment == "production" else load_settings
    with pytest.raises(ConfigurationError) as err:
        make(**({} if environment == "production" else {"environment": environment}), **extra)
    assert "RECOG_WEBHOOK_SECRET: required when RECOG_WEBHOOKS is set" in str(err.value)


def test_a_command_stops_on_a_webhook_without_a_secret(cli: Callable[..., Any]) -> None:
    result = cli(
        "case", "list", check=False, RECOG_WEBHOOKS='{"uni-x.de": ["https://campus.example/h"]}'
    )
    assert result.code == 1
    assert "RECOG_WEBHOOK_SECRET: required when RECOG_WEBHOOKS is set" in result.err


def test_the_demo_is_impossible_in_production(cli: Callable[..., Any], tmp_path: Path) -> None:
    refused = cli("up", "--demo", "--once", check=False, **PRODUCTION)
    assert refused.code == 1
    assert "demo network cannot be seeded where RECOG_ENVIRONMENT=production" in refused.err
    assert "demo" not in refused.out  # nothing seeded, no logins printed
    assert not (tmp_path / "var" / "recog.sqlite3").exists()  # refused before anything was made
    with pytest.raises(ValidationFailed, match="RECOG_ENVIRONMENT=production"):
        refuse_demo_in_production(production())
    refuse_demo_in_production(load_settings(environment="development"))  # allowed there


def test_every_demo_seeding_path_refuses_in_production(
    monkeypatch: pytest.MonkeyPatch, sqlite_engine: Any
) -> None:
    """``seed_demo`` and ``seed_network`` (which the benchmarks call) check it themselves."""
    import datetime as dt

    from sqlalchemy import func, select

    from config.settings import get_settings
    from models import Institution
    from models.db import session_factory
    from workflow.demo import seed_demo, seed_network

    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        with session_factory(sqlite_engine)() as s:
            with pytest.raises(ValidationFailed, match="RECOG_ENVIRONMENT=production"):
                seed_network(s, today=dt.date(2026, 11, 2))
            with pytest.raises(ValidationFailed, match="RECOG_ENVIRONMENT=production"):
                seed_demo(s, now=dt.datetime(2026, 11, 2, tzinfo=dt.UTC))
            assert s.execute(select(func.count()).select_from(Institution)).scalar() == 0
    finally:
        get_settings.cache_clear()
