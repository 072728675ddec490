"""Tests of tracker.imaging.align_policy: what it takes to accept, drop or refuse an ECC refinement."""

from __future__ import annotations

import pytest

from tracker.imaging.align_policy import (
    ECC_DISAGREE_GAIN,
    ECC_MAX_CORNER_SHIFT,
    STRONG_INLIER_RATIO,
    STRONG_INLIERS,
    ecc_decision,
)

LONG = 1000
FAR = 2 * ECC_MAX_CORNER_SHIFT * LONG  # a corner moved twice as far as a refinement may move it
NEAR = 0.5 * ECC_MAX_CORNER_SHIFT * LONG
WEAK = {"inliers": STRONG_INLIERS - 10, "inlier_ratio": STRONG_INLIER_RATIO}
STRONG = {"inliers": STRONG_INLIERS + 10, "inlier_ratio": STRONG_INLIER_RATIO + 0.1}


def _ecc(shift: float, before: float, after: float) -> dict:
    return {"corner_shift": shift, "long_side": LONG, "refined_correlation": after,
            "matched_correlation": before, "matched_refined_correlation": after}


@pytest.mark.parametrize(
    ("shift", "gain", "evidence", "refuse", "expected"),
    [
        (NEAR, 0.01, WEAK, True, "try"),  # a small step to a better fit is kept (if plausible)
        (NEAR, -0.01, WEAK, True, "drop"),  # a small step to a worse fit is dropped
        (FAR, 2 * ECC_DISAGREE_GAIN, WEAK, True, "refuse"),  # intensities pull far away: they disagree
        (FAR, -0.0005, WEAK, True, "refuse"),  # wandered far without a better fit: nothing pins the answer
        (FAR, 0.0, WEAK, True, "refuse"),
        (FAR, -0.0005, STRONG, True, "drop"),  # strong features: the feature answer stands
        (FAR, 2 * ECC_DISAGREE_GAIN, STRONG, True, "drop"),
        (FAR, -0.0005, WEAK, False, "drop"),  # close-ups (vignette pulls ECC): never refused here
        (FAR, 2 * ECC_DISAGREE_GAIN, WEAK, False, "drop"),
    ],
)
def test_ecc_decision(shift: float, gain: float, evidence: dict, refuse: bool, expected: str) -> None:
    action, reason = ecc_decision(_ecc(shift, 0.9, 0.9 + gain), correlation=0.9, refuse_disagreement=refuse,
                                  **evidence)
    assert action == expected
    assert (reason is not None) == (expected == "refuse")
    if expected == "refuse":
        assert f"{shift:.0f} px" in reason


def test_refusal_reasons_say_which_disagreement() -> None:
    pulled = ecc_decision(_ecc(FAR, 0.9, 0.95), correlation=0.9, refuse_disagreement=True, **WEAK)[1]
    wandered = ecc_decision(_ecc(FAR, 0.9, 0.8995), correlation=0.9, refuse_disagreement=True, **WEAK)[1]
    assert "disagree" in pulled and "do not confirm" in wandered
