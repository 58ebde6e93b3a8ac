"""Coverage for managers: a heatmap of hours against target over two chosen dimensions, the funnel per
demographic cell (collected → pre-annotated → in review → approved → released), gaps first, and the projected
day each cell meets its target at the recent intake rate (cells that will miss the deadline first). Filters by
site, device and noise condition narrow every figure on the page."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from collection.coverage import CoverageReport, RecordingFilter
from collection.projection import Projection
from protocols.schema import Protocol
from review_ui.funnel import FunnelRow
from review_ui.page_widgets import pick_protocol
from review_ui.session_auth import get_store, require_page


def render_coverage_funnel() -> None:
    from collection.coverage import compute_coverage, filter_choices, recordings_where
    from collection.projection import coverage_projection
    from protocols.registry import get_protocol
    from review_ui.funnel import STAGES, coverage_funnel
    from review_ui.heatmap import amount
    from store.clock import utcnow

    require_page("see_coverage")
    st.title("Coverage funnel")
    with get_store().session() as session:
        row = pick_protocol(session)
        if row is None:
            st.info("No protocol is registered yet.")
            return
        protocol_row, protocol = get_protocol(session, row.protocol_id, row.version)
        where = pick_filter(filter_choices(session, protocol_row.pk))
        within = recordings_where(session, protocol_row.pk, where)
        funnel = coverage_funnel(session, protocol_row, protocol, within)
        report = compute_coverage(session, protocol_row, protocol, where=where)
        weeks = st.sidebar.slider("Intake rate over the last … weeks", 1, 12, 4)
        projected = coverage_projection(session, protocol_row, protocol, as_of=utcnow().date(), weeks=weeks, where=where)
    if where:
        st.info(f"Showing {where.describe()} only.")
    total = next((r for r in funnel if r.scope == "total"), None)
    if total is not None:
        for column, stage in zip(st.columns(len(STAGES)), STAGES):
            target = f" · target {total.target_hours:g} h" if total.target_hours else ""
            column.metric(stage.replace("_", " "), amount(total.hours[stage]), f"{total.speakers[stage]} speakers{target}",
                          delta_color="off", delta_arrow="off")
    render_heatmap(report, funnel, protocol)
    render_projection(projected)
    cells = pd.DataFrame([r.as_dict() for r in funnel if r.scope != "total"])
    if cells.empty:
        st.info("Nothing collected yet.")
        return
    st.subheader("The funnel per cell, gaps first")
    keep = [c for c in cells.columns if c not in ("scope", "cell") and not c.endswith("_speakers")]
    st.dataframe(cells[keep].astype(object).where(cells[keep].notna(), "—"), hide_index=True)


def pick_filter(choices: dict[str, list[str]]) -> RecordingFilter:
    """Site, device and noise condition pickers in the sidebar ("all" = no filter)."""
    from collection.coverage import FILTERS

    picked: dict[str, str | None] = {}
    for name in FILTERS:
        options = ["all", *choices.get(name, [])]
        value = st.sidebar.selectbox(name.replace("_", " ").capitalize(), options, disabled=len(options) == 1)
        picked[name] = None if value == "all" else value
    return RecordingFilter(**picked)


def render_projection(projected: Projection) -> None:
    """The weekly intake, then each cell's projected day; those that will miss the deadline first."""
    st.subheader("Projection at the recent intake rate")
    deadline = f"deadline {projected.deadline:%d %b %Y}" if projected.deadline else "the protocol sets no deadline"
    weekly = pd.DataFrame([{"week starting": f"{w:%d %b}", "minutes ingested": round(60 * h, 2)}
                           for w, h in projected.weekly_hours])
    st.caption(f"Rate: hours ingested over the last {projected.weeks} weeks up to {projected.as_of:%d %b %Y}, per week; "
               f"{deadline}.")
    st.bar_chart(weekly, x="week starting", y="minutes ingested")
    missing = [r for r in projected.rows if r.misses_deadline]
    if projected.deadline is not None:
        st.write(f"**{len(missing)} cell(s) will miss the deadline** at this rate." if missing
                 else "Every cell meets the deadline at this rate.")
    frame = pd.DataFrame([{"cell": r.label, "hours": round(r.hours, 4), "target h": r.target_hours,
                           "gap h": None if r.gap_hours is None else round(r.gap_hours, 4),
                           "h per week": round(r.rate_hours_per_week, 4),
                           "projected": r.projected_on.isoformat() if r.projected_on else "—", "status": r.status}
                          for r in projected.rows])
    st.dataframe(frame.astype(object).where(frame.notna(), "—"), hide_index=True)


def render_heatmap(report: CoverageReport, funnel: list[FunnelRow], protocol: Protocol) -> None:
    """Hours as a share of target over two chosen dimensions of the crossed cells, with the gap in each."""
    from review_ui.heatmap import fold_cells

    if protocol.targets.cells is None or len(protocol.targets.cells.dimensions) < 2:
        st.caption("The protocol sets no targets for crossed cells: see the funnel per cell below.")
        return
    dimensions = list(protocol.targets.cells.dimensions)
    allowed = protocol.allowed_values()
    st.subheader("Coverage heatmap")
    rows_at, columns_at, measure_at = st.columns(3)
    row_dim = rows_at.selectbox("Rows", dimensions, index=len(dimensions) - 1)
    column_dim = columns_at.selectbox("Columns", [d for d in dimensions if d != row_dim])
    measure = measure_at.radio("Hours", ["collected", "approved"], horizontal=True)
    if measure == "collected":
        cells = report.scope("cell")  # the numbers of `turnscribe collect coverage`
    else:
        cells = [r.stage("approved") for r in funnel if r.scope == "cell"]
    heat = fold_cells(cells, row_dim, column_dim, list(allowed[row_dim]), list(allowed[column_dim]))
    text = pd.DataFrame([[heat.cells[(r, c)].text() for c in heat.columns] for r in heat.rows],
                        index=pd.Index(heat.rows, name=row_dim), columns=pd.Index(heat.columns, name=column_dim))
    share = {(r, c): heat.cells[(r, c)].share for r in heat.rows for c in heat.columns}

    def colour(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame([[_shade(share[(r, c)]) for c in frame.columns] for r in frame.index],
                            index=frame.index, columns=frame.columns)

    st.caption(f"{measure.capitalize()} hours as a share of the target, summed over "
               f"{', '.join(d for d in dimensions if d not in (row_dim, column_dim)) or 'nothing'}; "
               "the gap is the hours still missing in the crossed cells under each square.")
    st.table(text.style.apply(colour, axis=None))


def _shade(share: float | None) -> str:
    """Red (nothing) through yellow to green (target met); grey without a target. Dark text stays readable."""
    if share is None:
        return "background-color: #eeeeee; color: #222222"
    share = max(0.0, min(share, 1.0))
    red, green = (int(230 - 120 * share), int(110 + 110 * share)) if share > 0.5 else (230, int(110 + 200 * share))
    return f"background-color: rgb({red}, {min(green, 220)}, 120); color: #111111"


if __name__ == "__main__":
    render_coverage_funnel()
