"""The before/after slider component in AppTest (its data, its position round trip) and the Compare page
for both roles. The slider's drag, click and keys in a real browser: tests/test_browser_compare.py."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO
from tests.test_app import _login
from tracker.services import Actor, timeline

PAGE = "dashboard/pages/compare.py"


def _slider_script():
    import numpy as np
    import streamlit as st

    from dashboard.components.before_after import before_after

    before = np.zeros((60, 80, 3), np.uint8)
    before[:, :40] = 200
    after = np.full((60, 80, 3), 90, np.uint8)
    position = before_after(before, after, labels=("12 Jan 2026", "01 Jun 2026"), position=0.3, key="pair")
    st.write(f"position={position:.2f}")


def _component(at: AppTest):
    (element,) = [e for e in at.main.children.values() if getattr(e, "type", "") == "bidi_component"]
    return element.proto


def test_slider_renders_with_inline_assets_and_image_data():
    at = AppTest.from_function(_slider_script, default_timeout=60).run()
    assert not at.exception, at.exception
    assert at.markdown[0].value == "position=0.30"
    proto = _component(at)
    assert 'role="slider"' in proto.html_content and "aria-valuenow" in proto.html_content
    assert "export default function" in proto.js_content and "ArrowLeft" in proto.js_content
    assert not proto.js_source_path and not proto.css_source_path  # inline: nothing fetched
    data = json.loads(proto.json)
    assert data["labels"] == ["12 Jan 2026", "01 Jun 2026"] and data["position"] == 0.3
    assert (data["width"], data["height"]) == (80, 60)
    payload = json.dumps(data) + proto.js_content + proto.css_content + proto.html_content
    assert not re.search(r"https?://|\burl\(|@import|\bimport\s*\(|\bfetch\(|XMLHttpRequest", payload)
    for side, value in (("before", (200, 0)), ("after", (90, 90))):
        head, encoded = data[side].split(",", 1)
        assert head == "data:image/jpeg;base64"
        with Image.open(io.BytesIO(base64.b64decode(encoded))) as image:
            pixels = np.asarray(image.convert("RGB"), dtype=float)
            assert image.size == (80, 60) and not image.getexif()
        assert abs(pixels[30, 10, 0] - value[0]) < 6 and abs(pixels[30, 70, 0] - value[1]) < 6


def test_position_chosen_in_the_browser_comes_back_to_python():
    at = AppTest.from_function(_slider_script, default_timeout=60).run()
    at.session_state["pair"] = {"position": 0.72}  # what setStateValue("position", 0.72) sends
    at.run()
    assert not at.exception
    assert at.markdown[0].value == "position=0.72"
    assert json.loads(_component(at).json)["position"] == 0.72  # a remount starts where the user left it


@pytest.mark.parametrize("after, kwargs", [
    (np.zeros((50, 80, 3), np.uint8), {}),                 # not one frame
    (np.zeros((60, 80, 3), np.float64), {}),               # not uint8
    (np.zeros((60, 80, 3), np.uint8), {"position": 1.5}),
    (np.zeros((60, 80, 3), np.uint8), {"labels": ("only one",)}),
])
def test_bad_input_is_refused_before_anything_is_sent(after, kwargs):
    from dashboard.components.before_after import before_after

    with pytest.raises(ValueError):
        before_after(np.zeros((60, 80, 3), np.uint8), after, key="bad", **kwargs)


def test_data_url_is_shrunk_and_clean():
    from dashboard.components.before_after import encode_data_url

    image = np.random.default_rng(1).integers(0, 255, (900, 1800, 3), dtype=np.uint8)
    url, width, height = encode_data_url(image, max_side=600)
    assert (width, height) == (600, 300)
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as decoded:
        assert decoded.format == "JPEG" and decoded.size == (600, 300) and "exif" not in decoded.info
    with pytest.raises(ValueError):
        encode_data_url(image, max_side=10)


# --- the page ----------------------------------------------------------------------------------------------


def _texts(at: AppTest) -> str:
    parts = [t.value for t in at.title] + [i.value for i in at.info] + [w.value for w in at.warning]
    parts += [c.value for c in at.caption] + [e.value for e in at.error]
    return "\n".join(parts)


@pytest.mark.parametrize("mode", ["Side by side", "Slider", "Overlay", "Difference"])
def test_clinician_compares_baseline_with_latest_in_every_mode(monkeypatch, demo_store, mode):
    at = _login(monkeypatch, demo_store, "clinician")
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Compare visits"
    before, after = at.selectbox(key="compare_global_vertex_before"), at.selectbox(key="compare_global_vertex_after")
    frame = timeline(demo_store, 1, actor=Actor.system("test"), audited=False)
    vertex = frame[frame["view_or_site"] == "vertex"].reset_index(drop=True)
    charted = vertex.index[~vertex["retake"] & vertex["hair_coverage"].notna()]
    expected = (charted[0], charted[-1]) if len(charted) >= 2 else (0, len(vertex) - 1)
    assert (before.index, after.index) == expected  # default: first vs latest charted visit
    at.radio(key="compare_mode").set_value(mode).run()
    assert not at.exception, at.exception
    kinds = {getattr(e, "type", "") for e in at.main.children.values()}
    if mode == "Slider":
        assert "bidi_component" in kinds and not at.get("image")
    else:
        assert len(at.get("image")) == 1
    prepare = at.button(key="compare_prepare")
    assert not at.get("download_button") and prepare.label.startswith("Prepare a PNG")
    prepare.click().run()
    assert not at.exception, at.exception
    assert at.get("download_button"), "the PNG of the current mode can be downloaded once made"
    at.checkbox(key="compare_zoom").check().run()
    assert not at.exception, at.exception


def test_close_up_site_and_same_visit(monkeypatch, demo_store):
    at = _login(monkeypatch, demo_store, "clinician")
    at.switch_page(PAGE).run()
    at.selectbox(key="compare_view").select_index(1).run()
    assert not at.exception
    assert at.checkbox(key="compare_zoom").disabled, "a close-up's whole field is the measured region"
    before = at.selectbox(key="compare_closeup_vertex-1_before")
    at.selectbox(key="compare_closeup_vertex-1_after").set_value(before.value).run()
    assert "Pick two different visits" in _texts(at)


def test_patient_sees_before_and_after_of_their_own_photos_only(monkeypatch, demo_store):
    at = _login(monkeypatch, demo_store, "demo-002")
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    text = _texts(at)
    assert at.title[0].value == "Before and after"
    assert "DEMO-001" not in text and "Alex Demo" not in text
    assert not at.sidebar.selectbox, "no patient selector for a patient"
    assert len(at.get("image")) == 1


def test_page_without_patients_says_what_to_do(monkeypatch, tmp_path):
    from tracker.accounts import create_user
    from tracker.config import Settings
    from tracker.services import Actor
    from tracker.store import Store

    store = Store(Settings.from_env(tmp_path / "empty"))
    for username, role in (("boss", "admin"), ("dr-empty", "clinician")):  # an admin: no first-start page
        create_user(store, username=username, role=role, password="a long enough passphrase 42",
                    actor=Actor.system("test"))
    store.demo_accounts = {"dr-empty": ("clinician", "a long enough passphrase 42")}
    at = _login(monkeypatch, store, "dr-empty")
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert "Add a patient first" in _texts(at)


def test_app_file_lists_the_compare_page():
    source = (REPO / "app.py").read_text()
    assert source.count(PAGE) == 2  # clinician "Compare visits", patient "Before and after"
