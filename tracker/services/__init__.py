"""Use cases of the tracker: patients and visits, photo ingest and analysis, timelines, demo data.

The dashboard and the CLI call these; they never touch SQL or pixels themselves.
"""

from tracker.services.access import Actor, require_admin, require_clinical, require_patient_access
from tracker.services.demo import load_manifest, seed_demo
from tracker.services.erasure import erase_patient
from tracker.services.patients import (
    TREATMENT_TYPES,
    TreatmentInput,
    create_patient,
    get_patient,
    get_visit,
    list_patients,
    list_visits,
    open_visit,
    treatment_summary,
)
from tracker.services.photos import (
    IngestResult,
    align_manually,
    analyse_photo,
    ingest_photo,
    latest_analysis,
    load_pixels,
    validate_view,
)
from tracker.services.timeline import PRIMARY_METRIC, export_csv, timeline

__all__ = [
    "PRIMARY_METRIC", "TREATMENT_TYPES", "Actor", "IngestResult", "TreatmentInput", "align_manually",
    "analyse_photo",
    "create_patient", "erase_patient", "export_csv", "get_patient", "get_visit", "ingest_photo", "latest_analysis",
    "list_patients", "list_visits", "load_manifest", "load_pixels", "open_visit", "require_admin",
    "require_clinical", "require_patient_access", "seed_demo", "timeline", "treatment_summary", "validate_view",
]
from tracker.services.corrections import (  # noqa: E402
    correct_analysis,
    current_marks,
    latest_correction,
    list_corrections,
    preview_correction,
)
from tracker.services.roi import current_roi, set_roi  # noqa: E402

__all__ += ["correct_analysis", "current_marks", "current_roi", "latest_correction", "list_corrections",
            "preview_correction", "set_roi"]
from tracker.services.devices import (  # noqa: E402
    create_device_profile,
    get_device_profile,
    list_device_profiles,
    measure_ruler_photo,
    retire_device_profile,
)

__all__ += ["create_device_profile", "get_device_profile", "list_device_profiles", "measure_ruler_photo",
            "retire_device_profile"]
from tracker.services.patients import EDITABLE_FIELDS, PatientOverview, patient_overview, update_patient  # noqa: E402

__all__ += ["EDITABLE_FIELDS", "PatientOverview", "patient_overview", "update_patient"]
