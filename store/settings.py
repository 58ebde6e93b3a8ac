"""Where Turnscribe keeps its data, and the offline rules every process runs under."""

from __future__ import annotations

import functools
import os
import math
from dataclasses import dataclass, field
from pathlib import Path

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "PYANNOTE_METRICS_ENABLED": "false",
    "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    "RAY_USAGE_STATS_ENABLED": "0",  # Ray (the optional cluster engine) reports usage unless told not to
}


def enforce_offline() -> None:
    """Nothing may reach a model hub or a telemetry endpoint; set before heavy imports."""
    for key, value in OFFLINE_ENV.items():
        os.environ[key] = value


@dataclass(frozen=True)
class SignInPolicy:
    """What wrong passwords cost, shared by every process through the users table.

    After the n-th wrong password in a row the account refuses sign-ins (without looking
    at the password) for `first_delay_s * 2**(n-1)` seconds, at most `max_delay_s`; at
    `lock_after` failures in a row it is locked for `lock_s` (an admin may unlock it
    earlier with `users enable`). A right password resets the count.
    """

    first_delay_s: float = 1.0
    max_delay_s: float = 60.0
    lock_after: int = 10
    lock_s: float = 900.0

    def __post_init__(self) -> None:
        for name in ("first_delay_s", "max_delay_s", "lock_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"sign-in policy: {name} must be a number of seconds >= 0, got {value!r}")
        if self.lock_after < 1:
            raise ValueError(f"sign-in policy: lock_after must be at least 1, got {self.lock_after!r}")

    def delay_after(self, failures: int) -> float:
        """Seconds during which sign-ins are refused after `failures` wrong passwords in a row."""
        if failures <= 0:
            return 0.0
        return min(self.first_delay_s * 2.0 ** min(failures - 1, 60), self.max_delay_s)


# environment variable -> SignInPolicy field (tests shorten the delays; operators may lengthen them)
SIGN_IN_ENV = {
    "TURNSCRIBE_SIGN_IN_FIRST_DELAY_S": "first_delay_s",
    "TURNSCRIBE_SIGN_IN_MAX_DELAY_S": "max_delay_s",
    "TURNSCRIBE_SIGN_IN_LOCK_AFTER": "lock_after",
    "TURNSCRIBE_SIGN_IN_LOCK_S": "lock_s",
}


def load_sign_in_policy() -> SignInPolicy:
    """The policy with any `TURNSCRIBE_SIGN_IN_*` overrides; a malformed value is a ValueError naming it."""
    values: dict[str, float | int] = {}
    for variable, name in SIGN_IN_ENV.items():
        raw = os.environ.get(variable)
        if raw is None:
            continue
        try:
            values[name] = int(raw) if name == "lock_after" else float(raw)
        except ValueError:
            raise ValueError(f"{variable}={raw!r} is not a number") from None
    try:
        return SignInPolicy(**values)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValueError(f"{exc} (from the TURNSCRIBE_SIGN_IN_* environment)") from None


@dataclass(frozen=True)
class Settings:
    """Resolved locations: the home folder, the database URL and the blob root; the sign-in policy."""

    home: Path
    database_url: str
    sign_in: SignInPolicy = field(default_factory=SignInPolicy)

    @property
    def blob_root(self) -> Path:
        return self.home / "blobs"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"


def load_settings(home: Path | str | None = None, database_url: str | None = None) -> Settings:
    """Read `TURNSCRIBE_HOME`, `TURNSCRIBE_DATABASE_URL` (SQLite under the home by default) and the sign-in policy."""
    home_path = Path(home or os.environ.get("TURNSCRIBE_HOME", "turnscribe-data")).resolve()
    url = database_url or os.environ.get("TURNSCRIBE_DATABASE_URL") or f"sqlite:///{home_path / 'turnscribe.db'}"
    return Settings(home=home_path, database_url=url, sign_in=load_sign_in_policy())


SETTINGS_ENV = ("TURNSCRIBE_HOME", "TURNSCRIBE_DATABASE_URL", *SIGN_IN_ENV)  # everything load_settings() reads


@functools.lru_cache(maxsize=8)
def _settings_for(cwd: str, environment: tuple[str | None, ...]) -> Settings:
    return load_settings()


def current_settings() -> Settings:
    """`load_settings()` for the environment and working folder as they are now, resolved once per distinct pair.

    A long-running server asks for its settings on every script run (each editor save); this compares a few
    strings instead of resolving the home on disk and parsing the sign-in policy again. A changed variable
    (tests set their own home) is a new key, so it is read again; a malformed one raises as load_settings does.
    """
    return _settings_for(os.getcwd(), tuple(os.environ.get(name) for name in SETTINGS_ENV))
