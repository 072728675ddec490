"""Timing and printing helpers shared by the speed benchmarks (benchmarks/speed.py, speed_service.py)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_images"


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``fn`` over ``repeats`` runs after ``warmup`` unmeasured runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def line(label: str, value: str, target: str = "") -> None:
    print(f"  {label:<58} {value:>16}   {target}", flush=True)


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"
