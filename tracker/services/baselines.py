"""Prepared baselines in the store: each baseline photo is decoded for its follow-ups once, not at every visit.

:func:`tracker.pipeline_baseline.prepare_baseline` computes what follow-ups need of their baseline photo
(sharpness, sticker, hair region, alignment features at about 1000 px). This module keeps its bytes in the
blob store with a :class:`~tracker.store.BaselineCache` row (photo, version, blob key):

* :func:`baseline_reference` returns the stored reference of a photo, or prepares and stores it (from
  pixels the caller already decoded, when given);
* a reference of another version (an older pipeline) or one that cannot be read is prepared again; the
  old row stays until the photo is erased (erasure deletes the blobs, see
  :func:`tracker.services.erasure.erase_patient`);
* two workers preparing the same baseline at once both succeed: the second insert loses the unique
  constraint race and uses the same content (blobs are content-addressed).

Internal to the services: callers have already checked access (the reference is never shown to anyone).
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tracker.errors import StorageError
from tracker.imaging.decode import decode_image
from tracker.pipeline_baseline import BaselineReference, prepare_baseline, reference_version
from tracker.store import BaselineCache, Photo, Store

__all__ = ["baseline_reference", "ensure_reference", "stored_reference"]


def _stored_key(store: Store, photo_id: int) -> str | None:
    with store.session() as session:
        return session.scalar(
            select(BaselineCache.blob_key).where(
                BaselineCache.photo_id == photo_id, BaselineCache.version == reference_version()
            )
        )


def stored_reference(store: Store, photo_id: int) -> BaselineReference | None:
    """The photo's prepared reference of the current version, or None (none stored, or unreadable)."""
    key = _stored_key(store, photo_id)
    if key is None:
        return None
    try:
        return BaselineReference.from_bytes(store.blobs.get(key))
    except (ValueError, StorageError):  # a missing or damaged blob (tracker scrub reports it): prepare again
        return None


def ensure_reference(store: Store, photo: Photo, *, pixels: np.ndarray) -> None:
    """Prepare and store the photo's reference unless a stored one exists (not read back: it is not needed)."""
    key = _stored_key(store, photo.id)
    if key is None or not store.blobs.exists(key):
        baseline_reference(store, photo, pixels=pixels)


def baseline_reference(store: Store, photo: Photo, *, pixels: np.ndarray | None = None) -> BaselineReference:
    """The prepared reference of a baseline photo: the stored one, else prepared now and stored.

    Parameters
    ----------
    store : Store
    photo : Photo
        The baseline photo (its ``kind`` says what to prepare).
    pixels : ndarray, shape (H, W, 3), uint8, optional
        The photo's decoded pixels when the caller has them (saves decoding it again).

    Returns
    -------
    BaselineReference
    """
    found = stored_reference(store, photo.id)
    if found is not None:
        return found
    if pixels is None:
        pixels = decode_image(store.blobs.get(photo.blob_key), name=f"photo {photo.id}").pixels
    reference = prepare_baseline(pixels, kind=photo.kind)
    try:
        key = store.blobs.put(reference.to_bytes())
    except StorageError:  # e.g. the same bytes stored before and damaged since: use it uncached (scrub reports it)
        return reference
    replaced = None
    with store.session() as session:
        row = session.scalar(select(BaselineCache).where(BaselineCache.photo_id == photo.id,
                                                         BaselineCache.version == reference.version))
        if row is None:
            session.add(BaselineCache(photo_id=photo.id, version=reference.version, blob_key=key))
        elif row.blob_key != key:  # its blob was unreadable: point the row at the new one
            replaced, row.blob_key = row.blob_key, key
        try:
            session.commit()
        except IntegrityError:  # another worker stored it first (same photo, same version): theirs stays
            session.rollback()
            replaced = key
    if replaced is not None:
        _delete_if_unused(store, replaced)
    return reference


def _delete_if_unused(store: Store, key: str) -> None:
    """Delete a reference blob that no row names any more (it holds image-derived data)."""
    with store.session() as session:
        used = session.scalar(select(BaselineCache.id).where(BaselineCache.blob_key == key).limit(1))
    if used is None:
        store.blobs.delete(key)
