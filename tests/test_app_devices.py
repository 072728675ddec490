"""AppTest of the "Scale and devices" page: list, add from a ruler photo (with preview), add entered, retire."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO

APP = str(REPO / "app.py")
PAGE = "dashboard/pages/devices.py"
PASSWORD = "a long enough passphrase 42"


@pytest.fixture
def clinic(tmp_path):
    """A store with one clinician and one administrator account (no patients)."""
    from tracker.accounts import create_user
    from tracker.config import Settings
    from tracker.services import Actor
    from tracker.store import Store

    store = Store(Settings.from_env(tmp_path / "home"))
    for username, role in (("doc", "clinician"), ("boss", "admin")):
        create_user(store, username=username, role=role, password=PASSWORD, actor=Actor.system("test"))
    return store


def _login(monkeypatch, store, username) -> AppTest:
    monkeypatch.setenv("TRACKER_HOME", str(store.settings.home))
    for name in ("TRACKER_DATABASE_URL", "TRACKER_STORAGE_URL"):
        monkeypatch.delenv(name, raising=False)
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.text_input[0].input(username)
    at.text_input[1].input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def _ruler_png(px_per_mm: float) -> bytes:
    from tracker.phantoms.fiducial import render_ruler

    image, _ = render_ruler(seed=4, px_per_mm=px_per_mm, shape=(480, 640), direction_deg=15.0)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def test_clinician_adds_from_a_ruler_and_by_value_then_retires(monkeypatch, clinic):
    from tracker.services import Actor, list_device_profiles

    at = _login(monkeypatch, clinic, "doc")
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Scale and devices"
    assert any("No device profiles yet" in i.value for i in at.info)
    # the sticker sheet and its printing instructions are offered
    assert at.get("download_button")
    assert any("Print at 100 %" in m.value for m in at.markdown)

    at.text_input(key="ruler_name").input("Derm 20x")
    at.file_uploader(key="ruler_upload").set_value(("ruler.png", _ruler_png(48.0), "image/png")).run()
    assert not at.exception, at.exception
    scale = next(m for m in at.metric if m.label == "Scale")
    assert float(scale.value.split()[0]) == pytest.approx(48.0, rel=0.002)
    assert len(at.get("image")) == 1  # the preview with the detected ticks
    _button(at, "Save this device profile").click().run()
    assert any("Saved Derm 20x" in s.value for s in at.success), [e.value for e in at.error]

    at.text_input[-2].input("Typed value")  # the entered-value form: name, notes
    at.number_input[0].set_value(210.5)
    _button(at, "Add device profile").click().run()
    assert not at.exception, at.exception
    assert any("Added Typed value" in s.value for s in at.success), [e.value for e in at.error]
    table = at.dataframe[0].value
    assert list(table["Name"]) == ["Typed value", "Derm 20x"] and list(table["From"]) == ["entered", "ruler"]

    at.selectbox(key="retire_choice").set_value(at.selectbox(key="retire_choice").options[1]).run()
    _button(at, "Retire").click().run()
    assert not at.exception, at.exception
    profiles = {p["name"]: p["retired"] for p in list_device_profiles(clinic, actor=Actor.system("test"))}
    assert profiles == {"Typed value": False, "Derm 20x": True}


def test_unreadable_ruler_photo_is_an_error_not_a_profile(monkeypatch, clinic):
    from tracker.services import Actor, list_device_profiles

    at = _login(monkeypatch, clinic, "doc")
    at.switch_page(PAGE).run()
    at.text_input(key="ruler_name").input("Broken")
    at.file_uploader(key="ruler_upload").set_value(("ruler.png", b"%PDF-1.4 not a photo", "image/png")).run()
    assert not at.exception, at.exception
    assert at.error and not any(b.label == "Save this device profile" for b in at.button)
    assert list_device_profiles(clinic, actor=Actor.system("test")) == []


def test_administrator_has_no_devices_page(monkeypatch, clinic):
    at = _login(monkeypatch, clinic, "boss")
    with pytest.raises(ValueError):
        at.switch_page(PAGE)
