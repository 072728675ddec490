"""Photos of a visit: safe ingest (decode, strip metadata, dedupe, store) and analysis."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from dataclasses import dataclass

import cv2
import numpy as np
from sqlalchemy import select

from tracker.errors import NotFound, StorageError
from tracker.imaging.decode import DecodedImage, decode_image, encode_clean
from tracker.imaging.roi import GLOBAL_VIEWS
from tracker.pipeline import PhotoAnalysis, analyse_closeup, analyse_global
from tracker.services.access import Actor, audit, missing, require_clinical, require_patient_access
from tracker.services.baselines import baseline_reference, ensure_reference
from tracker.store import Analysis, DeviceProfile, Photo, Store, Visit

SCALE_SOURCES = ("fiducial", "device", "manual")
_SITE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


@dataclass(frozen=True)
class IngestResult:
    """Outcome of adding one photo: the stored row and whether it was already there."""

    photo: Photo
    duplicate: bool


def validate_view(kind: str, view_or_site: str) -> None:
    """Check the kind and the view (global) or site (close-up) name; ValueError otherwise."""
    if kind == "global":
        if view_or_site not in GLOBAL_VIEWS:
            raise ValueError(f"unknown global view {view_or_site!r}; expected one of {', '.join(GLOBAL_VIEWS)}")
    elif kind == "closeup":
        if not _SITE_PATTERN.match(view_or_site):
            raise ValueError(
                f"close-up site {view_or_site!r} must be 1-40 lower-case letters, digits, '-' or '_' (e.g. vertex-1)"
            )
    else:
        raise ValueError(f"kind must be 'global' or 'closeup', got {kind!r}")


def ingest_photo(
    store: Store,
    visit_id: int,
    data: bytes,
    *,
    actor: Actor,
    name: str,
    kind: str,
    view_or_site: str,
    px_per_mm: float | None = None,
    scale_source: str | None = None,
    device_profile_id: int | None = None,
) -> IngestResult:
    """Decode an upload safely and store it under a visit.

    The original bytes are never stored: the decoded pixels (orientation applied) are re-encoded
    without any metadata, the blob is made durable first, and only then is the row committed, so no
    row ever points at a missing blob. The same original uploaded again for the same patient is
    recognised (by its sha256) and not duplicated.

    Scale of a close-up, by precedence: ``px_per_mm`` typed in (``scale_source`` "manual" unless said
    otherwise) > the device profile ``device_profile_id`` it was taken with ("device"; the profile is
    recorded either way) > the fiducial sticker, found when the photo is analysed ("fiducial") > none.

    Raises
    ------
    tracker.errors.ImageRejected
        The data is not an acceptable image (the message names ``name``).
    ValueError
        A bad scale, an unknown scale source, a retired device profile.
    tracker.errors.NotFound
        No device profile with that id.
    """
    require_clinical(actor)
    validate_view(kind, view_or_site)
    if px_per_mm is not None and not (np.isfinite(px_per_mm) and px_per_mm > 0):
        raise ValueError(f"px/mm must be positive, got {px_per_mm}")
    if scale_source is not None and scale_source not in SCALE_SOURCES:
        raise ValueError(f"scale source must be one of {', '.join(SCALE_SOURCES)}")
    if scale_source == "fiducial":
        raise ValueError("the fiducial scale is measured when the photo is analysed, not given at upload")
    if device_profile_id is not None:
        device = _usable_device(store, device_profile_id)
        if px_per_mm is None:
            px_per_mm, scale_source = device.px_per_mm, "device"
    if px_per_mm is not None and scale_source is None:
        scale_source = "manual"
    settings = store.settings
    decoded = decode_image(data, name=name, max_pixels=settings.max_pixels, max_bytes=settings.max_bytes)
    digest = hashlib.sha256(data).hexdigest()
    with store.session() as session:
        visit = session.get(Visit, visit_id)
        if visit is None:
            raise NotFound(f"no visit with id {visit_id}")
        existing = session.scalar(
            select(Photo)
            .join(Visit, Photo.visit_id == Visit.id)
            .where(Visit.patient_id == visit.patient_id, Photo.sha256_original == digest)
        )
        if existing is not None:
            audit(store, actor, "upload_duplicate", object_type="photo", object_id=existing.id)
            return IngestResult(photo=existing, duplicate=True)
        clean, media_type = encode_clean(decoded)
        key = store.blobs.put(clean)
        height, width = decoded.pixels.shape[:2]
        photo = Photo(
            visit_id=visit_id,
            kind=kind,
            view_or_site=view_or_site,
            sha256_original=digest,
            blob_key=key,
            media_type=media_type,
            width=width,
            height=height,
            captured_at=_camera_time(decoded.captured_at),
            px_per_mm=px_per_mm,
            scale_source=scale_source if px_per_mm is not None else None,
            device_profile_id=device_profile_id,
        )
        session.add(photo)
        session.commit()
    audit(store, actor, "upload", object_type="photo", object_id=photo.id,
          details={"visit_id": visit_id, "kind": kind, "view_or_site": view_or_site,
                   "scale_source": photo.scale_source, "device_profile_id": device_profile_id})
    return IngestResult(photo=photo, duplicate=False)


def _usable_device(store: Store, profile_id: int) -> DeviceProfile:
    with store.session() as session:
        device = session.get(DeviceProfile, int(profile_id))
    if device is None:
        raise NotFound(f"no device profile with id {profile_id}")
    if device.retired:
        raise ValueError(f"device profile {device.name!r} is retired: choose a current one")
    return device


def _camera_time(value: dt.datetime | None) -> dt.datetime | None:
    """EXIF times are the camera's wall clock with no zone: kept as that wall-clock time, labelled UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def load_pixels(store: Store, photo_id: int, *, actor: Actor) -> np.ndarray:
    """A stored photo's pixels, (H, W, 3) uint8 RGB (hash verified on read); the view is audited."""
    with store.session() as session:
        row = session.execute(
            select(Photo, Visit.patient_id).join(Visit, Photo.visit_id == Visit.id).where(Photo.id == photo_id)
        ).first()
    if row is None:
        raise missing(actor, f"photo with id {photo_id}")
    photo, patient_id = row
    require_patient_access(actor, patient_id)
    audit(store, actor, "view_photo", object_type="photo", object_id=photo_id)
    return _pixels(store, photo)


