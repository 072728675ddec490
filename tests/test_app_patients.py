"""AppTest of the clinician's Patients and New visit pages on a fresh store of their own.

Patients: create, edit, search, pages of the list, choosing the current patient. New visit: treatments,
next session, two sample photos and three bad files at once, with feedback per file; a re-upload is
recognised; the trend shows in the list after a follow-up visit.
"""

from __future__ import annotations

import datetime as dt

import pytest
from streamlit.testing.v1 import AppTest

from tests.bad_inputs import png_bomb
from tests.conftest import REPO, SAMPLES
from tracker.services import Actor, create_patient, get_patient, list_visits, timeline
from tracker.services.patients import patient_overview, update_patient

APP = str(REPO / "app.py")
PASSWORD = "a long enough passphrase 42"
SYSTEM = Actor.system("test")
PATIENTS_PAGE, VISIT_PAGE = "dashboard/pages/patients.py", "dashboard/pages/new_visit.py"


@pytest.fixture
def clinic(store):
    """A fresh store with an administrator and a clinician (no demo data: other tests count the demo store's rows)."""
    from tracker.accounts import create_user

    create_user(store, username="admin-test", role="admin", password=PASSWORD, actor=SYSTEM)
    create_user(store, username="dr-test", role="clinician", password=PASSWORD, actor=SYSTEM)
    return store


def _login(monkeypatch, store) -> AppTest:
    monkeypatch.setenv("TRACKER_HOME", str(store.settings.home))
    for name in ("TRACKER_DATABASE_URL", "TRACKER_STORAGE_URL"):
        monkeypatch.delenv(name, raising=False)
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.text_input[0].input("dr-test")
    at.text_input[1].input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert any("Logged in as **dr-test**" in c.value for c in at.sidebar.caption), "login failed"
    return at


def _table(at):
    return at.dataframe[0].value


def _button(at, label):
    return next(b for b in at.button if b.label == label)


def _by_key(widgets, prefix):
    return next(w for w in widgets if (w.key or "").startswith(prefix))


def _messages(at) -> str:
    parts = [m.value for kind in ("success", "warning", "error", "info") for m in getattr(at, kind)]
    return "\n".join(parts)


