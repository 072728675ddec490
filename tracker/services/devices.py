"""Device calibration profiles: the px/mm of one dermoscope + phone + zoom, from a ruler photo or entered.

A close-up uploaded with a profile gets the profile's scale (``Photo.scale_source = "device"``, see
:func:`tracker.services.photos.ingest_photo`). A profile is never edited or deleted once photos may
point at it: when the optics change, retire it and create a new one (retired profiles stay listed for
the photos that used them, and cannot be chosen for new uploads). Creating and retiring are audited;
both need a clinician (or the command line's system actor).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from sqlalchemy import select

from tracker.errors import ImageRejected, NotFound
from tracker.imaging.decode import decode_image
from tracker.imaging.ruler import RulerResult, measure_ruler
from tracker.services.access import Actor, audit, require_clinical
from tracker.store import DeviceProfile, Store

#: Plausible device scales (px/mm): a phone macro lens is about 20, a 70x trichoscope 250-600.
PX_PER_MM_RANGE = (1.0, 5000.0)
_NAME_MAX = 120


@dataclass(frozen=True)
class RulerMeasurement:
    """A ruler photo measured for a device profile: its pixels, the result, and a preview.

    ``preview`` is the photo (RGB uint8, same size) with the fitted tick positions drawn over it as thin
    lines across the ruler, so a clinician can check that they sit on the printed ticks (only when
    ``result.found``; else the photo unchanged).
    """

    pixels: np.ndarray
    result: RulerResult
    preview: np.ndarray


def _check_name(name: str) -> str:
    clean = " ".join(str(name or "").split())
    if not clean:
        raise ValueError("a device profile needs a name, e.g. 'DermLite DL4 on iPhone 14, 1x'")
    if len(clean) > _NAME_MAX:
        raise ValueError(f"a device profile name has at most {_NAME_MAX} characters")
    return clean


def check_px_per_mm(value: float) -> float:
    """The value as a float, or ValueError unless it is a finite scale within :data:`PX_PER_MM_RANGE`."""
    try:
        scale = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"px/mm must be a number, got {value!r}") from exc
    low, high = PX_PER_MM_RANGE
    if not (math.isfinite(scale) and low <= scale <= high):
        raise ValueError(f"px/mm must be between {low:g} and {high:g}, got {value!r}")
    return scale


def measure_ruler_photo(
    store: Store, data: bytes, *, actor: Actor, name: str = "ruler photo", tick_spacing_mm: float = 1.0
) -> RulerMeasurement:
    """Decode a ruler photo (same safe decoding as uploads) and measure its px/mm; nothing is stored.

    Raises
    ------
    tracker.errors.ImageRejected
        Not an acceptable image.
    """
    require_clinical(actor)
    settings = store.settings
    pixels = decode_image(data, name=name, max_pixels=settings.max_pixels, max_bytes=settings.max_bytes).pixels
    result = measure_ruler(pixels, tick_spacing_mm=tick_spacing_mm)
    return RulerMeasurement(pixels=pixels, result=result, preview=ruler_preview(pixels, result))


def ruler_preview(image: np.ndarray, result: RulerResult) -> np.ndarray:
    """The ruler photo with the fitted tick positions drawn as lines across the ruler (a copy).

    The phase of the tick comb is the phase of the image's component at the fitted period along the
    fitted direction (the component the ruler's ticks dominate), so the lines land on the ticks when
    the fit is right and visibly off them when it is not.
    """
    out = np.array(image, dtype=np.uint8, copy=True)
    if not result.found or result.period_px is None or result.direction_deg is None:
        return out
    h, w = out.shape[:2]
    theta = math.radians(result.direction_deg)
    c, s = math.cos(theta), math.sin(theta)
    grey = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY).astype(np.float64) if out.ndim == 3 else out.astype(np.float64)
    ys, xs = np.mgrid[0:h, 0:w]
    u = xs * c + ys * s
    phase = np.angle(np.sum((grey.mean() - grey) * np.exp(-2j * np.pi * u / result.period_px)))
    u0 = phase / (2 * np.pi) * result.period_px
    lo, hi = float(u.min()), float(u.max())
    k0, k1 = math.ceil((lo - u0) / result.period_px), math.floor((hi - u0) / result.period_px)
    diag = math.hypot(h, w)
    colour = (255, 0, 255) if out.ndim == 3 else 255
    thickness = max(1, round(min(h, w) / 600))
    for k in range(k0, k1 + 1):
        uk = u0 + k * result.period_px
        # the line u = uk, perpendicular to the direction, through the image
        px, py = uk * c, uk * s
        p1 = (round(px - diag * s), round(py + diag * c))
        p2 = (round(px + diag * s), round(py - diag * c))
        cv2.line(out, p1, p2, colour, thickness, cv2.LINE_8)
    return out


def create_device_profile(
    store: Store,
    *,
    actor: Actor,
    name: str,
    px_per_mm: float | None = None,
    ruler_image: bytes | None = None,
    tick_spacing_mm: float = 1.0,
    notes: str = "",
) -> DeviceProfile:
    """Add a device profile, from an entered px/mm or from a ruler photo (exactly one of the two).

    Parameters
    ----------
    name : str
        Unique, e.g. "DermLite DL4 + iPhone 14, 1x".
    px_per_mm : float, optional
        The scale, entered (``source="entered"``).
    ruler_image : bytes, optional
        A photo of a millimetre ruler taken with the device (``source="ruler"``), measured with
        :func:`tracker.imaging.ruler.measure_ruler`; its pixels are not kept.
    tick_spacing_mm : float
        Spacing of the ruler's finest ticks (1.0, or 0.5 for a half-millimetre ruler).

    Raises
    ------
    ValueError
        Neither or both given, a bad name or scale, a name already used.
    tracker.errors.ImageRejected
        The ruler photo is not an image, or its ticks could not be measured (the reason says why).
    """
    require_clinical(actor)
    clean = _check_name(name)
    if (px_per_mm is None) == (ruler_image is None):
        raise ValueError("give either px/mm or a ruler photo, not both or neither")
    details: dict = {}
    if ruler_image is not None:
        measured = measure_ruler_photo(store, ruler_image, actor=actor, tick_spacing_mm=tick_spacing_mm)
        ruler = measured.result
        if not ruler.found:
            raise ImageRejected(f"could not measure the ruler in this photo ({ruler.reason}): take it again with "
                                "at least 5 sharp millimetre ticks across the frame")
        scale, source = check_px_per_mm(ruler.px_per_mm), "ruler"
        details = {"n_ticks": ruler.n_ticks, "confidence": round(ruler.confidence, 4),
                   "tick_spacing_mm": tick_spacing_mm, "residual_px": ruler.residual_px}
    else:
        scale, source = check_px_per_mm(px_per_mm), "entered"
    with store.session() as session:
        if session.scalar(select(DeviceProfile.id).where(DeviceProfile.name == clean)) is not None:
            raise ValueError(f"a device profile called {clean!r} already exists (retire it to replace it)")
        profile = DeviceProfile(name=clean, px_per_mm=scale, source=source, notes=str(notes or ""))
        session.add(profile)
        session.commit()
    audit(store, actor, "device_add", object_type="device_profile", object_id=profile.id,
          details={"name": clean, "px_per_mm": scale, "source": source, **details})
    return profile


def list_device_profiles(store: Store, *, actor: Actor, include_retired: bool = True) -> list[dict]:
    """The profiles, newest first, as dicts: id, name, px_per_mm, source, notes, retired, created_at."""
    require_clinical(actor)
    query = select(DeviceProfile).order_by(DeviceProfile.retired, DeviceProfile.id.desc())
    if not include_retired:
        query = query.where(DeviceProfile.retired.is_(False))
    with store.session() as session:
        rows = session.scalars(query).all()
    return [
        {"id": p.id, "name": p.name, "px_per_mm": p.px_per_mm, "source": p.source, "notes": p.notes,
         "retired": bool(p.retired), "created_at": p.created_at.isoformat() if p.created_at else None}
        for p in rows
    ]


def get_device_profile(store: Store, profile_id: int, *, actor: Actor) -> DeviceProfile:
    """One profile; NotFound when there is none with this id."""
    require_clinical(actor)
    with store.session() as session:
        profile = session.get(DeviceProfile, int(profile_id))
    if profile is None:
        raise NotFound(f"no device profile with id {profile_id}")
    return profile


def retire_device_profile(store: Store, profile_id: int, *, actor: Actor) -> DeviceProfile:
    """Retire a profile: kept for the photos that used it, no longer offered for new uploads."""
    require_clinical(actor)
    with store.session() as session:
        profile = session.get(DeviceProfile, int(profile_id))
        if profile is None:
            raise NotFound(f"no device profile with id {profile_id}")
        if profile.retired:
            return profile
        profile.retired = True
        session.commit()
    audit(store, actor, "device_retire", object_type="device_profile", object_id=profile.id,
          details={"name": profile.name})
    return profile
