"""Patients and visits: create, find, list."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from tracker.errors import NotFound, PermissionDenied
from tracker.services.access import Actor, audit, missing, require_clinical, require_patient_access
from tracker.store import Patient, Store, Treatment, Visit

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
    if not display_name.strip():
        raise ValueError("display name must not be empty")
    if sex is not None and sex not in SEXES:
        raise ValueError(f"sex must be one of {', '.join(SEXES)} or empty")
    this_year = dt.date.today().year
    if birth_year is not None and not 1900 <= birth_year <= this_year:
        raise ValueError(f"birth year must be between 1900 and {this_year}")
    with store.session() as session:
        if session.scalar(select(Patient.id).where(Patient.code == code)) is not None:
            raise ValueError(f"a patient with code {code!r} already exists")
        patient = Patient(code=code, display_name=display_name.strip(), birth_year=birth_year, sex=sex, notes=notes)
        session.add(patient)
        session.commit()
    audit(store, actor, "patient_created", object_type="patient", object_id=patient.id)
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


def list_patients(store: Store, *, actor: Actor, search: str = "") -> list[dict]:
    """Patients the actor may see, with their number of visits and last visit date, ordered by code."""
    if actor.role == "admin":
        raise PermissionDenied("administrators do not see clinical records")
    with store.session() as session:
        last = (
            select(Visit.patient_id, func.count(Visit.id).label("visits"), func.max(Visit.visit_date).label("last"))
            .group_by(Visit.patient_id)
            .subquery()
        )
        query = select(Patient, last.c.visits, last.c.last).outerjoin(last, last.c.patient_id == Patient.id)
        if actor.role == "patient":
            query = query.where(Patient.id == actor.patient_id)
        if search.strip():
            pattern = f"%{search.strip()}%"
            query = query.where(Patient.code.ilike(pattern) | Patient.display_name.ilike(pattern))
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


def open_visit(
    store: Store,
    patient_id: int,
    *,
    actor: Actor,
    visit_date: dt.date,
    session_number: int | None = None,
    treatments: Iterable[TreatmentInput] = (),
    notes: str = "",
) -> Visit:
    """Record a visit of a patient with the treatments given. Clinicians only."""
    require_clinical(actor)
    if session_number is not None and session_number < 0:
        raise ValueError("session number must not be negative")
    with store.session() as session:
        if session.get(Patient, patient_id) is None:
            raise NotFound(f"no patient with id {patient_id}")
        visit = Visit(patient_id=patient_id, visit_date=visit_date, session_number=session_number, notes=notes)
        visit.treatments = [
            Treatment(type=t.type, product=t.product, dose=t.dose, notes=t.notes) for t in treatments
        ]
        session.add(visit)
        session.commit()
        session.refresh(visit, attribute_names=["treatments"])
    audit(store, actor, "visit_created", object_type="visit", object_id=visit.id,
          details={"patient_id": patient_id})
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
