"""Real browser: a clinician opens "Check and correct", clicks on a close-up to add a hair mark, saves, and the
count changes. Runs on its own store (one close-up) so the shared demo store stays read-only."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sqlalchemy import select

from tests import browser_support as bs
from tests.browser_support import expect
from tests.conftest import SAMPLES

PASSWORD = "correct horse battery 42"


@pytest.fixture(scope="module")
def correct_server(tmp_path_factory):
    from tracker.accounts import create_user
    from tracker.config import Settings
    from tracker.services import Actor, analyse_photo, create_patient, ingest_photo, open_visit
    from tracker.store import Store

    store = Store(Settings.from_env(tmp_path_factory.mktemp("correct") / "home"))
    system = Actor.system("test")
    create_user(store, username="admin", role="admin", password=PASSWORD, actor=system)
    create_user(store, username="doc", role="clinician", password=PASSWORD, actor=system)
    patient = create_patient(store, actor=system, code="BC-1", display_name="Browser Correct")
    visit = open_visit(store, patient.id, actor=system, visit_date=dt.date(2026, 1, 12))
    data = (SAMPLES / "DEMO-001" / "visit-1_2026-01-12" / "closeup-vertex-1.jpg").read_bytes()
    photo = ingest_photo(store, visit.id, data, actor=system, name="closeup.jpg", kind="closeup",
                         view_or_site="vertex-1", px_per_mm=197.4, scale_source="device").photo
    analysis = analyse_photo(store, photo.id, actor=system)
    with bs.running_server(store.settings.home) as base:
        yield base, store, photo, analysis


def _free_spot(analysis, photo) -> tuple[float, float]:
    """A point of the photo far from every detected hair mark (so a click there adds one)."""
    marks = np.array([[d["x"], d["y"]] for d in analysis.detections])
    radius = max(8.0, 0.02 * max(photo.width, photo.height))
    for y in np.linspace(60, photo.height - 60, 15):
        for x in np.linspace(60, photo.width - 60, 15):
            if len(marks) == 0 or np.hypot(*(marks - [x, y]).T).min() > 3 * radius:
                return float(x), float(y)
    raise AssertionError("no free spot on the sample close-up")


def test_clinician_adds_a_mark_and_the_count_changes(correct_server, browser, requests_seen):
    from tracker.store import Correction

    base, store, photo, analysis = correct_server
    automatic = analysis.metrics["hair_count"]
    context = bs.new_context(browser, requests_seen)
    page = context.new_page()
    bs.login(page, base, "doc", PASSWORD)
    page.get_by_role("link", name="Check and correct").click()
    page.get_by_role("heading", name="Check and correct").wait_for(timeout=60_000)
    frame = page.locator(".ic-frame")
    expect(frame).to_be_visible(timeout=60_000)
    expect(page.locator(".ic-auto")).to_have_count(len(analysis.detections), timeout=60_000)
    x, y = _free_spot(analysis, photo)
    box = frame.bounding_box()
    frame.click(position={"x": x * box["width"] / photo.width, "y": y * box["height"] / photo.height})
    expect(page.get_by_text("1 to add, 0 to remove")).to_be_visible(timeout=60_000)
    expect(page.locator(".ic-add")).to_have_count(1, timeout=60_000)
    page.get_by_role("button", name="Save corrections").click()
    expect(page.get_by_text(f"Correction saved: {automatic + 1} hairs (automatic {automatic})")).to_be_visible(
        timeout=60_000)
    expect(page.locator(".ic-manual")).to_have_count(1, timeout=60_000)
    expect(page.get_by_text("Corrected (saved)")).to_be_visible(timeout=60_000)
    page.wait_for_load_state("networkidle")
    bs.shot(page, "correct-closeup")
    with store.session() as session:
        row = session.scalars(select(Correction)).one()
    # The click arrived in image pixels (display scaling undone) within a display pixel or two.
    scale = photo.width / box["width"]
    assert abs(row.added[0]["x"] - x) <= 2 * scale and abs(row.added[0]["y"] - y) <= 2 * scale
    assert row.metrics["hair_count"] == automatic + 1
    context.close()
    bs.assert_local_only(requests_seen)
