"""Real-browser tests: Debian's Chromium driven by Playwright against a real `tracker serve`.

They prove in a browser what the service tests prove in Python: a clinician sees photos; a patient sees
only their own data; media URLs are refused without a login (403) and to another patient's browser;
and the browser talks to no host but this machine. Screenshots go to test-artifacts/ for review.
Skipped only when Chromium or Playwright is missing outside CI (CI installs both: scripts/test.sh).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.conftest import REPO

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


if not Path(CHROMIUM).exists() and not os.environ.get("CI"):
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)
if not os.environ.get("CI"):
    pytest.importorskip("playwright.sync_api")

from playwright.sync_api import expect, sync_playwright  # noqa: E402  (CI: a missing install fails loudly)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(demo_store):
    port = _free_port()
    env = {**os.environ, "TRACKER_HOME": str(demo_store.settings.home)}
    process = subprocess.Popen([sys.executable, "-m", "tracker.cli", "serve", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                    if response.read() == b"ok":
                        break
            except OSError:
                time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def requests_seen():
    return []


def _context(browser, requests_seen):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.on("request", lambda request: requests_seen.append(request.url))
    return context


def _login(page, base, username, password):
    page.goto(base)
    page.get_by_role("textbox", name="User name").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("Logged in as").wait_for(timeout=60_000)


def _wait_for_charts(page, count: int) -> None:
    charts = page.locator(".vega-embed canvas, .vega-embed svg.marks")
    for index in range(count):
        charts.nth(index).wait_for(timeout=60_000)
    page.wait_for_load_state("networkidle")  # fonts (bundled, local) and images


def _shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _assert_local_only(requests_seen):
    hosts = {urlparse(url).hostname for url in requests_seen if url.startswith("http")}
    assert hosts <= LOCAL_HOSTS, f"the browser contacted {hosts - LOCAL_HOSTS}"


def test_media_refused_without_login(server, browser, requests_seen):
    context = _context(browser, requests_seen)
    page = context.new_page()
    page.goto(server)
    page.get_by_role("button", name="Log in").wait_for(timeout=60_000)
    _shot(page, "login")
    assert page.request.get(f"{server}/media/0123456789abcdef0123456789abcdef.png").status == 403
    context.close()
    _assert_local_only(requests_seen)


def test_clinician_sees_photos_and_their_urls_are_private(server, browser, demo_store, requests_seen):
    clinician = _context(browser, requests_seen)
    page = clinician.new_page()
    _login(page, server, "clinician", demo_store.demo_accounts["clinician"][1])
    page.get_by_role("heading", name="Progress").wait_for()
    _wait_for_charts(page, 2)
    _shot(page, "clinician-progress")
    page.get_by_role("link", name="Visit photos").click()
    images = page.locator("img[src*='/media/']")
    expect(images).to_have_count(2, timeout=60_000)  # both photos of the latest visit
    _shot(page, "clinician-visit-photos")
    sources = images.evaluate_all("els => els.map(e => e.src)")
    response = page.request.get(sources[0])
    assert response.status == 200 and response.headers["content-type"].startswith("image/")

    stranger = _context(browser, requests_seen)  # another browser with no login
    assert stranger.new_page().request.get(sources[0]).status == 403

    patient = _context(browser, requests_seen)  # a logged-in patient holding the clinician's URL
    patient_page = patient.new_page()
    _login(patient_page, server, "demo-002", demo_store.demo_accounts["demo-002"][1])
    assert patient_page.request.get(sources[0]).status == 403
    for context in (clinician, stranger, patient):
        context.close()
    _assert_local_only(requests_seen)


def test_patient_sees_only_their_own_progress(server, browser, demo_store, requests_seen):
    context = _context(browser, requests_seen)
    page = context.new_page()
    _login(page, server, "demo-001", demo_store.demo_accounts["demo-001"][1])
    page.get_by_role("heading", name="Progress").wait_for()
    _wait_for_charts(page, 2)
    _shot(page, "patient-progress")
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
    _assert_local_only(requests_seen)