def test_patients_page_create_edit_search_and_pages(monkeypatch, clinic):
    for number in range(12):
        create_patient(clinic, actor=SYSTEM, code=f"P-{number:03d}", display_name=f"Person {number}")
    at = _login(monkeypatch, clinic)
    at.switch_page(PATIENTS_PAGE).run()
    assert not at.exception, at.exception
    table = _table(at)
    assert list(table.columns) == ["Code", "Name", "Visits", "Last visit", "Next session", "Trend"]
    assert len(table) == 12 and set(table["Trend"]) == {"–"} and set(table["Visits"]) == {0}

    # pages of 10
    at.selectbox(key="patients_page_size").select(10).run()
    assert _table(at)["Code"].tolist() == [f"P-{n:03d}" for n in range(10)]
    assert "Patients 1–10 of 12" in [m.value for m in at.markdown]
    assert _button(at, "◀ Previous").disabled
    _button(at, "Next ▶").click().run()
    assert _table(at)["Code"].tolist() == ["P-010", "P-011"] and _button(at, "Next ▶").disabled
    _button(at, "◀ Previous").click().run()
    assert _table(at)["Code"].iloc[0] == "P-000"

    # search (back to the first page), no match, cleared
    at.text_input(key="patient_search").input("person 11").run()
    assert _table(at)["Code"].tolist() == ["P-011"]
    at.text_input(key="patient_search").input("nobody").run()
    assert not at.dataframe and "No patient matches this search." in _messages(at)
    at.text_input(key="patient_search").input("").run()

    # create: the new patient becomes the current one and is listed at once
    at.text_input[1].input("P-0042")
    at.text_input[2].input("New Patient")
    _button(at, "Add patient").click().run()
    assert not at.exception, at.exception
    assert any("Added P-0042" in s.value for s in at.success)
    new_id = get_patient(clinic, "P-0042", actor=SYSTEM).id
    assert at.session_state["patient_id"] == new_id
    assert at.selectbox(key="patients_current").value == new_id

    # edit the current patient; the list shows the change and the overdue next session
    at.text_input(key=f"edit_name_{new_id}").input("Renamed Patient")
    at.number_input(key=f"edit_birth_{new_id}").set_value(1975)
    at.selectbox(key=f"edit_sex_{new_id}").select("F")
    at.date_input(key=f"edit_next_{new_id}").set_value(dt.date.today() - dt.timedelta(days=3))
    at.text_area(key=f"edit_notes_{new_id}").input("prefers mornings")
    _button(at, "Save changes").click().run()
    assert not at.exception, at.exception
    assert any("Saved the changes to P-0042" in s.value for s in at.success)
    saved = get_patient(clinic, new_id, actor=SYSTEM)
    assert (saved.display_name, saved.birth_year, saved.sex, saved.notes) == ("Renamed Patient", 1975, "F",
                                                                              "prefers mornings")
    at.text_input(key="patient_search").input("renamed").run()
    row = _table(at).iloc[0]
    assert row["Name"] == "Renamed Patient" and row["Next session"].endswith("(overdue)")

    # an invalid edit says why and changes nothing
    at.text_input(key=f"edit_name_{new_id}").input("   ")
    _button(at, "Save changes").click().run()
    assert any("display name" in e.value for e in at.error)
    assert get_patient(clinic, new_id, actor=SYSTEM).display_name == "Renamed Patient"

    # choose another current patient; the New visit page follows
    at.text_input(key="patient_search").input("").run()
    other = get_patient(clinic, "P-003", actor=SYSTEM).id
    at.selectbox(key="patients_current").select(other).run()
    assert at.session_state["patient_id"] == other
    at.switch_page(VISIT_PAGE).run()
    assert not at.exception and any("P-003" in c.value for c in at.caption)


def _photos(visit_index: int) -> list[tuple[str, bytes, str]]:
    folder = sorted((SAMPLES / "DEMO-001").iterdir())[visit_index]
    return [(name, (folder / name).read_bytes(), "image/jpeg") for name in ("vertex.jpg", "closeup-vertex-1.jpg")]


def _fill_visit(at, files, *, date, scale=197.399):
    at.date_input(key=f"visit_date_{at.session_state['upload_round']}").set_value(date)
    at.file_uploader[0].set_value(files).run()
    _by_key(at.number_input, "scale_").set_value(scale).run()
    _button(at, "Save visit and analyse").click().run()
    assert not at.exception, at.exception


