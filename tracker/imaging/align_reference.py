"""A reusable baseline for :func:`tracker.imaging.align.align_images`: everything computed from REFERENCE alone.

:func:`prepare_reference` reduces the baseline photo once to the working level used by the feature stage and
by ECC (grey, about 1000 px on the long side, with its mask: the caller's, minus a dermoscope's vignette for
the "closeup" preset) and detects its ORB features. SIFT features, the CLAHE image and the eroded feature
mask are derived lazily from the stored level and cached. :meth:`AlignmentReference.to_bytes` serialises it
(numpy ``.npz``, compressed, no pickles, with a format version), so that a service can keep it beside the
baseline photo and never decode that photo again to align a follow-up.

``align_images(prepare_reference(ref, ...), moving, ...)`` gives the same result as
``align_images(ref, moving, ...)``: ``align_images`` prepares both photos this way internally.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

import numpy as np

from tracker.imaging.align_policy import PRESETS, resolve_limits
from tracker.imaging.features import (
    MAX_UPSCALE,
    WORK_LONG_SIDE,
    checked_grey,
    checked_mask,
    detect_features,
    equalised,
    resize_with_mask,
    vignette_mask,
)
from tracker.imaging.geometry import resize_matrix
from tracker.imaging.refine import ECC_LONG_SIDE

__all__ = ["FORMAT_VERSION", "AlignmentReference", "prepare_reference"]

#: Version of the serialised form; :meth:`AlignmentReference.from_bytes` refuses any other.
FORMAT_VERSION = 1
#: Feature methods the reference can hold.
METHODS = ("orb", "sift")
_DESCRIPTOR_DTYPES = {"orb": np.uint8, "sift": np.float32}
# One reduced copy serves the feature stage and ECC (the two sizes are equal by design).
assert WORK_LONG_SIDE == ECC_LONG_SIDE


def _frozen(array: np.ndarray) -> np.ndarray:
    out = np.array(array, copy=True)
    out.flags.writeable = False
    return out


def _without_vignette(grey: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The 0/255 mask with the dermoscope's dark ring removed (unchanged if that would leave it empty)."""
    out = np.where(vignette_mask(grey), mask, 0).astype(np.uint8)
    return out if out.any() else mask


