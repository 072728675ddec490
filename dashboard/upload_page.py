"""Record a new visit: date, session, treatments, next session, photos; analyse them with a progress bar.

Each photo gets its own feedback in plain words (what is wrong and what to do); a bad file is reported
and the others go on.
"""

from __future__ import annotations

import datetime as dt

import streamlit as st

from dashboard.state import get_store, patient_picker, require_actor
from tracker.errors import ImageRejected, TrackerError
from tracker.imaging.roi import GLOBAL_VIEWS
from tracker.services import (
    TREATMENT_TYPES,
    TreatmentInput,
    analyse_photo,
    ingest_photo,
    list_device_profiles,
    list_visits,
    open_visit,
)
from tracker.services.importing import classify_filename

KIND_LABELS = {"global": "Global view", "closeup": "Close-up (trichoscopy)"}
NO_TREATMENT = "(none)"
UPLOAD_TYPES = ["jpg", "jpeg", "png", "heic", "heif", "tif", "tiff", "webp", "mpo"]

#: Quality flag -> (what is wrong, in plain words; what to do).
FLAG_ADVICE = {
    "blurred": ("blurred: retake", "Hold the camera steady, focus on the scalp and take the photo again."),
    "underexposed": ("too dark: retake", "Take it again with more light."),
    "overexposed": ("too bright: retake", "Take it again with less light or without the flash."),
    "low_resolution": ("resolution too low: retake", "Take it again at the camera's full resolution."),
    "too_few_hairs": ("too few hairs found to measure: retake or check",
                      "Check the photo; retake it if the field is out of focus or not on the scalp."),
    "low_contrast": ("hair and scalp hardly differ: retake", "Take it again with better light or focus."),
    "no_scale": ("no scale sticker found: density not available",
                 "Place the printed scale sticker in the field, or choose the dermoscope's profile "
                 "(or its px per mm) for this photo."),
    "scale_conflict": ("the scale given and the sticker's disagree",
                       "Check the dermoscope profile and the sticker size."),
    "alignment_failed": ("not aligned with the first visit's photo: the region compared may differ",
                         "Align it by hand on “Check and correct” (pick matching points)."),
    "clipped": ("parts of the scalp are over-exposed in one colour: coverage measured without it",
                "If the scalp looks washed out, take it again with less light or without the flash."),
    "small_roi": ("the region measured is very small", "Check the region of interest on “Check and correct”."),
    "low_separation": ("hair and scalp hardly differ in colour", "Take it again with even, brighter light."),
    "not_aligned": ("not confirmed to be the same spot as the first visit",
                    "Check the site marking; retake at the marked spot if it moved."),
    "overlay_excluded": ("text or drawings the dermoscope burnt into the photo were left out of the count",
                         "Nothing to redo; if the device can export photos without its annotations, use that."),
}


def photo_feedback(quality: dict) -> tuple[str, list[str]]:
    """Plain-language feedback on an analysed photo from its quality record.

    Returns
    -------
    level : {"success", "warning", "error"}
        "error" when the photo must be retaken (it is not charted), "warning" for notes.
    lines : list of str
        One line per problem, ``"<what is wrong>. <what to do>"``, or a single "quality ok" line.
    """
    flags = list(quality.get("flags", []))
    lines = []
    for flag in flags:
        what, action = FLAG_ADVICE.get(flag, (flag.replace("_", " "), "Check the photo."))
        lines.append(f"{what}. {action}")
    if quality.get("retake"):
        return "error", lines or ["retake: " + "; ".join(quality.get("reasons", []))]
    if lines:
        return "warning", lines
    return "success", ["analysed, quality ok"]


def _show(level: str, name: str, lines: list[str], detail: str = "") -> None:
    text = f"**{name}**: " + "  \n".join(lines)
    {"success": st.success, "warning": st.warning, "error": st.error, "info": st.info}[level](text)
    if detail:
        st.caption(detail)


