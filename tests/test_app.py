"""AppTest smoke tests of the dashboard: every page renders on an empty and on the demo store."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO, SAMPLES

APP = str(REPO / "app.py")
PAGES = ["dashboard/pages/progress.py", "dashboard/pages/visit.py", "dashboard/pages/new_visit.py",
         "dashboard/pages/patients.py"]


def _app(monkeypatch, home) -> AppTest:
    monkeypatch.setenv("TRACKER_HOME", str(home))
    for name in ("TRACKER_DATABASE_URL", "TRACKER_STORAGE_URL"):
        monkeypatch.delenv(name, raising=False)
    return AppTest.from_file(APP, default_timeout=120)


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
    parts += [t.value for t in at.title] + [s.value for s in at.subheader] + [w.value for w in at.warning]
    return "\n".join(str(p) for p in parts)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_an_empty_store(monkeypatch, tmp_path, page):
    at = _app(monkeypatch, tmp_path / "empty").run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert at.title, "each page has a title"


def test_progress_page_shows_demo_charts(monkeypatch, demo_store):
    at = _app(monkeypatch, demo_store.settings.home).run()
    assert not at.exception
    assert at.title[0].value == "Progress"
    assert "DEMO-001" in _texts(at)
    assert "hair density" in _texts(at).lower() and "coverage" in _texts(at).lower()
    charts = at.get("vega_lite_chart")
    assert len(charts) == 2
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 12  # 6 visits x 2 photos


def test_patient_switch_and_visit_photos(monkeypatch, demo_store):
    at = _app(monkeypatch, demo_store.settings.home).run()
    at.sidebar.selectbox[0].select_index(1).run()
    assert "DEMO-002" in _texts(at)
    at.switch_page("dashboard/pages/visit.py").run()
    assert not at.exception
    assert len(at.get("image")) == 2
    assert at.metric, "measurements are shown beside the photos"


def test_create_patient_and_upload_a_visit(monkeypatch, tmp_path, manifest):
    at = _app(monkeypatch, tmp_path / "clinic").run()
    at.switch_page("dashboard/pages/patients.py").run()
    at.text_input[1].input("P-0042")
    at.text_input[2].input("New Patient")
    at.button[0].click().run()
    assert not at.exception
    assert any("Added P-0042" in s.value for s in at.success)

    at.switch_page("dashboard/pages/new_visit.py").run()
    visit = manifest["patients"][0]["visits"][0]
    uploads = [(p["file"].split("/")[-1], (SAMPLES / p["file"]).read_bytes(), "image/jpeg") for p in visit["photos"]]
    at.file_uploader[0].set_value(uploads).run()
    closeup_scale = next(n for n in at.number_input if (n.key or "").startswith("scale_"))
    closeup_scale.set_value(visit["photos"][1]["px_per_mm"]).run()
    save = next(b for b in at.button if "analyse" in b.label)
    save.click().run()
    assert not at.exception
    assert len(at.progress) == 1
    assert any("Visit saved" in s.value for s in at.success)
    at.switch_page("dashboard/pages/progress.py").run()
    assert len(at.dataframe[0].value) == 2
