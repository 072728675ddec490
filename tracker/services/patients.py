"""Patients and visits: create, edit, find, list (with the clinic overview: last visit, next session, trend)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from tracker.errors import NotFound, PermissionDenied
from tracker.services.access import Actor, audit, missing, require_clinical, require_patient_access
from tracker.store import Analysis, Correction, Patient, Photo, Store, Treatment, Visit

TREATMENT_TYPES = ("mesotherapy", "prp", "minoxidil", "finasteride", "exosomes", "microneedling", "other")
SEXES = ("F", "M", "X")


@dataclass(frozen=True)
class TreatmentInput:
    """A treatment given at a visit."""

    type: str
    product: str = ""
    dose: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        if self.type not in TREATMENT_TYPES:
            raise ValueError(f"unknown treatment type {self.type!r}; expected one of {', '.join(TREATMENT_TYPES)}")


def create_patient(
    store: Store,
    *,
    actor: Actor,
    code: str,
    display_name: str,
    birth_year: int | None = None,
    sex: str | None = None,
    notes: str = "",
) -> Patient:
    """Create a patient; the pseudonymous ``code`` must be new. Clinicians only."""
    require_clinical(actor)
    code = code.strip()
    if not code or len(code) > 32:
        raise ValueError("patient code must be 1-32 characters")
    _check_name(display_name)
    _check_sex(sex)
    _check_birth_year(birth_year)
    with store.session() as session:
        if session.scalar(select(Patient.id).where(Patient.code == code)) is not None:
            raise ValueError(f"a patient with code {code!r} already exists")
        patient = Patient(code=code, display_name=display_name.strip(), birth_year=birth_year, sex=sex, notes=notes)
        session.add(patient)
        session.commit()
    audit(store, actor, "patient_created", object_type="patient", object_id=patient.id)
    return patient


def _check_name(display_name: str) -> None:
    if not isinstance(display_name, str) or not display_name.strip():
        raise ValueError("display name must not be empty")
    if len(display_name.strip()) > 200:
        raise ValueError("display name must be at most 200 characters")


def _check_sex(sex: str | None) -> None:
    if sex is not None and sex not in SEXES:
        raise ValueError(f"sex must be one of {', '.join(SEXES)} or empty")


def _check_birth_year(birth_year: int | None) -> None:
    this_year = dt.date.today().year
    if birth_year is not None and (isinstance(birth_year, bool) or not isinstance(birth_year, int)
                                   or not 1900 <= birth_year <= this_year):
        raise ValueError(f"birth year must be a whole number between 1900 and {this_year}")


def _check_date(value: dt.date | None, what: str) -> None:
    if value is not None and (isinstance(value, dt.datetime) or not isinstance(value, dt.date)):
        raise ValueError(f"{what} must be a date, got {type(value).__name__}")


#: What :func:`update_patient` may change (the pseudonymous code is fixed: exports and accounts refer to it).
EDITABLE_FIELDS = ("display_name", "birth_year", "sex", "notes", "next_session_date")


def update_patient(store: Store, patient_id: int, *, actor: Actor, **fields) -> Patient:
    """Change a patient's details; audited as ``edit_patient`` (the names of the changed fields). Clinicians only.

    Parameters
    ----------
    patient_id : int
    **fields
        Any of :data:`EDITABLE_FIELDS`: ``display_name`` (str, not empty), ``birth_year`` (int or None),
        ``sex`` ("F", "M", "X" or None; "" means None), ``notes`` (str), ``next_session_date``
        (:class:`datetime.date` or None). Fields left out are kept.

    Returns the row after the change. Raises ValueError for an unknown field or an invalid value (nothing
    is changed then), NotFound when there is no such patient, PermissionDenied for non-clinicians.
    """
    require_clinical(actor)
    unknown = sorted(set(fields) - set(EDITABLE_FIELDS))
    if unknown:
        raise ValueError(f"cannot edit {', '.join(unknown)}; editable: {', '.join(EDITABLE_FIELDS)}")
    if "display_name" in fields:
        _check_name(fields["display_name"])
        fields["display_name"] = fields["display_name"].strip()
    if "sex" in fields:
        fields["sex"] = fields["sex"] or None
        _check_sex(fields["sex"])
    if "birth_year" in fields:
        _check_birth_year(fields["birth_year"])
    if "notes" in fields and not isinstance(fields["notes"], str):
        raise ValueError("notes must be text")
    if "next_session_date" in fields:
        _check_date(fields["next_session_date"], "next session date")
    with store.session() as session:
        patient = session.get(Patient, patient_id)
        if patient is None:
            raise missing(actor, f"patient with id {patient_id}")
        changed = sorted(name for name, value in fields.items() if getattr(patient, name) != value)
        for name in changed:
            setattr(patient, name, fields[name])
        session.commit()
    if changed:
        audit(store, actor, "edit_patient", object_type="patient", object_id=patient_id,
              details={"fields": changed})
    return patient


def get_patient(store: Store, patient: int | str, *, actor: Actor) -> Patient:
    """Find a patient by id or by code.

    Raises :class:`NotFound` for clinicians when there is no such patient, and
    :class:`PermissionDenied` for anyone who may not see it (also when it does not exist, so a
    patient account cannot probe which codes exist).
    """
    with store.session() as session:
        column = Patient.id if isinstance(patient, int) else Patient.code
        found = session.scalar(select(Patient).where(column == patient))
    if found is None:
        raise missing(actor, f"patient {patient!r}")
    require_patient_access(actor, found.id)
    return found


def list_patients(
    store: Store, *, actor: Actor, search: str = "", limit: int | None = None, ids: Sequence[int] | None = None
) -> list[dict]:
    """Patients the actor may see, with their number of visits and last visit date, ordered by code.

    ``limit`` caps the list (the first patients by code) and ``ids`` restricts it to those patients, so a
    picker costs the same with 10 or 10,000 patients: visits are counted for the listed patients only.
    """
    if actor.role == "admin":
        raise PermissionDenied("administrators do not see clinical records")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    with store.session() as session:
        query = select(Patient.id)
        if actor.role == "patient":
            query = query.where(Patient.id == actor.patient_id)
        if ids is not None:
            query = query.where(Patient.id.in_(list(ids)))
        if search.strip():
            pattern = f"%{search.strip()}%"
            query = query.where(Patient.code.ilike(pattern) | Patient.display_name.ilike(pattern))
        listed = query.order_by(Patient.code).limit(limit).subquery()
        last = (
            select(Visit.patient_id, func.count(Visit.id).label("visits"), func.max(Visit.visit_date).label("last"))
            .where(Visit.patient_id.in_(select(listed.c.id)))
            .group_by(Visit.patient_id)
            .subquery()
        )
        query = (
            select(Patient, last.c.visits, last.c.last)
            .where(Patient.id.in_(select(listed.c.id)))
            .outerjoin(last, last.c.patient_id == Patient.id)
        )
        rows = session.execute(query.order_by(Patient.code)).all()
        return [
            {
                "id": p.id,
                "code": p.code,
                "display_name": p.display_name,
                "birth_year": p.birth_year,
                "sex": p.sex,
                "visits": visits or 0,
                "last_visit": last_date,
            }
            for p, visits, last_date in rows
        ]


@dataclass(frozen=True)
class PatientOverview:
    """One page of the clinic's patient list (see :func:`patient_overview`)."""

    rows: list[dict]
    total: int  # patients matching the search, on all pages
    limit: int
    offset: int


