"""Check and correct: hair marks of a close-up, the ROI of a global view, alignment by picked points.

Layout only: every change goes through tracker.services (correct_analysis, set_roi, align_manually),
which check the clinician's access and audit it. Clicks come from the offline image component
(dashboard.components.image_clicks) in image pixels; edits wait in the session until saved.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.components.image_clicks import image_clicks
from dashboard.state import get_store, patient_picker, require_actor
from tracker.errors import TrackerError
from tracker.services import (
    Actor,
    align_manually,
    correct_analysis,
    current_marks,
    latest_analysis,
    list_corrections,
    list_visits,
    load_pixels,
    preview_correction,
    set_roi,
)
from tracker.services.corrections import default_radius_px, nearest_mark

#: Figures compared before and after a correction: (metric, label, format).
FIGURES = [
    ("hair_count", "Hairs in field", "{:.0f}"),
    ("density_per_cm2", "Density (hairs/cm²)", "{:.0f}"),
    ("mean_shaft_width_um", "Mean shaft width (µm)", "{:.1f}"),
    ("vellus_fraction", "Vellus share", "{:.0%}"),
    ("terminal_fraction", "Terminal share", "{:.0%}"),
    ("cumulative_thickness_mm_per_cm2", "Cumulative thickness (mm/cm²)", "{:.2f}"),
]
_PIXEL_CACHE = "correct_pixels"


def _pixels(store, photo_id: int, actor: Actor):
    """The photo's pixels, loaded (access-checked, audited) once per browser session and photo (2 kept)."""
    cache = st.session_state.setdefault(_PIXEL_CACHE, {})
    key = (actor.username, photo_id)
    if key not in cache:
        if len(cache) >= 2:  # the photo and, when aligning, its baseline
            cache.pop(next(iter(cache)))
        cache[key] = load_pixels(store, photo_id, actor=actor)
    return cache[key]


def _fmt(value, pattern: str) -> str:
    return "—" if value is None else pattern.format(value)


def _flash(message: str) -> None:
    st.session_state["correct_flash"] = message


# --- close-up: hair marks -------------------------------------------------------------------------------

def _on_mark_click(edits_key: str, marks: list[dict], radius: float, click: dict) -> None:
    """A click near a mark removes it (or undoes a pending add there); elsewhere it adds a mark."""
    edits = st.session_state.setdefault(edits_key, [])
    adds = [e for e in edits if e["op"] == "add"]
    i = nearest_mark(adds, click["x"], click["y"], radius_px=radius)
    if i is not None:
        edits.remove(adds[i])
        return
    j = nearest_mark(marks, click["x"], click["y"], radius_px=radius)
    if j is not None:
        edits.append({"op": "remove", "x": marks[j]["x"], "y": marks[j]["y"], "id": marks[j]["id"]})
    else:
        edits.append({"op": "add", "x": round(click["x"], 2), "y": round(click["y"], 2)})


