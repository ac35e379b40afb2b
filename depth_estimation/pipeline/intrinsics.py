"""Intrinsics of a frame (numpy only): from a camera calibration's P or K, else from parameters.

`select_intrinsics` is the one place that decides, for an image of a given size: the camera's
calibration (P first, then K, as image_geometry reads a CameraInfo) for the image received (ROI,
binning or a resize: `camera_model`), else the fx/fy/cx/cy or horizontal_fov parameters, else none
(depth only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from depth_estimation.geometry import Intrinsics
from depth_estimation.pipeline.camera_model import intrinsics_for_image, RegionOfInterest


@dataclass(frozen=True)
class CameraCalibration:
    """A camera_info's K (9 numbers) and P (12) at its own size (W, H; 0 = unknown), with the
    region of interest and binning of the images it goes with (REP 104)."""

    k: tuple[float, ...]
    p: tuple[float, ...]
    width: int
    height: int
    roi: RegionOfInterest = RegionOfInterest()
    binning_x: int = 0
    binning_y: int = 0


@dataclass(frozen=True)
class IntrinsicsChoice:
    """The intrinsics of one frame and where they came from."""

    intrinsics: Optional[Intrinsics]  # at the image size; None: depth only
    source: str  # 'camera_info', 'parameters' or 'none'


def decimate(intrinsics: Intrinsics, stride: int) -> Intrinsics:
    """Intrinsics of the grid that keeps pixels (stride * j, stride * i) of an image.

    Pixel u = stride * u' so x = (stride u' - cx) z / fx = (u' - cx / stride) z / (fx / stride):
    the sub-grid is an exact pinhole camera with every parameter divided by the stride (no
    half-pixel shift, unlike a resize, because the kept pixels are the originals).
    """
    if stride < 1:
        raise ValueError(f'stride must be >= 1, got {stride}')
    if stride == 1:
        return intrinsics
    return Intrinsics(fx=intrinsics.fx / stride, fy=intrinsics.fy / stride,
                      cx=intrinsics.cx / stride, cy=intrinsics.cy / stride,
                      width=-(-intrinsics.width // stride),
                      height=-(-intrinsics.height // stride))


def intrinsics_from_parameters(width: int, height: int, fx: float = 0.0, fy: float = 0.0,
                               cx: float = 0.0, cy: float = 0.0,
                               horizontal_fov_deg: float = 0.0) -> Optional[Intrinsics]:
    """Intrinsics of a width x height image from node parameters, or None if none are set.

    fx (fy defaults to fx) or, failing that, a horizontal field of view with square pixels:
    fx = (width / 2) / tan(fov / 2). An unset (0) principal point is the image centre
    ((width - 1) / 2, (height - 1) / 2) in the pixel-centre convention of `geometry`.
    """
    if fx <= 0 and horizontal_fov_deg <= 0:
        return None
    if fx <= 0:
        fx, fy = Intrinsics.from_fov(horizontal_fov_deg, width, height).fx, 0.0
    return Intrinsics(fx=float(fx), fy=float(fy if fy > 0 else fx),
                      cx=float(cx if cx > 0 else (width - 1) / 2.0),
                      cy=float(cy if cy > 0 else (height - 1) / 2.0),
                      width=int(width), height=int(height))


def select_intrinsics(size: tuple[int, int], settings: Any,
                      calibration: Optional[CameraCalibration] = None) -> IntrinsicsChoice:
    """Intrinsics of a `size` (W, H) image: calibration (P, then K), else parameters, else none.

    The calibration goes through `camera_model.intrinsics_for_image` (ROI, binning, then a resize
    of the same aspect ratio); one it cannot apply raises CameraInfoError, a SkippedFrame of kind
    'camera_info_size' (another aspect ratio) or 'camera_info'.
    """
    width, height = size
    if calibration is None:
        intrinsics = intrinsics_from_parameters(
            width, height, settings.fx, settings.fy, settings.cx, settings.cy,
            settings.horizontal_fov)
        return IntrinsicsChoice(intrinsics, 'none' if intrinsics is None else 'parameters')
    intrinsics = intrinsics_for_image(
        calibration.k, calibration.p, calibration.width, calibration.height, width, height,
        calibration.roi, calibration.binning_x, calibration.binning_y)
    return IntrinsicsChoice(intrinsics, 'camera_info')


__all__ = ['CameraCalibration', 'decimate', 'intrinsics_from_parameters', 'IntrinsicsChoice',
           'select_intrinsics']
