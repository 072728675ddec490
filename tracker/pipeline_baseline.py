"""What a follow-up needs from its baseline photo, prepared once (issue 7).

Every follow-up of a view or site is aligned to the patient's baseline photo of it. Without this module
each analysis decoded the baseline again and redid everything that depends on the baseline alone: its
sharpness (blur is judged relative to it), its fiducial sticker (close-ups), its hair region (global views:
hair moves between visits, so features are taken elsewhere) and its alignment features. On a 12 MP photo
that is a decode (about 60 ms) plus 0.1-0.3 s of work, paid at every later visit.

:func:`prepare_baseline` computes all of it once; :class:`BaselineReference` serialises it to bytes
(numpy ``.npz``, no pickles), which the service stores beside the baseline photo
(:mod:`tracker.services.baselines`). :func:`tracker.pipeline.analyse_closeup` and
:func:`~tracker.pipeline.analyse_global` accept a reference wherever they accept a baseline photo, with
the same results (tested).
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from tracker import PIPELINE_VERSION
from tracker.imaging.quality import sharpness
from tracker.pipeline_scale import STICKER_MM, find_sticker, sticker_field_mask

__all__ = ["FORMAT", "BaselineReference", "prepare_baseline", "reference_version"]

#: Version of the serialised form of :class:`BaselineReference`.
FORMAT = 1
KINDS = ("closeup", "global")


def reference_version() -> str:
    """The version a stored reference must have to be used: the pipeline's and this format's."""
    return f"{PIPELINE_VERSION}+ref{FORMAT}"


@dataclass(frozen=True)
class BaselineReference:
    """A baseline photo as its follow-ups need it (see :func:`prepare_baseline`).

    Attributes
    ----------
    kind : {"closeup", "global"}
    shape : tuple of int
        ``(H, W)`` of the baseline photo (transforms map follow-up pixels to these pixels).
    sharpness : float
        :func:`tracker.imaging.quality.sharpness` of the baseline.
    alignment : tracker.imaging.align_reference.AlignmentReference
        Features, masks and working level for :func:`tracker.imaging.align.align_images` (the sticker,
        and for global views the hair region, already masked out).
    sticker : tracker.imaging.fiducial.FiducialResult or None
        Close-ups: the baseline's sticker search (None when no search was made).
    marker_size_mm : float or None
        The printed marker size the sticker search used.
    version : str
        :func:`reference_version` when it was made.
    """

    kind: str
    shape: tuple[int, int]
    sharpness: float
    alignment: Any
    sticker: Any = None
    marker_size_mm: float | None = None
    version: str = dataclasses.field(default_factory=reference_version)

    def to_bytes(self) -> bytes:
        """Compressed ``.npz`` bytes (no pickles)."""
        meta = {"format": FORMAT, "version": self.version, "kind": self.kind, "shape": list(self.shape),
                "sharpness": float(self.sharpness), "marker_size_mm": self.marker_size_mm,
                "sticker": None if self.sticker is None else self.sticker.as_dict()}
        buffer = io.BytesIO()
        np.savez_compressed(buffer, meta=np.array(json.dumps(meta)),
                            alignment=np.frombuffer(self.alignment.to_bytes(), dtype=np.uint8))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> BaselineReference:
        """Rebuild a reference from :meth:`to_bytes` output.

        Raises
        ------
        ValueError
            Not a serialised baseline reference, or one of another format.
        """
        from tracker.imaging.align_reference import AlignmentReference
        from tracker.imaging.fiducial import FiducialResult

        try:
            with np.load(io.BytesIO(bytes(data)), allow_pickle=False) as npz:
                meta = json.loads(str(npz["meta"]))
                alignment = AlignmentReference.from_bytes(npz["alignment"].tobytes())
            if meta["format"] != FORMAT or meta["kind"] not in KINDS:
                raise ValueError(f"format {meta['format']} / kind {meta['kind']!r} not supported")
            shape = (int(meta["shape"][0]), int(meta["shape"][1]))
            if shape != alignment.shape:
                raise ValueError("shapes of the photo and its alignment level disagree")
            sticker = meta["sticker"]
            if sticker is not None:
                arrays = {k: None if v is None else np.asarray(v, np.float64)
                          for k, v in sticker.items() if k in ("corners", "polygon", "homography")}
                sticker = FiducialResult(**{**sticker, **arrays})
            return cls(kind=meta["kind"], shape=shape, sharpness=float(meta["sharpness"]), alignment=alignment,
                       sticker=sticker, marker_size_mm=meta["marker_size_mm"], version=str(meta["version"]))
        except (OSError, EOFError, KeyError, TypeError, IndexError, zipfile.BadZipFile, json.JSONDecodeError,
                ValueError) as exc:
            raise ValueError(f"not a usable baseline reference ({exc})") from None


def prepare_baseline(
    image: np.ndarray, *, kind: str, marker_size_mm: float | None = STICKER_MM
) -> BaselineReference:
    """Everything the analyses of follow-ups compute from their baseline photo alone.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), uint8
        The baseline photo (RGB).
    kind : {"closeup", "global"}
        Its kind: a close-up's sticker is searched and masked out of the features; a global view's hair
        region is masked out of them (as :func:`tracker.pipeline.analyse_global` does).
    marker_size_mm : float or None
        Close-ups: the printed marker size for the sticker search (None: no search).

    Returns
    -------
    BaselineReference

    Raises
    ------
    ValueError
        Not an (H, W, 3) uint8 image, or an unknown kind.
    """
    from tracker.imaging.align_reference import prepare_reference

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError("image must be an (H, W, 3) uint8 RGB array")
    sticker = None
    if kind == "closeup":
        sticker = find_sticker(image, marker_size_mm=marker_size_mm)
        alignment = prepare_reference(image, reference_mask=sticker_field_mask(sticker, image.shape),
                                      preset="closeup")
    else:
        from tracker.imaging.hair_region import hair_region

        alignment = prepare_reference(image, reference_mask=~hair_region(image), preset="global")
    return BaselineReference(kind=kind, shape=(int(image.shape[0]), int(image.shape[1])),
                             sharpness=float(sharpness(image)), alignment=alignment, sticker=sticker,
                             marker_size_mm=None if marker_size_mm is None else float(marker_size_mm))
