"""Real browser, end to end (issue #5 "How it is tested"): the clinician's visit workflow, then the patient's view.

One test walks the whole flow in order, in Debian's Chromium against a real `tracker serve` on a store of
its own (two other patients, one with an analysed photo, so a scope leak would show):

1. a clinician logs in and creates a patient on "Patients"; the patient's account is linked to it with the
   accounts API, and the patient (own browser context) sees an empty "My progress" with no clinician advice;
2. uploads a first visit (DEMO-001 visit 1: a vertex view and a close-up) on "New visit", with the date and
   the dermoscope scale typed in, and sees the progress bar and the feedback per photo;
3. uploads a second visit (DEMO-001 visit 4) and sees the Progress table grow from 2 to 4 rows;
4. opens "Compare visits", picks the slider, drags it and moves it with the keyboard: the AFTER photo's clip
   region (in the DOM) follows;
5. prepares and downloads the PDF report (page count, patient code, both visit dates, the summary's
   "since ... %" read with pypdf) and the CSV (four rows of this patient, both dates);
6. the patient (an account linked with the accounts API) logs in in a new browser context: "My progress"
   shows their code and no other patient's, no clinician page is linked, a direct URL to /patients lists
   nobody, and they download their own report (after a /_stcore/health ping, which re-masks Streamlit's
   XSRF cookie: the media guard must still serve the file).

Throughout: no Streamlit exception box on any page, a screenshot per step (test-artifacts/workflow-*.png), and
the browser requests nothing but this machine. Four photos are uploaded in all; the module takes about a minute.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from pypdf import PdfReader

from tests import browser_support as bs
from tests.browser_support import expect
from tests.conftest import SAMPLES

PASSWORD = "workflow passphrase 2026"
CODE = "WF-0100"
OTHER_CODES = ("DEMO-001", "DEMO-002")  # the demo series' codes, held here by other patients
#: The two visits uploaded: (folder, date, close-up scale in px/mm from sample_images/series.json).
VISITS = ((SAMPLES / "DEMO-001" / "visit-1_2026-01-12", dt.date(2026, 1, 12), "197.399"),
          (SAMPLES / "DEMO-001" / "visit-4_2026-04-06", dt.date(2026, 4, 6), "201.472"))
WAIT = 120_000  # ms: generous, the machine may be shared and slow


@pytest.fixture(scope="module")
def workflow_server(tmp_path_factory):
    """`tracker serve` on a fresh store: an administrator, a clinician and two other patients (DEMO-002 with
    one analysed close-up). Yields (base URL, store) so the test can add the patient's account."""
    from tracker.accounts import create_user
    from tracker.config import Settings
    from tracker.services import Actor, analyse_photo, create_patient, ingest_photo, open_visit
    from tracker.store import Store

    home = tmp_path_factory.mktemp("workflow") / "home"
    store = Store(Settings.from_env(home))
    system = Actor.system("test")
    create_user(store, username="admin-wf", role="admin", password=PASSWORD, actor=system)
    create_user(store, username="dr-wf", role="clinician", password=PASSWORD, actor=system)
    create_patient(store, actor=system, code="DEMO-001", display_name="Alex Demo")
    other = create_patient(store, actor=system, code="DEMO-002", display_name="Sam Demo")
    visit = open_visit(store, other.id, actor=system, visit_date=dt.date(2026, 1, 14))
    data = (SAMPLES / "DEMO-002" / "visit-1_2026-01-14" / "closeup-vertex-1.jpg").read_bytes()
    photo = ingest_photo(store, visit.id, data, actor=system, name="closeup-vertex-1.jpg", kind="closeup",
                         view_or_site="vertex-1", px_per_mm=198.513, scale_source="device").photo
    analyse_photo(store, photo.id, actor=system)
    with bs.running_server(home) as base:
        yield base, store
    store.close()


def _step(page, name: str) -> None:
    """Screenshot of a finished step, after checking that no Streamlit exception box is on the page."""
    page.wait_for_load_state("networkidle")
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
    bs.shot(page, f"workflow-{name}")


