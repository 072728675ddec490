"""The consultation report: gather a patient's data (with access checks), summarise it, make the PDF.

:func:`consultation_report` is what the dashboard and a patient's download call: it checks the actor may
read the patient, gathers visits, measurements, charts and the aligned before/after pairs, lays them out
with :func:`tracker.reports.pdf_report.build_report_pdf` and audits the export. :func:`summary_sentences`
turns a timeline into the plain-language lines shown on the report's cover and on the progress page.

The before/after pairs are the Compare page's (:func:`tracker.services.comparison.compare_photos`): the
follow-up in its baseline's frame through the stored transforms, cut to the area both show, colours
matched for viewing only, never for measuring.
"""

from __future__ import annotations

import datetime as dt

import cv2
import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from tracker import PIPELINE_VERSION
from tracker.reports.chart_images import chart_png
from tracker.reports.charts import progress_chart
from tracker.reports.comparison_view import framed_pair
from tracker.reports.labels import visit_label
from tracker.reports.pdf_report import (
    BeforeAfter,
    ChartImage,
    MeasurementRow,
    ReportData,
    VisitRow,
    build_report_pdf,
    format_measure,
)
from tracker.services.access import Actor, audit, missing, require_patient_access
from tracker.services.comparison import compare_photos
from tracker.services.patients import treatment_summary
from tracker.services.photos import latest_analysis
from tracker.services.timeline import PRIMARY_METRIC, timeline
from tracker.store import Analysis, Patient, Store, Visit

__all__ = ["aligned_pair", "consultation_report", "report_data", "summary_sentences"]

#: Long side (px) of the photos in a before/after pair: sharp on an A4 page, small in the PDF.
DISPLAY_PX = 1400
_WHAT = {"closeup": "density", "global": "hair coverage"}
_SUMMARY_COLUMNS = {"kind", "view_or_site", "visit_date", "retake", "change_from_baseline_pct",
                    "change_exceeds_noise"}


def _signed_pct(change: float) -> str:
    return f"{change:+.0f} %" if abs(change) >= 9.95 else f"{change:+.1f} %"


def _place(kind: str, view: str) -> str:
    return f"{view} close-up" if kind == "closeup" else f"{view.replace('_', ' ')} view"


def _flag(value) -> bool | None:
    return None if value is None or pd.isna(value) else bool(value)


def summary_sentences(frame: pd.DataFrame) -> list[str]:
    """Plain-language lines, one per view/site, e.g. "vertex-1 close-up: density +12 % since your first
    session (12 Jan 2026 to 1 Jun 2026), beyond measurement noise."

    Parameters
    ----------
    frame : pandas.DataFrame
        A timeline (:func:`tracker.services.timeline.timeline`), oldest visit first.

    Returns
    -------
    list of str
        Views and sites in alphabetical order (close-ups first); empty for an empty timeline. A change
        is called "beyond measurement noise" only when the timeline says so (more than twice the
        combined spread); a view with one measurement, or none (retakes, close-ups without a scale),
        gets a line that says so.

    Raises
    ------
    ValueError
        FRAME lacks timeline columns.
    """
    missing_columns = _SUMMARY_COLUMNS - set(frame.columns)
    if missing_columns:
        raise ValueError(f"timeline lacks columns: {', '.join(sorted(missing_columns))}")
    sentences: list[str] = []
    if frame.empty:
        return sentences
    for (kind, view), group in frame.groupby(["kind", "view_or_site"], sort=True):
        what, place = _WHAT.get(kind, "measure"), _place(kind, view)
        charted = group[~group["retake"].astype(bool) & group["change_from_baseline_pct"].notna()]
        if charted.empty:
            if kind == "closeup" and not group["retake"].all():
                sentences.append(f"{place}: hair counts only so far; density needs the scale (magnification) "
                                 "of the photos.")
            else:
                sentences.append(f"{place}: no usable measurement yet (the photos need a retake).")
            continue
        first, last = charted.iloc[0], charted.iloc[-1]
        if len(charted) == 1:
            sentences.append(f"{place}: first {what} measurement on {first['visit_date']:%d %b %Y}; a change can "
                             "be shown after the next session.")
        else:
            beyond = _flag(last["change_exceeds_noise"])
            verdict = {True: "beyond measurement noise",
                       False: "within measurement noise, so not a clear change yet",
                       None: "the measurement noise of these photos is not known"}[beyond]
            sentences.append(f"{place}: {what} {_signed_pct(float(last['change_from_baseline_pct']))} since your "
                             f"first session ({first['visit_date']:%d %b %Y} to {last['visit_date']:%d %b %Y}), "
                             f"{verdict}.")
        newest = group.iloc[-1]
        if bool(newest["retake"]) and newest["visit_date"] > last["visit_date"]:
            sentences.append(f"{place}: the photo of {newest['visit_date']:%d %b %Y} needs a retake and is not "
                             "counted.")
    return sentences


