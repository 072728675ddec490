"""Speed benchmark (issue 7), service sections: the Progress page with 10 vs 1,000 patients, and the CLI's
start-up cost. Run through ``benchmarks/speed.py --only timeline cli`` (see its docstring).
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._timing import REPO, SAMPLES, line, median_time, verdict


# ------------------------------------------------------------------------------------------- timeline
def _seed_bulk(store, n_patients: int, visits: int, template: dict) -> None:
    """``n_patients`` x ``visits`` visits, each with the template's photos and analyses, inserted in bulk."""
    from sqlalchemy import func as sql_func
    from sqlalchemy import insert, select

    from tracker.store import Analysis, Patient, Photo, Treatment, Visit

    with store.session() as session, session.begin():
        start_patient = session.scalar(select(sql_func.coalesce(sql_func.max(Patient.id), 0))) + 1
        start_visit = session.scalar(select(sql_func.coalesce(sql_func.max(Visit.id), 0))) + 1
        start_photo = session.scalar(select(sql_func.coalesce(sql_func.max(Photo.id), 0))) + 1
        start_analysis = session.scalar(select(sql_func.coalesce(sql_func.max(Analysis.id), 0))) + 1
        patients, visit_rows, treatments, photos, analyses = [], [], [], [], []
        pid, vid, phid, aid = start_patient, start_visit, start_photo, start_analysis
        for n in range(n_patients):
            patients.append({"id": pid, "code": f"BULK-{pid:06d}", "display_name": f"Bulk Patient {n}",
                             "birth_year": 1960 + n % 40, "sex": "F" if n % 2 else "M"})
            first_photo: dict[int, int] = {}
            for v in range(visits):
                visit_rows.append({"id": vid, "patient_id": pid, "session_number": v + 1,
                                   "visit_date": dt.date(2024, 1, 1) + dt.timedelta(days=28 * v)})
                treatments.append({"visit_id": vid, "type": "mesotherapy", "product": "cocktail", "dose": "2 ml"})
                for k, (photo, analysis) in enumerate(template["pairs"]):
                    photos.append({**photo, "id": phid, "visit_id": vid,
                                   "sha256_original": f"{phid:064x}"})
                    base = first_photo.setdefault(k, phid)
                    analyses.append({**analysis, "id": aid, "photo_id": phid, "baseline_photo_id": base})
                    phid += 1
                    aid += 1
                vid += 1
            pid += 1
        for model, rows in ((Patient, patients), (Visit, visit_rows), (Treatment, treatments), (Photo, photos),
                            (Analysis, analyses)):
            for i in range(0, len(rows), 5000):
                session.execute(insert(model), rows[i:i + 5000])


def _template(store, actor) -> dict:
    """Rows of one analysed visit (a vertex photo and a close-up) to copy."""
    from sqlalchemy import select

    from tracker.services import create_patient, ingest_photo, open_visit
    from tracker.services.batch import analyse_visit
    from tracker.store import Analysis, Photo

    patient = create_patient(store, actor=actor, code="TEMPLATE", display_name="Template")
    visit = open_visit(store, patient.id, actor=actor, visit_date=dt.date(2024, 1, 1))
    folder = SAMPLES / "DEMO-001" / "visit-1_2026-01-12"
    ingest_photo(store, visit.id, (folder / "vertex.jpg").read_bytes(), actor=actor, name="vertex.jpg",
                 kind="global", view_or_site="vertex")
    ingest_photo(store, visit.id, (folder / "closeup-vertex-1.jpg").read_bytes(), actor=actor, name="c.jpg",
                 kind="closeup", view_or_site="vertex-1", px_per_mm=200.0)
    analyse_visit(store, visit.id, actor=actor, workers=1)
    skip = {"id", "visit_id", "photo_id", "baseline_photo_id", "sha256_original"}
    pairs = []
    with store.session() as session:
        for photo in session.scalars(select(Photo).where(Photo.visit_id == visit.id).order_by(Photo.id)):
            analysis = session.scalar(select(Analysis).where(Analysis.photo_id == photo.id))
            pairs.append(({c.key: getattr(photo, c.key) for c in Photo.__table__.columns if c.key not in skip},
                          {c.key: getattr(analysis, c.key) for c in Analysis.__table__.columns if c.key not in skip}))
    return {"pairs": pairs}


def _page_runner(home: Path, username: str, password: str):
    """A logged-in AppTest on the Progress page of the store at HOME; returns a function that re-runs it."""
    from streamlit.testing.v1 import AppTest

    def use_home() -> None:  # the dashboard opens the store the environment names (one per configuration)
        os.environ["TRACKER_HOME"] = str(home)
        for name in ("TRACKER_DATABASE_URL", "TRACKER_STORAGE_URL"):
            os.environ.pop(name, None)

    use_home()
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=300).run()
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    at.button[0].click().run()
    if at.error:
        raise RuntimeError(f"login failed: {at.error[0].value}")
    at.switch_page("dashboard/pages/progress.py").run()
    if at.exception:
        raise RuntimeError(at.exception)
    if not at.get("vega_lite_chart") and not at.get("arrow_vega_lite_chart"):
        raise RuntimeError("the Progress page drew no chart: " + "; ".join(str(i.value) for i in at.info))

    def rerun() -> None:
        use_home()
        at.run()
        if at.exception:
            raise RuntimeError(at.exception)

    return rerun


