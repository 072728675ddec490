"""Shared fixtures: a fresh store per test, the shipped sample series, the optional shared data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_images"
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def store(tmp_path):
    """An empty store (SQLite + local blobs) in a temporary folder."""
    from tracker.config import Settings
    from tracker.store import Store

    return Store(Settings.from_env(tmp_path / "home"))


@pytest.fixture(scope="session")
def manifest() -> dict:
    return json.loads((SAMPLES / "series.json").read_text())


@pytest.fixture(scope="session")
def sample_photos(manifest) -> list[dict]:
    """Every photo entry of the sample series, with absolute paths."""
    photos = []
    for patient in manifest["patients"]:
        for visit in patient["visits"]:
            for photo in visit["photos"]:
                photos.append({**photo, "path": SAMPLES / photo["file"], "truth_path": SAMPLES / photo["truth"],
                               "patient": patient["code"], "date": visit["date"]})
    return photos


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory):
    """A store seeded once with the whole sample series (shared by read-only tests)."""
    from tracker.config import Settings
    from tracker.services import seed_demo
    from tracker.services.demo import seed_demo_accounts
    from tracker.store import Store

    store = Store(Settings.from_env(tmp_path_factory.mktemp("demo") / "home"))
    seed_demo(store, SAMPLES)
    store.demo_accounts = seed_demo_accounts(store)  # {username: (role, password)}
    return store


@pytest.fixture(scope="module")
def server(demo_store):
    """A real `tracker serve` on the demo store (one per test module); the base URL."""
    from tests.browser_support import running_server

    with running_server(demo_store.settings.home) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Playwright (one per test module)."""
    from tests.browser_support import launched_chromium

    with launched_chromium() as chromium:
        yield chromium


@pytest.fixture
def requests_seen() -> list:
    """Every URL the browser requested (see tests.browser_support.new_context)."""
    return []
