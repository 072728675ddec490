"""The consultation report service (tracker.services.reports): access, audit, content, summary sentences."""

from __future__ import annotations

import datetime as dt
import io

import cv2
import numpy as np
import pandas as pd
import pytest
from pypdf import PdfReader
from sqlalchemy import select

from tests.conftest import SAMPLES
from tracker.errors import NotFound, PermissionDenied
from tracker.services import (
    Actor,
    analyse_photo,
    create_patient,
    ingest_photo,
    load_pixels,
    open_visit,
    timeline,
)
from tracker.services.patients import TreatmentInput
from tracker.services.reports import aligned_pair, consultation_report, summary_sentences
from tracker.store import AuditEvent

NAME = "Zoë Łukasiewicz-Ōtsuka"
CLINICIAN = Actor(username="doc", role="clinician")
#: Two visits of the shipped sample series (first and fourth session of DEMO-001): a vertex view and a
#: close-up each, with the close-up's device scale from series.json.
VISITS = [("2026-01-12", 1, "visit-1_2026-01-12", 197.399), ("2026-04-06", 4, "visit-4_2026-04-06", 201.472)]


@pytest.fixture(scope="module")
def clinic(tmp_path_factory):
    """A store with Zoë (two analysed visits), a second patient with no photos; their ids."""
    from tracker.config import Settings
    from tracker.store import Store

    store = Store(Settings.from_env(tmp_path_factory.mktemp("reports") / "home"))
    zoe = create_patient(store, actor=CLINICIAN, code="ZOE-01", display_name=NAME)
    other = create_patient(store, actor=CLINICIAN, code="OTHER-01", display_name="Other Person")
    for day, session, folder, px_per_mm in VISITS:
        visit = open_visit(store, zoe.id, actor=CLINICIAN, visit_date=dt.date.fromisoformat(day),
                           session_number=session, treatments=[TreatmentInput(type="prp", product="PRP kit")])
        for name, kind, view, scale in (("vertex.jpg", "global", "vertex", None),
                                        ("closeup-vertex-1.jpg", "closeup", "vertex-1", px_per_mm)):
            data = (SAMPLES / "DEMO-001" / folder / name).read_bytes()
            photo = ingest_photo(store, visit.id, data, actor=CLINICIAN, name=name, kind=kind, view_or_site=view,
                                 px_per_mm=scale, scale_source="device" if scale else None).photo
            analyse_photo(store, photo.id, actor=CLINICIAN)
    return store, zoe.id, other.id


@pytest.fixture(scope="module")
def pdfs(clinic):
    """The report without the name, made by Zoë herself, and with it, by the clinician (each takes a few
    seconds, so they are made once), with the export events each call added to the audit log."""
    store, zoe, _ = clinic
    made, events = {}, {}
    for flag, actor in ((False, Actor(username="zoe", role="patient", patient_id=zoe)), (True, CLINICIAN)):
        before = len(_exports(store))
        made[flag] = consultation_report(store, zoe, actor=actor, include_name=flag)
        events[flag] = _exports(store)[before:]
    return made, events


def _text(pdf: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(pdf))
    return reader, " ".join(" ".join(p.extract_text() for p in reader.pages).split())


def _exports(store) -> list[AuditEvent]:
    with store.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == "export").order_by(AuditEvent.id)))


def test_report_holds_code_visits_changes_and_name_only_on_request(clinic, pdfs):
    store, zoe, _ = clinic
    frame = timeline(store, zoe, actor=CLINICIAN, audited=False)
    _, plain = _text(pdfs[0][False])
    _, named = _text(pdfs[0][True])
    for text in (plain, named):
        assert "Patient ZOE-01" in text and "12 Jan 2026" in text and "06 Apr 2026" in text
        assert "PRP (PRP kit)" in text
        for sentence in summary_sentences(frame):
            assert sentence in text
    changes = frame.dropna(subset=["change_from_baseline_pct"]).query("change_from_baseline_pct != 0")
    assert len(changes) == 2  # the vertex view and the close-up, fourth session against the first
    for change in changes["change_from_baseline_pct"]:  # whole percent from 10 % on, else one decimal
        shown = f"{change:+.0f} %" if abs(change) >= 9.95 else f"{change:+.1f} %"
        assert f"{shown} since your first session" in plain
    assert NAME in named
    assert "Zoë" not in plain and "Łukasiewicz" not in plain and "Ōtsuka" not in plain


def test_report_embeds_charts_and_both_aligned_pairs(pdfs):
    reader, text = _text(pdfs[0][False])
    images = 0
    for page in reader.pages:
        xobjects = page.get("/Resources", {}).get("/XObject", {})
        images += sum(1 for ref in xobjects.values() if ref.get_object().get("/Subtype") == "/Image")
    assert images == 3 + 2  # charts of density, shaft width and coverage; the close-up and vertex pairs
    assert "Before and after: vertex-1 close-up" in text and "Before and after: vertex view" in text
    assert len(reader.pages) == 1 + 2 + 2 + 1  # cover, two chart pages, two pairs, method


def test_metadata_names_nobody(pdfs):
    for pdf in pdfs[0].values():
        meta = PdfReader(io.BytesIO(pdf)).metadata
        assert "/Author" not in meta
        values = " ".join(str(v) for v in meta.values())
        assert "Zoë" not in values and "Łukasiewicz" not in values and "doc" not in values.split()


def test_each_export_is_audited_for_its_actor(clinic, pdfs):
    _, zoe, _ = clinic
    for flag, username in ((False, "zoe"), (True, "doc")):
        (event,) = pdfs[1][flag]
        assert (event.username, event.object_type, event.object_id) == (username, "patient", str(zoe))
        assert event.details["kind"] == "pdf_report" and event.details["include_name"] is flag
        assert event.details["bytes"] == len(pdfs[0][flag])


