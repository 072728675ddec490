"""Patients service: editing a patient, the next session date, and the clinic overview (trend, pages, queries)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import event, select

from tracker.errors import NotFound, PermissionDenied
from tracker.services import Actor, create_patient, get_patient, open_visit, timeline
from tracker.services.patients import patient_overview, update_patient
from tracker.store import Analysis, AuditEvent, Photo

CLINICIAN = Actor(username="dr.who", role="clinician", user_id=1)
ADMIN = Actor(username="boss", role="admin", user_id=2)
TODAY = dt.date(2026, 6, 15)


def _patient(store, code="P-1", name="Test Person"):
    return create_patient(store, actor=CLINICIAN, code=code, display_name=name, birth_year=1980, sex="F")


def _events(store, action):
    with store.session() as session:
        return session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


def _measured(store, patient_id, date, *, kind="closeup", view="vertex-1", value=None, sd=None, retake=False):
    """A visit with one photo whose newest analysis has the given primary measure (pipeline not run)."""
    metric = "density_per_cm2" if kind == "closeup" else "hair_coverage"
    visit = open_visit(store, patient_id, actor=CLINICIAN, visit_date=date)
    with store.session() as session:
        photo = Photo(visit_id=visit.id, kind=kind, view_or_site=view, sha256_original=f"{visit.id:064d}",
                      blob_key="0" * 64, media_type="image/png", width=10, height=10)
        session.add(photo)
        session.flush()
        # an older analysis with another value: only the newest analysis of a photo counts
        session.add(Analysis(photo_id=photo.id, pipeline_version="old", parameters={}, metrics={metric: 1e6},
                             uncertainty={}, quality={"retake": False}))
        session.add(Analysis(photo_id=photo.id, pipeline_version="new", parameters={}, metrics={metric: value},
                             uncertainty={} if sd is None else {f"{metric}_sd": sd},
                             quality={"retake": retake, "reasons": ["blurred: retake"] if retake else []}))
        session.commit()
    return visit


# --- update_patient ------------------------------------------------------------------------------------------


def test_update_patient_changes_fields_and_audits_their_names(store):
    patient = _patient(store)
    updated = update_patient(store, patient.id, actor=CLINICIAN, display_name="  Ana Bell ", birth_year=1991,
                             sex="", notes="allergic to lidocaine", next_session_date=dt.date(2026, 7, 1))
    assert (updated.display_name, updated.birth_year, updated.sex) == ("Ana Bell", 1991, None)
    again = get_patient(store, patient.id, actor=CLINICIAN)
    assert again.notes == "allergic to lidocaine" and again.next_session_date == dt.date(2026, 7, 1)
    assert again.code == "P-1"
    events = _events(store, "edit_patient")
    assert len(events) == 1 and events[0].object_id == str(patient.id)
    assert events[0].details == {"fields": ["birth_year", "display_name", "next_session_date", "notes", "sex"]}
    assert "Ana" not in str(events[0].details), "the audit names the fields, not the values"


def test_update_patient_without_change_is_not_audited(store):
    patient = _patient(store)
    update_patient(store, patient.id, actor=CLINICIAN, display_name="Test Person", sex="F")
    assert _events(store, "edit_patient") == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"code": "P-2"}, "cannot edit code"),
        ({"display_name": "  "}, "display name"),
        ({"sex": "female"}, "sex must be"),
        ({"birth_year": 1850}, "birth year"),
        ({"birth_year": 1980.5}, "birth year"),
        ({"notes": None}, "notes"),
        ({"next_session_date": "2026-07-01"}, "must be a date"),
        ({"next_session_date": dt.datetime(2026, 7, 1, tzinfo=dt.UTC)}, "must be a date"),
    ],
)
def test_update_patient_rejects_bad_input_and_changes_nothing(store, fields, message):
    patient = _patient(store)
    with pytest.raises(ValueError, match=message):
        update_patient(store, patient.id, actor=CLINICIAN, **{"display_name": "Changed", **fields})
    assert get_patient(store, patient.id, actor=CLINICIAN).display_name == "Test Person"


def test_update_patient_access(store):
    patient = _patient(store)
    own = Actor(username="p1", role="patient", user_id=3, patient_id=patient.id)
    for actor in (own, ADMIN):
        with pytest.raises(PermissionDenied):
            update_patient(store, patient.id, actor=actor, notes="x")
    with pytest.raises(NotFound):
        update_patient(store, patient.id + 99, actor=CLINICIAN, notes="x")


# --- open_visit with the next session ----------------------------------------------------------------------


def test_open_visit_sets_the_next_session(store):
    patient = _patient(store)
    open_visit(store, patient.id, actor=CLINICIAN, visit_date=dt.date(2026, 1, 10),
               next_session_date=dt.date(2026, 2, 7))
    assert get_patient(store, patient.id, actor=CLINICIAN).next_session_date == dt.date(2026, 2, 7)
    open_visit(store, patient.id, actor=CLINICIAN, visit_date=dt.date(2026, 2, 7))  # none given: kept
    assert get_patient(store, patient.id, actor=CLINICIAN).next_session_date == dt.date(2026, 2, 7)
    assert _events(store, "visit_created")[0].details["next_session_date"] == "2026-02-07"
    with pytest.raises(ValueError, match="cannot be before"):
        open_visit(store, patient.id, actor=CLINICIAN, visit_date=dt.date(2026, 3, 1),
                   next_session_date=dt.date(2026, 2, 1))
    assert len(_events(store, "visit_created")) == 2


# --- patient_overview -------------------------------------------------------------------------------------


def test_overview_visits_last_visit_and_next_session(store):
    a, b, c = _patient(store, "P-A"), _patient(store, "P-B"), _patient(store, "P-C")
    for date in (dt.date(2026, 1, 5), dt.date(2026, 3, 2), dt.date(2026, 2, 1)):
        open_visit(store, a.id, actor=CLINICIAN, visit_date=date)
    update_patient(store, a.id, actor=CLINICIAN, next_session_date=dt.date(2026, 6, 1))  # before TODAY
    update_patient(store, b.id, actor=CLINICIAN, next_session_date=TODAY)
    rows = {r["code"]: r for r in patient_overview(store, actor=CLINICIAN, today=TODAY).rows}
    assert list(rows) == ["P-A", "P-B", "P-C"]
    assert (rows["P-A"]["visits"], rows["P-A"]["last_visit"]) == (3, dt.date(2026, 3, 2))
    assert (rows["P-C"]["visits"], rows["P-C"]["last_visit"], rows["P-C"]["next_session_date"]) == (0, None, None)
    assert [rows[k]["overdue"] for k in ("P-A", "P-B", "P-C")] == [True, False, False]
    assert rows["P-C"]["trend"] is None and rows["P-C"]["latest_change_pct"] is None
    assert c.id in _events(store, "view_patient_list")[-1].details["patient_ids"]


# Each case: photos as (day, kind, view, value, sd, retake); expected (trend, change %, metric, view).
TREND_CASES = {
    "baseline only": ([(1, "closeup", "v-1", 100.0, 5.0, False)], (None, None, None, None)),
    "up beyond noise": ([(1, "closeup", "v-1", 100.0, 5.0, False), (2, "closeup", "v-1", 130.0, 5.0, False)],
                        ("up", 30.0, "density_per_cm2", "v-1")),
    "down beyond noise": ([(1, "closeup", "v-1", 100.0, 5.0, False), (2, "closeup", "v-1", 80.0, 5.0, False)],
                          ("down", -20.0, "density_per_cm2", "v-1")),
    "within noise": ([(1, "closeup", "v-1", 100.0, 5.0, False), (2, "closeup", "v-1", 110.0, 5.0, False)],
                     ("flat", 10.0, "density_per_cm2", "v-1")),  # 10 < 2 * sqrt(5^2 + 5^2) = 14.1
    "noise unknown": ([(1, "closeup", "v-1", 100.0, None, False), (2, "closeup", "v-1", 150.0, None, False)],
                      (None, 50.0, "density_per_cm2", "v-1")),
    "latest retake ignored": ([(1, "closeup", "v-1", 100.0, 5.0, False), (2, "closeup", "v-1", 130.0, 5.0, False),
                               (3, "closeup", "v-1", 10.0, 5.0, True)], ("up", 30.0, "density_per_cm2", "v-1")),
    "retaken baseline skipped": ([(1, "closeup", "v-1", 50.0, 5.0, True), (2, "closeup", "v-1", 100.0, 5.0, False),
                                  (3, "closeup", "v-1", 70.0, 5.0, False)], ("down", -30.0, "density_per_cm2", "v-1")),
    "close-up density before coverage": (
        [(1, "global", "vertex", 0.5, 0.01, False), (1, "closeup", "v-1", 100.0, 5.0, False),
         (2, "global", "vertex", 0.4, 0.01, False), (2, "closeup", "v-1", 104.0, 5.0, False)],
        ("flat", 4.0, "density_per_cm2", "v-1")),
    "coverage when no density": (
        [(1, "global", "vertex", 0.5, 0.01, False), (1, "closeup", "v-1", None, None, False),
         (2, "global", "vertex", 0.6, 0.01, False), (2, "closeup", "v-1", None, None, False)],
        ("up", 20.0, "hair_coverage", "vertex")),
    "newest follow-up of any site": (
        [(1, "closeup", "v-1", 100.0, 5.0, False), (1, "closeup", "v-2", 100.0, 5.0, False),
         (2, "closeup", "v-1", 150.0, 5.0, False), (3, "closeup", "v-2", 60.0, 5.0, False)],
        ("down", -40.0, "density_per_cm2", "v-2")),
}


@pytest.mark.parametrize("case", list(TREND_CASES))
def test_overview_trend(store, case):
    photos, (trend, change, metric, view) = TREND_CASES[case]
    patient = _patient(store)
    visits = {}
    for day, kind, site, value, sd, retake in photos:
        date = dt.date(2026, 1, day)
        visit = _measured(store, patient.id, date, kind=kind, view=site, value=value, sd=sd, retake=retake)
        visits.setdefault(day, visit)
    row = patient_overview(store, actor=CLINICIAN).rows[0]
    assert row["trend"] == trend
    assert (row["trend_metric"], row["trend_view"]) == (metric, view)
    if change is None:
        assert row["latest_change_pct"] is None and row["trend_date"] is None
        return
    assert row["latest_change_pct"] == pytest.approx(change)
    assert row["trend_date"] == dt.date(2026, 1, max(d for d, *_ , r in photos if not r))
    # the same figure and verdict as the timeline's (the Progress page's) for that photo
    frame = timeline(store, patient.id, actor=CLINICIAN)
    same = frame[(frame["view_or_site"] == view) & (frame["visit_date"] == pd.Timestamp(row["trend_date"]))]
    assert same["change_from_baseline_pct"].iloc[0] == pytest.approx(row["latest_change_pct"])
    exceeds = same["change_exceeds_noise"].iloc[0]
    if trend is None:
        assert pd.isna(exceeds)
    else:
        assert not pd.isna(exceeds) and bool(exceeds) == (trend != "flat")


def test_overview_pages_and_search(store):
    for number in range(7):
        _patient(store, f"P-{number}", name=f"Person {number}")
    _patient(store, "X_1", name="Under_score 100%")
    page = patient_overview(store, actor=CLINICIAN, limit=3, offset=3)
    assert [r["code"] for r in page.rows] == ["P-3", "P-4", "P-5"] and page.total == 8
    assert (page.limit, page.offset) == (3, 3)
    assert [r["code"] for r in patient_overview(store, actor=CLINICIAN, limit=3, offset=6).rows] == ["P-6", "X_1"]
    assert patient_overview(store, actor=CLINICIAN, offset=50).rows == []
    assert [r["code"] for r in patient_overview(store, actor=CLINICIAN, search="person 4").rows] == ["P-4"]
    assert [r["code"] for r in patient_overview(store, actor=CLINICIAN, search=" p-6 ").rows] == ["P-6"]
    # LIKE wildcards in the search are literal characters
    assert [r["code"] for r in patient_overview(store, actor=CLINICIAN, search="_").rows] == ["X_1"]
    assert [r["code"] for r in patient_overview(store, actor=CLINICIAN, search="%").rows] == ["X_1"]
    assert patient_overview(store, actor=CLINICIAN, search="nobody").total == 0


@pytest.mark.parametrize("kwargs", [{"limit": 0}, {"limit": 501}, {"limit": 2.5}, {"offset": -1}, {"offset": True}])
def test_overview_rejects_bad_paging(store, kwargs):
    with pytest.raises(ValueError):
        patient_overview(store, actor=CLINICIAN, **kwargs)


def test_overview_access(store):
    first, second = _patient(store, "P-1"), _patient(store, "P-2")
    own = Actor(username="p2", role="patient", user_id=3, patient_id=second.id)
    page = patient_overview(store, actor=own)
    assert [r["code"] for r in page.rows] == ["P-2"] and page.total == 1
    assert patient_overview(store, actor=own, search="P-1").rows == []
    with pytest.raises(PermissionDenied):
        patient_overview(store, actor=ADMIN)
    assert first.id not in _events(store, "view_patient_list")[-1].details["patient_ids"]


def _statements(store, **kwargs) -> int:
    seen = []

    def count(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        rows = patient_overview(store, actor=CLINICIAN, **kwargs).rows
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert rows
    return len(seen)


def test_overview_needs_the_same_number_of_queries_for_many_patients(store):
    def add(first, last):
        for number in range(first, last):
            patient = _patient(store, f"P-{number:03d}")
            for day in (1, 2, 3):
                _measured(store, patient.id, dt.date(2026, 1, day), value=100.0 + day, sd=2.0)

    add(0, 2)
    few = _statements(store)
    add(2, 14)
    many = _statements(store)
    assert many == few
    assert _statements(store, limit=5, offset=5) == few


def test_overview_trend_uses_the_clinicians_correction_like_the_timeline(store):
    """A corrected close-up counts with the corrected density (and is charted again), as on the Progress page."""
    from tracker.store import Correction

    patient = _patient(store)
    _measured(store, patient.id, dt.date(2026, 1, 1), value=100.0, sd=5.0)
    _measured(store, patient.id, dt.date(2026, 2, 1), value=40.0, sd=5.0, retake=True)
    with store.session() as session:
        newest = session.scalars(select(Analysis).order_by(Analysis.id.desc())).first()
        session.add(Correction(analysis_id=newest.id, metrics={"density_per_cm2": 125.0}))
        session.commit()
    row = patient_overview(store, actor=CLINICIAN).rows[0]
    assert (row["trend"], row["latest_change_pct"]) == ("up", pytest.approx(25.0))
    frame = timeline(store, patient.id, actor=CLINICIAN)
    assert frame["change_from_baseline_pct"].iloc[-1] == pytest.approx(25.0)
