"""The offline click component and the "Check and correct" page, in AppTest (clicks injected as the browser
sends them: a trigger value of the component)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import textwrap

import cv2
import numpy as np
import pytest
from numpy.testing import assert_allclose
from sqlalchemy import select
from streamlit.components.v2.bidi_component.main import _make_trigger_id
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

from dashboard.components.image_clicks import component_data, jpeg_data_url
from tests.conftest import REPO, SAMPLES
from tests.test_corrections import CLINICIAN, _phantom_analysis
from tracker.services import Actor, analyse_photo, create_patient, ingest_photo, open_visit
from tracker.store import Analysis, Correction

APP = str(REPO / "app.py")
PASSWORD = "correct horse battery 42"


def _component(at: AppTest, key: str):
    matches = [e for e in at.get("bidi_component") if e.proto.id.endswith(f"-{key}")]
    assert len(matches) == 1, [e.proto.id for e in at.get("bidi_component")]
    return matches[0]


def _data(element) -> dict:
    proto = element.proto
    return json.loads(proto.json if proto.WhichOneof("data") == "json" else proto.mixed.json)


def click(at: AppTest, key: str, x: float, y: float, seq: int = 1) -> AppTest:
    """What the browser sends when the user clicks the component at image pixel (x, y)."""
    states = at._tree.get_widget_states()
    payload = [{"event": "click", "value": {"x": x, "y": y, "seq": seq}}]
    states.widgets.append(WidgetState(id=_make_trigger_id(_component(at, key).proto.id, "events"),
                                      json_trigger_value=json.dumps(payload)))
    return at._run(states)


# --- the component ---------------------------------------------------------------------------------------

def test_data_keeps_full_size_coordinates_with_a_reduced_preview():
    image = np.zeros((1000, 3000, 3), np.uint8)
    image[:, :1500] = 255
    data = component_data(image, marks=[{"x": 2900.5, "y": 10, "kind": "remove", "label": 3}],
                          polygon=[[0, 0], [10, 0], [10, 10]], preview_side=600)
    assert (data["width"], data["height"]) == (3000, 1000)
    assert data["marks"] == [{"x": 2900.5, "y": 10.0, "kind": "remove", "r": 6.0, "label": "3"}]
    assert data["polygon"] == [[0, 0], [10, 0], [10, 10]]
    jpeg = base64.b64decode(data["src"].split(",", 1)[1])
    preview = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert preview.shape == (200, 600, 3)
    assert preview[:, :290].mean() > 240 and preview[:, 310:].mean() < 15  # left half white: not mirrored


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"marks": [{"x": 1}]}, "numeric x and y"), ({"marks": [{"x": 1, "y": 2, "kind": "star"}]}, "kind"),
     ({"polygon": [[0, 0], [np.inf, 1]]}, "non-finite"), ({"max_width": 10}, "max_width")],
)
def test_bad_marks_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        component_data(np.zeros((10, 10, 3), np.uint8), **kwargs)


def test_bad_images_are_refused():
    with pytest.raises(ValueError, match="uint8"):
        jpeg_data_url(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        jpeg_data_url(np.zeros((10, 10, 3), np.float32))


SCRIPT = textwrap.dedent("""
    import numpy as np
    import streamlit as st
    from dashboard.components.image_clicks import image_clicks

    got = st.session_state.setdefault("got", [])
    result = image_clicks(np.zeros((300, 600, 3), np.uint8), key="ic", marks=[{"x": 10, "y": 20}],
                          on_click=got.append)
    st.write(f"result={result} callbacks={len(got)}")
