import pytest

from tracker.services.importing import classify_filename, image_files


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("vertex.jpg", ("global", "vertex")),
        ("Vertex.JPG", ("global", "vertex")),
        ("crown.heic", ("global", "vertex")),
        ("temporal-left.png", ("global", "temporal_left")),
        ("midline_part.jpg", ("global", "midline_part")),
        ("closeup-vertex-1.jpg", ("closeup", "vertex-1")),
        ("trichoscopy_frontal-2.jpeg", ("closeup", "frontal-2")),
    ],
)
def test_classify_from_name(name, expected):
    assert classify_filename(name) == expected


def test_explicit_options_win_and_unknown_names_fail():
    assert classify_filename("IMG_0001.jpg", kind="closeup", view="occipital-1") == ("closeup", "occipital-1")
    assert classify_filename("IMG_0001.jpg", kind="closeup") == ("closeup", "img_0001")
    with pytest.raises(ValueError, match="IMG_0001.jpg"):
        classify_filename("IMG_0001.jpg")
    with pytest.raises(ValueError, match="--view"):
        classify_filename("IMG_0001.jpg", kind="global")


def test_image_files_lists_images_only(tmp_path):
    for name in ("b.jpg", "a.PNG", "notes.txt", "c.heic"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    assert [p.name for p in image_files(tmp_path)] == ["a.PNG", "b.jpg", "c.heic"]
