"""Erasure of a patient on request (GDPR art. 17): every record and image, with an audit trail."""

from __future__ import annotations

from sqlalchemy import select, update

from tracker.services.access import Actor, audit, missing, require_clinical
from tracker.store import Analysis, BaselineCache, Patient, Photo, Store, User, Visit


def erase_patient(store: Store, patient_id: int, *, actor: Actor, reason: str) -> dict[str, int]:
    """Delete a patient with all visits, photos, analyses and corrections, and their image blobs.

    Image blobs include the hair masks and the prepared baseline references (reduced grey copies).

    The rows go first in one transaction (so no row can ever point at a deleted blob); then every blob
    that no remaining row uses is deleted (blobs are content-addressed, so an identical image of another
    patient keeps its blob). Accounts linked to the patient are disabled and unlinked. The audit event
    records who erased which patient id, when and why, but no name and no code.

    Returns
    -------
    counts : dict
        ``{"visits", "photos", "analyses", "blobs_deleted", "accounts_disabled"}``.
    """
    require_clinical(actor)
    if not reason.strip():
        raise ValueError("give the reason for the erasure (e.g. 'patient request of 2026-11-20')")
    with store.session() as session, session.begin():
        patient = session.get(Patient, patient_id)
        if patient is None:
            raise missing(actor, f"patient with id {patient_id}")
        photo_rows = session.execute(
            select(Photo.id, Photo.blob_key).join(Visit, Photo.visit_id == Visit.id)
            .where(Visit.patient_id == patient_id)
        ).all()
        photo_ids = [row.id for row in photo_rows]
        mask_keys = session.scalars(
            select(Analysis.mask_blob_key).where(Analysis.photo_id.in_(photo_ids), Analysis.mask_blob_key.is_not(None))
        ).all()
        cache_keys = session.scalars(select(BaselineCache.blob_key).where(BaselineCache.photo_id.in_(photo_ids))).all()
        counts = {
            "visits": len(patient.visits),
            "photos": len(photo_ids),
            "analyses": session.query(Analysis).filter(Analysis.photo_id.in_(photo_ids)).count(),
        }
        disabled = session.execute(
            update(User).where(User.patient_id == patient_id).values(disabled=True, patient_id=None)
        ).rowcount
        session.delete(patient)
    candidates = {row.blob_key for row in photo_rows} | set(mask_keys) | set(cache_keys)
    deleted = 0
    with store.session() as session:
        still_used = set(session.scalars(select(Photo.blob_key).where(Photo.blob_key.in_(candidates))))
        still_used |= set(session.scalars(select(Analysis.mask_blob_key).where(Analysis.mask_blob_key.in_(candidates))))
        still_used |= set(session.scalars(select(BaselineCache.blob_key).where(BaselineCache.blob_key.in_(candidates))))
    for key in sorted(candidates - still_used):
        store.blobs.delete(key)
        deleted += 1
    counts.update(blobs_deleted=deleted, accounts_disabled=disabled)
    audit(store, actor, "patient_erased", object_type="patient", object_id=patient_id,
          details={"reason": reason.strip(), **counts})
    return counts