def patient_overview(
    store: Store, *, actor: Actor, search: str = "", limit: int = 50, offset: int = 0, today: dt.date | None = None
) -> PatientOverview:
    """One page of the patients the actor may see, ordered by code, with what the clinic list shows.

    Each row has ``id``, ``code``, ``display_name``, ``birth_year``, ``sex``, ``notes``, ``visits``,
    ``last_visit`` (date or None), ``next_session_date`` (date or None), ``overdue`` (the next session
    date is before ``today``, default today), and the trend of the patient's primary measure:
    ``trend`` ("up", "down", "flat" or None), ``latest_change_pct`` (float or None), ``trend_metric``
    ("density_per_cm2" or "hair_coverage"), ``trend_view`` (view or site) and ``trend_date``.

    The trend follows the newest charted follow-up of the primary measure (close-up density when the
    patient has a charted density change, else global coverage) against the first charted photo of the
    same view/site, with the same rules as :func:`tracker.services.timeline.timeline`: "flat" when the
    change is within measurement noise (twice the combined standard deviation), None when there is no
    follow-up to compare, or when the uncertainty is unknown (``latest_change_pct`` is then still given).

    The page costs a fixed number of queries whatever the number of patients: the count, the page with
    its visit aggregates, and the newest analyses of the listed patients' photos (plus the audit event
    ``view_patient_list`` naming the listed patients).
    """
    if actor.role == "admin":
        raise PermissionDenied("administrators do not see clinical records")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 500:
        raise ValueError(f"limit must be a whole number from 1 to 500, got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset must be a whole number >= 0, got {offset!r}")
    today = today or dt.date.today()
    conditions = []
    if actor.role == "patient":
        conditions.append(Patient.id == actor.patient_id)
    if search.strip():
        term = search.strip()
        conditions.append(Patient.code.icontains(term, autoescape=True)
                          | Patient.display_name.icontains(term, autoescape=True))
    with store.session() as session:
        total = session.scalar(select(func.count(Patient.id)).where(*conditions)) or 0
        per_patient = (
            select(Visit.patient_id, func.count(Visit.id).label("visits"), func.max(Visit.visit_date).label("last"))
            .group_by(Visit.patient_id)
            .subquery()
        )
        page = session.execute(
            select(Patient, per_patient.c.visits, per_patient.c.last)
            .outerjoin(per_patient, per_patient.c.patient_id == Patient.id)
            .where(*conditions)
            .order_by(Patient.code)
            .limit(limit)
            .offset(offset)
        ).all()
        trends = _trends(session, [p.id for p, _, _ in page])
    rows = []
    for p, visits, last_date in page:
        rows.append({
            "id": p.id, "code": p.code, "display_name": p.display_name, "birth_year": p.birth_year,
            "sex": p.sex, "notes": p.notes, "visits": visits or 0, "last_visit": last_date,
            "next_session_date": p.next_session_date,
            "overdue": p.next_session_date is not None and p.next_session_date < today,
            **trends.get(p.id, _NO_TREND),
        })
    audit(store, actor, "view_patient_list", object_type="patients", details={"patient_ids": [r["id"] for r in rows]})
    return PatientOverview(rows=rows, total=total, limit=limit, offset=offset)