def _pixels(store: Store, photo: Photo) -> np.ndarray:
    decoded: DecodedImage = decode_image(store.blobs.get(photo.blob_key), name=f"photo {photo.id}")
    return decoded.pixels


def _baseline_photo(store: Store, photo: Photo) -> Photo:
    """The patient's earliest photo of the same kind and view/site (the photo itself if it is the first)."""
    with store.session() as session:
        patient_id = session.scalar(select(Visit.patient_id).where(Visit.id == photo.visit_id))
        first = session.scalar(
            select(Photo)
            .join(Visit, Photo.visit_id == Visit.id)
            .where(
                Visit.patient_id == patient_id,
                Photo.kind == photo.kind,
                Photo.view_or_site == photo.view_or_site,
            )
            .order_by(Visit.visit_date, Visit.id, Photo.id)
            .limit(1)
        )
        return first if first is not None else photo


def analyse_photo(store: Store, photo_id: int, *, actor: Actor) -> Analysis:
    """Run the pipeline on a stored photo and append an Analysis row (history is never overwritten)."""
    require_clinical(actor)
    analysis = _analyse(store, photo_id)
    audit(store, actor, "analyse", object_type="analysis", object_id=analysis.id,
          details={"photo_id": photo_id, "pipeline_version": analysis.pipeline_version})
    return analysis


def align_manually(
    store: Store, photo_id: int, *, actor: Actor, moving_points: list, reference_points: list
) -> Analysis:
    """Re-analyse a follow-up with a transform from points the clinician picked (the manual fallback).

    ``moving_points`` are ``(x, y)`` pixels in this photo, ``reference_points`` the same landmarks in
    the baseline photo of its view/site (3 pairs: affine, 4: exact homography, more: least squares).
    A new Analysis row is appended with the transform and the points; the automatic one is kept.

    Raises
    ------
    ValueError
        Too few, collinear or duplicated points, or a transform that mirrors the image or whose
        points disagree (the reason says which).
    """
    from tracker.imaging.align import homography_from_points

    require_clinical(actor)
    alignment = homography_from_points(moving_points, reference_points)
    if not alignment.ok:
        raise ValueError(f"these points do not give a usable alignment: {alignment.reason}")
    analysis = _analyse(store, photo_id, manual_alignment=alignment,
                        extra_parameters={"alignment": "manual",
                                          "moving_points": np.asarray(moving_points, float).tolist(),
                                          "reference_points": np.asarray(reference_points, float).tolist()})
    audit(store, actor, "align_manual", object_type="analysis", object_id=analysis.id,
          details={"photo_id": photo_id, "points": len(moving_points)})
    return analysis


