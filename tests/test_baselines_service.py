"""Prepared baselines in the store (tracker.services.baselines): made once, reused, remade when unusable."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sqlalchemy import select

from tracker.imaging.decode import decode_image
from tracker.pipeline import analyse_global
from tracker.pipeline_baseline import reference_version
from tracker.services import Actor, analyse_photo, create_patient, ingest_photo, open_visit
from tracker.services.baselines import baseline_reference, stored_reference
from tracker.store import BaselineCache, Photo

from .conftest import SAMPLES

CLINICIAN = Actor(username="dr.quinn", role="clinician", user_id=3)
VISITS = ("visit-1_2026-01-12", "visit-2_2026-02-09")


@pytest.fixture
def vertex_series(store):
    """A patient with the sample vertex photo of two visits, the first analysed (the baseline)."""
    patient = create_patient(store, actor=CLINICIAN, code="B-1", display_name="Bea Baseline")
    photos = []
    for month, folder in enumerate(VISITS, start=1):
        visit = open_visit(store, patient.id, actor=CLINICIAN, visit_date=dt.date(2026, month, 12))
        data = (SAMPLES / "DEMO-001" / folder / "vertex.jpg").read_bytes()
        photos.append(ingest_photo(store, visit.id, data, actor=CLINICIAN, name="vertex.jpg", kind="global",
                                   view_or_site="vertex").photo)
    analyse_photo(store, photos[0].id, actor=CLINICIAN)
    return photos


def _rows(store) -> list[BaselineCache]:
    with store.session() as session:
        return list(session.scalars(select(BaselineCache).order_by(BaselineCache.id)))


def test_a_baseline_is_prepared_once_and_used_by_its_follow_ups(store, vertex_series):
    base, follow = vertex_series
    rows = _rows(store)
    assert [(r.photo_id, r.version) for r in rows] == [(base.id, reference_version())]
    assert store.blobs.exists(rows[0].blob_key)
    analysis = analyse_photo(store, follow.id, actor=CLINICIAN)
    analyse_photo(store, follow.id, actor=CLINICIAN)
    assert [r.id for r in _rows(store)] == [rows[0].id]  # nothing prepared again, no row for the follow-up
    # the stored reference gives what the decoded baseline gives
    with store.session() as session:
        base_px, follow_px = (decode_image(store.blobs.get(session.get(Photo, p.id).blob_key)).pixels
                              for p in (base, follow))
    direct = analyse_global(follow_px, view="vertex", baseline=base_px)
    assert analysis.quality["alignment"]["ok"] and direct.alignment["ok"]
    assert_allclose(np.asarray(analysis.transform), direct.transform, atol=1e-6)
    assert_allclose(analysis.metrics["hair_coverage"], direct.metrics["hair_coverage"], rtol=1e-9)


def test_a_damaged_reference_is_prepared_again(store, vertex_series):
    base, follow = vertex_series
    row = _rows(store)[0]
    good = stored_reference(store, base.id)
    store.blobs.path(row.blob_key).write_bytes(b"damaged")
    assert stored_reference(store, base.id) is None
    again = baseline_reference(store, base)  # same bytes as the damaged blob's name: used, not stored
    assert_allclose(again.alignment.grey, good.alignment.grey)
    analysis = analyse_photo(store, follow.id, actor=CLINICIAN)
    assert analysis.quality["alignment"]["ok"]


def test_a_missing_reference_blob_is_stored_again(store, vertex_series):
    base, _ = vertex_series
    row = _rows(store)[0]
    store.blobs.delete(row.blob_key)
    assert stored_reference(store, base.id) is None
    baseline_reference(store, base)
    assert stored_reference(store, base.id) is not None and [r.id for r in _rows(store)] == [row.id]


def test_a_reference_of_another_version_is_not_used(store, vertex_series):
    base, _ = vertex_series
    with store.session() as session:
        old = session.scalar(select(BaselineCache))
        old.version = "0.0.1+ref0"
        session.commit()
    assert stored_reference(store, base.id) is None
    baseline_reference(store, base)
    assert sorted(r.version for r in _rows(store)) == sorted(["0.0.1+ref0", reference_version()])


def test_analysing_the_baseline_again_keeps_or_restores_its_reference(store, vertex_series):
    base, _ = vertex_series
    row = _rows(store)[0]
    analyse_photo(store, base.id, actor=CLINICIAN)  # present: kept as it is
    assert [(r.id, r.blob_key) for r in _rows(store)] == [(row.id, row.blob_key)]
    store.blobs.delete(row.blob_key)
    analyse_photo(store, base.id, actor=CLINICIAN)  # its blob gone: prepared and stored again
    assert store.blobs.exists(row.blob_key) and stored_reference(store, base.id) is not None
