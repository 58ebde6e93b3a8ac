"""The workbench's Releases page, for ML teams and managers: every release with its dataset card,
the diff of any two, and the exact command that pulls it in each format.

It lives with the releases (the workbench's own floor, review_ui/, sits below corpus/ and may
not import it); `turnscribe ui` hands its path to the app (corpus/releases/workbench.py).
"""

from __future__ import annotations

import shlex

import streamlit as st
from sqlalchemy import select

from corpus.exports.registry import FORMATS
from corpus.releases.card import render_markdown
from review_ui.session_auth import get_store, require_page
from store import models


def pull_command(name: str, fmt: str) -> str:
    """What a consumer types to get release `name` as `fmt` (audio linked to the store; `--audio include` copies)."""
    return f"turnscribe corpus pull {shlex.quote(name)} --format {fmt} --out {shlex.quote(f'{name}-{fmt}')}"


def render_releases() -> None:
    from corpus.releases.build import ReleaseError
    from corpus.releases.verify import diff_releases

    require_page("list_releases")
    st.title("Releases")
    store = get_store()
    with store.session() as session:
        releases = session.execute(
            select(models.Release.name, models.Release.release_id, models.Release.card, models.Release.created_at)
            .order_by(models.Release.pk)).all()  # columns only: the manifest is never read
    if not releases:
        st.info("No release yet.")
        return
    st.dataframe([{"name": r.name, "release id": r.release_id[:16], "hours": round((r.card or {}).get("totals", {}).get("hours", 0.0), 3),
                   "recordings": (r.card or {}).get("totals", {}).get("recordings"),
                   "speakers": (r.card or {}).get("totals", {}).get("speakers"),
                   "created": f"{r.created_at:%Y-%m-%d %H:%M}"} for r in releases], hide_index=True)
    names = [r.name for r in releases]
    chosen = st.selectbox("Release", names, index=len(names) - 1)
    card = next(r.card for r in releases if r.name == chosen) or {}

    st.subheader(f"Pull {chosen}")
    st.caption("Sign in on the command line as yourself (TURNSCRIBE_USER / TURNSCRIBE_PASSWORD); "
               "`--audio include` copies the audio instead of linking it.")
    for fmt, (_, _, what) in FORMATS.items():
        st.markdown(f"**{fmt}** — {what}")
        st.code(pull_command(chosen, fmt), language="bash")

    st.subheader("Dataset card")
    with st.container(border=True):
        st.markdown(render_markdown(card))

    if len(names) > 1:
        st.subheader("Compare two releases")
        left, right = st.columns(2)
        before = left.selectbox("From", names, index=len(names) - 2)
        after = right.selectbox("To", names, index=len(names) - 1)
        try:
            changes = diff_releases(store, before, after)
        except ReleaseError as exc:
            st.error(str(exc))
            return
        st.table([{"what": label, "count": str(count)} for label, count in changes["counts"].items()])
        for kind, keys in changes["recordings"].items():
            if keys:
                st.markdown(f"**{kind.replace('_', ' ')}**: {', '.join(keys)}")


if __name__ == "__main__":
    render_releases()