# --- aligned before/after pairs -------------------------------------------------------------------------


def _shrink(image: np.ndarray, long_side: int) -> np.ndarray:
    factor = long_side / max(image.shape[:2])
    if factor >= 1.0:
        return image
    size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def aligned_pair(
    store: Store, photo_id: int, *, actor: Actor, long_side: int = DISPLAY_PX
) -> tuple[int, np.ndarray, np.ndarray] | None:
    """A follow-up photo in its baseline's frame, with the baseline, for display (the Compare page's pair).

    Parameters
    ----------
    photo_id : int
        The follow-up photo; its newest analysis names the baseline.
    long_side : int
        Both photos are reduced so their long side is at most this many pixels.

    Returns
    -------
    (baseline_photo_id, before, after) or None
        ``before`` and ``after`` are (H, W, 3) uint8 RGB arrays of one shape, cut to the area both show,
        colours of ``after`` matched to ``before`` for display
        (:func:`tracker.services.comparison.compare_photos`). None when the photo has no analysis, is its
        own baseline, or was not aligned.
    """
    analysis = latest_analysis(store, photo_id, actor=actor)
    if analysis is None or analysis.baseline_photo_id in (None, photo_id):
        return None
    comparison = compare_photos(store, analysis.baseline_photo_id, photo_id, actor=actor, audited=False)
    if not comparison.aligned:
        return None
    before, after = framed_pair(comparison, show_roi=False)
    return int(analysis.baseline_photo_id), _shrink(before, long_side), _shrink(after, long_side)


# --- gathering ------------------------------------------------------------------------------------------


def _metric(group: pd.DataFrame, kind: str) -> str:
    metric = PRIMARY_METRIC[kind]
    return metric if group[metric].notna().any() or kind != "closeup" else "hair_count"