def _last_scale(visits) -> float | None:
    for visit in reversed(visits):
        for photo in visit.photos:
            if photo.kind == "closeup" and photo.px_per_mm and photo.scale_source != "fiducial":
                return float(photo.px_per_mm)
    return None


def _treatments(round_: int) -> list[TreatmentInput]:
    """Treatment rows: one to start with, another on request."""
    rows_key = f"treatment_rows_{round_}"
    count = st.session_state.setdefault(rows_key, 1)
    treatments = []
    for row in range(count):
        cols = st.columns([2, 3, 2, 3])
        kind = cols[0].selectbox("Type", [NO_TREATMENT, *TREATMENT_TYPES], key=f"t_type_{round_}_{row}")
        product = cols[1].text_input("Product / cocktail", key=f"t_product_{round_}_{row}")
        dose = cols[2].text_input("Dose", key=f"t_dose_{round_}_{row}")
        notes = cols[3].text_input("Treatment notes", key=f"t_notes_{round_}_{row}")
        if kind != NO_TREATMENT:
            treatments.append(TreatmentInput(type=kind, product=product.strip(), dose=dose.strip(),
                                             notes=notes.strip()))
    if st.button("Add another treatment", key=f"t_add_{round_}"):
        st.session_state[rows_key] = count + 1
        st.rerun()
    return treatments


def _photo_plan(files, round_: int, default_scale: float | None, devices: list[dict]) -> list[tuple]:
    """Kind, view/site and scale of each uploaded file (guessed from the name, editable)."""
    plan = []
    device_ids = [None, *(d["id"] for d in devices)]
    device_names = {d["id"]: f"{d['name']} ({d['px_per_mm']:.1f} px/mm)" for d in devices}
    device_names[None] = "px/mm typed below"
    for index, upload in enumerate(files or []):
        guessed = True
        try:
            kind, view = classify_filename(upload.name)
        except ValueError:
            kind, view, guessed = "global", "vertex", False
        row = st.columns([3, 2, 2, 2])
        row[0].markdown(f"`{upload.name}`" + ("" if guessed else "  \n:orange[view not recognised from the name]"))
        kind = row[1].selectbox("Kind", list(KIND_LABELS), index=list(KIND_LABELS).index(kind),
                                format_func=KIND_LABELS.get, key=f"kind_{round_}_{index}")
        device_id = None
        if kind == "global":
            view_index = GLOBAL_VIEWS.index(view) if view in GLOBAL_VIEWS else 0
            view = row[2].selectbox("View", GLOBAL_VIEWS, index=view_index, key=f"view_{round_}_{index}")
            scale = None
        else:
            site_default = view if view not in GLOBAL_VIEWS else "vertex-1"
            view = row[2].text_input("Site", value=site_default, key=f"site_{round_}_{index}")
            if devices:
                device_id = row[3].selectbox("Dermoscope", device_ids, key=f"device_{round_}_{index}",
                                             format_func=device_names.get)
            scale = None
            if device_id is None:
                scale = row[3].number_input("px per mm", min_value=0.0, value=default_scale or 0.0,
                                            key=f"scale_{round_}_{index}",
                                            help="Scale of the dermoscope at this magnification; 0 = unknown "
                                                 "(the printed sticker is used when found)")
        plan.append((upload, kind, view.strip(), scale or None, device_id))
    return plan


