"""`turnscribe ui`: run the Streamlit workbench bound to one address, headless, without usage statistics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from store.settings import OFFLINE_ENV

APP = Path(__file__).resolve().parent / "app.py"
REPO_ROOT = APP.parent.parent


@dataclass(frozen=True)
class ExtraPage:
    """A page a higher floor adds to the workbench (this floor may not import it): its script, its title and
    URL, and the permission that shows it in the navigation (the page checks it again itself)."""

    path: Path
    title: str
    url_path: str
    permission: str

    def argument(self) -> str:
        return json.dumps({**asdict(self), "path": str(self.path)})

    @classmethod
    def from_argument(cls, text: str) -> ExtraPage:
        data = json.loads(text)
        return cls(Path(data["path"]), data["title"], data["url_path"], data["permission"])


def streamlit_command(host: str, port: int, pages: Sequence[ExtraPage] = ()) -> list[str]:
    """`streamlit run` with everything that must not depend on a config file given as flags; the extra pages
    follow `--` (the app reads them from its argv)."""
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", host, "--server.port", str(port),
               "--browser.gatherUsageStats", "false", "--server.headless", "true", "--server.fileWatcherType", "none",
               "--global.developmentMode", "false", "--client.toolbarMode", "viewer",
               # Streamlit's default runs a full gc.collect(2) after every script run: with the models' libraries
               # loaded that is ~25 ms of CPU per editor save (a quarter of a save's server time in a 20-way burst);
               # Python's own generational collector still runs.
               "--runner.postScriptGC", "false"]
    return command + ["--", *(page.argument() for page in pages)] if pages else command


def server_env() -> dict[str, str]:
    """The caller's environment (TURNSCRIBE_HOME / TURNSCRIBE_DATABASE_URL pass through) plus the offline rules."""
    env = dict(os.environ, **OFFLINE_ENV)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def serve(host: str, port: int, pages: Sequence[ExtraPage] = ()) -> int:
    """Run the workbench until interrupted or terminated (the server goes down with it); returns its exit status."""
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is not between 1 and 65535")
    process = subprocess.Popen(streamlit_command(host, port, pages), env=server_env(), cwd=REPO_ROOT)
    previous = signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait(timeout=30)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
