"""Progress charts: error bars, retakes hollow, sessions marked, changes beyond noise marked."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from tracker.reports.charts import progress_chart


def _frame(*, exceeds=(None, False, True), retake=(False, False, False), kind="closeup") -> pd.DataFrame:
    metric = "density_per_cm2" if kind == "closeup" else "hair_coverage"
    values = (100.0, 104.0, 125.0) if kind == "closeup" else (0.50, 0.52, 0.60)
    return pd.DataFrame({
        "visit_date": pd.to_datetime([dt.date(2026, 1, 12), dt.date(2026, 2, 9), dt.date(2026, 3, 9)]),
        "session_number": [1, 2, 3],
        "treatments": ["PRP", "PRP", "mesotherapy"],
        "view_or_site": ["vertex-1"] * 3,
        "kind": [kind] * 3,
        "retake": list(retake),
        metric: list(values),
        f"{metric}_sd": [3.0, 3.0, 3.0] if kind == "closeup" else [0.01] * 3,
        "mean_shaft_width_um": [55.0, 56.0, 58.0],
        "change_from_baseline_pct": [None, 4.0, 25.0] if kind == "closeup" else [None, 4.0, 20.0],
        "change_exceeds_noise": list(exceeds),
    })


def _layer_rows(chart, index):
    layer = chart.layer[index]
    return layer.data if isinstance(layer.data, pd.DataFrame) else pd.DataFrame()


@pytest.mark.parametrize("kind", ["closeup", "global"])
def test_only_changes_beyond_noise_get_the_diamond_and_their_percent(kind):
    metric = "density_per_cm2" if kind == "closeup" else "hair_coverage"
    chart = progress_chart(_frame(kind=kind), metric=metric)
    marks = _layer_rows(chart, 5)
    assert chart.layer[5].mark.shape == "diamond"
    assert list(marks["session_number"]) == [3]
    assert list(_layer_rows(chart, 6)["change_label"]) == ["+25 %" if kind == "closeup" else "+20 %"]


def test_no_diamond_for_a_metric_the_change_does_not_refer_to():
    chart = progress_chart(_frame(), metric="mean_shaft_width_um")
    assert _layer_rows(chart, 5).empty


def test_a_retake_is_hollow_and_never_marked_beyond_noise():
    chart = progress_chart(_frame(retake=(False, False, True)), metric="density_per_cm2")
    assert _layer_rows(chart, 5).empty
    assert list(_layer_rows(chart, 4)["session_number"]) == [3]
    assert chart.layer[4].mark.filled is False


def test_sessions_carry_their_treatments():
    chart = progress_chart(_frame(), metric="density_per_cm2")
    assert list(_layer_rows(chart, 0)["treatments"]) == ["PRP", "PRP", "mesotherapy"]


def test_unknown_metric_and_missing_columns_are_refused():
    with pytest.raises(ValueError, match="unknown metric"):
        progress_chart(_frame(), metric="nonsense")
    with pytest.raises(ValueError, match="lacks columns"):
        progress_chart(_frame().drop(columns=["retake"]), metric="density_per_cm2")
