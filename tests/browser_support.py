"""Shared pieces of the real-browser tests (Debian's Chromium driven by Playwright, a real `tracker serve`).

A browser test module starts with ``from tests import browser_support as bs`` and uses the ``server`` and
``browser`` fixtures of tests/conftest.py (which start the server on a free port and launch Chromium) and
the helpers here: :func:`new_context`, :func:`login`, :func:`submit_form`, :func:`add_patient`,
:func:`wait_until_idle`, :func:`shot`, :func:`assert_local_only`,
:func:`wait_for_charts`, :func:`drag_slider`, :func:`click_slider`, :func:`slider_split_percent`.
Importing this module skips the importing test module only when Chromium or
Playwright is missing outside CI (CI installs both: scripts/test.sh). Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.conftest import REPO

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if not Path(CHROMIUM).exists() and not os.environ.get("CI"):
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)
if not os.environ.get("CI"):
    pytest.importorskip("playwright.sync_api")

from playwright.sync_api import expect, sync_playwright  # noqa: E402, F401  (CI: a missing install fails loudly)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(home: Path) -> Iterator[str]:
    """`tracker serve` on a free port with ``TRACKER_HOME=home``; yields the base URL."""
    port = free_port()
    env = {**os.environ, "TRACKER_HOME": str(home)}
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


@contextmanager
def launched_chromium():
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def new_context(browser, requests_seen: list, **options):
    """A fresh browser context (own cookies) that records every request URL into ``requests_seen``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, **options)
    context.on("request", lambda request: requests_seen.append(request.url))
    return context


def login(page, base: str, username: str, password: str) -> None:
    page.goto(base)
    page.get_by_role("textbox", name="User name").fill(username)
    password_box = page.get_by_role("textbox", name="Password")
    password_box.fill(password)
    submit_form(page, "Log in", page.get_by_text("Logged in as"), timeout=60_000,
                still_filled=lambda: password_box.is_visible() and password_box.input_value() == password)


def wait_until_idle(page, timeout: float = 120_000) -> None:
    """Until the app's script run ends (Streamlit's "Running..." status widget is gone)."""
    page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden", timeout=timeout)


def submit_form(page, button: str, done, *, still_filled, timeout: float = 120_000) -> None:
    """Click the form's submit button BUTTON and wait until the locator DONE is visible.

    Streamlit's front end can drop a click on a button while a text field has focus (streamlit#8725). A
    dropped submit leaves the app idle and the form as it was, which ``still_filled()`` tells; only then is
    the button clicked a second time. An error box fails at once, with its text.
    """
    page.keyboard.press("Tab")  # leave the text field before the click
    for _ in range(2):
        page.get_by_role("button", name=button).click()
        started = time.monotonic()
        while time.monotonic() - started < timeout / 1000:
            if done.is_visible():
                return
            errors = page.locator("[data-testid='stAlertContentError'], [data-testid='stException']")
            if errors.count():
                raise AssertionError(f"{button!r} failed: {errors.first.inner_text()}")
            running = page.locator("[data-testid='stStatusWidget']").is_visible()
            if time.monotonic() - started > 5 and not running and still_filled():
                break  # the click was dropped
            page.wait_for_timeout(250)
        else:
            raise AssertionError(f"{button!r}: nothing within {timeout / 1000:.0f} s:\n{page.inner_text('body')}")
    raise AssertionError(f"{button!r} was clicked twice and nothing happened:\n{page.inner_text('body')}")


def add_patient(page, code: str, display_name: str, *, timeout: float = 120_000) -> None:
    """On the Patients page: open "Add a patient", fill the code and the name, submit, wait for "Added CODE"
    (the form clears itself when submitted, so a code still in its field means the click was dropped)."""
    wait_until_idle(page, timeout)  # the page's first run has ended: no rerun can replace the form
    page.get_by_text("Add a patient").click()
    code_box = page.get_by_role("textbox", name="Pseudonymous code")
    code_box.fill(code)
    page.get_by_role("textbox", name="Display name").first.fill(display_name)
    submit_form(page, "Add patient", page.get_by_text(f"Added {code}"), timeout=timeout,
                still_filled=lambda: code_box.input_value() == code)


def wait_for_charts(page, count: int) -> None:
    charts = page.locator(".vega-embed canvas, .vega-embed svg.marks")
    for index in range(count):
        charts.nth(index).wait_for(timeout=60_000)
    page.wait_for_load_state("networkidle")  # fonts (bundled, local) and images


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def assert_local_only(requests_seen: list) -> None:
    hosts = {urlparse(url).hostname for url in requests_seen if url.startswith("http")}
    assert hosts <= LOCAL_HOSTS, f"the browser contacted {hosts - LOCAL_HOSTS}"


def slider_split_percent(page) -> float:
    """Where the before/after slider splits: the AFTER layer's clip inset, in % of the stage width."""
    clip = page.locator(".ba-after-clip").evaluate("e => getComputedStyle(e).clipPath")
    match = re.fullmatch(r"inset\(0px 0px 0px ([0-9.]+)%\)", clip)
    assert match, clip
    return float(match.group(1))


def _slider_row(page) -> tuple[dict, float]:
    page.locator(".ba-stage").scroll_into_view_if_needed()
    stage = page.locator(".ba-stage").bounding_box()
    return stage, stage["y"] + min(stage["height"] / 2, 120)  # in the viewport even when warnings push it down


def drag_slider(page, *, start: float, end: float) -> None:
    """Drag the before/after slider from ``start`` to ``end`` (fractions of the stage width) with the mouse."""
    stage, y = _slider_row(page)
    page.mouse.move(stage["x"] + stage["width"] * start, y)
    page.mouse.down()
    page.mouse.move(stage["x"] + stage["width"] * end, y, steps=8)
    page.mouse.up()


def click_slider(page, *, at: float) -> None:
    """Click the before/after slider's stage at ``at`` (a fraction of its width)."""
    stage, y = _slider_row(page)
    page.mouse.click(stage["x"] + stage["width"] * at, y)