def test_new_visit_uploads_photos_with_feedback_per_file(monkeypatch, clinic):
    patient = create_patient(clinic, actor=SYSTEM, code="P-100", display_name="Upload Person")
    at = _login(monkeypatch, clinic)
    at.switch_page(VISIT_PAGE).run()
    assert at.number_input(key="session_0").value == 1

    # two treatments, a next session date
    at.selectbox(key="t_type_0_0").select("mesotherapy")
    at.text_input(key="t_product_0_0").input("biotin cocktail")
    at.text_input(key="t_dose_0_0").input("2 ml")
    _button(at, "Add another treatment").click().run()
    at.selectbox(key="t_type_0_1").select("prp")
    at.date_input(key="next_session_0").set_value(dt.date(2026, 2, 9))
    truncated = _photos(0)[0][1][:20_000]
    bad = [("scan.jpg", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "image/jpeg"),
           ("cut.jpg", truncated, "image/jpeg"), ("bomb.png", png_bomb(), "image/png")]
    files = _photos(0) + bad
    at.date_input(key="visit_date_0").set_value(dt.date(2026, 1, 12))
    at.file_uploader[0].set_value(files).run()
    kinds = [at.selectbox(key=f"kind_0_{i}").value for i in range(5)]
    assert kinds[:2] == ["global", "closeup"], "kind guessed from the file name"
    assert at.selectbox(key="view_0_0").value == "vertex" and at.text_input(key="site_0_1").value == "vertex-1"
    at.number_input(key="scale_0_1").set_value(197.399).run()
    _button(at, "Save visit and analyse").click().run()
    assert not at.exception, at.exception

    assert len(at.progress) == 1
    feedback = _messages(at)
    for name in ("vertex.jpg", "closeup-vertex-1.jpg"):
        assert f"**{name}**: " in feedback
    assert "**scan.jpg**: could not be read as a photo (not an image (PDF document))" in feedback
    assert "**cut.jpg**: could not be read as a photo (" in feedback and "truncated or corrupt" in feedback
    assert "**bomb.png**: could not be read as a photo (" in feedback and "20000 x 20000" in feedback
    assert feedback.count("Export it again") == 3
    assert any("Visit saved (12 Jan 2026, 2 of 5 photo(s) analysed)" in s.value for s in at.success)

    (visit,) = list_visits(clinic, patient.id, actor=SYSTEM)
    assert (visit.visit_date, visit.session_number, len(visit.photos)) == (dt.date(2026, 1, 12), 1, 2)
    assert [(t.type, t.product, t.dose) for t in visit.treatments] == [("mesotherapy", "biotin cocktail", "2 ml"),
                                                                       ("prp", "", "")]
    assert get_patient(clinic, patient.id, actor=SYSTEM).next_session_date == dt.date(2026, 2, 9)
    assert len(timeline(clinic, patient.id, actor=SYSTEM)) == 2

    # the next run: an empty form for the next visit, the last results kept in an expander
    at.run()
    assert not at.file_uploader[0].value and at.number_input(key="session_1").value == 2
    assert any("Last saved visit: 12 Jan 2026, 2 of 5" in e.label for e in at.expander)

    # the same file again is recognised; a follow-up visit gives the list its trend
    _fill_visit(at, [_photos(0)[0], *_photos(1)[1:]], date=dt.date(2026, 2, 9))
    assert "**vertex.jpg**: this exact file is already stored for this patient (an earlier visit)" in _messages(at)
    assert any("1 of 2 photo(s) analysed" in s.value for s in at.success)
    row = patient_overview(clinic, actor=SYSTEM).rows[0]
    assert row["visits"] == 2 and row["trend_metric"] == "density_per_cm2" and row["latest_change_pct"] is not None
    at.switch_page(PATIENTS_PAGE).run()
    assert _table(at)["Trend"].iloc[0].startswith(("↑", "↓", "→")) and "% density (vertex-1)" in \
        _table(at)["Trend"].iloc[0]


def test_photo_feedback_words():
    from dashboard.upload_page import photo_feedback

    assert photo_feedback({"retake": False, "flags": []}) == ("success", ["analysed, quality ok"])
    level, lines = photo_feedback({"retake": False, "flags": ["no_scale"]})
    assert level == "warning" and lines[0].startswith("no scale sticker found: density not available.")
    level, lines = photo_feedback({"retake": True, "flags": ["blurred", "no_scale"]})
    assert level == "error" and lines[0].startswith("blurred: retake. Hold the camera steady")
    assert len(lines) == 2
    level, lines = photo_feedback({"retake": False, "flags": ["overlay_excluded"]})
    assert level == "warning" and lines[0].startswith("text or drawings the dermoscope burnt into the photo")
    level, lines = photo_feedback({"retake": True, "flags": ["something_new"]})
    assert level == "error" and lines == ["something new. Check the photo."]


def test_patient_cannot_open_the_clinician_pages(monkeypatch, clinic):
    from tracker.accounts import create_user

    patient = create_patient(clinic, actor=SYSTEM, code="P-200", display_name="Own Person")
    update_patient(clinic, patient.id, actor=SYSTEM, notes="x")
    create_user(clinic, username="p-200", role="patient", password=PASSWORD, patient_id=patient.id, actor=SYSTEM)
    monkeypatch.setenv("TRACKER_HOME", str(clinic.settings.home))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.text_input[0].input("p-200")
    at.text_input[1].input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception
    for page in (PATIENTS_PAGE, VISIT_PAGE):
        with pytest.raises(ValueError):
            at.switch_page(page)