_NO_TREND = {"trend": None, "latest_change_pct": None, "trend_metric": None, "trend_view": None, "trend_date": None}


def _trends(session, patient_ids: list[int]) -> dict[int, dict]:
    """The trend of each patient (see :func:`patient_overview`) from one query over their newest analyses.

    The change rule is the timeline's (:func:`tracker.services.timeline.timeline`), in plain Python: the
    list must stay fast at 50 patients a page (tests check both agree).
    """
    from tracker.services.timeline import IMAGE_FAILURE_FLAGS, PRIMARY_METRIC

    if not patient_ids:
        return {}
    newest = (
        select(func.max(Analysis.id))
        .join(Photo, Analysis.photo_id == Photo.id)
        .join(Visit, Photo.visit_id == Visit.id)
        .where(Visit.patient_id.in_(patient_ids))
        .group_by(Analysis.photo_id)
    )
    result = session.execute(
        select(Visit.patient_id, Visit.visit_date, Photo.kind, Photo.view_or_site,
               Analysis.metrics, Analysis.uncertainty, Analysis.quality, Analysis.id)
        .join(Photo, Analysis.photo_id == Photo.id)
        .join(Visit, Photo.visit_id == Visit.id)
        .where(Analysis.id.in_(newest))
        .order_by(Visit.patient_id, Visit.visit_date, Visit.id, Photo.id)
    ).all()
    # A hand-corrected analysis counts with its newest correction's figures, as on the Progress page.
    corrected = dict(session.execute(
        select(Correction.analysis_id, Correction.metrics)
        .where(Correction.analysis_id.in_([row[-1] for row in result]))
        .order_by(Correction.id)
    ).all())
    baselines: dict[tuple, tuple[float, float | None]] = {}  # (patient, kind, view) -> first charted value, sd
    latest: dict[tuple, dict] = {}  # (patient, kind) -> the newest follow-up so far (rows come oldest first)
    for patient_id, visit_date, kind, view, metrics, sds, quality, analysis_id in result:
        metric = PRIMARY_METRIC[kind]
        quality = quality or {}
        retake = bool(quality.get("retake"))
        if analysis_id in corrected:
            metrics = corrected[analysis_id]
            retake = bool(IMAGE_FAILURE_FLAGS.intersection(quality.get("flags", [])))
        value, sd = (metrics or {}).get(metric), (sds or {}).get(f"{metric}_sd")
        if value is None or retake:
            continue  # not charted
        key = (patient_id, kind, view)
        if key not in baselines:
            baselines[key] = (float(value), sd)
            continue
        base, base_sd = baselines[key]
        if base == 0:
            continue
        change = (float(value) - base) / base * 100.0
        if sd is None or base_sd is None:
            trend = None  # the noise is unknown
        elif abs(float(value) - base) <= 2.0 * (base_sd**2 + sd**2) ** 0.5:
            trend = "flat"
        else:
            trend = "up" if change > 0 else "down"
        latest[(patient_id, kind)] = {"trend": trend, "latest_change_pct": change, "trend_metric": metric,
                                      "trend_view": view, "trend_date": visit_date}
    trends = {}
    for patient_id in patient_ids:
        found = latest.get((patient_id, "closeup")) or latest.get((patient_id, "global"))
        if found is not None:
            trends[patient_id] = found
    return trends


