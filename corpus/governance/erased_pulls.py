"""After an erasure, the pulls of the releases it amended: rewritten under the home, listed elsewhere.

A pull made before an erasure still holds the erased transcripts and audio. A pull
folder under `$TURNSCRIBE_HOME` is deleted and pulled again from the amended release
(same format and audio mode, by the person erasing; the erased entries are tombstones
now, so they are skipped). A pull anywhere else (another folder or host) cannot be
reached from here: the report lists it with who pulled it and when, so its holder can
be asked to delete it. Rewritten or vanished pulls are marked removed with the tombstone.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from store import models
from store.accounts import Principal
from store.db import Store

REWRITTEN, REMOVED, ELSEWHERE, PLANNED = "rewritten", "removed", "elsewhere", "would be rewritten"


@dataclass
class PullNotice:
    """One pull an erasure reached; `action` says what happened to it (`error` when the re-pull failed)."""

    release: str
    format: str
    audio: str
    path: str
    host: str
    pulled_by: str
    pulled_at: str
    action: str
    error: str = ""

    def command(self) -> str:
        """The command that pulls this release again into the same folder."""
        return f"turnscribe corpus pull {self.release} --format {self.format} --audio {self.audio} --out {self.path}"


def _under(path: Path, home: Path) -> bool:
    try:
        return path.resolve().is_relative_to(home.resolve())
    except OSError:
        return False


def affected_pulls(store: Store, releases: list[str]) -> list[tuple[models.Pull, str]]:
    """The pulls not yet removed of the named releases, oldest first, with their release names."""
    if not releases:
        return []
    with store.session() as session:
        rows = session.execute(select(models.Pull, models.Release.name).join(models.Release, models.Release.pk == models.Pull.release_pk)
                               .where(models.Release.name.in_(releases), models.Pull.removed_at.is_(None))
                               .order_by(models.Pull.pk)).all()
    return [(pull, name) for pull, name in rows]


def _delete_folder(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def settle_pulls(store: Store, principal: Principal, releases: list[str], tombstone_id: str, *,
                 dry_run: bool) -> list[PullNotice]:
    """Rewrite (or, in a dry run, plan to rewrite) the pulls of `releases` under the home; list the others."""
    from corpus.exports.pull import pull_release

    notices, done = [], []
    for pull, release in affected_pulls(store, releases):
        path = Path(pull.path)
        notice = PullNotice(release, pull.format, pull.audio, pull.path, pull.host, pull.pulled_by,
                            pull.pulled_at.isoformat(timespec="seconds"), ELSEWHERE)
        notices.append(notice)
        if not _under(path, store.settings.home):
            continue
        if dry_run:
            notice.action = PLANNED
            continue
        try:
            _delete_folder(path)
        except OSError as exc:
            notice.action, notice.error = ELSEWHERE, f"could not delete the folder: {exc}"
            continue
        notice.action = REWRITTEN
        try:
            pull_release(store, principal, release, pull.format, path, audio=pull.audio)
        except Exception as exc:  # noqa: BLE001 - the erased data is gone either way; say how to pull again
            notice.action, notice.error = REMOVED, f"pulled again but failed ({exc}); run: {notice.command()}"
        done.append((pull.pk, notice.action))
    if done:
        with store.session() as session:
            for pk, action in done:
                row = session.get(models.Pull, pk)
                if row is not None:
                    row.removed_at, row.removed_reason = models.utcnow(), f"{action} after erasure {tombstone_id}"[:128]
            session.commit()
    return notices
