"""`turnscribe ui`: run the Streamlit workbench bound to one address, headless, without usage statistics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from store.settings import OFFLINE_ENV

APP = Path(__file__).resolve().parent / "app.py"
REPO_ROOT = APP.parent.parent


def streamlit_command(host: str, port: int) -> list[str]:
    """`streamlit run` with everything that must not depend on a config file given as flags."""
    return [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", host, "--server.port", str(port),
            "--browser.gatherUsageStats", "false", "--server.headless", "true", "--server.fileWatcherType", "none",
            "--global.developmentMode", "false", "--client.toolbarMode", "viewer"]


def server_env() -> dict[str, str]:
    """The caller's environment (TURNSCRIBE_HOME / TURNSCRIBE_DATABASE_URL pass through) plus the offline rules."""
    env = dict(os.environ, **OFFLINE_ENV)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def serve(host: str, port: int) -> int:
    """Run the workbench until interrupted or terminated (the server goes down with it); returns its exit status."""
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is not between 1 and 65535")
    process = subprocess.Popen(streamlit_command(host, port), env=server_env(), cwd=REPO_ROOT)
    previous = signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait(timeout=30)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