def _closeup(store, actor: Actor, photo, analysis) -> None:
    edits_key = f"correct_edits_{analysis.id}"
    edits = st.session_state.setdefault(edits_key, [])
    marks = current_marks(store, analysis.id, actor=actor)
    removed = {e["id"] for e in edits if e["op"] == "remove"}
    shown = [m for m in marks if m["id"] not in removed]
    radius = default_radius_px(photo.width, photo.height)
    drawn = [{"x": m["x"], "y": m["y"], "r": radius * 0.6, "kind": "auto" if m["source"] == "auto" else "manual"}
             for m in shown]
    drawn += [{"x": e["x"], "y": e["y"], "r": radius * 0.6, "kind": "remove"} for e in edits if e["op"] == "remove"]
    drawn += [{"x": e["x"], "y": e["y"], "r": radius * 0.6, "kind": "add"} for e in edits if e["op"] == "add"]
    left, right = st.columns([3, 2])
    with left:
        st.caption("Click a mark to remove it, click a hair without a mark to add one. Blue: detected, "
                   "green: added by hand, dashed: not saved yet, red cross: to be removed.")
        image_clicks(_pixels(store, photo.id, actor), key=f"marks_{analysis.id}", marks=drawn,
                     alt=f"close-up {photo.view_or_site} with {len(shown)} hair marks",
                     on_click=lambda click: _on_mark_click(edits_key, shown, radius, click))
    corrections = list_corrections(store, analysis.id, actor=actor)
    saved = corrections[-1].metrics if corrections else None
    preview = None
    if edits:
        try:
            preview = preview_correction(
                store, analysis.id, actor=actor, radius_px=radius,
                add=[(e["x"], e["y"]) for e in edits if e["op"] == "add"],
                remove=[(e["x"], e["y"]) for e in edits if e["op"] == "remove"],
            ).metrics
        except ValueError as exc:
            st.error(f"These edits cannot be applied: {exc}")
    with right:
        st.subheader("Figures")
        columns = {"Automatic": analysis.metrics}
        if saved is not None:
            columns["Corrected (saved)"] = saved
        if preview is not None:
            columns["With your edits"] = preview
        table = pd.DataFrame({name: [_fmt(values.get(k), f) for k, _, f in FIGURES]
                              for name, values in columns.items()}, index=[label for _, label, _ in FIGURES])
        st.table(table)
        adds = sum(e["op"] == "add" for e in edits)
        st.markdown(f"**Edits not saved:** {adds} to add, {len(edits) - adds} to remove")
        note = st.text_input("Note (optional)", key=f"correct_note_{analysis.id}", max_chars=500)
        if st.button("Save corrections", type="primary", disabled=not edits or preview is None):
            try:
                row = correct_analysis(
                    store, analysis.id, actor=actor, notes=note, radius_px=radius,
                    add=[(e["x"], e["y"]) for e in edits if e["op"] == "add"],
                    remove=[(e["x"], e["y"]) for e in edits if e["op"] == "remove"],
                )
            except (ValueError, TrackerError) as exc:
                st.error(f"Not saved: {exc}")
            else:
                st.session_state[edits_key] = []
                _flash(f"Correction saved: {row.metrics.get('hair_count')} hairs "
                       f"(automatic {analysis.metrics.get('hair_count')}).")
                st.rerun()
        c2, c3 = st.columns(2)
        if c2.button("Undo last edit", disabled=not edits):
            edits.pop()
            st.rerun()
        if c3.button("Discard edits", disabled=not edits):
            st.session_state[edits_key] = []
            st.rerun()
        fallback = [m for m in marks if m.get("width_source") == "median"]
        if fallback:
            st.caption(f"{len(fallback)} mark(s) added off the hair mask use the median width of this photo.")
    if corrections:
        with st.expander(f"Correction history ({len(corrections)})"):
            st.table(pd.DataFrame([{
                "Saved": f"{c.created_at:%d %b %Y %H:%M}", "Added": len(c.added), "Removed": len(c.removed),
                "Hairs": c.metrics.get("hair_count"), "Note": c.notes} for c in corrections]))


# --- global: region of interest ------------------------------------------------------------------------

def _on_roi_click(points_key: str, click: dict) -> None:
    st.session_state.setdefault(points_key, []).append([round(click["x"], 1), round(click["y"], 1)])


def _roi(store, actor: Actor, photo, analysis) -> None:
    points_key = f"correct_roi_{photo.id}"
    points = st.session_state.setdefault(points_key, [])
    baseline = analysis.baseline_photo_id in (None, photo.id)
    current = (analysis.parameters or {}).get("roi") or []
    left, right = st.columns([3, 2])
    with left:
        st.caption("Click around the region to measure, point by point; save when the outline is complete.")
        r = default_radius_px(photo.width, photo.height) * 0.3
        marks = [{"x": x, "y": y, "r": r, "kind": "point", "label": i + 1} for i, (x, y) in enumerate(points)]
        image_clicks(_pixels(store, photo.id, actor), key=f"roi_{photo.id}",
                     polygon=points if points else current, closed=not points or len(points) >= 3, marks=marks,
                     alt=f"global photo {photo.view_or_site} with its region of interest",
                     on_click=lambda click: _on_roi_click(points_key, click))
    with right:
        st.subheader("Region of interest")
        coverage = analysis.metrics.get("hair_coverage")
        st.metric("Hair coverage of the ROI", _fmt(coverage, "{:.1%}"))
        if baseline:
            st.info("This is the baseline of the view: its ROI is carried to every follow-up, which are "
                    "all re-analysed when you save.")
        else:
            st.info("This is a follow-up: an ROI saved here applies to this photo only (until the "
                    "baseline's ROI changes).")
        st.markdown(f"**New outline:** {len(points)} point(s)" if points else "Showing the ROI measured now.")
        c1, c2 = st.columns(2)
        if c1.button("Save ROI", type="primary", disabled=len(points) < 3):
            _save_roi(store, actor, photo.id, points, points_key)
        if c2.button("Use default ROI"):
            _save_roi(store, actor, photo.id, None, points_key)
        c3, c4 = st.columns(2)
        if c3.button("Undo point", disabled=not points):
            points.pop()
            st.rerun()
        if c4.button("Clear points", disabled=not points):
            st.session_state[points_key] = []
            st.rerun()


