"""Scale and devices: device calibration profiles (from a ruler photo or entered) and the fiducial stickers."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.state import get_store, require_actor
from tracker.errors import TrackerError
from tracker.services import (
    create_device_profile,
    list_device_profiles,
    measure_ruler_photo,
    retire_device_profile,
)

_TICKS = {"1 mm (millimetre ruler)": 1.0, "0.5 mm (half-millimetre ruler)": 0.5}
_STICKER_SIZES = {"2.54 mm (20-70x dermoscopes)": 2.54, "5.08 mm (10-20x, wider fields)": 5.08}


@st.cache_data(show_spinner=False, max_entries=8)
def _sticker_pdf(marker_size_mm: float, page: str) -> bytes:
    from tracker.reports.sticker import sticker_sheet_pdf

    return sticker_sheet_pdf(marker_size_mm=marker_size_mm, page=page)


def _flash(message: str) -> None:
    """Show ``message`` after a rerun (so the table above shows the change)."""
    st.session_state["devices_flash"] = message
    st.rerun()


def _profiles_table(profiles: list[dict]) -> None:
    if not profiles:
        st.info("No device profiles yet: add one below from a photo of a millimetre ruler, or enter a known value.")
        return
    table = pd.DataFrame(
        [{"Name": p["name"], "px/mm": round(p["px_per_mm"], 3), "From": p["source"],
          "State": "retired" if p["retired"] else "in use", "Notes": p["notes"],
          "Added": (p["created_at"] or "")[:10]} for p in profiles]
    )
    st.dataframe(table, hide_index=True, width="stretch")


def _add_from_ruler(store, actor) -> None:
    st.caption("Lay a ruler flat, put the dermoscope on it as on the scalp (same zoom), and take the photo "
               "with at least 5 millimetre ticks across the frame.")
    name = st.text_input("Device name", key="ruler_name", placeholder="e.g. DermLite DL4 + iPhone 14, 1x")
    ticks = _TICKS[st.selectbox("Finest ticks of the ruler", list(_TICKS), key="ruler_ticks")]
    notes = st.text_input("Notes", key="ruler_notes")
    upload = st.file_uploader("Ruler photo", type=["jpg", "jpeg", "png", "heic", "heif", "tif", "tiff", "webp"],
                              key="ruler_upload")
    if upload is None:
        return
    data = upload.getvalue()
    try:
        measured = measure_ruler_photo(store, data, actor=actor, name=upload.name, tick_spacing_mm=ticks)
    except (TrackerError, ValueError) as exc:
        st.error(str(exc))
        return
    result = measured.result
    if not result.found:
        st.error(f"Could not measure the ruler in this photo ({result.reason}). Take it again: sharp, flat, "
                 "with at least 5 ticks across the frame.")
        return
    cols = st.columns(3)
    cols[0].metric("Scale", f"{result.px_per_mm:.3f} px/mm")
    cols[1].metric("Ticks used", result.n_ticks)
    cols[2].metric("Confidence", f"{result.confidence:.2f}")
    st.image(measured.preview, caption="Detected ticks (magenta lines): they must sit on the ruler's ticks",
             width="stretch")
    if st.button("Save this device profile", key="ruler_save", type="primary"):
        try:
            profile = create_device_profile(store, actor=actor, name=name, ruler_image=data,
                                            tick_spacing_mm=ticks, notes=notes)
        except (TrackerError, ValueError) as exc:
            st.error(str(exc))
        else:
            _flash(f"Saved {profile.name}: {profile.px_per_mm:.3f} px/mm.")


def _add_entered(store, actor) -> None:
    with st.form("device_entered", clear_on_submit=True):
        name = st.text_input("Device name", placeholder="e.g. FotoFinder handyscope, 20x")
        px_per_mm = st.number_input("Scale (px/mm)", min_value=0.0, value=None, step=1.0, format="%.3f")
        notes = st.text_input("Notes", placeholder="where the value comes from")
        if st.form_submit_button("Add device profile"):
            try:
                if px_per_mm is None:
                    raise ValueError("enter the scale in px/mm")
                profile = create_device_profile(store, actor=actor, name=name, px_per_mm=float(px_per_mm),
                                                notes=notes)
            except (TrackerError, ValueError) as exc:
                st.error(str(exc))
            else:
                _flash(f"Added {profile.name}: {profile.px_per_mm:.3f} px/mm.")


def _retire(store, actor, profiles: list[dict]) -> None:
    current = [p for p in profiles if not p["retired"]]
    if not current:
        return
    with st.expander("Retire a device profile"):
        st.caption("When the optics change (another phone, lens or zoom), retire the profile and add a new one. "
                   "Photos taken with it keep its scale.")
        labels = [f"{p['name']} ({p['px_per_mm']:.3f} px/mm)" for p in current]
        label = st.selectbox("Profile", labels, key="retire_choice")
        if st.button("Retire", key="retire_button"):
            chosen = current[labels.index(label)]
            try:
                retire_device_profile(store, chosen["id"], actor=actor)
            except (TrackerError, ValueError) as exc:
                st.error(str(exc))
            else:
                _flash(f"{chosen['name']} retired.")


def _stickers() -> None:
    from tracker.reports.sticker import INSTRUCTIONS

    st.subheader("Fiducial stickers")
    st.markdown("A small printed square stuck on the skin next to the site gives the scale in every close-up, "
                "whatever the zoom, and is left out of the hair count. It is found automatically; a device "
                "profile or a typed-in scale, when given, is used instead and checked against it.")
    cols = st.columns(2)
    size_label = cols[0].selectbox("Marker size", list(_STICKER_SIZES), key="sticker_size")
    page = cols[1].selectbox("Paper", ["A4", "Letter"], key="sticker_page")
    size = _STICKER_SIZES[size_label]
    st.download_button("Download the sticker sheet (PDF)", data=_sticker_pdf(size, page),
                       file_name=f"fiducial-stickers-{size:.2f}mm-{page}.pdf", mime="application/pdf",
                       key="sticker_download")
    st.markdown("**Printing instructions**\n\n" + "\n".join(f"1. {line}" for line in INSTRUCTIONS))
    st.caption("The tracker looks for the 2.54 mm marker by default. The whole sticker, with its white border, "
               "must be in the photo, seen square-on (under about 25 degrees).")


def render() -> None:
    store = get_store()
    actor = require_actor()
    st.title("Scale and devices")
    if actor.role != "clinician":
        st.warning("This page is for clinicians.")
        st.stop()
    st.markdown("Hairs per cm² need the scale of each close-up. A scale **typed in** at upload is used first, "
                "then the **device profile** chosen at upload, then the **fiducial sticker** found in the photo "
                "(recommended: it follows every zoom change). Without any, density is not computed.")
    if flash := st.session_state.pop("devices_flash", None):
        st.success(flash)
    profiles = list_device_profiles(store, actor=actor)
    st.subheader("Device profiles")
    _profiles_table(profiles)
    _retire(store, actor, profiles)
    ruler_tab, entered_tab = st.tabs(["Add from a ruler photo", "Add a known value"])
    with ruler_tab:
        _add_from_ruler(store, actor)
    with entered_tab:
        _add_entered(store, actor)
    _stickers()
