"""Compare two visits of one view/site: side by side, a before/after slider, overlay, difference heat map.

Clinicians reach it as "Compare visits", patients as "Before and after" (their own photos only: the
patient picker and the services scope everything to the logged-in patient). Images are made by
tracker.services.comparison and shown with ``st.image`` (served behind the media guard) or, for the
slider, sent inside the component's data; the PNG download is made (and audited) only when clicked.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.components.before_after import before_after
from dashboard.state import fit_long_side, get_store, patient_picker, require_actor
from tracker.errors import TrackerError
from tracker.services import Actor, timeline
from tracker.services.comparison import (
    Comparison,
    compare_photos,
    export_comparison_png,
    framed_pair,
    render_comparison,
)
from tracker.services.timeline import PRIMARY_METRIC
from tracker.store import Store

#: Label shown -> mode of tracker.services.comparison (the slider exports as a wipe).
MODES = {"Side by side": "side_by_side", "Slider": "wipe", "Overlay": "blend", "Difference": "difference"}
DISPLAY_LONG_SIDE = 1400


def _photos(store: Store, patient_id: int, actor: Actor) -> pd.DataFrame:
    """The patient's analysed photos (one row each); the view is audited once per browser session."""
    seen = st.session_state.setdefault("compare_timeline_audited", set())
    frame = timeline(store, patient_id, actor=actor, audited=patient_id not in seen)
    seen.add(patient_id)
    return frame


def _visit_caption(row: pd.Series) -> str:
    text = f"{row['visit_date']:%d %b %Y}"
    if pd.notna(row["session_number"]):
        text += f" · session {int(row['session_number'])}"
    if row["retake"]:
        text += " · retake"
    return text


def _default_pair(group: pd.DataFrame) -> tuple[int, int]:
    """First and latest charted photo (not flagged for retake, measured); else first and last."""
    metric = PRIMARY_METRIC[group["kind"].iloc[0]]
    charted = group[~group["retake"] & group[metric].notna()]
    if len(charted) >= 2:
        return int(charted["photo_id"].iloc[0]), int(charted["photo_id"].iloc[-1])
    return int(group["photo_id"].iloc[0]), int(group["photo_id"].iloc[-1])


def _comparison(store: Store, actor: Actor, before_id: int, after_id: int) -> Comparison:
    """The comparison of this pair, kept for this browser session so widget changes do not reload it."""
    cache_key = (actor.username, before_id, after_id)
    cached = st.session_state.get("compare_cache")
    if cached is not None and cached[0] == cache_key:
        return cached[1]
    with st.spinner("Aligning the two photos…"):
        comparison = compare_photos(store, before_id, after_id, actor=actor)
    st.session_state["compare_cache"] = (cache_key, comparison)
    return comparison


def _pick_pair(group: pd.DataFrame, key: str) -> tuple[int, int]:
    ids = [int(i) for i in group["photo_id"]]
    captions = {int(row["photo_id"]): _visit_caption(row) for _, row in group.iterrows()}
    first, last = _default_pair(group)
    left, right = st.columns(2)
    before_id = left.selectbox("Before", ids, index=ids.index(first), format_func=captions.get, key=f"{key}_before")
    after_id = right.selectbox("After", ids, index=ids.index(last), format_func=captions.get, key=f"{key}_after")
    return int(before_id), int(after_id)


