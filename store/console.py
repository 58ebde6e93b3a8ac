"""What every CLI command shares: exit codes, consoles, logging and opening the store."""

from __future__ import annotations

import getpass
import logging
import os
import sys
from enum import IntEnum
from typing import Any, NoReturn

from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.text import Text

from store.accounts import AuthenticationFailed, PermissionDenied, Principal, authenticate, authorize
from store.db import Store, open_store
from store.settings import enforce_offline, load_settings


class Exit(IntEnum):
    """Exit statuses a script can trust."""

    OK = 0
    REJECTED = 1  # the command ran, but some input was refused (rejected rows, invalid protocol)
    USAGE = 2  # bad arguments or a missing file (Typer uses 2 as well)
    FAILED = 3  # the command could not do its job (store unreachable, a release that drifted, internal error)
    FAULT = 4  # the environment failed some of the work (disk full, read-only folder, database write refused)


def fault_text(exc: BaseException) -> str:
    """One line for an expected environment fault (OSError, a refused database write): no traceback."""
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or type(exc).__name__}{where}"
    original = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's error
    text = str(original if original is not None else exc).strip().splitlines()
    return f"{type(original or exc).__name__}: {text[0] if text else ''}"


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x20), *range(0x7F, 0xA0)) if chr(c) not in "\n\t"}


def shown(text: str) -> str:
    """`text` with control characters written as visible escapes (`\\x1b`): user-supplied names, ids and
    file contents can never move the cursor, recolour or rewrite the operator's terminal."""
    return text.translate(_CONTROL)


class _SafeConsole(Console):
    """Every string printed goes through `shown` first, so no command can forget to escape user text."""

    def render_str(self, text: str, **kwargs: Any) -> Text:  # type: ignore[override]
        return super().render_str(shown(text), **kwargs)


def _console(stderr: bool) -> Console:
    """Wide enough for coverage tables when output goes to a pipe or a CI log."""
    console = _SafeConsole(stderr=stderr)
    return console if console.is_terminal else _SafeConsole(stderr=stderr, width=160)


out = _console(stderr=False)
err = _console(stderr=True)


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False, rich_tracebacks=True)],
        force=True,
    )
    for noisy in ("alembic", "faster_whisper"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("preprocess").setLevel(logging.ERROR)  # meeteval: "Assuming sort=False" per call


def fail(message: str, code: Exit = Exit.USAGE, *, label: str = "error") -> NoReturn:
    """The one way a command stops on a problem: `label: message` in red on stderr, then exit `code`.

    The message is printed as text, never as markup (it may quote user input).
    """
    err.print(f"[red]{escape(label)}:[/red] {escape(message)}")
    sys.exit(int(code))


def store_for_cli() -> Store:
    """Open the configured store, or exit with a clear message."""
    enforce_offline()
    try:
        settings = load_settings()
    except ValueError as exc:
        fail(str(exc), Exit.USAGE)
    try:
        return open_store(settings)
    except Exception as exc:  # noqa: BLE001 - any failure to reach the store ends the command
        fail(f"cannot open the store at {settings.database_url.split('@')[-1]}: {exc}", Exit.FAILED)


def _credentials() -> tuple[str, str]:
    """TURNSCRIBE_USER / TURNSCRIBE_PASSWORD, else a prompt at a terminal; exits 1 when there are none."""
    username = os.environ.get("TURNSCRIBE_USER") or (input("user: ") if sys.stdin.isatty() else "")
    password = os.environ.get("TURNSCRIBE_PASSWORD")
    if password is None:
        password = getpass.getpass("password: ") if sys.stdin.isatty() else ""
    if not username:
        fail("set TURNSCRIBE_USER and TURNSCRIBE_PASSWORD (or run interactively) to sign in", Exit.REJECTED)
    return username, password


def principal_for_cli(store: Store, permission: str | None) -> Principal:
    """Sign the CLI user in (TURNSCRIBE_USER / TURNSCRIBE_PASSWORD, else a prompt) and check `permission`.

    `permission=None` only signs in (for what every account may do to itself, like its password).

    Exits 1 on a wrong password, a throttled or locked account or a missing right, so a
    script can tell refusal from failure; each refusal is in the audit log.
    """
    username, password = _credentials()
    with store.session() as session:
        try:
            principal = authenticate(session, username, password, policy=store.settings.sign_in)
            if permission is not None:
                authorize(session, principal, permission)
        except (AuthenticationFailed, PermissionDenied) as exc:
            session.commit()  # the refusal, the failure count and any lock persist
            fail(str(exc), Exit.REJECTED, label="refused")
        session.commit()
    return principal
