"""`store.settings.current_settings`: what a long-running server asks on every script run is resolved once per
environment, and a changed environment (another home, database or sign-in policy) is read again."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.settings import current_settings, load_settings


def test_settings_are_resolved_once_per_environment_and_read_again_when_it_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNSCRIBE_HOME", str(tmp_path / "a"))
    monkeypatch.delenv("TURNSCRIBE_DATABASE_URL", raising=False)
    first = current_settings()
    assert first == load_settings() and first.home == (tmp_path / "a").resolve()
    assert current_settings() is first, "the same environment is not resolved again"
    monkeypatch.setenv("TURNSCRIBE_HOME", str(tmp_path / "b"))
    assert current_settings().home == (tmp_path / "b").resolve()
    monkeypatch.setenv("TURNSCRIBE_DATABASE_URL", "sqlite:///elsewhere.db")
    assert current_settings().database_url == "sqlite:///elsewhere.db"
    monkeypatch.setenv("TURNSCRIBE_SIGN_IN_LOCK_AFTER", "3")
    assert current_settings().sign_in.lock_after == 3
    monkeypatch.setenv("TURNSCRIBE_SIGN_IN_LOCK_AFTER", "three")
    with pytest.raises(ValueError, match="TURNSCRIBE_SIGN_IN_LOCK_AFTER='three' is not a number"):
        current_settings()
    monkeypatch.setenv("TURNSCRIBE_HOME", "relative-home")
    monkeypatch.delenv("TURNSCRIBE_SIGN_IN_LOCK_AFTER")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert current_settings().home == tmp_path / "elsewhere" / "relative-home"
    monkeypatch.chdir(tmp_path)
    assert current_settings().home == tmp_path / "relative-home", "a relative home follows the working folder"
