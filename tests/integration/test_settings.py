from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.errors import ConfigError
from scheduler.settings import load_settings


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("COHORT_DATABASE_URL", "COHORT_BASE_URL", "COHORT_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "cohort.toml"
    path.write_text(
        '[cohort]\nslug = "x"\n\n[settings]\nbase_url = "https://file.example"\nlog_level = "info"\n'
    )
    return path


def test_defaults_without_any_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COHORT_DATABASE_URL", raising=False)
    settings = load_settings()
    assert settings.database_url == "sqlite:///var/cohort.db"
    assert settings.log_level == "WARNING"


def test_precedence_defaults_file_env_flags(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().base_url == "https://file.example"  # ./cohort.toml found by default
    assert load_settings().log_level == "INFO"
    monkeypatch.setenv("COHORT_BASE_URL", "https://env.example/")
    assert load_settings().base_url == "https://env.example"
    assert load_settings(base_url="https://flag.example").base_url == "https://flag.example"
    assert (
        load_settings(base_url=None).base_url == "https://env.example"
    )  # an unset flag is no value


@pytest.mark.parametrize(
    ("where", "expected_source"),
    [
        ("file", "cohort.toml [settings]"),
        ("env", "environment variable COHORT_DATABASE_URL"),
        ("flag", "command-line flag --database-url"),
    ],
)
def test_bad_value_names_its_source(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, where: str, expected_source: str
) -> None:
    flags = {}
    if where == "file":
        config_file.write_text('[settings]\ndatabase_url = "mysql://nope"\n')
    elif where == "env":
        monkeypatch.setenv("COHORT_DATABASE_URL", "mysql://nope")
    else:
        flags["database_url"] = "mysql://nope"
    with pytest.raises(ConfigError) as info:
        load_settings(**flags)
    (problem,) = info.value.problems
    assert problem.source == expected_source
    assert problem.field == "database_url"
    assert "sqlite:///" in problem.message


def test_unknown_setting_in_file(config_file: Path) -> None:
    config_file.write_text('[settings]\ndatabse_url = "sqlite:///x.db"\n')
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.problems[0].field == "databse_url"


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")