def _open(page, link: str) -> None:
    page.get_by_role("link", name=link, exact=True).click()
    page.get_by_role("heading", name=link).wait_for()


def _wait_for_rerun(page) -> None:
    page.wait_for_timeout(800)  # the slider reports 350 ms after the last key; then the app reruns
    bs.wait_until_idle(page, WAIT)


def _set_date(page, label: str, day: dt.date) -> None:
    """Type DAY into the date field LABEL (segments year / month / day), then leave the field."""
    page.get_by_role("spinbutton", name=f"year, {label}").click()
    page.keyboard.type(f"{day:%Y%m%d}", delay=50)
    page.keyboard.press("Tab")
    field = page.locator("[data-testid='stDateInput']").filter(has_text=label)
    expect(field.locator("input[type='date']")).to_have_value(day.isoformat())


def _upload_visit(page, folder, day: dt.date, scale: str, earlier: int) -> None:
    _open(page, "New visit")
    expect(page.get_by_text(f"{CODE} · Workflow Patient · {earlier} earlier visit(s)")).to_be_visible()
    _set_date(page, "Visit date", day)
    page.locator("input[type='file']").set_input_files([str(folder / "vertex.jpg"),
                                                        str(folder / "closeup-vertex-1.jpg")])
    px_per_mm = page.get_by_role("spinbutton", name="px per mm")
    px_per_mm.wait_for()
    px_per_mm.fill(scale)
    px_per_mm.press("Enter")
    expect(px_per_mm).to_have_value(f"{float(scale):.2f}")  # shown with two decimals
    expect(page.locator("[data-testid='stDateInput'] input[type='date']").first).to_have_value(day.isoformat())
    page.get_by_role("button", name="Save visit and analyse").click()
    page.locator("[data-testid='stProgress']").wait_for()  # shown while the photos are analysed
    page.get_by_text("Visit saved").wait_for(timeout=240_000)
    body = page.inner_text("body")
    for name in ("vertex.jpg", "closeup-vertex-1.jpg"):  # one feedback box per photo (the last visit's folded)
        feedback = page.locator("[data-testid^='stAlertContent']").filter(has_text=f"{name}:", visible=True)
        expect(feedback).to_have_count(1)
        kind = feedback.get_attribute("data-testid")
        assert kind in ("stAlertContentSuccess", "stAlertContentWarning"), (kind, feedback.inner_text())  # charted
        assert len(feedback.inner_text()) > len(name) + 10
    assert "Done: 2 file(s)" in body
    assert f"{day:%d %b %Y}, 2 of 2 photo(s) analysed" in body, body
    page.get_by_text("Visit saved").scroll_into_view_if_needed()  # the page scrolls inside the app


def _expect_table_rows(page, rows: int) -> None:
    """The Measurements table (a glide data grid) has ROWS rows: its accessible twin counts the header too."""
    grid = page.locator("[data-testid='stDataFrame'] table[role='grid']").last
    expect(grid).to_have_attribute("aria-rowcount", str(rows + 1), timeout=WAIT)


def _progress_rows(page, rows: int) -> None:
    _open(page, "Progress")
    expect(page.get_by_text(f"{CODE} · Workflow Patient")).to_be_visible()
    bs.wait_for_charts(page, 2)  # close-up density and global coverage
    _expect_table_rows(page, rows)


def _move_slider(page) -> None:
    _open(page, "Compare visits")
    page.get_by_text("Slider", exact=True).click()
    page.locator(".ba-stage img.ba-after").wait_for(timeout=WAIT)
    handle = page.locator(".ba-handle")
    expect(handle).to_have_attribute("aria-valuenow", "50")
    assert bs.slider_split_percent(page) == 50.0
    tags = page.locator(".ba-stage").inner_text()
    assert f"{VISITS[0][1]:%d %b %Y}" in tags and f"{VISITS[1][1]:%d %b %Y}" in tags, tags  # baseline vs latest

    bs.drag_slider(page, start=0.5, end=0.3)
    assert abs(bs.slider_split_percent(page) - 30.0) < 1.0
    expect(handle).to_have_attribute("aria-valuenow", "30")
    handle.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+ArrowRight")
    assert abs(bs.slider_split_percent(page) - 43.0) < 1.0
    expect(handle).to_have_attribute("aria-valuenow", "43")
    _wait_for_rerun(page)
    assert abs(bs.slider_split_percent(page) - 43.0) < 1.0, "the rerun after the report keeps the split"


