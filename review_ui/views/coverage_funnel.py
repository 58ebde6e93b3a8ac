"""Coverage for managers: the funnel per demographic cell (collected → pre-annotated → in review → approved), gaps first."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from review_ui.page_widgets import pick_protocol
from review_ui.session_auth import get_store, require_page

CHART_CELLS = 25


def render_coverage_funnel() -> None:
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
    total = next((r for r in funnel if r.scope == "total"), None)
    if total is not None:
        for column, stage in zip(st.columns(len(STAGES)), STAGES):
            target = f" of {total.target_hours:g} h" if total.target_hours else ""
            column.metric(stage.replace("_", " "), f"{total.hours[stage]:.2f} h{target}", f"{total.speakers[stage]} speakers",
                          delta_color="off", delta_arrow="off")
    cells = pd.DataFrame([r.as_dict() for r in funnel if r.scope != "total"])
    if cells.empty:
        st.info("Nothing collected yet.")
        return
    st.subheader("Cells, gaps first")
    st.dataframe(cells, hide_index=True)
    started = cells[cells["collected_hours"] > 0].head(CHART_CELLS)
    if not started.empty:
        st.subheader("Hours per stage in the cells collected so far (gaps first)")
        long = started.melt(id_vars="cell", value_vars=[f"{s}_hours" for s in STAGES], var_name="stage", value_name="hours")
        st.bar_chart(long, x="cell", y="hours", color="stage", stack=False, horizontal=True, sort=False)


if __name__ == "__main__":
    render_coverage_funnel()