""")


def test_a_click_comes_back_once_in_image_pixels():
    at = AppTest.from_string(SCRIPT).run()
    assert not at.exception and at.markdown[0].value == "result=None callbacks=0"
    assert _data(_component(at, "ic"))["width"] == 600
    click(at, "ic", 599.5, 12.25, seq=7)
    assert at.markdown[0].value == "result={'x': 599.5, 'y': 12.25, 'seq': 7} callbacks=1"
    assert at.session_state["got"] == [{"x": 599.5, "y": 12.25, "seq": 7}]
    at.run()  # a trigger lasts one run
    assert at.markdown[0].value == "result=None callbacks=1"
    click(at, "ic", 650.0, 10.0)  # outside the image (a forged payload): ignored
    assert at.markdown[0].value == "result=None callbacks=1"


# --- the page --------------------------------------------------------------------------------------------

def _login(monkeypatch, store) -> AppTest:
    from tracker.accounts import create_user

    system = Actor.system("test")
    create_user(store, username="admin", role="admin", password=PASSWORD, actor=system)
    create_user(store, username="doc", role="clinician", password=PASSWORD, actor=system)
    monkeypatch.setenv("TRACKER_HOME", str(store.settings.home))
    for name in ("TRACKER_DATABASE_URL", "TRACKER_STORAGE_URL"):
        monkeypatch.delenv(name, raising=False)
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.text_input[0].input("doc")
    at.text_input[1].input(PASSWORD)
    at.button[0].click().run()
    at.switch_page("dashboard/pages/correct.py").run()
    assert not at.exception, at.exception
    return at


def _table(at: AppTest):
    return at.table[0].value


def test_clinician_adds_and_removes_marks_and_saves(monkeypatch, store):
    analysis = _phantom_analysis(store)
    at = _login(monkeypatch, store)
    key = f"marks_{analysis.id}"
    assert at.title[0].value == "Check and correct"
    assert len(_data(_component(at, key))["marks"]) == 5
    assert _table(at).loc["Hairs in field", "Automatic"] == "5"
    click(at, key, 301.0, 200.0)  # on a missed shaft: add
    click(at, key, 41.0, 52.0)  # on detection d0: remove
    click(at, key, 361.0, 150.0)  # another missed shaft: add
    click(at, key, 362.0, 152.0, seq=4)  # on that pending mark again: undone
    kinds = sorted(m["kind"] for m in _data(_component(at, key))["marks"])
    assert kinds == ["add", "auto", "auto", "auto", "auto", "remove"]
    assert _table(at).loc["Hairs in field", "With your edits"] == "5"
    assert "1 to add, 1 to remove" in "".join(m.value for m in at.markdown)
    at.text_input(key=f"correct_note_{analysis.id}").input("missed a vellus hair")
    next(b for b in at.button if b.label == "Save corrections").click().run()
    assert not at.exception, at.exception
    assert "Correction saved: 5 hairs (automatic 5)" in at.success[0].value
    with store.session() as session:
        row = session.scalars(select(Correction)).one()
    assert [m["x"] for m in row.added] == [301.0] and [m["id"] for m in row.removed] == ["d0"]
    assert row.notes == "missed a vellus hair" and row.user_id is not None
    assert _table(at).loc["Hairs in field", "Corrected (saved)"] == "5"
    assert_allclose(row.metrics["mean_shaft_width_px"], (4 * 7.5 + 5.5) / 5)


def _vertex_series(store, count: int):
    patient = create_patient(store, actor=CLINICIAN, code="V-1", display_name="Vertex Case")
    photos = []
    for number, folder in enumerate(("visit-1_2026-01-12", "visit-2_2026-02-09")[:count]):
        visit = open_visit(store, patient.id, actor=CLINICIAN, visit_date=dt.date(2026, 1 + number, 12))
        data = (SAMPLES / "DEMO-001" / folder / "vertex.jpg").read_bytes()
        photo = ingest_photo(store, visit.id, data, actor=CLINICIAN, name="vertex.jpg", kind="global",
                             view_or_site="vertex").photo
        analyse_photo(store, photo.id, actor=CLINICIAN)
        photos.append(photo)
    return photos


def test_clinician_draws_and_saves_an_roi(monkeypatch, store):
    (photo,) = _vertex_series(store, 1)
    at = _login(monkeypatch, store)
    key = f"roi_{photo.id}"
    outline = [(600.0, 400.0), (1000.0, 380.0), (1050.0, 800.0), (620.0, 820.0)]
    for i, (x, y) in enumerate(outline):
        click(at, key, x, y, seq=i + 1)
    assert _data(_component(at, key))["polygon"] == [list(p) for p in outline]
    next(b for b in at.button if b.label == "Save ROI").click().run()
    assert not at.exception, at.exception
    assert "ROI saved: 1 photo(s) re-analysed" in at.success[0].value
    with store.session() as session:
        newest = session.scalars(select(Analysis).order_by(Analysis.id.desc())).first()
    assert newest.parameters["roi"] == [list(p) for p in outline]


def test_clinician_aligns_a_follow_up_by_picked_points(monkeypatch, store):
    baseline, follow_up = _vertex_series(store, 2)
    truth = np.array(json.loads((SAMPLES / "DEMO-001" / "visit-2_2026-02-09" / "vertex.json").read_text())
                     ["transform_to_baseline"])
    at = _login(monkeypatch, store)
    at.selectbox[1].select(at.selectbox[1].options[0]).run()  # newest visit first: the follow-up
    moving = np.array([[420.0, 310.0], [1180.0, 290.0], [1210.0, 900.0], [400.0, 930.0]])
    reference = cv2.perspectiveTransform(moving[None], truth)[0]
    for i, ((mx, my), (rx, ry)) in enumerate(zip(moving, reference, strict=True)):
        click(at, f"align_moving_{follow_up.id}", float(mx), float(my), seq=i + 1)
        click(at, f"align_reference_{follow_up.id}", round(float(rx), 1), round(float(ry), 1), seq=i + 1)
    next(b for b in at.button if b.label == "Align with these points").click().run()
    assert not at.exception, at.exception
    assert "Aligned by hand with 4 point pairs" in at.success[0].value
    with store.session() as session:
        newest = session.scalars(select(Analysis).where(Analysis.photo_id == follow_up.id)
                                 .order_by(Analysis.id.desc())).first()
    assert newest.parameters["alignment"] == "manual"
    assert_allclose(newest.transform, truth / truth[2, 2], rtol=1e-3, atol=0.05)