class AlignmentReference:
    """What :func:`align_images` needs of one photo, computed once (see :func:`prepare_reference`).

    Attributes
    ----------
    shape : tuple of int
        ``(H, W)`` of the full-resolution photo (the alignment matrices refer to its pixels).
    preset : str
        Preset it was prepared for ("global" or "closeup": the close-up one leaves the vignette out).
    grey : ndarray, shape (h, w), uint8
        Grey copy at the working level (long side ``WORK_LONG_SIDE``, small photos enlarged at most
        ``MAX_UPSCALE`` times); read-only.
    mask : ndarray, shape (h, w), uint8
        0/255 mask of the pixels features and correlation may use, at that level; read-only.
    """

    def __init__(
        self,
        *,
        shape: tuple[int, int],
        preset: str,
        grey: np.ndarray,
        mask: np.ndarray,
        features: dict[str, tuple[np.ndarray, np.ndarray | None, np.ndarray]] | None = None,
    ) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        self.preset = preset
        self.grey = _frozen(grey)
        self.mask = _frozen(mask)
        self._features: dict[str, tuple[np.ndarray, np.ndarray | None, np.ndarray]] = {}
        for method, found in (features or {}).items():
            self._features[method] = tuple(None if a is None else _frozen(a) for a in found)  # type: ignore[assignment]
        self._work: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def to_work(self) -> np.ndarray:
        """(3, 3) float64 matrix from full-resolution pixels to working-level pixels."""
        return resize_matrix(self.shape, self.grey.shape)

    def working(self) -> tuple[np.ndarray, np.ndarray]:
        """CLAHE-equalised working image and eroded feature mask (as :func:`features.working_image`)."""
        if self._work is None:
            self._work = equalised(self.grey, self.mask)
        return self._work

    def features(self, method: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Keypoints ``(N, 2)`` float64 (working px), descriptors and indices by decreasing response of
        ``method`` (see :func:`features.detect_features`); computed once, then cached."""
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if method not in self._features:
            found = detect_features(method, *self.working())
            self._features[method] = tuple(None if a is None else _frozen(a) for a in found)  # type: ignore[assignment]
        return self._features[method]

    def feature_input(
        self, method: str, *, strongest: int | None = None
    ) -> tuple[np.ndarray, np.ndarray | None, tuple[int, int], np.ndarray]:
        """``(points, descriptors, working_shape, to_work)`` for :func:`features.candidates_from_features`;
        with ``strongest``, only that many keypoints of highest response (in their original order)."""
        points, descriptors, order = self.features(method)
        if strongest is not None and strongest < len(points):
            keep = np.sort(order[:strongest])
            points, descriptors = points[keep], None if descriptors is None else descriptors[keep]
        return points, descriptors, self.grey.shape, self.to_work

    # ----------------------------------------------------------------------------------------------
    # serialisation

    def to_bytes(self) -> bytes:
        """Compressed ``.npz`` bytes (no pickles) holding the level, the mask and the features computed so far."""
        arrays: dict[str, np.ndarray] = {
            "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
            "shape": np.array(self.shape, dtype=np.int64),
            "preset": np.array(self.preset),
            "grey": self.grey,
            "mask": self.mask,
        }
        for method, (points, descriptors, order) in self._features.items():
            # Keypoint positions are float32 values (OpenCV), so float32 storage is exact.
            arrays[f"{method}_points"] = points.astype(np.float32)
            arrays[f"{method}_order"] = order
            if descriptors is not None:
                arrays[f"{method}_descriptors"] = descriptors
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> AlignmentReference:
        """Rebuild a reference from :meth:`to_bytes` output.

        Raises
        ------
        ValueError
            Not bytes, not a reference of this format version, or inconsistent contents.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ValueError(f"data must be bytes, got {type(data).__name__}")
        try:
            with np.load(io.BytesIO(bytes(data)), allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in npz.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(f"not a serialised alignment reference ({exc})") from None
        return cls._from_arrays(arrays)

    @classmethod
    def _from_arrays(cls, arrays: dict[str, np.ndarray]) -> AlignmentReference:
        def need(key: str, dtype: Any, ndim: int) -> np.ndarray:
            value = arrays.get(key)
            if not isinstance(value, np.ndarray) or value.dtype != dtype or value.ndim != ndim:
                raise ValueError(f"not a serialised alignment reference (bad or missing {key!r})")
            return value

        version = int(need("format_version", np.int64, 0))
        if version != FORMAT_VERSION:
            raise ValueError(f"alignment reference format {version} is not supported (need {FORMAT_VERSION})")
        shape = tuple(int(v) for v in need("shape", np.int64, 1))
        preset = arrays.get("preset")
        if not isinstance(preset, np.ndarray) or preset.dtype.kind != "U" or preset.ndim != 0:
            raise ValueError("not a serialised alignment reference (bad or missing 'preset')")
        if str(preset) not in PRESETS:
            raise ValueError(f"not a serialised alignment reference (unknown preset {str(preset)!r})")
        grey, mask = need("grey", np.uint8, 2), need("mask", np.uint8, 2)
        if len(shape) != 2 or min(shape) < 1 or mask.shape != grey.shape:
            raise ValueError("not a serialised alignment reference (inconsistent shapes)")
        expected = min(WORK_LONG_SIDE, round(MAX_UPSCALE * max(shape)))
        if abs(max(grey.shape) - expected) > 1 or not np.isin(mask, (0, 255)).all():
            raise ValueError("not a serialised alignment reference (level does not match the photo size)")
        features = {}
        for method in METHODS:
            if f"{method}_points" not in arrays:
                continue
            points = need(f"{method}_points", np.float32, 2).astype(np.float64)
            order = need(f"{method}_order", np.int32, 1)
            descriptors = arrays.get(f"{method}_descriptors")
            width = 32 if method == "orb" else 128
            if points.shape[1:] != (2,) or not np.all(np.isfinite(points)) or not np.array_equal(
                np.sort(order), np.arange(len(points))
            ):
                raise ValueError(f"not a serialised alignment reference (bad {method} keypoints)")
            if descriptors is None and len(points) == 0:
                features[method] = (points, None, order)
                continue
            descriptors = need(f"{method}_descriptors", _DESCRIPTOR_DTYPES[method], 2)
            if descriptors.shape != (len(points), width):
                raise ValueError(f"not a serialised alignment reference (bad {method} descriptors)")
            features[method] = (points, descriptors, order)
        return cls(shape=shape, preset=str(preset), grey=grey, mask=mask, features=features)

    def __repr__(self) -> str:
        methods = ",".join(sorted(self._features)) or "none yet"
        return (
            f"AlignmentReference(shape={self.shape}, preset={self.preset!r}, level={self.grey.shape}, "
            f"features={methods})"
        )


def prepare_reference(
    reference: np.ndarray,
    *,
    reference_mask: np.ndarray | None = None,
    preset: str | None = None,
) -> AlignmentReference:
    """Everything :func:`tracker.imaging.align.align_images` computes from REFERENCE alone.

    Parameters
    ----------
    reference : ndarray, shape (H, W, 3) RGB or (H, W), uint8
        The baseline photo (each side at least 32 px).
    reference_mask : ndarray, shape (H, W), bool, optional
        Where features may be taken (True), as for ``align_images``.
    preset : {"global", "closeup"}, optional
        The preset the follow-ups will be aligned with (None means "global").

    Returns
    -------
    AlignmentReference
        With ORB features computed (SIFT when first needed). Pass it as ``align_images``'s first argument.

    Raises
    ------
    ValueError
        Bad image or mask (as ``align_images``), unknown preset.
    """
    reference_obj = _prepare(reference, reference_mask, preset, names=("reference", "reference_mask"))
    reference_obj.features("orb")
    return reference_obj


def _prepare(
    image: np.ndarray, mask: np.ndarray | None, preset: str | None, *, names: tuple[str, str]
) -> AlignmentReference:
    """Validated working level of one photo (no features yet)."""
    preset_name, settings, _ = resolve_limits(preset)
    grey = checked_grey(image, name=names[0])
    full_mask = checked_mask(mask, grey.shape, name=names[1])
    vignette = bool(settings.get("mask_vignette"))
    # The dermoscope's dark ring is fixed to the camera, not the skin. Large photos find it on the reduced
    # copy (its limits are relative to the photo size; about 0.2 s saved at 12 MP), small ones as they are.
    large = max(grey.shape) > WORK_LONG_SIDE
    if vignette and not large:
        full_mask = _without_vignette(grey, full_mask)
    level, level_mask = resize_with_mask(grey, full_mask, long_side=WORK_LONG_SIDE)
    if vignette and large:
        level_mask = _without_vignette(level, level_mask)
    return AlignmentReference(shape=grey.shape, preset=preset_name, grey=level, mask=level_mask)
