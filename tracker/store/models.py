"""The data model: SQLAlchemy 2 typed ORM classes, one per table.

The schema works on SQLite (the embedded default) and PostgreSQL. Conventions:

- Every datetime is stored in UTC and read back **timezone-aware** (:class:`UTCDateTime`), on SQLite too,
  so comparisons never mix naive and aware values. Naive datetimes are refused on write.
- JSON columns use :class:`sqlalchemy.JSON` (TEXT on SQLite, JSON on PostgreSQL). In-place mutation of a
  loaded dict is *not* tracked: assign a new value instead (``row.details = {**row.details, ...}``).
- Closed vocabularies (photo kind, scale source, role, sex, treatment type) are enforced by CHECK
  constraints; the allowed values are exported as tuples (:data:`PHOTO_KINDS`, ...).
- :class:`Analysis` and :class:`AuditEvent` rows are append-only: re-analysis adds a row, history is never
  overwritten. The ORM refuses to flush an UPDATE of either (:class:`~tracker.errors.StorageError`);
  build the row completely before adding it. Deleting them is still possible (cascade from a photo).
- Constraint names follow :data:`NAMING_CONVENTION`, so Alembic migrations can refer to them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    inspect,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, mapped_column, relationship

from tracker.errors import StorageError

__all__ = [
    "NAMING_CONVENTION",
    "PHOTO_KINDS",
    "ROLES",
    "SCALE_SOURCES",
    "DEVICE_SCALE_SOURCES",
    "DeviceProfile",
    "SEXES",
    "TREATMENT_TYPES",
    "Analysis",
    "AuditEvent",
    "Base",
    "Correction",
    "Patient",
    "Photo",
    "Treatment",
    "User",
    "UTCDateTime",
    "Visit",
    "utcnow",
]

PHOTO_KINDS: tuple[str, ...] = ("global", "closeup")
SCALE_SOURCES: tuple[str, ...] = ("fiducial", "device", "manual")
DEVICE_SCALE_SOURCES: tuple[str, ...] = ("ruler", "entered")
ROLES: tuple[str, ...] = ("clinician", "patient", "admin")
SEXES: tuple[str, ...] = ("F", "M", "X")
TREATMENT_TYPES: tuple[str, ...] = (
    "mesotherapy",
    "prp",
    "minoxidil",
    "finasteride",
    "exosomes",
    "microneedling",
    "other",
)

#: Deterministic constraint names (Alembic needs names to alter constraints, SQLite batch mode included).
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """The current time as a timezone-aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