def open_visit(
    store: Store,
    patient_id: int,
    *,
    actor: Actor,
    visit_date: dt.date,
    session_number: int | None = None,
    treatments: Iterable[TreatmentInput] = (),
    notes: str = "",
    next_session_date: dt.date | None = None,
) -> Visit:
    """Record a visit of a patient with the treatments given. Clinicians only.

    ``next_session_date``, when given, becomes the patient's next planned session
    (:attr:`Patient.next_session_date`); it must not be before ``visit_date``.
    """
    require_clinical(actor)
    if session_number is not None and session_number < 0:
        raise ValueError("session number must not be negative")
    _check_date(visit_date, "visit date")
    _check_date(next_session_date, "next session date")
    if next_session_date is not None and next_session_date < visit_date:
        raise ValueError(f"the next session ({next_session_date}) cannot be before this visit ({visit_date})")
    with store.session() as session:
        patient = session.get(Patient, patient_id)
        if patient is None:
            raise NotFound(f"no patient with id {patient_id}")
        if next_session_date is not None:
            patient.next_session_date = next_session_date
        visit = Visit(patient_id=patient_id, visit_date=visit_date, session_number=session_number, notes=notes)
        visit.treatments = [
            Treatment(type=t.type, product=t.product, dose=t.dose, notes=t.notes) for t in treatments
        ]
        session.add(visit)
        session.commit()
        session.refresh(visit, attribute_names=["treatments"])
    details = {"patient_id": patient_id}
    if next_session_date is not None:
        details["next_session_date"] = next_session_date.isoformat()
    audit(store, actor, "visit_created", object_type="visit", object_id=visit.id, details=details)
    return visit


def list_visits(store: Store, patient_id: int, *, actor: Actor) -> Sequence[Visit]:
    """A patient's visits, oldest first, with treatments and photos loaded."""
    require_patient_access(actor, patient_id)
    with store.session() as session:
        return session.scalars(
            select(Visit)
            .where(Visit.patient_id == patient_id)
            .options(selectinload(Visit.treatments), selectinload(Visit.photos))
            .order_by(Visit.visit_date, Visit.id)
        ).all()


def get_visit(store: Store, visit_id: int, *, actor: Actor) -> Visit:
    """One visit with treatments and photos; :class:`NotFound` or :class:`PermissionDenied` otherwise."""
    with store.session() as session:
        visit = session.scalar(
            select(Visit)
            .where(Visit.id == visit_id)
            .options(selectinload(Visit.treatments), selectinload(Visit.photos))
        )
    if visit is None:
        raise missing(actor, f"visit with id {visit_id}")
    require_patient_access(actor, visit.patient_id)
    return visit


def treatment_summary(treatments: Iterable[Treatment]) -> str:
    """One line such as ``"mesotherapy (biotin cocktail, 2 ml); PRP"``."""
    parts = []
    for t in treatments:
        label = "PRP" if t.type == "prp" else t.type
        detail = ", ".join(x for x in (t.product, t.dose) if x)
        parts.append(f"{label} ({detail})" if detail else label)
    return "; ".join(parts)
