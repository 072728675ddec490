"""AppTest of the dashboard: logged out, first start, clinician, patient, admin, an invalid session."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO, SAMPLES

APP = str(REPO / "app.py")
CLINICIAN_PAGES = ["dashboard/pages/progress.py", "dashboard/pages/compare.py", "dashboard/pages/visit.py",
                   "dashboard/pages/correct.py", "dashboard/pages/new_visit.py", "dashboard/pages/patients.py",
                   "dashboard/pages/devices.py"]
PATIENT_PAGES = ["dashboard/pages/progress.py", "dashboard/pages/compare.py", "dashboard/pages/visit.py"]
CLINIC_ONLY_PAGES = sorted(set(CLINICIAN_PAGES) - set(PATIENT_PAGES)) + ["dashboard/pages/admin.py"]


def _app(monkeypatch, home) -> AppTest:
    monkeypatch.setenv("TRACKER_HOME", str(home))
    for name in ("TRACKER_DATABASE_URL", "TRACKER_STORAGE_URL"):
        monkeypatch.delenv(name, raising=False)
    return AppTest.from_file(APP, default_timeout=120)


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
    parts += [t.value for t in at.title] + [s.value for s in at.subheader] + [w.value for w in at.warning]
    parts += [c.value for c in at.sidebar.caption] + [e.value for e in at.error]
    return "\n".join(str(p) for p in parts)


def _login(monkeypatch, store, username) -> AppTest:
    role, password = store.demo_accounts[username]
    at = _app(monkeypatch, store.settings.home).run()
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert f"Logged in as **{username}** ({role})" in _texts(at)
    return at


def test_logged_out_sees_only_the_login(monkeypatch, demo_store):
    at = _app(monkeypatch, demo_store.settings.home).run()
    assert not at.exception
    assert at.title[0].value == "Scalp progress tracker"
    assert "DEMO-001" not in _texts(at) and not at.get("vega_lite_chart")
    with pytest.raises(ValueError):
        at.switch_page("dashboard/pages/progress.py")  # not a registered page without a login


def test_wrong_password_gets_one_generic_message(monkeypatch, demo_store):
    at = _app(monkeypatch, demo_store.settings.home).run()
    at.text_input[0].input("clinician")
    at.text_input[1].input("not the password")
    at.button[0].click().run()
    assert "Login failed" in at.error[0].value
    at.text_input[0].input("nobody-here")
    at.text_input[1].input("whatever-password")
    at.button[0].click().run()
    assert at.error[0].value == "Login failed: wrong user name or password, or the account is locked or disabled."


def test_first_start_creates_the_administrator(monkeypatch, tmp_path):
    at = _app(monkeypatch, tmp_path / "new-clinic").run()
    assert "create the administrator" in _texts(at)
    at.text_input[0].input("boss")
    at.text_input[1].input("a long enough passphrase 42")
    at.text_input[2].input("a long enough passphrase 42")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Accounts and audit"
    assert any("Audit chain intact" in s.value for s in at.success)


@pytest.mark.parametrize("page", CLINICIAN_PAGES)
def test_clinician_pages_render(monkeypatch, demo_store, page):
    at = _login(monkeypatch, demo_store, "clinician")
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert at.title


def test_clinician_progress_shows_demo_charts(monkeypatch, demo_store):
    at = _login(monkeypatch, demo_store, "clinician")
    assert at.title[0].value == "Progress"
    assert "DEMO-001" in _texts(at)
    assert "hair density" in _texts(at).lower() and "coverage" in _texts(at).lower()
    assert len(at.get("vega_lite_chart")) == 4  # density, width, vellus share, coverage
    assert len(at.dataframe[0].value) == 12  # 6 visits x 2 photos
    at.sidebar.selectbox[0].select_index(1).run()
    assert "DEMO-002" in _texts(at)
    at.switch_page("dashboard/pages/visit.py").run()
    assert not at.exception
    assert len(at.get("image")) == 2
    assert at.metric, "measurements are shown beside the photos"


def test_patient_sees_only_their_own_progress(monkeypatch, demo_store):
    at = _login(monkeypatch, demo_store, "demo-002")
    assert at.title[0].value == "My progress"
    text = _texts(at)
    assert "DEMO-002" in text and "DEMO-001" not in text
    assert not at.sidebar.selectbox, "a patient gets no patient selector"
    assert len(at.dataframe[0].value) == 12
    for page in CLINIC_ONLY_PAGES:
        with pytest.raises(ValueError):
            at.switch_page(page)
    at.switch_page("dashboard/pages/visit.py").run()
    assert not at.exception and len(at.get("image")) == 2


@pytest.mark.parametrize("page", PATIENT_PAGES)
def test_patient_pages_render_only_their_own(monkeypatch, demo_store, page):
    at = _login(monkeypatch, demo_store, "demo-001")
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert at.title
    assert "DEMO-002" not in _texts(at)


def test_admin_sees_accounts_and_audit_but_no_patients(monkeypatch, demo_store):
    at = _login(monkeypatch, demo_store, "admin")
    assert at.title[0].value == "Accounts and audit"
    assert "demo-001" in at.dataframe[0].value["User"].tolist()
    assert any("Audit chain intact" in s.value for s in at.success)
    for page in CLINICIAN_PAGES:
        with pytest.raises(ValueError):
            at.switch_page(page)


def test_invalid_session_role_falls_back_to_login(monkeypatch, demo_store):
    at = _app(monkeypatch, demo_store.settings.home)
    at.session_state["auth"] = {"user_id": 1, "username": "x", "role": "superuser", "patient_id": None,
                                "started_at": 0.0, "last_seen": 0.0}
    at.run()
    assert not at.exception
    assert at.title[0].value == "Scalp progress tracker"


def test_clinician_creates_patient_and_uploads_a_visit(monkeypatch, demo_store, manifest):
    at = _login(monkeypatch, demo_store, "clinician")
    at.switch_page("dashboard/pages/patients.py").run()
    at.text_input[1].input("P-0042")
    at.text_input[2].input("New Patient")
    next(b for b in at.button if b.label == "Add patient").click().run()
    assert not at.exception
    assert any("Added P-0042" in s.value for s in at.success)

    at.switch_page("dashboard/pages/new_visit.py").run()
    assert "P-0042" in _texts(at)
    visit = manifest["patients"][0]["visits"][0]
    uploads = [(p["file"].split("/")[-1], (SAMPLES / p["file"]).read_bytes(), "image/jpeg") for p in visit["photos"]]
    at.file_uploader[0].set_value(uploads).run()
    closeup_scale = next(n for n in at.number_input if (n.key or "").startswith("scale_"))
    closeup_scale.set_value(visit["photos"][1]["px_per_mm"]).run()
    next(b for b in at.button if "analyse" in b.label).click().run()
    assert not at.exception
    assert len(at.progress) == 1
    assert any("Visit saved" in s.value for s in at.success)
    at.switch_page("dashboard/pages/progress.py").run()
    assert len(at.dataframe[0].value) == 2


def test_idle_session_times_out(monkeypatch, demo_store):
    import time

    from tracker.accounts import authenticate

    role, password = demo_store.demo_accounts["clinician"]
    user = authenticate(demo_store, "clinician", password)
    at = _app(monkeypatch, demo_store.settings.home)
    long_ago = time.time() - 3 * 3600  # beyond the 15-minute idle limit
    at.session_state["auth"] = {"user_id": user.id, "username": "clinician", "role": role, "patient_id": None,
                                "started_at": long_ago, "last_seen": long_ago}
    at.run()
    assert not at.exception
    assert at.title[0].value == "Scalp progress tracker"
    assert any("timed out" in i.value for i in at.info)


def test_query_parameters_do_not_reach_another_patient(monkeypatch, demo_store):
    at = _login(monkeypatch, demo_store, "demo-001")
    for key, value in (("patient_id", "2"), ("patient", "DEMO-002"), ("code", "DEMO-002"), ("visit", "7")):
        at.query_params[key] = value
    at.run()
    assert not at.exception
    text = _texts(at)
    assert "DEMO-001" in text and "DEMO-002" not in text
    at.switch_page("dashboard/pages/visit.py").run()
    assert not at.exception and "DEMO-002" not in _texts(at)
