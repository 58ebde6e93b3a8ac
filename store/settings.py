"""Where Turnscribe keeps its data, and the offline rules every process runs under."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "PYANNOTE_METRICS_ENABLED": "false",
    "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
}


def enforce_offline() -> None:
    """Nothing may reach a model hub or a telemetry endpoint; set before heavy imports."""
    for key, value in OFFLINE_ENV.items():
        os.environ[key] = value


@dataclass(frozen=True)
class Settings:
    """Resolved locations: the home folder, the database URL and the blob root."""

    home: Path
    database_url: str

    @property
    def blob_root(self) -> Path:
        return self.home / "blobs"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"


def load_settings(home: Path | str | None = None, database_url: str | None = None) -> Settings:
    """Read `TURNSCRIBE_HOME` and `TURNSCRIBE_DATABASE_URL`; SQLite under the home by default."""
    home_path = Path(home or os.environ.get("TURNSCRIBE_HOME", "turnscribe-data")).resolve()
    url = database_url or os.environ.get("TURNSCRIBE_DATABASE_URL") or f"sqlite:///{home_path / 'turnscribe.db'}"
    return Settings(home=home_path, database_url=url)
