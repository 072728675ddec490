"""Progress charts (Altair) built from a timeline table; no UI code here."""

from __future__ import annotations

import altair as alt
import pandas as pd

METRIC_LABELS = {
    "density_per_cm2": "Density (hairs/cm²)",
    "hair_coverage": "Hair coverage of the ROI",
    "mean_shaft_width_um": "Mean shaft width (µm)",
    "vellus_fraction": "Vellus share (< 30 µm)",
    "hair_count": "Hairs in the field",
}


def progress_chart(frame: pd.DataFrame, *, metric: str, title: str | None = None) -> alt.LayerChart:
    """Line chart of one metric across visits, one line per view/site, with error bars and sessions.

    Parameters
    ----------
    frame : pandas.DataFrame
        A timeline (:func:`tracker.services.timeline`) with ``visit_date``, ``session_number``,
        ``view_or_site``, ``retake``, ``treatments``, the metric and ``<metric>_sd`` columns.
    metric : str
        Column to chart (a key of :data:`METRIC_LABELS`).

    Photos flagged for retake are not joined by the line: they appear as hollow grey marks so the
    clinician sees a photo was taken but not charted.
    """
    if metric not in METRIC_LABELS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(METRIC_LABELS)}")
    needed = {"visit_date", "session_number", "view_or_site", "retake", metric}
    missing = needed - set(frame.columns)
    if missing:
        raise ValueError(f"timeline lacks columns: {', '.join(sorted(missing))}")
    sd_column = f"{metric}_sd"
    data = frame[frame[metric].notna()].copy()
    data["sd"] = data[sd_column].astype(float) if sd_column in data else 0.0
    data["sd"] = data["sd"].fillna(0.0)
    data["low"] = data[metric].astype(float) - data["sd"]
    data["high"] = data[metric].astype(float) + data["sd"]
    data["session"] = data["session_number"].map(lambda n: f"S{int(n)}" if pd.notna(n) else "")
    data["status"] = data["retake"].map({True: "retake (not charted)", False: "measured"})
    label = METRIC_LABELS[metric]
    x = alt.X("visit_date:T", title="Visit", axis=alt.Axis(format="%d %b %Y", labelAngle=-30))
    colour = alt.Color("view_or_site:N", title="View / site")
    tooltip = [
        alt.Tooltip("visit_date:T", title="Visit", format="%d %b %Y"),
        alt.Tooltip("session:N", title="Session"),
        alt.Tooltip("view_or_site:N", title="View / site"),
        alt.Tooltip(f"{metric}:Q", title=label, format=".3~f"),
        alt.Tooltip("sd:Q", title="± (1 sd)", format=".3~f"),
        alt.Tooltip("status:N", title="Status"),
    ]
    charted = data[~data["retake"]]
    base = alt.Chart(charted).encode(x=x, color=colour)
    line = base.mark_line(point=alt.OverlayMarkDef(size=70, filled=True)).encode(
        y=alt.Y(f"{metric}:Q", title=label, scale=alt.Scale(zero=False)), tooltip=tooltip
    )
    bars = base.mark_errorbar(ticks=True).encode(y=alt.Y("low:Q", title=label), y2="high:Q")
    retakes = (
        alt.Chart(data[data["retake"]])
        .mark_point(shape="circle", filled=False, color="grey", size=90)
        .encode(x=x, y=f"{metric}:Q", tooltip=tooltip)
    )
    sessions = data.drop_duplicates("visit_date")
    rules = alt.Chart(sessions).mark_rule(color="#bbbbbb", strokeDash=[3, 3]).encode(x=x)
    labels = (
        alt.Chart(sessions)
        .mark_text(align="left", dx=3, dy=-4, color="#777777", fontSize=11)
        .encode(x=x, y=alt.value(8), text="session:N")
    )
    chart = alt.layer(rules, labels, bars, line, retakes).properties(height=280)
    return chart.properties(title=title) if title else chart
