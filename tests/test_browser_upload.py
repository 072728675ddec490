"""Real browser: a clinician creates a patient, uploads a visit of two sample photos, sees the progress bar,
the feedback per photo and the new points on the Progress charts; then the patient list.

Runs on a store of its own (the shared demo store's rows are counted by other tests). Screenshots:
test-artifacts/upload-feedback.png, test-artifacts/patients-list.png. The browser must contact no host
but this machine.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests import browser_support as bs
from tests.browser_support import expect
from tests.conftest import SAMPLES

PASSWORD = "a long enough passphrase 42"
VISIT = SAMPLES / "DEMO-001" / "visit-1_2026-01-12"


@pytest.fixture(scope="module")
def upload_server(tmp_path_factory):
    """`tracker serve` on a fresh store with an administrator, a clinician and two other patients."""
    from tracker.accounts import create_user
    from tracker.config import Settings
    from tracker.services import Actor, create_patient
    from tracker.services.patients import update_patient
    from tracker.store import Store

    home = tmp_path_factory.mktemp("upload") / "home"
    store = Store(Settings.from_env(home))
    system = Actor.system("test")
    create_user(store, username="admin-ui", role="admin", password=PASSWORD, actor=system)
    create_user(store, username="dr-ui", role="clinician", password=PASSWORD, actor=system)
    for code, name, next_session in (("P-0001", "Earlier Patient", dt.date.today() - dt.timedelta(days=10)),
                                     ("P-0002", "Another Patient", dt.date.today() + dt.timedelta(days=20))):
        patient = create_patient(store, actor=system, code=code, display_name=name)
        update_patient(store, patient.id, actor=system, next_session_date=next_session)
    store.close()
    with bs.running_server(home) as base:
        yield base


def test_clinician_creates_a_patient_and_uploads_a_visit(upload_server, browser, requests_seen):
    context = bs.new_context(browser, requests_seen)
    page = context.new_page()
    page.set_default_timeout(60_000)
    bs.login(page, upload_server, "dr-ui", PASSWORD)

    page.get_by_role("link", name="Patients").click()
    page.get_by_role("heading", name="Patients").wait_for()
    bs.add_patient(page, "P-0100", "Browser Patient", timeout=60_000)
    expect(page.get_by_text("Patients 1–3 of 3")).to_be_visible()

    page.get_by_role("link", name="Progress").click()
    page.get_by_text("No analysed photos yet for this patient").wait_for()  # the new patient is the current one

    page.get_by_role("link", name="New visit").click()
    page.get_by_role("heading", name="New visit").wait_for()
    expect(page.get_by_text("P-0100 · Browser Patient · 0 earlier visit(s)")).to_be_visible()
    page.locator("input[type='file']").set_input_files([str(VISIT / "vertex.jpg"),
                                                        str(VISIT / "closeup-vertex-1.jpg")])
    scale = page.get_by_role("spinbutton", name="px per mm")
    scale.wait_for()
    scale.fill("197.399")
    scale.press("Enter")
    expect(page.get_by_text("closeup-vertex-1.jpg").first).to_be_visible()
    page.get_by_role("button", name="Save visit and analyse").click()
    page.locator("[data-testid='stProgress']").wait_for()  # shown while the photos are analysed
    page.get_by_text("Visit saved").wait_for(timeout=120_000)
    body = page.inner_text("body")
    assert "vertex.jpg:" in body and "closeup-vertex-1.jpg:" in body
    assert "Done: 2 file(s)" in body
    page.get_by_text("Visit saved").scroll_into_view_if_needed()  # the page scrolls inside the app, not the window
    bs.shot(page, "upload-feedback")

    page.get_by_role("link", name="Progress").click()
    page.get_by_role("heading", name="Progress").wait_for()
    bs.wait_for_charts(page, 2)  # the new visit's close-up density and coverage points
    assert "No analysed photos yet" not in page.inner_text("body")

    page.get_by_role("link", name="Patients").click()
    page.get_by_role("heading", name="Patients").wait_for()
    expect(page.get_by_text("Patients 1–3 of 3")).to_be_visible()
    page.locator("[data-testid='stDataFrame']").wait_for()
    page.wait_for_load_state("networkidle")
    bs.shot(page, "patients-list")
    context.close()
    bs.assert_local_only(requests_seen)