def _in_list(column: str, values: tuple[str, ...], *, nullable: bool = False) -> str:
    allowed = ", ".join(f"'{v}'" for v in values)
    test = f"{column} IN ({allowed})"
    return f"{column} IS NULL OR {test}" if nullable else test


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A datetime column that stores UTC and always returns timezone-aware UTC values.

    On write, aware datetimes are converted to UTC; naive ones are refused with ``ValueError`` (their
    timezone is unknown). SQLite has no timezone type, so the UTC value is stored without offset and the
    UTC zone is attached again on read. PostgreSQL uses ``timestamp with time zone``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise ValueError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: attach a timezone (UTC)")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of every table; ``Base.metadata`` is the whole schema."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class Patient(Base):
    """A patient, known to the tracker by a pseudonymous code (e.g. ``"DEMO-001"``)."""

    __tablename__ = "patients"
    __table_args__ = (CheckConstraint(_in_list("sex", SEXES, nullable=True), name="sex"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    birth_year: Mapped[int | None] = mapped_column(Integer)
    sex: Mapped[str | None] = mapped_column(String(1))
    notes: Mapped[str] = mapped_column(Text, default="")
    next_session_date: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    visits: Mapped[list[Visit]] = relationship(
        back_populates="patient",
        order_by="Visit.visit_date",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    def __repr__(self) -> str:
        return f"Patient(id={self.id!r}, code={self.code!r})"


class Visit(Base):
    """One clinic visit of a patient: the photos taken and the treatments given that day."""

    __tablename__ = "visits"
    __table_args__ = (Index("ix_visits_patient_date", "patient_id", "visit_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    visit_date: Mapped[dt.date] = mapped_column(Date)
    session_number: Mapped[int | None] = mapped_column(Integer)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    patient: Mapped[Patient] = relationship(back_populates="visits")
    treatments: Mapped[list[Treatment]] = relationship(
        back_populates="visit", order_by="Treatment.id", cascade="all, delete-orphan", passive_deletes=True
    )
    photos: Mapped[list[Photo]] = relationship(
        back_populates="visit", order_by="Photo.id", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"Visit(id={self.id!r}, patient_id={self.patient_id!r}, visit_date={self.visit_date!r})"


class Treatment(Base):
    """A treatment given at a visit (type from :data:`TREATMENT_TYPES`, free-text product and dose)."""

    __tablename__ = "treatments"
    __table_args__ = (CheckConstraint(_in_list("type", TREATMENT_TYPES), name="type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(40))
    product: Mapped[str] = mapped_column(String(200), default="")
    dose: Mapped[str] = mapped_column(String(100), default="")
    notes: Mapped[str] = mapped_column(Text, default="")

    visit: Mapped[Visit] = relationship(back_populates="treatments")

    def __repr__(self) -> str:
        return f"Treatment(id={self.id!r}, visit_id={self.visit_id!r}, type={self.type!r})"


class DeviceProfile(Base):
    """A calibrated capture device: a dermoscope (or phone clip-on) at one magnification and its px/mm.

    Set once from a ruler photo (``source="ruler"``) or entered by hand (``source="entered"``); a close-up
    uploaded with this profile gets its scale (``Photo.scale_source = "device"``).
    """

    __tablename__ = "device_profiles"
    __table_args__ = (CheckConstraint(_in_list("source", DEVICE_SCALE_SOURCES), name="source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    px_per_mm: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(10))
    notes: Mapped[str] = mapped_column(Text, default="")
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"DeviceProfile(id={self.id!r}, name={self.name!r}, px_per_mm={self.px_per_mm!r})"


class Photo(Base):
    """One stored photo: a ``global`` view or a trichoscopy ``closeup`` at a named site.

    ``sha256_original`` is the hash of the uploaded file; ``blob_key`` names the stored (re-encoded,
    metadata-free) bytes in the blob store. ``px_per_mm`` is the scale when known, with its
    ``scale_source``.
    """

    __tablename__ = "photos"
    __table_args__ = (
        CheckConstraint(_in_list("kind", PHOTO_KINDS), name="kind"),
        CheckConstraint(_in_list("scale_source", SCALE_SOURCES, nullable=True), name="scale_source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    view_or_site: Mapped[str] = mapped_column(String(40))
    sha256_original: Mapped[str] = mapped_column(String(64), index=True)
    blob_key: Mapped[str] = mapped_column(String(64))
    media_type: Mapped[str] = mapped_column(String(40))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    captured_at: Mapped[dt.datetime | None] = mapped_column()
    px_per_mm: Mapped[float | None] = mapped_column(Float)
    scale_source: Mapped[str | None] = mapped_column(String(10))
    device_profile_id: Mapped[int | None] = mapped_column(ForeignKey("device_profiles.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    visit: Mapped[Visit] = relationship(back_populates="photos")
    analyses: Mapped[list[Analysis]] = relationship(
        back_populates="photo",
        order_by="Analysis.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
        foreign_keys="Analysis.photo_id",
    )

    def __repr__(self) -> str:
        return f"Photo(id={self.id!r}, visit_id={self.visit_id!r}, kind={self.kind!r})"


class Analysis(Base):
    """One run of the measurement pipeline on a photo. **Append-only**: never updated.

    ``transform`` is the 3x3 row-major homography (list of lists) mapping this photo's pixels to the
    frame of ``baseline_photo_id``; ``mask_blob_key`` names the stored hair mask, when kept.
    """

    __tablename__ = "analyses"

    id: Mapped[int] = mapped_column(primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    pipeline_version: Mapped[str] = mapped_column(String(20))
    parameters: Mapped[dict[str, Any]] = mapped_column()
    metrics: Mapped[dict[str, Any]] = mapped_column()
    uncertainty: Mapped[dict[str, Any]] = mapped_column(default=dict)
    quality: Mapped[dict[str, Any]] = mapped_column()
    transform: Mapped[list[Any] | None] = mapped_column()
    baseline_photo_id: Mapped[int | None] = mapped_column(ForeignKey("photos.id", ondelete="SET NULL"))
    mask_blob_key: Mapped[str | None] = mapped_column(String(64))
    detections: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    photo: Mapped[Photo] = relationship(back_populates="analyses", foreign_keys=[photo_id])
    corrections: Mapped[list[Correction]] = relationship(
        back_populates="analysis",
        order_by="Correction.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    def __repr__(self) -> str:
        return (
            f"Analysis(id={self.id!r}, photo_id={self.photo_id!r}, "
            f"pipeline_version={self.pipeline_version!r})"
        )


class BaselineCache(Base):
    """What follow-ups need from a baseline photo, prepared once and stored (a derived blob).

    A follow-up is aligned to its baseline: the baseline's features, masks, sticker and sharpness are
    computed from its pixels once (``tracker.pipeline_baseline.prepare_baseline``) and stored as one blob,
    so that no later analysis decodes the baseline again. ``version`` names the pipeline and format that
    made it; another version is simply prepared again. It holds image-derived data (a reduced grey copy),
    so it is erased with the photo.
    """

    __tablename__ = "baseline_cache"
    __table_args__ = (UniqueConstraint("photo_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    version: Mapped[str] = mapped_column(String(40))
    blob_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"BaselineCache(id={self.id!r}, photo_id={self.photo_id!r}, version={self.version!r})"


class Correction(Base):
    """A clinician's manual edit of an analysis: hairs added / removed (pixel points) and the result."""

    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    analysis_id: Mapped[int] = mapped_column(ForeignKey("analyses.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    added: Mapped[list[Any]] = mapped_column(default=list)
    removed: Mapped[list[Any]] = mapped_column(default=list)
    metrics: Mapped[dict[str, Any]] = mapped_column()
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    analysis: Mapped[Analysis] = relationship(back_populates="corrections")

    def __repr__(self) -> str:
        return f"Correction(id={self.id!r}, analysis_id={self.analysis_id!r})"


class User(Base):
    """An account: a clinician, an admin, or a patient (then linked to their :class:`Patient`)."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in_list("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    role: Mapped[str] = mapped_column(String(12))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id", ondelete="SET NULL"))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    external_identity: Mapped[str | None] = mapped_column(String(255), unique=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column()
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    patient: Mapped[Patient | None] = relationship()

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, username={self.username!r}, role={self.role!r})"


class AuditEvent(Base):
    """One entry of the hash-chained audit log (write with :func:`tracker.store.audit.append_event`).

    ``user_id`` has no foreign key on purpose: deleting a user must never break the chain.
    ``prev_hash`` is unique, so two writers can never fork the chain from the same predecessor.
    """

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int | None] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(40))
    object_type: Mapped[str] = mapped_column(String(40), default="")
    object_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), index=True)

    def __repr__(self) -> str:
        return f"AuditEvent(id={self.id!r}, action={self.action!r}, username={self.username!r})"


def _refuse_update(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    # before_update also fires for rows that are "dirty" only through a relationship collection (e.g.
    # ``analysis.corrections.append(...)``): refuse only real column changes.
    state = inspect(target)
    changed = [a.key for a in mapper.column_attrs if state.attrs[a.key].history.has_changes()]
    if not changed:
        return
    raise StorageError(
        f"{type(target).__name__} rows are append-only: refusing to change {', '.join(changed)} of "
        f"id={target.id!r} (add a new row instead)"
    )


event.listen(Analysis, "before_update", _refuse_update)
event.listen(AuditEvent, "before_update", _refuse_update)
