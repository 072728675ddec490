"""Real-browser tests: Debian's Chromium driven by Playwright against a real `tracker serve`.

They prove in a browser what the service tests prove in Python: a clinician sees photos; a patient sees
only their own data; media URLs are refused without a login (403) and to another patient's browser;
and the browser talks to no host but this machine. Screenshots go to test-artifacts/ for review.
Skipped only when Chromium or Playwright is missing outside CI (CI installs both: scripts/test.sh).
"""

from __future__ import annotations

from tests import browser_support as bs
from tests.browser_support import expect


def test_media_refused_without_login(server, browser, requests_seen):
    context = bs.new_context(browser, requests_seen)
    page = context.new_page()
    page.goto(server)
    page.get_by_role("button", name="Log in").wait_for(timeout=60_000)
    bs.shot(page, "login")
    assert page.request.get(f"{server}/media/0123456789abcdef0123456789abcdef.png").status == 403
    context.close()
    bs.assert_local_only(requests_seen)


def test_clinician_sees_photos_and_their_urls_are_private(server, browser, demo_store, requests_seen):
    clinician = bs.new_context(browser, requests_seen)
    page = clinician.new_page()
    bs.login(page, server, "clinician", demo_store.demo_accounts["clinician"][1])
    page.get_by_role("heading", name="Progress").wait_for()
    bs.wait_for_charts(page, 2)
    bs.shot(page, "clinician-progress")
    page.get_by_role("link", name="Visit photos").click()
    images = page.locator("img[src*='/media/']")
    expect(images).to_have_count(2, timeout=60_000)  # both photos of the latest visit
    bs.shot(page, "clinician-visit-photos")
    sources = images.evaluate_all("els => els.map(e => e.src)")
    response = page.request.get(sources[0])
    assert response.status == 200 and response.headers["content-type"].startswith("image/")

    stranger = bs.new_context(browser, requests_seen)  # another browser with no login
    assert stranger.new_page().request.get(sources[0]).status == 403

    patient = bs.new_context(browser, requests_seen)  # a logged-in patient holding the clinician's URL
    patient_page = patient.new_page()
    bs.login(patient_page, server, "demo-002", demo_store.demo_accounts["demo-002"][1])
    assert patient_page.request.get(sources[0]).status == 403
    for context in (clinician, stranger, patient):
        context.close()
    bs.assert_local_only(requests_seen)


def test_patient_sees_only_their_own_progress(server, browser, demo_store, requests_seen):
    context = bs.new_context(browser, requests_seen)
    page = context.new_page()
    bs.login(page, server, "demo-001", demo_store.demo_accounts["demo-001"][1])
    page.get_by_role("heading", name="Progress").wait_for()
    bs.wait_for_charts(page, 2)
    bs.shot(page, "patient-progress")
    text = page.inner_text("body")
    assert "DEMO-001" in text and "DEMO-002" not in text
    navigation = page.locator("[data-testid='stSidebarNav']").inner_text()
    assert "My progress" in navigation and "New visit" not in navigation and "Patients" not in navigation
    page.get_by_role("link", name="My photos").click()
    images = page.locator("img[src*='/media/']")
    expect(images).to_have_count(2, timeout=60_000)
    own = images.evaluate_all("els => els.map(e => e.src)")
    assert all(page.request.get(src).status == 200 for src in own)
    context.close()
    bs.assert_local_only(requests_seen)