@pytest.mark.parametrize("target", ["other", "missing"])
def test_a_patient_gets_no_other_report(clinic, target):
    store, zoe, other = clinic
    me = Actor(username="zoe", role="patient", patient_id=zoe)
    before = len(_exports(store))
    with pytest.raises(PermissionDenied):
        consultation_report(store, other if target == "other" else 9999, actor=me)
    assert len(_exports(store)) == before


def test_an_administrator_gets_no_report(clinic):
    store, zoe, _ = clinic
    with pytest.raises(PermissionDenied):
        consultation_report(store, zoe, actor=Actor(username="boss", role="admin"))


def test_unknown_patient_is_not_found_for_a_clinician(clinic):
    store, _, _ = clinic
    with pytest.raises(NotFound):
        consultation_report(store, 9999, actor=CLINICIAN)


def test_patient_without_analysed_photos_gets_a_clear_message(clinic):
    store, _, other = clinic
    before = len(_exports(store))
    with pytest.raises(ValueError, match="OTHER-01 has no analysed photos yet"):
        consultation_report(store, other, actor=CLINICIAN)
    assert len(_exports(store)) == before


def test_aligned_pair_is_in_the_baseline_frame(clinic):
    store, zoe, _ = clinic
    frame = timeline(store, zoe, actor=CLINICIAN, audited=False)
    for _, group in frame.groupby("view_or_site"):
        first, latest = (int(i) for i in group["photo_id"])
        assert aligned_pair(store, first, actor=CLINICIAN) is None  # the baseline has nothing to align to
        base_id, before, after = aligned_pair(store, latest, actor=CLINICIAN, long_side=640)
        assert base_id == first
        assert before.shape == after.shape and before.dtype == after.dtype == np.uint8
        assert max(before.shape[:2]) == 640
        # in one frame the pair agrees better than the unwarped follow-up does
        raw = load_pixels(store, latest, actor=CLINICIAN)
        raw = cv2.resize(raw, (before.shape[1], before.shape[0]), interpolation=cv2.INTER_AREA)
        valid = after.max(axis=2) > 0
        grey = [cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(float)[valid] for x in (before, after, raw)]
        aligned_r = np.corrcoef(grey[0], grey[1])[0, 1]
        raw_r = np.corrcoef(grey[0], grey[2])[0, 1]
        assert aligned_r > raw_r


# --- summary sentences ----------------------------------------------------------------------------------


def _frame(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["kind", "view_or_site", "visit_date", "retake", "change_from_baseline_pct",
                                        "change_exceeds_noise"])
    frame["visit_date"] = pd.to_datetime(frame["visit_date"])
    frame["change_exceeds_noise"] = frame["change_exceeds_noise"].astype("boolean")
    return frame


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([("closeup", "vertex-1", "2026-01-12", False, 0.0, None),
          ("closeup", "vertex-1", "2026-06-01", False, 12.2, True)],
         ["vertex-1 close-up: density +12 % since your first session (12 Jan 2026 to 01 Jun 2026), "
          "beyond measurement noise."]),
        ([("global", "temporal_left", "2026-01-12", False, 0.0, None),
          ("global", "temporal_left", "2026-03-09", False, -4.26, False)],
         ["temporal left view: hair coverage -4.3 % since your first session (12 Jan 2026 to 09 Mar 2026), "
          "within measurement noise, so not a clear change yet."]),
        ([("global", "vertex", "2026-01-12", False, 0.0, None),
          ("global", "vertex", "2026-02-09", False, 8.0, None)],
         ["vertex view: hair coverage +8.0 % since your first session (12 Jan 2026 to 09 Feb 2026), "
          "the measurement noise of these photos is not known."]),
        ([("closeup", "vertex-1", "2026-01-12", False, 0.0, None)],
         ["vertex-1 close-up: first density measurement on 12 Jan 2026; a change can be shown after the next "
          "session."]),
        ([("global", "vertex", "2026-01-12", False, 0.0, None),
          ("global", "vertex", "2026-02-09", False, 20.0, True),
          ("global", "vertex", "2026-03-09", True, None, None)],
         ["vertex view: hair coverage +20 % since your first session (12 Jan 2026 to 09 Feb 2026), beyond "
          "measurement noise.", "vertex view: the photo of 09 Mar 2026 needs a retake and is not counted."]),
        ([("global", "frontal", "2026-01-12", True, None, None)],
         ["frontal view: no usable measurement yet (the photos need a retake)."]),
        ([("closeup", "crown-2", "2026-01-12", False, None, None)],
         ["crown-2 close-up: hair counts only so far; density needs the scale (magnification) of the photos."]),
        ([], []),
    ],
)
def test_summary_sentences(rows, expected):
    assert summary_sentences(_frame(rows)) == expected


def test_summary_sentences_orders_close_ups_first_then_views():
    frame = _frame([("global", "vertex", "2026-01-12", False, 0.0, None),
                    ("closeup", "vertex-1", "2026-01-12", False, 0.0, None)])
    assert [s.split(":")[0] for s in summary_sentences(frame)] == ["vertex-1 close-up", "vertex view"]


def test_summary_sentences_needs_timeline_columns():
    with pytest.raises(ValueError, match="change_exceeds_noise"):
        summary_sentences(pd.DataFrame({"kind": [], "view_or_site": [], "visit_date": [], "retake": [],
                                        "change_from_baseline_pct": []}))