def _analyse(
    store: Store, photo_id: int, *, manual_alignment=None, extra_parameters=None, roi: np.ndarray | None = None
) -> Analysis:
    """Run the pipeline on a stored photo against its baseline and append the analysis.

    ``roi`` (global photos) overrides the region carried from the baseline's stored ROI.
    """
    with store.session() as session:
        photo = session.get(Photo, photo_id)
        if photo is None:
            raise NotFound(f"no photo with id {photo_id}")
    pixels = _pixels(store, photo)
    base = _baseline_photo(store, photo)
    if manual_alignment is not None and base.id == photo.id:
        raise ValueError("this photo is the baseline of its view/site: there is nothing to align it to")
    # The baseline as its follow-ups need it, prepared once and stored (never decoded again).
    base_ref = None if base.id == photo.id else baseline_reference(store, base)
    if photo.kind == "closeup":
        # A typed-in or device scale is given; a fiducial one is measured again (it is the photo's own).
        given = photo.scale_source in ("manual", "device") or (
            photo.px_per_mm is not None and photo.scale_source is None)
        result = analyse_closeup(pixels, px_per_mm=photo.px_per_mm if given else None,
                                 scale_source=(photo.scale_source or "manual") if given else None,
                                 baseline=base_ref, manual_alignment=manual_alignment)
        if not given:
            _record_found_scale(store, photo, result)
    else:
        result = analyse_global(pixels, view=photo.view_or_site, baseline=base_ref,
                                roi=roi, baseline_roi=None if base.id == photo.id else _stored_roi(store, base.id),
                                manual_alignment=manual_alignment)
    if extra_parameters:
        result = dataclasses.replace(result, parameters={**result.parameters, **extra_parameters})
    analysis = _save_analysis(store, photo, base, result)
    if base.id == photo.id:  # a baseline: prepare it for its follow-ups now, while its pixels are decoded
        ensure_reference(store, photo, pixels=pixels)
    return analysis


def _record_found_scale(store: Store, photo: Photo, result: PhotoAnalysis) -> None:
    """Keep the photo's scale in step with what its newest analysis found (the sticker's, or none)."""
    scale, source = result.metrics.get("px_per_mm"), result.metrics.get("scale_source")
    if source != "fiducial":
        scale, source = None, None
    if (photo.px_per_mm, photo.scale_source) == (scale, source):
        return
    with store.session() as session:
        row = session.get(Photo, photo.id)
        row.px_per_mm, row.scale_source = scale, source
        session.commit()
    photo.px_per_mm, photo.scale_source = scale, source


def _stored_roi(store: Store, photo_id: int) -> np.ndarray | None:
    """The ROI polygon of a photo's newest analysis (baseline pixels), when one was stored."""
    with store.session() as session:
        parameters = session.scalar(
            select(Analysis.parameters).where(Analysis.photo_id == photo_id).order_by(Analysis.id.desc()).limit(1)
        )
    roi = (parameters or {}).get("roi")
    return None if not roi else np.asarray(roi, float)


def _save_analysis(store: Store, photo: Photo, base: Photo, result: PhotoAnalysis) -> Analysis:
    ok, png = cv2.imencode(".png", result.mask.astype(np.uint8) * 255)
    if not ok:
        raise StorageError(f"could not encode the hair mask of photo {photo.id}")
    mask_key = store.blobs.put(png.tobytes())
    transform = np.eye(3) if base.id == photo.id else result.transform
    quality = dict(result.quality)
    if result.alignment is not None:
        quality["alignment"] = result.alignment
    analysis = Analysis(
        photo_id=photo.id,
        pipeline_version=result.pipeline_version,
        parameters=result.parameters,
        metrics=_json_ready(result.metrics),
        uncertainty=_json_ready(result.uncertainty),
        quality=_json_ready(quality),
        transform=None if transform is None else np.asarray(transform, float).tolist(),
        baseline_photo_id=base.id,
        mask_blob_key=mask_key,
        detections=_json_ready(list(result.detections)),
    )
    with store.session() as session:
        session.add(analysis)
        session.commit()
        return analysis


def latest_analysis(store: Store, photo_id: int, *, actor: Actor) -> Analysis | None:
    """The newest analysis of a photo, or None."""
    with store.session() as session:
        patient_id = session.scalar(
            select(Visit.patient_id).join(Photo, Photo.visit_id == Visit.id).where(Photo.id == photo_id)
        )
        if patient_id is None:
            raise missing(actor, f"photo with id {photo_id}")
        require_patient_access(actor, patient_id)
        return session.scalar(
            select(Analysis).where(Analysis.photo_id == photo_id).order_by(Analysis.id.desc()).limit(1)
        )


def _json_ready(value):
    """Convert numpy scalars/arrays inside nested dicts and lists to plain Python for JSON columns."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