def render() -> None:
    store = get_store()
    actor = require_actor()
    patient = patient_picker(actor)
    st.title("Before and after" if actor.role == "patient" else "Compare visits")
    if patient is None:
        st.info("No patient to show yet." if actor.role == "patient" else "Add a patient first (Patients page).")
        return
    if actor.role != "patient":
        st.caption(f"{patient.code} · {patient.display_name}")
    frame = _photos(store, patient.id, actor)
    if frame.empty:
        st.info("No analysed photos yet: a comparison needs photos of two visits.")
        return
    groups = {f"{view} ({'global view' if kind == 'global' else 'close-up'})": (kind, view)
              for kind, view in zip(frame["kind"], frame["view_or_site"], strict=True)}
    view = groups[st.selectbox("View or site", list(groups), key="compare_view")]
    group = frame[(frame["kind"] == view[0]) & (frame["view_or_site"] == view[1])]
    if len(group) < 2:
        st.info(f"Only one visit has a {view[1]} photo so far: a comparison needs two visits.")
        return
    before_id, after_id = _pick_pair(group, key=f"compare_{view[0]}_{view[1]}")
    if before_id == after_id:
        st.warning("Pick two different visits to compare.")
        return
    try:
        comparison = _comparison(store, actor, before_id, after_id)
    except (TrackerError, ValueError) as exc:
        st.error(f"These photos cannot be compared: {exc}")
        return
    for warning in comparison.warnings:
        st.warning(warning)
    _show(store, actor, comparison)


def _show(store: Store, actor: Actor, comparison: Comparison) -> None:
    label = st.radio("Show", list(MODES), horizontal=True, key="compare_mode")
    mode = MODES[label]
    zoom = st.checkbox("Zoom to the region of interest", key="compare_zoom", disabled=comparison.roi is None,
                       help="Global views: crop to the measured region (outlined in yellow)."
                       if comparison.roi is not None else "Close-ups: the whole field is the measured region.")
    zoom = zoom and comparison.roi is not None
    position, opacity = 0.5, 0.5
    if mode == "wipe":
        before, after = framed_pair(comparison, zoom_to_roi=zoom)
        position = before_after(before, after, labels=comparison.labels,
                                key=f"compare_slider_{comparison.before_photo_id}_{comparison.after_photo_id}")
    elif mode == "blend":
        opacity = st.slider("Opacity of the after photo", 0.0, 1.0, 0.5, 0.05, key="compare_opacity")
        blended = render_comparison(comparison, mode="blend", opacity=opacity, zoom_to_roi=zoom)
        st.image(fit_long_side(blended, DISPLAY_LONG_SIDE),
                 caption=f"{comparison.labels[1]} over {comparison.labels[0]} at {opacity:.0%} opacity")
    elif mode == "difference" and not comparison.aligned:
        st.warning("Not aligned: no difference map, since it would show the photos' movement, not a change.")
        return
    else:
        st.image(fit_long_side(render_comparison(comparison, mode=mode, zoom_to_roi=zoom), DISPLAY_LONG_SIDE))
        if mode == "difference":
            st.caption("Blue: more hair now; red: less hair. For looking at; the charted numbers come from the "
                       "measurements.")
    _download(store, actor, comparison, label, mode, position=position, opacity=opacity, zoom=zoom)


def _download(store: Store, actor: Actor, comparison: Comparison, label: str, mode: str, *,
              position: float, opacity: float, zoom: bool) -> None:
    """Make the PNG of what is shown on request (audited as an export), then offer it for download.

    (Two steps rather than a deferred ``st.download_button``: the media guard only serves files made for
    this browser's session, and Streamlit does not tie a deferred download's file to a session.)
    """
    settings = (comparison.before_photo_id, comparison.after_photo_id, mode, round(position, 4), opacity, zoom)
    ready = st.session_state.get("compare_png")
    if ready is None or ready[0] != settings:
        if st.button(f"Prepare a PNG of this view ({label.lower()})", key="compare_prepare"):
            data = export_comparison_png(store, comparison.before_photo_id, comparison.after_photo_id, mode=mode,
                                         actor=actor, position=position, opacity=opacity, zoom_to_roi=zoom,
                                         comparison=comparison)
            ready = (settings, data)
            st.session_state["compare_png"] = ready
        else:
            return
    name = (f"comparison_{comparison.view_or_site}_{comparison.labels[0][:11]}_{comparison.labels[1][:11]}_{mode}"
            .replace(" ", "-") + ".png")
    st.download_button(f"Download the PNG ({label.lower()})", data=ready[1], file_name=name, mime="image/png",
                       key="compare_download", on_click="ignore")
