"""Coverage for managers: a heatmap of hours against target over two chosen dimensions, and the funnel per
demographic cell (collected → pre-annotated → in review → approved), gaps first."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from collection.coverage import CoverageReport
from protocols.schema import Protocol
from review_ui.funnel import FunnelRow
from review_ui.page_widgets import pick_protocol
from review_ui.session_auth import get_store, require_page


def render_coverage_funnel() -> None:
    from collection.coverage import compute_coverage
    from protocols.registry import get_protocol
    from review_ui.funnel import STAGES, coverage_funnel

    require_page("see_coverage")
    st.title("Coverage funnel")
    with get_store().session() as session:
        row = pick_protocol(session)
        if row is None:
            st.info("No protocol is registered yet.")
            return
        protocol_row, protocol = get_protocol(session, row.protocol_id, row.version)
        funnel = coverage_funnel(session, protocol_row, protocol)
        report = compute_coverage(session, protocol_row, protocol)
    total = next((r for r in funnel if r.scope == "total"), None)
    if total is not None:
        for column, stage in zip(st.columns(len(STAGES)), STAGES):
            target = f" of {total.target_hours:g} h" if total.target_hours else ""
            column.metric(stage.replace("_", " "), f"{total.hours[stage]:.2f} h{target}", f"{total.speakers[stage]} speakers",
                          delta_color="off", delta_arrow="off")
    render_heatmap(report, funnel, protocol)
    cells = pd.DataFrame([r.as_dict() for r in funnel if r.scope != "total"])
    if cells.empty:
        st.info("Nothing collected yet.")
        return
    st.subheader("The funnel per cell, gaps first")
    keep = [c for c in cells.columns if c not in ("scope", "cell") and not c.endswith("_speakers")]
    st.dataframe(cells[keep].astype(object).where(cells[keep].notna(), "—"), hide_index=True)


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
