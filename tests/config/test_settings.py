"""Settings: defaults that work on a bare machine, and a wrong value named with its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import ConfigurationError
from config.settings import load_settings


def test_defaults_are_the_embedded_engines(tmp_path: Path) -> None:
    s = load_settings(data_dir=tmp_path)
    assert s.db_url == f"sqlite:///{tmp_path / 'recog.sqlite3'}"
    assert s.broker == f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
    assert s.timezone == "Europe/Berlin"
    assert s.mail_dir == tmp_path / "mail"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("RECOG_TIMEZONE", "Mars/Olympus", "RECOG_TIMEZONE: unknown time zone 'Mars/Olympus'"),
        ("RECOG_DECISION_DUE_DAYS", "-3", "RECOG_DECISION_DUE_DAYS: Input should be greater"),
        ("RECOG_DATABASE_URL", "recog.db", "RECOG_DATABASE_URL: 'recog.db' is not a URL"),
        ("RECOG_SMTP_PASSWORD", "changeme", "RECOG_SMTP_PASSWORD: is a placeholder"),
        ("RECOG_HOLIDAY_REGION", "XX", "RECOG_HOLIDAY_REGION: unknown holiday region 'XX'"),
        ("RECOG_SMTP_SECURITY", "ssl", "RECOG_SMTP_SECURITY: Input should be"),
        ("RECOG_PUBLIC_URL", "recog.example", "RECOG_PUBLIC_URL: 'recog.example' is not an http"),
    ],
)
def test_a_wrong_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as err:
        load_settings()
    assert str(err.value).startswith("invalid configuration: ")
    assert message in str(err.value)
