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


#: The metric each kind's change-from-baseline columns refer to (as in tracker.services.timeline).
CHANGE_METRIC = {"closeup": "density_per_cm2", "global": "hair_coverage"}


def _beyond_noise(data: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Charted rows whose change from the first visit exceeds noise, when the change refers to METRIC."""
    if not {"change_exceeds_noise", "change_from_baseline_pct", "kind"} <= set(data.columns):
        return data.iloc[0:0]
    refers = data["kind"].map(CHANGE_METRIC) == metric
    beyond = data["change_exceeds_noise"].fillna(False).astype(bool)
    rows = data[refers & beyond & ~data["retake"]].copy()
    rows["change_label"] = rows["change_from_baseline_pct"].map(lambda v: f"{v:+.0f} %")
    return rows


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
    clinician sees a photo was taken but not charted. When ``metric`` is the one the timeline's change
    columns refer to (``change_metric``, by default the primary metric of the kinds in the frame), points
    whose change from the first visit exceeds measurement noise (``change_exceeds_noise``) get a black
    diamond and their change in %, e.g. ``+12 %``; dashed rules mark the sessions, with the treatments
    given in their tooltip.
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
    if "change_from_baseline_pct" in data:
        tooltip.append(alt.Tooltip("change_from_baseline_pct:Q", title="Change vs first (%)", format="+.1f"))
    beyond = _beyond_noise(data, metric)
    marks = alt.Chart(beyond).encode(x=x, y=f"{metric}:Q", tooltip=tooltip)
    beyond_marks = marks.mark_point(shape="diamond", size=260, filled=False, strokeWidth=2, color="black")
    beyond_text = marks.mark_text(dy=-16, fontSize=11, fontWeight="bold", color="black").encode(
        text="change_label:N")
    sessions = data.drop_duplicates("visit_date").copy()
    if "treatments" not in sessions:
        sessions["treatments"] = ""
    rules = alt.Chart(sessions).mark_rule(color="#bbbbbb", strokeDash=[3, 3]).encode(
        x=x, tooltip=[alt.Tooltip("session:N", title="Session"), alt.Tooltip("treatments:N", title="Treatments")])
    labels = (
        alt.Chart(sessions)
        .mark_text(align="left", dx=3, dy=-4, color="#777777", fontSize=11)
        .encode(x=x, y=alt.value(8), text="session:N")
    )
    chart = alt.layer(rules, labels, bars, line, retakes, beyond_marks, beyond_text).properties(height=280)
    return chart.properties(title=title) if title else chart
