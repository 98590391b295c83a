"""Configuration from the environment: strict parsing, safe defaults."""
from __future__ import annotations

from pathlib import Path

import pytest

from config import Config, ConfigError


def test_development_generates_a_secret_once_and_keeps_it(tmp_path: Path) -> None:
    env = {"MINHU_INSTANCE": str(tmp_path)}
    first, second = Config.from_env(env), Config.from_env(env)
    assert first.secret_key and first.secret_key == second.secret_key
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_production_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Config.from_env({"MINHU_ENV": "production", "MINHU_INSTANCE": str(tmp_path)})


def test_production_cookies_are_secure_by_default(tmp_path: Path) -> None:
    config = Config.from_env({"MINHU_ENV": "production", "SECRET_KEY": "x" * 32,
                              "MINHU_INSTANCE": str(tmp_path)})
    assert config.session_cookie_secure


def test_the_default_database_is_sqlite_in_the_instance_folder(tmp_path: Path) -> None:
    config = Config.from_env({"MINHU_INSTANCE": str(tmp_path)})
    assert config.database_url == f"sqlite:///{tmp_path / 'minhu.db'}"
    assert config.redis_url is None


def test_postgres_urls_use_psycopg_3(tmp_path: Path) -> None:
    config = Config.from_env({"MINHU_INSTANCE": str(tmp_path),
                              "DATABASE_URL": "postgres://u@db/minhu"})
    assert config.database_url == "postgresql+psycopg://u@db/minhu"


@pytest.mark.parametrize("name,value", [("MAX_PHOTO_BYTES", "lots"), ("SESSION_COOKIE_SECURE", "maybe"),
                                        ("MINHU_ENV", "staging"), ("PROXY_HOPS", "-1"),
                                        ("PHOTO_DECODES_AT_ONCE", "0"), ("CALLBACK_SAMPLE_PERCENT", "101"),
                                        ("CALLBACK_SAMPLE_PERCENT", "-5"),
                                        ("DB_IDLE_PING_SECONDS", "soon"), ("DB_IDLE_PING_SECONDS", "-1")])
def test_malformed_settings_are_errors(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Config.from_env({"MINHU_INSTANCE": str(tmp_path), name: value})


def test_the_lockout_limits_are_read_from_the_environment(tmp_path: Path) -> None:
    config = Config.from_env({"MINHU_INSTANCE": str(tmp_path), "LOGIN_FAILURES_PER_ADDRESS": "50",
                              "TRACK_FAILURES_PER_ADDRESS": "20"})
    mapping = config.flask_mapping()
    assert mapping["LOGIN_FAILURES_PER_ADDRESS"] == 50 and mapping["TRACK_FAILURES_PER_ADDRESS"] == 20
    assert mapping["LOGIN_FAILURES_PER_USER_ADDRESS"] == 10 and mapping["LOGIN_DELAY_AFTER"] == 5


@pytest.mark.parametrize("name", ["LOGIN_FAILURES_PER_ADDRESS", "LOGIN_FAILURES_PER_USER_ADDRESS",
                                  "LOGIN_DELAY_AFTER", "TRACK_FAILURES_PER_ADDRESS", "TRACK_FAILURES_PER_NUMBER"])
def test_a_lockout_limit_of_zero_is_an_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Config.from_env({"MINHU_INSTANCE": str(tmp_path), name: "0"})


def test_the_share_of_satisfied_ratings_called_back_is_read_from_the_environment(tmp_path: Path) -> None:
    assert Config.from_env({"MINHU_INSTANCE": str(tmp_path)}).flask_mapping()["CALLBACK_SAMPLE_PERCENT"] == 10
    config = Config.from_env({"MINHU_INSTANCE": str(tmp_path), "CALLBACK_SAMPLE_PERCENT": "25"})
    assert config.flask_mapping()["CALLBACK_SAMPLE_PERCENT"] == 25


def test_pooled_connections_are_pinged_after_five_idle_seconds_by_default(tmp_path: Path) -> None:
    assert Config.from_env({"MINHU_INSTANCE": str(tmp_path)}).flask_mapping()["DB_IDLE_PING_SECONDS"] == 5
    config = Config.from_env({"MINHU_INSTANCE": str(tmp_path), "DB_IDLE_PING_SECONDS": "0"})
    assert config.db_idle_ping_seconds == 0