def _number(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _measurements(frame: pd.DataFrame) -> list[MeasurementRow]:
    rows = []
    for (kind, _view), group in frame.groupby(["kind", "view_or_site"], sort=True):
        metric = _metric(group, kind)
        charted = group[~group["retake"].astype(bool) & group["change_from_baseline_pct"].notna()]
        reference = charted.index[0] if metric == PRIMARY_METRIC[kind] and not charted.empty else None
        for index, row in group.iterrows():
            rows.append(MeasurementRow(
                visit_date=row["visit_date"].date(), view_or_site=row["view_or_site"], metric=metric,
                value=_number(row[metric]), sd=_number(row.get(f"{metric}_sd")),
                change_pct=_number(row["change_from_baseline_pct"]) if metric == PRIMARY_METRIC[kind] else None,
                beyond_noise=_flag(row["change_exceeds_noise"]), retake=bool(row["retake"]),
                reference=index == reference,
            ))
    return rows


def _charts(frame: pd.DataFrame) -> list[ChartImage]:
    charts = []
    closeups, globals_ = frame[frame["kind"] == "closeup"], frame[frame["kind"] == "global"]
    plans = []
    if not closeups.empty:
        metric = _metric(closeups, "closeup")
        plans.append((closeups, metric, "Close-ups: hair density" if metric == "density_per_cm2"
                      else "Close-ups: hairs in the field"))
        if closeups["mean_shaft_width_um"].notna().any():
            plans.append((closeups, "mean_shaft_width_um", "Close-ups: mean shaft width"))
    if not globals_.empty:
        plans.append((globals_, "hair_coverage", "Overview photos: hair coverage"))
    for part, metric, title in plans:
        chart = progress_chart(part, metric=metric).properties(width=620, height=260)
        charts.append(ChartImage(title=title, png=chart_png(chart, scale=2)))
    return charts


def _pairs(store: Store, frame: pd.DataFrame, *, actor: Actor) -> tuple[list[BeforeAfter], list[str]]:
    pairs, notes = [], []
    for (kind, view), group in frame.groupby(["kind", "view_or_site"], sort=True):
        metric = _metric(group, kind)
        candidates = group[~group["retake"].astype(bool) & (group["aligned"] == True)]  # noqa: E712 (nullable)
        result = None
        for _, latest in candidates.iloc[::-1].iterrows():
            result = aligned_pair(store, int(latest["photo_id"]), actor=actor)
            if result is not None:
                break
        if result is None:
            if len(group) > 1:
                notes.append(f"{_place(kind, view)}: no follow-up photo could be lined up with the first one, so "
                             "no before/after pair is shown.")
            continue
        base_id, before, after = result
        base_rows = group[group["photo_id"] == base_id]
        base = base_rows.iloc[0] if not base_rows.empty else None
        before_lines = () if base is None else (format_measure(metric, _number(base[metric]),
                                                               _number(base.get(f"{metric}_sd"))),)
        change = _number(latest["change_from_baseline_pct"]) if metric == PRIMARY_METRIC[kind] else None
        after_lines = (format_measure(metric, _number(latest[metric]), _number(latest.get(f"{metric}_sd"))),)
        if change is not None:
            verdict = {True: ", beyond noise", False: ", within noise", None: ""}[_flag(latest["change_exceeds_noise"])]
            after_lines += (f"{_signed_pct(change)} since the first session{verdict}",)
        before_label = "First photo" if base is None else visit_label(base["visit_date"].date(),
                                                                      _int(base["session_number"]))
        pairs.append(BeforeAfter(
            title=_place(kind, view), before=before, after=after, before_label=before_label,
            after_label=visit_label(latest["visit_date"].date(), _int(latest["session_number"])),
            before_lines=before_lines, after_lines=after_lines,
        ))
    return pairs, notes


def _int(value) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _thresholds(store: Store, analysis_ids: list[int]) -> tuple[float, float]:
    with store.session() as session:
        parameters = session.scalars(select(Analysis.parameters).where(Analysis.id.in_(analysis_ids))).all()
    vellus = {p.get("vellus_um") for p in parameters if p and p.get("vellus_um")}
    terminal = {p.get("terminal_um") for p in parameters if p and p.get("terminal_um")}
    return (vellus.pop() if len(vellus) == 1 else 30.0), (terminal.pop() if len(terminal) == 1 else 60.0)


def report_data(
    store: Store, patient_id: int, *, actor: Actor, include_name: bool = False, now: dt.datetime | None = None
) -> ReportData:
    """Everything the consultation report prints, gathered with the actor's access checked.

    Raises
    ------
    tracker.errors.PermissionDenied
        The actor may not read this patient (a patient asking for someone else's record).
    tracker.errors.NotFound
        No such patient (clinicians; a patient gets PermissionDenied).
    ValueError
        The patient has no analysed photos yet: there is nothing to report.
    """
    require_patient_access(actor, patient_id)
    with store.session() as session:
        patient = session.get(Patient, patient_id)
        if patient is None:
            raise missing(actor, f"patient with id {patient_id}")
        visits = session.scalars(
            select(Visit).where(Visit.patient_id == patient_id)
            .options(selectinload(Visit.treatments), selectinload(Visit.photos))
            .order_by(Visit.visit_date, Visit.id)
        ).all()
        visit_rows = [VisitRow(visit_date=v.visit_date, session_number=v.session_number,
                               treatments=treatment_summary(v.treatments), photos=len(v.photos)) for v in visits]
        code, name = patient.code, patient.display_name
    frame = timeline(store, patient_id, actor=actor, audited=False)
    if frame.empty:
        raise ValueError(f"patient {code} has no analysed photos yet: there is nothing to report")
    pairs, notes = _pairs(store, frame, actor=actor)
    vellus_um, terminal_um = _thresholds(store, [int(i) for i in frame["analysis_id"]])
    return ReportData(
        patient_code=code,
        patient_name=name if include_name else None,
        generated_at=now or dt.datetime.now(dt.UTC),
        pipeline_version=PIPELINE_VERSION,
        visits=tuple(visit_rows),
        summary=tuple(summary_sentences(frame)),
        measurements=tuple(_measurements(frame)),
        charts=tuple(_charts(frame)),
        pairs=tuple(pairs),
        analysis_versions=tuple(sorted(set(frame["pipeline_version"].astype(str)))),
        vellus_um=float(vellus_um),
        terminal_um=float(terminal_um),
        notes=tuple(notes),
    )


def consultation_report(store: Store, patient_id: int, *, actor: Actor, include_name: bool = False) -> bytes:
    """The PDF consultation report of a patient (clinicians: any patient; a patient: their own).

    The patient's name is printed only with ``include_name``; otherwise only the pseudonymous code.
    The export is audited (action ``export``, details ``kind="pdf_report"``).

    Raises
    ------
    tracker.errors.PermissionDenied
        The actor may not read this patient.
    tracker.errors.NotFound
        No such patient (clinical actors).
    ValueError
        The patient has no analysed photos yet (the message says so).
    """
    data = report_data(store, patient_id, actor=actor, include_name=include_name)
    pdf = build_report_pdf(data)
    audit(store, actor, "export", object_type="patient", object_id=patient_id,
          details={"kind": "pdf_report", "include_name": bool(include_name), "bytes": len(pdf),
                   "photos_shown": 2 * len(data.pairs)})
    return pdf