def _process(store, actor, visit, plan) -> list[dict]:
    """Ingest and analyse each photo with a progress bar; feedback per photo as it comes."""
    results = []
    steps = 2 * len(plan)
    progress = st.progress(0.0, text="Reading photos…")
    for number, (upload, kind, view, scale, device_id) in enumerate(plan):
        progress.progress(2 * number / steps, text=f"Reading {upload.name} ({number + 1}/{len(plan)})")
        result = {"name": upload.name, "level": "error", "lines": [], "detail": "", "analysed": False}
        try:
            ingested = ingest_photo(store, visit.id, upload.getvalue(), actor=actor, name=upload.name, kind=kind,
                                    view_or_site=view, px_per_mm=scale, device_profile_id=device_id)
            if ingested.duplicate:
                where = "this visit" if ingested.photo.visit_id == visit.id else "an earlier visit"
                result.update(level="info", lines=[f"this exact file is already stored for this patient "
                                                   f"({where}): not added again."])
            else:
                progress.progress((2 * number + 1) / steps,
                                  text=f"Analysing {upload.name} ({number + 1}/{len(plan)})")
                analysis = analyse_photo(store, ingested.photo.id, actor=actor)
                level, lines = photo_feedback(analysis.quality)
                result.update(level=level, lines=lines, detail="; ".join(analysis.quality.get("reasons", [])),
                              analysed=True)
        except ImageRejected as exc:
            reason = str(exc).removeprefix(f"{upload.name}: ")
            result["lines"] = [f"could not be read as a photo ({reason}). Export it again from the camera or "
                               "phone as JPEG, PNG or HEIC and upload that file; the other photos are kept."]
        except (TrackerError, ValueError) as exc:
            result["lines"] = [f"not saved: {exc}"]
        _show(result["level"], result["name"], result["lines"], result["detail"])
        results.append(result)
    progress.progress(1.0, text=f"Done: {len(plan)} file(s)")
    return results


def render() -> None:
    store = get_store()
    actor = require_actor()
    patient = patient_picker(actor)
    st.title("New visit")
    if patient is None:
        st.info("Add a patient first (Patients page).")
        return
    last = st.session_state.get("last_upload")
    if last and last["patient_id"] == patient.id:
        with st.expander(f"Last saved visit: {last['summary']}"):
            for result in last["results"]:
                _show(result["level"], result["name"], result["lines"], result["detail"])
    round_ = st.session_state.setdefault("upload_round", 0)  # a new round gives an empty form
    visits = list_visits(store, patient.id, actor=actor)
    next_session = max((v.session_number or 0 for v in visits), default=0) + 1
    st.caption(f"{patient.code} · {patient.display_name} · {len(visits)} earlier visit(s)")

    cols = st.columns(3)
    visit_date = cols[0].date_input("Visit date", value=dt.date.today(), max_value=dt.date.today(),
                                    key=f"visit_date_{round_}")
    session_number = cols[1].number_input("Session number in the series", min_value=0, value=next_session, step=1,
                                          key=f"session_{round_}")
    next_date = cols[2].date_input("Next session (optional)", value=None, key=f"next_session_{round_}",
                                   help="Shown in the patient list (and marked overdue once past)")
    st.markdown("**Treatment given**")
    treatments = _treatments(round_)
    notes = st.text_area("Visit notes", key=f"visit_notes_{round_}")

    files = st.file_uploader("Photos of this visit", type=UPLOAD_TYPES, accept_multiple_files=True,
                             key=f"visit_files_{round_}",
                             help="Several at once. Name them e.g. vertex.jpg, frontal.jpg, closeup-vertex-1.jpg "
                                  "and the view or site is filled in.")
    devices = list_device_profiles(store, actor=actor, include_retired=False)
    plan = _photo_plan(files, round_, _last_scale(visits), devices)

    if st.button("Save visit and analyse", type="primary", disabled=not plan, key=f"save_{round_}"):
        try:
            visit = open_visit(store, patient.id, actor=actor, visit_date=visit_date,
                               session_number=int(session_number) or None, treatments=treatments, notes=notes,
                               next_session_date=next_date)
        except (TrackerError, ValueError) as exc:
            st.error(f"The visit was not saved: {exc}")
            return
        results = _process(store, actor, visit, plan)
        analysed = sum(r["analysed"] for r in results)
        summary = f"{visit_date:%d %b %Y}, {analysed} of {len(plan)} photo(s) analysed"
        st.success(f"Visit saved ({summary}). Open “Progress” to see the new point on the chart.")
        st.session_state["last_upload"] = {"patient_id": patient.id, "summary": summary, "results": results}
        st.session_state["upload_round"] = round_ + 1
