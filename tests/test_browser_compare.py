"""Real browser: the Compare page and its before/after slider (Debian's Chromium, a real `tracker serve`).

A clinician opens "Compare visits", switches to the slider, moves the split by dragging, by the keyboard
and by a click, and the part of the AFTER photo that shows (its clip region, measured in the DOM) follows;
the exported wipe PNG puts its split where the slider was. A patient opens "Before and after" and sees
only their own photos. The browser talks to no host but this machine. Screenshots: test-artifacts/.
"""

from __future__ import annotations

import io
import re

import numpy as np
from PIL import Image

from tests import browser_support as bs
from tests.browser_support import expect


def _visible_after_width(page) -> float:
    """Width in CSS pixels of the AFTER photo's visible part (stage width minus the clipped inset)."""
    width = page.locator(".ba-stage").evaluate("e => e.getBoundingClientRect().width")
    return width * (1 - bs.slider_split_percent(page) / 100)


def _open_slider(page, link: str) -> None:
    page.get_by_role("link", name=link).click()
    page.get_by_role("heading", name=link).wait_for(timeout=60_000)
    page.get_by_text("Slider", exact=True).click()
    page.locator(".ba-stage img.ba-after").wait_for(timeout=60_000)
    expect(page.locator(".ba-handle")).to_be_visible()
    page.wait_for_function(
        "() => [...document.querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)"
        ".flatMap(r => [...r.querySelectorAll('img.ba-after')]).some(i => i.complete && i.naturalWidth > 0)",
        timeout=30_000)


def _wait_for_rerun(page) -> None:
    page.wait_for_timeout(800)  # the slider reports 350 ms after the last key; then the app reruns
    bs.wait_until_idle(page, 60_000)


def test_clinician_moves_the_slider_and_exports_the_same_split(server, browser, demo_store, requests_seen):
    context = bs.new_context(browser, requests_seen, accept_downloads=True)
    page = context.new_page()
    bs.login(page, server, "clinician", demo_store.demo_accounts["clinician"][1])
    _open_slider(page, "Compare visits")
    handle = page.locator(".ba-handle")
    expect(handle).to_have_attribute("role", "slider")
    expect(handle).to_have_attribute("aria-valuenow", "50")
    assert "on the left" in handle.get_attribute("aria-valuetext")
    assert bs.slider_split_percent(page) == 50.0
    full_half = _visible_after_width(page)

    bs.drag_slider(page, start=0.5, end=0.2)
    assert abs(bs.slider_split_percent(page) - 20.0) < 1.0
    assert _visible_after_width(page) > 1.5 * full_half  # more of AFTER shows
    expect(handle).to_have_attribute("aria-valuenow", "20")

    handle.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    assert abs(bs.slider_split_percent(page) - 25.0) < 1.0
    page.keyboard.press("Shift+ArrowRight")
    assert abs(bs.slider_split_percent(page) - 35.0) < 1.0
    page.keyboard.press("End")
    assert bs.slider_split_percent(page) == 100.0 and _visible_after_width(page) == 0.0
    page.keyboard.press("Home")
    assert bs.slider_split_percent(page) == 0.0

    bs.click_slider(page, at=0.7)
    assert abs(bs.slider_split_percent(page) - 70.0) < 1.0
    _wait_for_rerun(page)
    assert abs(bs.slider_split_percent(page) - 70.0) < 1.0, "the rerun after the report keeps the split"
    bs.shot(page, "compare-slider")

    page.get_by_role("button", name=re.compile("Prepare a PNG")).click()
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name=re.compile("Download the PNG")).click(timeout=60_000)
    with Image.open(io.BytesIO(download.value.path().read_bytes())) as png:
        assert png.format == "PNG" and "exif" not in png.info
        pixels = np.asarray(png.convert("RGB"))
    white_columns = np.flatnonzero((pixels == 255).all(axis=2).mean(axis=0) > 0.8)  # tags, ROI cross it
    assert white_columns.size, "the wipe's split line is in the export"
    assert abs(white_columns.mean() / pixels.shape[1] - 0.70) < 0.02, "the export uses the slider's split"
    context.close()
    bs.assert_local_only(requests_seen)


def test_patient_sees_before_and_after_of_their_own(server, browser, demo_store, requests_seen):
    context = bs.new_context(browser, requests_seen)
    page = context.new_page()
    bs.login(page, server, "demo-001", demo_store.demo_accounts["demo-001"][1])
    _open_slider(page, "Before and after")
    page.locator(".ba-handle").focus()
    page.keyboard.press("ArrowLeft")
    assert abs(bs.slider_split_percent(page) - 49.0) < 1.0
    _wait_for_rerun(page)
    bs.shot(page, "patient-before-after")
    text = page.inner_text("body")
    assert "DEMO-002" not in text and "Compare visits" not in text
    page.get_by_text("Side by side", exact=True).click()
    images = page.locator("img[src*='/media/']")
    expect(images).to_have_count(1, timeout=60_000)
    _wait_for_rerun(page)
    (source,) = images.evaluate_all("els => els.map(e => e.src)")
    status = page.request.get(source).status
    assert status == 200, status
    context.close()
    bs.assert_local_only(requests_seen)