def _download(page, prepare: str, download: str) -> bytes:
    page.get_by_role("button", name=prepare).click()
    button = page.get_by_role("button", name=download)
    button.wait_for(timeout=WAIT)
    bs.wait_until_idle(page, WAIT)  # a run still going may be replaced by the next one, and its file with it
    with page.expect_download(timeout=WAIT) as info:
        button.click()
    failure = info.value.failure()
    assert failure is None, f"the download of {info.value.suggested_filename} failed: {failure}"
    return info.value.path().read_bytes()


def _check_report(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert len(reader.pages) >= 3, len(reader.pages)
    flat = " ".join(text.split())
    assert CODE in flat
    for _, day, _ in VISITS:
        assert f"{day:%d %b %Y}" in flat, day
    assert re.search(r"[+-][0-9.]+ ?% since your first session", flat), flat[:3000]  # the summary
    assert not any(code in flat for code in OTHER_CODES)
    return flat


def _check_csv(data: bytes) -> None:
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    assert len(rows) == 4, rows  # two photos in each of two visits
    assert {row["patient_code"] for row in rows} == {CODE}
    assert {row["visit_date"] for row in rows} == {day.isoformat() for _, day, _ in VISITS}
    assert sorted((row["kind"], row["view_or_site"]) for row in rows) == [
        ("closeup", "vertex-1"), ("closeup", "vertex-1"), ("global", "vertex"), ("global", "vertex")]


def _link_patient_account(store) -> None:
    from tracker.accounts import create_user, find_patient_id
    from tracker.services import Actor

    create_user(store, username="wf-patient", role="patient", password=PASSWORD,
                patient_id=find_patient_id(store, CODE), actor=Actor.system("test"))


def _patient_logs_in(browser, base: str, requests_seen: list):
    context = bs.new_context(browser, requests_seen, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(WAIT)
    bs.login(page, base, "wf-patient", PASSWORD)
    page.get_by_role("heading", name="Progress").wait_for()
    return context, page


def _only_own_pages(page) -> None:
    """The patient's navigation: their own pages, no clinician page."""
    navigation = page.locator("[data-testid='stSidebarNav']")
    for own in ("My progress", "Before and after", "My photos"):
        expect(navigation.get_by_role("link", name=own, exact=True)).to_have_count(1)
    for clinician_page in ("Patients", "New visit", "Check and correct", "Compare visits", "Visit photos",
                           "Scale and devices", "Accounts and audit"):
        expect(page.get_by_role("link", name=clinician_page, exact=True)).to_have_count(0)


def _only_own_data(page) -> None:
    expect(page.get_by_text(f"{CODE} · Workflow Patient")).to_be_visible()
    body = page.inner_text("body")
    assert not any(code in body for code in OTHER_CODES), body
    expect(page.get_by_role("heading", name="Patients")).to_have_count(0)
    expect(page.get_by_text("Add a patient")).to_have_count(0)
    expect(page.get_by_text(re.compile(r"Patients \d+–\d+ of \d+"))).to_have_count(0)


def test_clinician_workflow_then_the_patient_sees_only_their_own(workflow_server, browser, requests_seen):
    base, store = workflow_server
    clinician = bs.new_context(browser, requests_seen, accept_downloads=True)
    page = clinician.new_page()
    page.set_default_timeout(WAIT)
    bs.login(page, base, "dr-wf", PASSWORD)

    # 1. A new patient (who becomes the current one), and the patient's account linked to it.
    _open(page, "Patients")
    bs.add_patient(page, CODE, "Workflow Patient", timeout=WAIT)
    expect(page.get_by_text("Patients 1–3 of 3")).to_be_visible()
    _step(page, "01-patient-created")
    _link_patient_account(store)
    patient, patient_page = _patient_logs_in(browser, base, requests_seen)  # before any visit: empty, own only
    expect(patient_page.get_by_text("No analysed photos yet: your clinic adds them at your visits.")).to_be_visible()
    _only_own_data(patient_page)
    _only_own_pages(patient_page)
    assert "New visit" not in patient_page.inner_text("body")  # no advice to use a page they do not have
    _step(patient_page, "02-patient-before-any-visit")
    patient.close()

    # 2. The first visit, with the progress bar and the feedback per photo.
    (first, first_day, first_scale), (second, second_day, second_scale) = VISITS
    _upload_visit(page, first, first_day, first_scale, earlier=0)
    _step(page, "03-first-visit-uploaded")
    _progress_rows(page, 2)
    body = page.inner_text("body")
    assert f"first density measurement on {first_day:%d %b %Y}" in body, body
    assert "since your first session" not in body  # one visit: no change to state yet
    _step(page, "04-progress-one-visit")

    # 3. The second visit: the chart and the table gain its points.
    _upload_visit(page, second, second_day, second_scale, earlier=1)
    _step(page, "05-second-visit-uploaded")
    _progress_rows(page, 4)
    body = " ".join(page.inner_text("body").split())
    span = f"({first_day:%d %b %Y} to {second_day:%d %b %Y})"
    for place, what in (("vertex-1 close-up", "density"), ("vertex view", "hair coverage")):
        assert re.search(rf"{place}: {what} [+-][0-9.]+ % since your first session {re.escape(span)}", body), body
    _step(page, "06-progress-two-visits")

    # 4. Compare: the before/after slider, by mouse and by keyboard.
    _move_slider(page)
    _step(page, "07-compare-slider")

    # 5. The PDF report and the CSV, from Progress.
    _open(page, "Progress")
    bs.wait_for_charts(page, 2)
    flat = _check_report(_download(page, "Prepare report", "Download the report (PDF)"))
    assert "Workflow Patient" not in flat  # the name is printed only when asked
    _check_csv(_download(page, "Prepare CSV", "Download the measurements (CSV)"))
    _step(page, "08-report-downloaded")
    clinician.close()

    # 6. The patient, in a browser of their own: their data only, their own report.
    patient, page = _patient_logs_in(browser, base, requests_seen)
    bs.wait_for_charts(page, 2)
    _expect_table_rows(page, 4)
    _only_own_data(page)
    _only_own_pages(page)
    _step(page, "09-patient-progress")
    # The page pings /_stcore/health at each (re)connection and Streamlit answers with a re-masked XSRF
    # cookie: the downloads must still be served (the media guard once refused them after that: 403).
    assert page.request.get(f"{base}/_stcore/health").ok
    _check_report(_download(page, "Prepare report", "Download the report (PDF)"))
    _step(page, "10-patient-report-downloaded")

    # A clinician page's URL: first inside the logged-in session (history navigation), then as a new page load.
    page.evaluate("() => { history.pushState({}, '', '/patients');"
                  " dispatchEvent(new PopStateEvent('popstate', {state: {}})); }")
    expect(page).not_to_have_url(re.compile(r"/patients$"))  # the app handled it: no such page for a patient
    page.get_by_text("Logged in as").wait_for()
    _only_own_data(page)
    page.goto(f"{base}/patients")  # a new page load starts a new session: logged out
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Page not found")
    dialog.get_by_role("button", name="Close").click()
    page.get_by_role("textbox", name="User name").fill("wf-patient")
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("Logged in as").wait_for()
    _only_own_data(page)
    _only_own_pages(page)
    _step(page, "11-patient-direct-url")
    patient.close()
    bs.assert_local_only(requests_seen)
