import numpy as np
import pytest

from tracker.imaging.hair_region import hair_region
from tracker.phantoms.vertex import render_vertex


@pytest.fixture(scope="module")
def vertices():
    cases = [dict(seed=3, thinning=0.6, skin_tone=1, hair_colour="brown"),
             dict(seed=8, thinning=0.2, skin_tone=4, hair_colour="black"),
             dict(seed=11, thinning=0.4, skin_tone=0, hair_colour="grey")]
    return [render_vertex(shape=(600, 800), **case)[:2] for case in cases]


def test_region_covers_the_hair_and_leaves_the_backdrop(vertices):
    for image, truth in vertices:
        region = hair_region(image)
        assert region.shape == truth.shape and region.dtype == bool
        assert (region & truth).sum() / truth.sum() >= 0.98
        # Most of what is not hair (backdrop, ears, skin outside the hair) stays available for features.
        assert (~region & ~truth).sum() / (~truth).sum() >= 0.6


def test_region_does_not_depend_on_exposure(vertices):
    image, _ = vertices[0]
    darker = (image.astype(np.float32) * 0.6).round().astype(np.uint8)
    a, b = hair_region(image), hair_region(darker)
    assert (a & b).sum() / (a | b).sum() >= 0.9


@pytest.mark.parametrize("value", [0, 128, 255])
def test_flat_or_smooth_images_have_no_hair_region(value):
    flat = np.full((200, 300, 3), value, np.uint8)
    assert not hair_region(flat).any()
    ramp = np.tile(np.linspace(40, 220, 300).astype(np.uint8), (200, 1))
    assert hair_region(ramp).mean() < 0.05


def test_input_is_not_modified(vertices):
    image, _ = vertices[1]
    before = image.copy()
    hair_region(image)
    np.testing.assert_array_equal(image, before)


@pytest.mark.parametrize(
    "bad", [np.zeros((10, 10, 3), np.uint8), np.zeros((50, 50, 4), np.uint8), np.zeros((50, 50), np.float32), "x"]
)
def test_bad_input(bad):
    with pytest.raises(ValueError):
        hair_region(bad)


def test_negative_margin():
    with pytest.raises(ValueError):
        hair_region(np.zeros((50, 50), np.uint8), margin_px=-1)
