"""The CLI contract of DESIGN section 6, exercised as a subprocess on the shipped sample series."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

CONTRACT_KEYS = {"image", "hair_count", "density_per_cm2", "mean_shaft_width_um", "hair_coverage",
                 "vellus_fraction", "quality"}


def run_cli(*args, env=None, timeout=300):
    environment = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "tracker.cli", *map(str, args)], capture_output=True, text=True,
                          env=environment, timeout=timeout)


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def closeup(sample_photos):
    return next(p for p in sample_photos if p["kind"] == "closeup")


@pytest.fixture(scope="module")
def vertex_pair(sample_photos):
    vertex = [p for p in sample_photos if p["kind"] == "global" and p["patient"] == sample_photos[0]["patient"]]
    return vertex[0], vertex[1]


def test_analyze_json_lines_in_order_with_bad_inputs(closeup, vertex_pair, tmp_path):
    fake = tmp_path / "scan.jpg"
    fake.write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n")
    missing = tmp_path / "missing.jpg"
    result = run_cli("analyze", closeup["path"], fake, missing, vertex_pair[0]["path"],
                     "--px-per-mm", closeup["px_per_mm"], "--json")
    assert result.returncode != 0
    records = json_lines(result.stdout)
    assert [r["image"] for r in records] == [str(closeup["path"]), str(fake), str(missing), str(vertex_pair[0]["path"])]
    good = [records[0], records[3]]
    for record in good:
        assert set(record) >= CONTRACT_KEYS
        assert isinstance(record["hair_count"], int)
        assert 0.0 <= record["hair_coverage"] <= 1.0
        assert isinstance(record["quality"], dict) and "retake" in record["quality"]
    assert records[0]["density_per_cm2"] > 0 and records[0]["mean_shaft_width_um"] > 0
    assert "PDF" in records[1]["error"] and "scan.jpg" in records[1]["error"]
    assert "no such file" in records[2]["error"]
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2 and "scan.jpg" in errors[0] and "missing.jpg" in errors[1]
    assert "Traceback" not in result.stderr


def test_analyze_counts_close_to_truth_on_sample(closeup):
    truth = json.loads(closeup["truth_path"].read_text())
    record = json_lines(run_cli("analyze", closeup["path"], "--px-per-mm", closeup["px_per_mm"]).stdout)[0]
    # First honest version: the measurement issue tightens this; the number must still mean something.
    assert record["hair_count"] == pytest.approx(truth["hair_count"], rel=0.35)
    assert record["density_per_cm2"] == pytest.approx(truth["density_per_cm2"], rel=0.35)


def test_analyze_without_scale_has_null_density(closeup):
    record = json_lines(run_cli("analyze", closeup["path"]).stdout)[0]
    assert record["density_per_cm2"] is None and record["mean_shaft_width_um"] is None
    assert record["hair_count"] > 0
    assert "no_scale" in record["quality"]["flags"]


def test_analyze_global_and_mask_out(vertex_pair, tmp_path):
    mask_path = tmp_path / "mask.png"
    result = run_cli("analyze", vertex_pair[0]["path"], "--kind", "global", "--mask-out", mask_path)
    assert result.returncode == 0, result.stderr
    record = json_lines(result.stdout)[0]
    assert record["kind"] == "global" and record["hair_count"] == 0 and record["density_per_cm2"] is None
    assert 0.0 < record["hair_coverage"] < 1.0
    mask = np.asarray(Image.open(mask_path))
    image = Image.open(vertex_pair[0]["path"])
    assert mask.shape == (image.height, image.width)
    assert set(np.unique(mask)) <= {0, 255}


def test_mask_out_needs_one_image(closeup):
    result = run_cli("analyze", closeup["path"], closeup["path"], "--mask-out", "x.png")
    assert result.returncode == 2 and "one image" in result.stderr


def test_align_recovers_the_sample_transform(vertex_pair, tmp_path):
    reference, moving = vertex_pair
    out = tmp_path / "warped.png"
    result = run_cli("align", reference["path"], moving["path"], "--kind", "global", "--out", out, "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["ok"], record["reason"]  # hair is masked out of the features for global views
    matrix = np.array(record["matrix"], dtype=float)
    assert matrix.shape == (3, 3)
    assert isinstance(record["ok"], bool) and isinstance(record["inliers"], int)
    assert isinstance(record["quality"], dict)
    truth = np.array(json.loads(moving["truth_path"].read_text())["transform_to_baseline"], dtype=float)
    size = Image.open(moving["path"]).size
    corners = np.array([[0, 0, 1], [size[0], 0, 1], [size[0], size[1], 1], [0, size[1], 1]], float)

    def project(h):
        p = corners @ h.T
        return p[:, :2] / p[:, 2:]

    if record["ok"]:
        assert np.abs(project(matrix) - project(truth)).max() < 5.0
    assert Image.open(out).size == Image.open(reference["path"]).size


def test_align_bad_input_one_line_no_traceback(closeup, tmp_path):
    result = run_cli("align", closeup["path"], tmp_path / "nope.png")
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and "nope.png" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_arguments_are_usage_errors(closeup):
    result = run_cli("analyze", closeup["path"], "--px-per-mm", "-4")
    assert result.returncode == 2 and "positive" in result.stderr


def test_demo_import_and_export(tmp_path, sample_photos):
    home = tmp_path / "home"
    env = {"TRACKER_HOME": str(home)}
    folder = tmp_path / "visit"
    folder.mkdir()
    first = sample_photos[0]
    closeup = next(p for p in sample_photos if p["kind"] == "closeup" and p["patient"] == first["patient"])
    (folder / "vertex.jpg").write_bytes(first["path"].read_bytes())
    (folder / "closeup-vertex-1.jpg").write_bytes(closeup["path"].read_bytes())
    (folder / "notes.txt").write_text("not a photo")
    result = run_cli("import", folder, "--patient", "P-100", "--name", "Imported Person", "--date", "2026-05-01",
                     "--session", "1", "--px-per-mm", closeup["px_per_mm"], "--treatment", "prp", env=env)
    assert result.returncode == 0, result.stderr
    assert "created patient P-100" in result.stdout and "vertex.jpg: global vertex" in result.stdout
    assert "closeup-vertex-1.jpg: closeup vertex-1" in result.stdout
    again = run_cli("import", folder, "--patient", "P-100", "--date", "2026-05-02", env=env)
    assert again.stdout.count("already stored") == 2
    exported = run_cli("export", "--patient", "P-100", env=env)
    lines = exported.stdout.strip().splitlines()
    assert lines[0].startswith("patient_code,") and len(lines) == 3
    assert run_cli("export", "--patient", "NOPE", env=env).returncode != 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_starts_the_dashboard(tmp_path):
    port = _free_port()
    env = {**os.environ, "TRACKER_HOME": str(tmp_path / "home")}
    process = subprocess.Popen([sys.executable, "-m", "tracker.cli", "serve", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        body = None
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                    body = response.read().decode()
                    break
            except OSError:
                time.sleep(0.5)
        assert body == "ok"
        # Image and download bytes are refused to a browser that is not logged in.
        for path in ("/media/0123456789abcdef.png", "/media/anything"):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5)
                status = 200
            except urllib.error.HTTPError as error:
                status = error.code
            assert status == 403, path
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert f"http://localhost:{port}" in output


# ----------------------------------------------------------------------------------- scale and devices
@pytest.fixture(scope="module")
def sticker_photo(tmp_path_factory):
    """A phantom close-up at 100 px/mm with the fiducial sticker (2.54 mm marker) on the skin."""
    from tracker.phantoms.closeup import render_closeup
    from tracker.phantoms.fiducial import place_sticker

    plain, _, _ = render_closeup(seed=12, density_per_cm2=180, px_per_mm=100.0, shape=(560, 720))
    image, truth = place_sticker(plain, px_per_mm=100.0, centre_xy=(450.0, 280.0), rotation_deg=-15.0, seed=2)
    path = tmp_path_factory.mktemp("sticker") / "closeup-vertex-1.png"
    Image.fromarray(image).save(path)
    return path, truth


def test_analyze_uses_the_sticker_when_no_scale_is_given(sticker_photo):
    path, truth = sticker_photo
    result = run_cli("analyze", path, path, "--px-per-mm", "90", "--json")
    found, given = json_lines(result.stdout)
    assert result.returncode == 0, result.stderr
    assert given["scale_source"] == "manual" and given["px_per_mm"] == 90.0
    assert "scale_conflict" in given["quality"]["flags"]  # 90 against the sticker's 100: > 5 % apart
    alone = json_lines(run_cli("analyze", path).stdout)[0]
    assert set(alone) >= CONTRACT_KEYS
    assert alone["scale_source"] == "fiducial" and alone["px_per_mm"] == pytest.approx(truth.px_per_mm, rel=0.005)
    assert alone["density_per_cm2"] > 0 and "no_scale" not in alone["quality"]["flags"]
    off = json_lines(run_cli("analyze", path, "--sticker-mm", "0").stdout)[0]
    assert off["scale_source"] is None and off["density_per_cm2"] is None
    assert run_cli("analyze", path, "--sticker-mm", "-1").returncode == 2


def test_device_add_list_retire_and_import(tmp_path, sticker_photo):
    from tracker.phantoms.fiducial import render_ruler

    env = {"TRACKER_HOME": str(tmp_path / "home")}
    ruler, _ = render_ruler(seed=3, px_per_mm=64.0, shape=(480, 640), direction_deg=-10.0)
    Image.fromarray(ruler).save(tmp_path / "ruler.png")
    added = run_cli("device", "add", "Derm 20x", "--ruler", tmp_path / "ruler.png", "--json", env=env)
    assert added.returncode == 0, added.stderr
    record = json_lines(added.stdout)[0]
    assert record["source"] == "ruler" and record["px_per_mm"] == pytest.approx(64.0, rel=0.002)
    assert run_cli("device", "add", "Typed", "--px-per-mm", "101.5", env=env).returncode == 0
    duplicate = run_cli("device", "add", "Typed", "--px-per-mm", "99", env=env)
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr and "Traceback" not in duplicate.stderr
    assert run_cli("device", "add", "Both", "--px-per-mm", "9", "--ruler", tmp_path / "ruler.png",
                   env=env).returncode == 2
    no_ticks = run_cli("device", "add", "Skin", "--ruler", sticker_photo[0], env=env)
    assert no_ticks.returncode == 1 and "could not measure the ruler" in no_ticks.stderr
    assert run_cli("device", "retire", "Derm 20x", env=env).returncode == 0
    listed = json_lines(run_cli("device", "list", "--json", env=env).stdout)
    assert [(p["name"], p["source"], p["retired"]) for p in listed] == [("Typed", "entered", False),
                                                                        ("Derm 20x", "ruler", True)]
    assert "Typed" in run_cli("device", "list", env=env).stdout

    folder = tmp_path / "visit"
    folder.mkdir()
    (folder / sticker_photo[0].name).write_bytes(sticker_photo[0].read_bytes())
    imported = run_cli("import", folder, "--patient", "P-5", "--name", "Dev Ice", "--device", "Typed", env=env)
    assert imported.returncode == 0, imported.stderr
    exported = run_cli("export", "--patient", "P-5", env=env).stdout.splitlines()
    assert "101.5" in exported[1]
    unknown = run_cli("import", folder, "--patient", "P-5", "--device", "Nope", env=env)
    assert unknown.returncode == 1 and "no device profile" in unknown.stderr