def _save_roi(store, actor: Actor, photo_id: int, points, points_key: str) -> None:
    try:
        with st.spinner("Measuring the new region…"):
            analyses = set_roi(store, photo_id, points, actor=actor)
    except (ValueError, TrackerError) as exc:
        st.error(f"ROI not saved: {exc}")
        return
    st.session_state[points_key] = []
    _flash(f"ROI saved: {len(analyses)} photo(s) re-analysed; coverage now "
           f"{_fmt(analyses[0].metrics.get('hair_coverage'), '{:.1%}')}.")
    st.rerun()


# --- alignment by picked points ------------------------------------------------------------------------

def _alignment(store, actor: Actor, photo, analysis) -> None:
    alignment = (analysis.quality or {}).get("alignment") or {}
    failed = alignment.get("ok") is False
    manual = (analysis.parameters or {}).get("alignment") == "manual"
    title = "Align by hand" + (" (automatic alignment failed)" if failed else "")
    with st.expander(title, expanded=failed):
        if manual:
            st.caption("This photo is aligned with points picked by hand.")
        st.caption("Click the same 3 or 4 landmarks (ears, hairline, moles, a tattoo dot) in the same order "
                   "on the baseline (left) and on this photo (right). Hair moves between visits: do not pick it.")
        keys = {"reference": f"align_ref_{photo.id}", "moving": f"align_mov_{photo.id}"}
        ids = {"reference": analysis.baseline_photo_id, "moving": photo.id}
        for name in keys:
            st.session_state.setdefault(keys[name], [])
        columns = st.columns(2)
        for column, name, label in zip(columns, ("reference", "moving"), ("Baseline", "This photo"), strict=True):
            points = st.session_state[keys[name]]
            with column:
                st.markdown(f"**{label}:** {len(points)} point(s)")
                pixels = _pixels(store, ids[name], actor)
                r = max(pixels.shape[:2]) * 0.008
                image_clicks(pixels, key=f"align_{name}_{photo.id}", max_width=600,
                             marks=[{"x": x, "y": y, "r": r, "kind": "point", "label": i + 1}
                                    for i, (x, y) in enumerate(points)],
                             alt=f"{label.lower()} for picking landmarks",
                             on_click=lambda click, k=keys[name]: st.session_state[k].append(
                                 [round(click["x"], 1), round(click["y"], 1)]))
        reference, moving = st.session_state[keys["reference"]], st.session_state[keys["moving"]]
        ready = len(reference) == len(moving) >= 3
        if not ready:
            st.caption("Pick at least 3 points on each, the same number on both.")
        c1, c2 = st.columns(2)
        if c1.button("Align with these points", type="primary", disabled=not ready):
            try:
                with st.spinner("Aligning and measuring again…"):
                    new = align_manually(store, photo.id, actor=actor, moving_points=moving,
                                         reference_points=reference)
            except (ValueError, TrackerError) as exc:
                st.error(f"Not aligned: {exc}")
            else:
                for k in keys.values():
                    st.session_state[k] = []
                _flash(f"Aligned by hand with {len(moving)} point pairs; the photo was measured again "
                       f"(analysis {new.id}).")
                st.rerun()
        if c2.button("Clear points", key=f"align_clear_{photo.id}", disabled=not (reference or moving)):
            for k in keys.values():
                st.session_state[k] = []
            st.rerun()


# --- the page ------------------------------------------------------------------------------------------

def render() -> None:
    store = get_store()
    actor = require_actor()
    st.title("Check and correct")
    if actor.role != "clinician":
        st.error("This page needs a clinician account.")
        return
    patient = patient_picker(actor)
    if patient is None:
        st.info("Add a patient first.")
        return
    visits = [v for v in list_visits(store, patient.id, actor=actor) if v.photos]
    if not visits:
        st.info(f"{patient.code} has no photos yet: upload them on “New visit”.")
        return
    labels = {v.id: f"{v.visit_date:%d %b %Y}" + (f" · session {v.session_number}" if v.session_number else "")
              for v in visits}
    visit_id = st.selectbox("Visit", [v.id for v in reversed(visits)], format_func=labels.get)
    visit = next(v for v in visits if v.id == visit_id)
    photos = {p.id: p for p in visit.photos}
    photo_id = st.selectbox("Photo", list(photos), format_func=lambda i: f"{photos[i].kind} · {photos[i].view_or_site}")
    photo = photos[photo_id]
    if message := st.session_state.pop("correct_flash", None):
        st.success(message)
    analysis = latest_analysis(store, photo.id, actor=actor)
    if analysis is None:
        st.info("This photo has not been analysed yet.")
        return
    quality = analysis.quality or {}
    if quality.get("reasons"):
        (st.error if quality.get("retake") else st.warning)("; ".join(quality["reasons"]))
    if photo.kind == "closeup":
        _closeup(store, actor, photo, analysis)
    else:
        _roi(store, actor, photo, analysis)
    if analysis.baseline_photo_id not in (None, photo.id):
        _alignment(store, actor, photo, analysis)
