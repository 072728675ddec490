"""Speed benchmark (issue 7), service sections: the Progress page with 10 vs 1,000 patients, and the CLI's
start-up cost. Run through ``benchmarks/speed.py --only timeline cli`` (see its docstring).
"""

from __future__ import annotations

import datetime as dt
import os
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


def _page_time(home: Path, username: str, password: str, repeats: int) -> float:
    from streamlit.testing.v1 import AppTest

    os.environ["TRACKER_HOME"] = str(home)
    for name in ("TRACKER_DATABASE_URL", "TRACKER_STORAGE_URL"):
        os.environ.pop(name, None)
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
    return median_time(lambda: at.run(), repeats)


def bench_timeline(repeats: int, sizes: tuple[int, int] = (10, 1000), visits: int = 20) -> None:
    from tracker.accounts import create_user
    from tracker.config import Settings
    from tracker.services import Actor, list_patients, timeline
    from tracker.store import Store

    print(f"\n[timeline] Progress page with {sizes[0]} vs {sizes[1]} patients x {visits} visits x 2 analysed photos,"
          f" median of {repeats}")
    actor = Actor.system("bench")
    clinician = Actor(username="clinician", role="clinician")
    figures = {}
    with tempfile.TemporaryDirectory(prefix="speed-timeline-") as tmp:
        template_store = Store(Settings.from_env(Path(tmp) / "template"))
        template = _template(template_store, actor)
        template_store.close()
        for n in sizes:
            home = Path(tmp) / f"home-{n}"
            store = Store(Settings.from_env(home))
            start = time.perf_counter()
            _seed_bulk(store, n, visits, template)
            seeded = time.perf_counter() - start
            password = "a long enough passphrase 42"
            create_user(store, username="admin", role="admin", password=password, actor=actor)
            create_user(store, username="clinician", role="clinician", password=password, actor=actor)
            first = list_patients(store, actor=clinician)[0]["id"]
            page = _page_time(home, "clinician", password, repeats)
            direct = median_time(lambda s=store, f=first: timeline(s, f, actor=clinician, audited=False), repeats * 3)
            listing = median_time(lambda s=store: list_patients(s, actor=clinician), repeats * 3)
            figures[n] = (page, direct, listing)
            line(f"{n} patients (seeded in {seeded:.1f} s)", f"page {page * 1e3:.0f} ms",
                 f"timeline() {direct * 1e3:.1f} ms, list_patients() {listing * 1e3:.1f} ms")
            store.close()
    small, large = figures[sizes[0]], figures[sizes[1]]
    line(f"Progress page, {sizes[1]} vs {sizes[0]} patients", f"{large[0] / small[0]:.2f}x",
         f"target <= 1.2x: {verdict(large[0] / small[0] <= 1.2)}")
    line(f"timeline() alone, {sizes[1]} vs {sizes[0]} patients", f"{large[1] / small[1]:.2f}x")
    line(f"list_patients() alone (the patient picker), {sizes[1]} vs {sizes[0]}", f"{large[2] / small[2]:.2f}x")


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

        def run(args: list[str]) -> None:
            subprocess.run(command + ["analyze", "--px-per-mm", "200", *args], check=True, capture_output=True)

        one_call = median_time(lambda: run(images), repeats, warmup=0)
        calls = median_time(lambda: [run([image]) for image in images], repeats, warmup=0)
        startup = median_time(lambda: subprocess.run(command + ["--help"], check=True, capture_output=True),
                              repeats * 3)
    per_image = one_call / 20
    overhead = (calls - one_call) / 19
    line("20 images in one call", f"{one_call:.2f} s ({per_image:.2f} s/image)")
    line("20 calls of one image", f"{calls:.2f} s = {calls / one_call:.2f}x")
    line("cost of one more call (start-up + first-use imports)", f"{overhead:.2f} s",
         f"= {overhead / per_image:.0%} of one image's analysis (not dominating: < 100 %): "
         f"{verdict(overhead < per_image)}")
    line("`tracker --help` (bare start-up)", f"{startup * 1e3:.0f} ms")
