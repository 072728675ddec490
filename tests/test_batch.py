"""Tests of tracker.services.batch: a visit analysed with 1 or 2 worker processes stores the same analyses."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sqlalchemy import func, select

from tests.conftest import SAMPLES
from tracker.config import Settings
from tracker.errors import NotFound, PermissionDenied
from tracker.imaging.roi import carry_roi
from tracker.services import Actor, create_patient, ingest_photo, open_visit
from tracker.services.batch import analyse_visit
from tracker.services.roi import set_roi
from tracker.store import Analysis, AuditEvent, Photo, Store

CLINICIAN = Actor(username="dr.batch", role="clinician", user_id=1)
VISIT_1 = SAMPLES / "DEMO-001" / "visit-1_2026-01-12"
VISIT_2 = SAMPLES / "DEMO-001" / "visit-2_2026-02-09"


def _seed(home: Path, folders: tuple[Path, ...] = (VISIT_1, VISIT_2)) -> tuple[Store, list[int]]:
    """A patient with a baseline visit and a follow-up visit, each with a vertex photo and a close-up."""
    store = Store(Settings.from_env(home))
    patient = create_patient(store, actor=CLINICIAN, code="B-1", display_name="Batch Person")
    visits = [open_visit(store, patient.id, actor=CLINICIAN, visit_date=dt.date(2026, 1 + i, 12))
              for i in range(len(folders))]
    for folder, visit in zip(folders, visits, strict=True):
        ingest_photo(store, visit.id, (folder / "vertex.jpg").read_bytes(), actor=CLINICIAN, name="vertex.jpg",
                     kind="global", view_or_site="vertex")
        ingest_photo(store, visit.id, (folder / "closeup-vertex-1.jpg").read_bytes(), actor=CLINICIAN,
                     name="closeup.jpg", kind="closeup", view_or_site="vertex-1", px_per_mm=200.0)
    return store, [visit.id for visit in visits]


def _figures(outcomes) -> list[tuple]:
    return [(o.photo_id, o.analysis.baseline_photo_id, o.analysis.metrics, o.analysis.parameters,
             o.analysis.transform) for o in outcomes]


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    store, visits = _seed(tmp_path_factory.mktemp("seq") / "home")
    return store, [analyse_visit(store, v, actor=CLINICIAN, workers=1) for v in visits]


def test_two_workers_store_the_same_analyses_as_one(sequential, tmp_path):
    _, expected = sequential
    store, visits = _seed(tmp_path / "home")
    parallel = [analyse_visit(store, v, actor=CLINICIAN, workers=2) for v in visits]
    for one, two in zip(expected, parallel, strict=True):
        assert all(o.ok for o in one + two), [o.error for o in one + two]
        for a, b in zip(_figures(one), _figures(two), strict=True):
            assert a[:2] == b[:2] and a[3] == b[3]
            assert a[2].keys() == b[2].keys()
            for key, value in a[2].items():
                if isinstance(value, float):
                    assert_allclose(b[2][key], value, rtol=1e-9, err_msg=key)
                else:
                    assert b[2][key] == value, key
            if a[4] is not None:
                assert_allclose(np.asarray(b[4]), np.asarray(a[4]), rtol=1e-9, atol=1e-9)
    with store.session() as session:  # one analysis and one audit event per photo, chain intact
        assert session.scalar(select(func.count(Analysis.id))) == 4
        assert session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "analyse")) == 4


def test_follow_up_uses_the_baseline_visit(sequential):
    _, (first, second) = sequential
    base_ids = {o.analysis.parameters.get("view", "closeup"): o.photo_id for o in first}
    for outcome in second:
        view = outcome.analysis.parameters.get("view", "closeup")
        assert outcome.analysis.baseline_photo_id == base_ids[view]


def test_a_baseline_inside_the_batch_is_analysed_first(tmp_path):
    """Two vertex photos in one visit: the second is aligned to the first, whose ROI must be stored before."""
    store = Store(Settings.from_env(tmp_path / "home"))
    patient = create_patient(store, actor=CLINICIAN, code="B-2", display_name="Same Visit")
    visit = open_visit(store, patient.id, actor=CLINICIAN, visit_date=dt.date(2026, 1, 12))
    ids = [ingest_photo(store, visit.id, (folder / "vertex.jpg").read_bytes(), actor=CLINICIAN, name="v.jpg",
                        kind="global", view_or_site="vertex").photo.id for folder in (VISIT_1, VISIT_2)]
    # A custom ROI on the first photo: analysing it again stores the view's default ROI, which the second
    # photo must then carry. Run together, the second would read the custom ROI still stored.
    set_roi(store, ids[0], [(500, 400), (1100, 400), (1100, 800), (500, 800)], actor=CLINICIAN)
    outcomes = analyse_visit(store, visit.id, actor=CLINICIAN, workers=2)
    assert [o.photo_id for o in outcomes] == ids
    first, second = (o.analysis for o in outcomes)
    assert first.id < second.id  # stored in dependency order
    assert second.baseline_photo_id == ids[0]
    assert second.quality["alignment"]["ok"]
    # Its ROI is the baseline's newly stored ROI carried through the transform.
    carried = carry_roi(np.asarray(first.parameters["roi"]), np.asarray(second.transform))
    assert_allclose(np.asarray(second.parameters["roi"]), carried, atol=0.01)


def test_subset_and_failures_are_reported_per_photo(tmp_path):
    workers = 2  # the 1-worker path runs the same _analyse_one in this process
    store, (first,) = _seed(tmp_path / "home", (VISIT_1,))
    with store.session() as session:
        photos = sorted(session.scalars(select(Photo).where(Photo.visit_id == first)), key=lambda p: p.id)
    damaged = store.blobs.path(photos[0].blob_key)
    damaged.chmod(0o600)
    damaged.write_bytes(b"not the stored photo any more")  # fails its hash check on read
    outcomes = analyse_visit(store, first, actor=CLINICIAN, workers=workers)
    assert [o.photo_id for o in outcomes] == [p.id for p in photos]
    assert not outcomes[0].ok and outcomes[0].error.startswith(f"photo {photos[0].id}: ")
    assert "\n" not in outcomes[0].error
    assert outcomes[1].ok and outcomes[1].error is None
    only = analyse_visit(store, first, actor=CLINICIAN, workers=workers, photo_ids=[photos[1].id])
    assert [o.photo_id for o in only] == [photos[1].id] and only[0].ok
    assert only[0].analysis.id != outcomes[1].analysis.id  # re-analysis adds a row
    with pytest.raises(NotFound):
        analyse_visit(store, first, actor=CLINICIAN, photo_ids=[10_000])


@pytest.mark.parametrize("bad", [{"workers": 0}, {"workers": -2}])
def test_bad_worker_count(store, bad):
    with pytest.raises(ValueError, match="workers"):
        analyse_visit(store, 1, actor=CLINICIAN, **bad)


def test_needs_a_clinician_and_an_existing_visit(store):
    with pytest.raises(PermissionDenied):
        analyse_visit(store, 1, actor=Actor(username="pat", role="patient", patient_id=1))
    with pytest.raises(NotFound):
        analyse_visit(store, 12345, actor=CLINICIAN)
