"""Quality for managers: gold accuracy and throughput per annotator and over time, agreement,
the automation-bias check, the pre-annotation's errors per cell and condition, and time to
training data, as tables and charts."""

from __future__ import annotations

import dataclasses

import pandas as pd
import streamlit as st

from review_ui.page_widgets import pick_protocol
from review_ui.session_auth import get_store, require_page


def _figure(value: float | None, fmt: str = "{:.3f}") -> str:
    return "—" if value is None else fmt.format(value)


def readable(frame: pd.DataFrame) -> pd.DataFrame:
    """Missing figures as "—", never "None" or "nan" (a manager reads them as data)."""
    return frame.astype(object).where(frame.notna(), "—")


def render_quality() -> None:
    from review_ui import quality
    from review_ui.automation_bias import automation_bias
    from review_ui.gold_coverage import gold_coverage
    from review_ui.preannotation_quality import preannotation_by_group
    from protocols.registry import get_protocol

    from review_ui.calibration import manager_notices

    principal = require_page("see_quality")
    st.title("Quality")
    with get_store().session() as session:
        notices = manager_notices(session, principal)
        row = pick_protocol(session)
        pk = row.pk if row is not None else None
        gold = quality.gold_accuracy(session, pk)
        pairs = quality.agreement(session, pk)
        period = st.sidebar.radio("Throughput per", ["week", "day"], horizontal=True)
        speed = quality.throughput(session, pk, period=period)
        bias = automation_bias(session, pk)
        ttt = quality.time_to_training(session, pk)
        coverage = gold_coverage(session, pk) if pk is not None else []
        by_group = preannotation_by_group(session, *get_protocol(session, row.protocol_id, row.version)) if row else None

    st.subheader("Notices")
    if notices:  # calibration failed, returned to calibration, work waiting without a free reviewer
        st.dataframe(readable(pd.DataFrame(notices)), hide_index=True)
    else:
        st.caption("Nothing needs your attention.")

    st.subheader("Gold coverage per language and accent")
    if coverage:
        st.dataframe(readable(pd.DataFrame([{**c.as_dict(), "uncovered": ", ".join(c.uncovered) or "—"} for c in coverage])),
                     hide_index=True)
    else:
        st.caption("No gold recordings and no calibrated annotators yet.")

    st.subheader("Gold accuracy per annotator")
    if gold:
        frame = pd.DataFrame([dataclasses.asdict(g) for g in gold]).set_index("annotator")
        st.dataframe(readable(frame))
        st.bar_chart(frame[["wer", "speaker_error"]], stack=False)
    else:
        st.caption("No gold items scored yet.")

    st.subheader("Inter-annotator agreement")
    left, right, count = st.columns(3)
    left.metric("pairwise WER", _figure(pairs.wer))
    right.metric("Krippendorff's α (speaker frames)", _figure(pairs.alpha))
    count.metric("double-annotated tasks", len(pairs.pairs))
    if pairs.pairs:
        st.dataframe(readable(pd.DataFrame([dataclasses.asdict(p) for p in pairs.pairs])), hide_index=True)

    st.subheader(f"Throughput (audio minutes per hour worked, per {speed.period})")
    if speed.per_annotator:
        team, clocked = st.columns(2)
        team.metric("team, minutes per hour worked", _figure(speed.team["minutes_per_hour"], "{:.1f}"))
        clocked.metric("audio minutes finished with no time logged (not in the rates)",
                       _figure(speed.team["unclocked_minutes"], "{:.1f}"))
        st.dataframe(readable(pd.DataFrame(speed.per_annotator)), hide_index=True)
        trend = pd.DataFrame(speed.trend).dropna(subset=["minutes_per_hour"])
        if not trend.empty:
            trend["period_start"] = trend["period_start"].astype(str)
            st.bar_chart(trend, x="period_start", y="minutes_per_hour", color="annotator", stack=False)
    else:
        st.caption("No finished work yet.")

    st.subheader("Automation bias (gold items, with and without the pre-annotation)")
    overall = bias.overall
    shown, blind, accepted = st.columns(3)
    shown.metric(f"WER with pre-annotation ({overall.shown.items} items)", _figure(overall.shown.wer.value))
    blind.metric(f"WER blind ({overall.blind.items} items)", _figure(overall.blind.wer.value))
    accepted.metric(f"model errors accepted ({overall.shown.model_errors_repeated.denominator} errors)",
                    _figure(overall.shown.model_errors_repeated.value, "{:.1%}"))
    st.write(overall.verdict[:1].upper() + overall.verdict[1:] + ".")
    st.dataframe(readable(pd.DataFrame([f.row() for f in [overall, *bias.per_annotator]])), hide_index=True)

    st.subheader("Pre-annotation against the approved transcripts, per cell and condition")
    if by_group is not None and by_group.overall.files:
        overall_wer, recordings = st.columns(2)
        overall_wer.metric("pre-annotation WER, all approved recordings", _figure(by_group.overall.summary()["wer"]))
        recordings.metric("recordings scored", by_group.overall.files)
        st.caption("Worst first. A dialogue counts under each of its speakers' values and crossed cells, and under its "
                   "noise condition and device.")
        frame = pd.DataFrame(by_group.ranked()).rename(columns={"dimension": "group", "files": "recordings"})
        st.dataframe(readable(frame[["group", "value", "recordings", "wer", "cpwer", "der", "jer", "reference_words"]]),
                     hide_index=True)
    else:
        st.caption("No recording has both a pre-annotation and an approved transcript yet.")

    st.subheader("Time to training data (ingest → approved)")
    median, approved, pending = st.columns(3)
    median.metric("median days", _figure(ttt.median_days, "{:.2f}"))
    approved.metric("approved recordings", ttt.approved)
    pending.metric("not yet approved", ttt.pending)
    if ttt.rows:
        st.dataframe(readable(pd.DataFrame(ttt.rows)), hide_index=True)


if __name__ == "__main__":
    render_quality()