def _interleaved(runs: dict, repeats: int) -> dict:
    """Seconds of each run, measured in turn (A B A B ...) so that a change of machine load hits all alike."""
    for run in runs.values():
        run()  # warm-up
    times: dict = {key: [] for key in runs}
    for _ in range(repeats):
        for key, run in runs.items():
            start = time.perf_counter()
            run()
            times[key].append(time.perf_counter() - start)
    return times


def bench_timeline(repeats: int, sizes: tuple[int, int] = (10, 1000), visits: int = 20) -> None:
    from dashboard.state import PICKER_LIMIT
    from tracker.accounts import create_user
    from tracker.config import Settings
    from tracker.services import Actor, list_patients, timeline
    from tracker.store import Store

    repeats = max(repeats, 5)
    print(f"\n[timeline] Progress page with {sizes[0]} vs {sizes[1]} patients x {visits} visits x 2 analysed photos,"
          f" {repeats} runs each, taken in turn")
    actor = Actor.system("bench")
    clinician = Actor(username="clinician", role="clinician")
    password = "a long enough passphrase 42"
    with tempfile.TemporaryDirectory(prefix="speed-timeline-") as tmp:
        template_store = Store(Settings.from_env(Path(tmp) / "template"))
        template = _template(template_store, actor)
        template_store.close()
        stores, pages, direct = {}, {}, {}
        for n in sizes:
            home = Path(tmp) / f"home-{n}"
            store = stores[n] = Store(Settings.from_env(home))
            start = time.perf_counter()
            _seed_bulk(store, n, visits, template)
            line(f"{n} patients seeded", f"{time.perf_counter() - start:.1f} s")
            create_user(store, username="admin", role="admin", password=password, actor=actor)
            create_user(store, username="clinician", role="clinician", password=password, actor=actor)
            first = list_patients(store, actor=clinician, limit=1)[0]["id"]
            pages[n] = _page_runner(home, "clinician", password)
            direct[(n, "timeline() of one patient")] = lambda s=store, f=first: timeline(
                s, f, actor=clinician, audited=False)
            direct[(n, f"list_patients(limit={PICKER_LIMIT}) (the picker)")] = lambda s=store: list_patients(
                s, actor=clinician, limit=PICKER_LIMIT)
            direct[(n, "list_patients() of the whole clinic")] = lambda s=store: list_patients(s, actor=clinician)
        page_times = _interleaved(pages, repeats)
        direct_times = _interleaved(direct, repeats * 3)
        for store in stores.values():
            store.close()
    small, large = sizes
    for n in sizes:
        line(f"Progress page, {n} patients", f"{statistics.median(page_times[n]) * 1e3:.0f} ms")
    ratio = statistics.median(page_times[large]) / statistics.median(page_times[small])
    paired = statistics.median(b / a for a, b in zip(page_times[small], page_times[large], strict=True))
    line(f"Progress page, {large} vs {small} patients", f"{ratio:.2f}x",
         f"target <= 1.2x: {verdict(ratio <= 1.2)} (median of the run-by-run ratios {paired:.2f}x)")
    for (n, name), values in direct_times.items():
        if n == large:
            base, big = statistics.median(direct_times[(small, name)]), statistics.median(values)
            line(f"{name}, {large} vs {small}", f"{big / base:.2f}x", f"({base * 1e3:.1f} -> {big * 1e3:.1f} ms)")


# ------------------------------------------------------------------------------------------------ cli
def bench_cli(repeats: int) -> None:
    print(f"\n[cli] tracker analyze on 20 sample close-ups (1280 x 1024): one call vs 20 calls, median of {repeats}")
    tracker = Path(sys.executable).with_name("tracker")
    command = [str(tracker)] if tracker.exists() else [sys.executable, "-m", "tracker.cli"]
    with tempfile.TemporaryDirectory(prefix="speed-cli-") as tmp:
        images = []
        sources = sorted(SAMPLES.glob("DEMO-*/visit-*/closeup-vertex-1.jpg"))
        for i in range(20):
            path = Path(tmp) / f"img{i:02d}.jpg"
            path.write_bytes(sources[i % len(sources)].read_bytes())
            images.append(str(path))

        # As after an install, the project's modules are byte-compiled once (pip compiles site-packages; an
        # editable install writes __pycache__ on first use): a shell that sets PYTHONDONTWRITEBYTECODE would
        # make every call compile them again (~50 ms), which is not what a clinic's machine does.
        env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}

        def run(args: list[str]) -> None:
            subprocess.run(command + ["analyze", "--px-per-mm", "200", *args], check=True, capture_output=True,
                           env=env)

        run(images[:1])  # writes the bytecode
        one_call = median_time(lambda: run(images), repeats, warmup=0)
        calls = median_time(lambda: [run([image]) for image in images], repeats, warmup=0)
        startup = median_time(lambda: subprocess.run(command + ["--help"], check=True, capture_output=True,
                                                     env=env), repeats * 3)
    per_image = one_call / 20
    overhead = (calls - one_call) / 19
    line("20 images in one call", f"{one_call:.2f} s ({per_image:.2f} s/image)")
    line("20 calls of one image", f"{calls:.2f} s = {calls / one_call:.2f}x")
    line("cost of one more call (start-up + first-use imports)", f"{overhead:.2f} s",
         f"= {overhead / per_image:.0%} of one image's analysis (not dominating: < 100 %): "
         f"{verdict(overhead < per_image)}")
    line("`tracker --help` (bare start-up)", f"{startup * 1e3:.0f} ms")
