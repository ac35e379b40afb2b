"""Intrinsics of a frame (numpy only): from a camera calibration's P or K, else from parameters.

`select_intrinsics` is the one place that decides, for an image of a given size: the camera's
calibration (P first, then K, as image_geometry reads a CameraInfo) scaled to the image, else the
fx/fy/cx/cy or horizontal_fov parameters, else none (depth only).
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Any, Optional, Sequence

import numpy as np

from depth_estimation.geometry import Intrinsics, scale_projection
from depth_estimation.pipeline.frame import SkippedFrame


@dataclass(frozen=True)
class CameraCalibration:
    """A camera_info's K (9 numbers) and P (12) at its own size (W, H; 0 = unknown)."""

    k: tuple[float, ...]
    p: tuple[float, ...]
    width: int
    height: int


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
        if not 0 < horizontal_fov_deg < 180:
            raise ValueError(f'horizontal field of view must be in (0, 180) degrees, got '
                             f'{horizontal_fov_deg}')
        fx = (width / 2.0) / math.tan(math.radians(horizontal_fov_deg) / 2.0)
        fy = 0.0
    return Intrinsics(fx=float(fx), fy=float(fy if fy > 0 else fx),
                      cx=float(cx if cx > 0 else (width - 1) / 2.0),
                      cy=float(cy if cy > 0 else (height - 1) / 2.0),
                      width=int(width), height=int(height))


def intrinsics_from_matrices(k: Sequence[float], p: Sequence[float], width: int,
                             height: int) -> tuple[Intrinsics, str]:
    """Intrinsics of a CameraInfo's K and P (P first, as image_geometry), and which one was used.

    Raises ValueError with the reason when neither holds a usable camera (zeros from an
    uncalibrated driver, non-finite values, a negative focal length).
    """
    projection = np.asarray(p, dtype=np.float64).reshape(-1)
    camera_matrix = np.asarray(k, dtype=np.float64).reshape(-1)
    problems = []
    for name, values, build in (('P', projection, Intrinsics.from_projection),
                                ('K', camera_matrix, Intrinsics.from_k)):
        expected = 12 if name == 'P' else 9
        if values.size != expected:
            problems.append(f'{name} has {values.size} elements, expected {expected}')
            continue
        if not values.any():
            problems.append(f'{name} is all zeros')
            continue
        try:
            return build(values, width, height), name
        except ValueError as error:
            problems.append(f'{name}: {error}')
    raise ValueError('; '.join(problems) + ' (an uncalibrated camera? calibrate it, or set the '
                     'fx/fy/cx/cy or horizontal_fov parameters and stop publishing camera_info)')


def size_fits(info_size: tuple[int, int], image_size: tuple[int, int],
              tolerance: float = 0.01) -> bool:
    """Whether a CameraInfo of `info_size` (W, H) can describe an image of `image_size` (W, H).

    Equal sizes fit; an unknown size (0) fits any image; a different size fits when it is the same
    camera scaled (both axes scaled alike within `tolerance`, e.g. a binned or resized stream).
    Another aspect ratio means another camera mode (a crop): it does not fit.
    """
    info_width, info_height = (int(v) for v in info_size)
    width, height = (int(v) for v in image_size)
    if info_width == 0 or info_height == 0 or (info_width, info_height) == (width, height):
        return True
    scale_x, scale_y = width / info_width, height / info_height
    return abs(scale_x - scale_y) <= tolerance * max(scale_x, scale_y)


def select_intrinsics(size: tuple[int, int], settings: Any,
                      calibration: Optional[CameraCalibration] = None) -> IntrinsicsChoice:
    """Intrinsics of a `size` (W, H) image: calibration (P, then K), else parameters, else none.

    A calibration of another aspect ratio raises SkippedFrame ('camera_info_size'); one of the
    same aspect ratio at another size is scaled to the image.
    """
    width, height = size
    if calibration is None:
        intrinsics = intrinsics_from_parameters(
            width, height, settings.fx, settings.fy, settings.cx, settings.cy,
            settings.horizontal_fov)
        return IntrinsicsChoice(intrinsics, 'none' if intrinsics is None else 'parameters')
    info_size = (int(calibration.width), int(calibration.height))
    if not size_fits(info_size, size):
        raise SkippedFrame('camera_info_size', (
            f'camera_info is {info_size[0]}x{info_size[1]} but the image is {width}x{height} '
            '(another aspect ratio: another camera mode or the wrong camera_info topic)'))
    scale_x = width / (info_size[0] or width)
    scale_y = height / (info_size[1] or height)
    k = scale_projection(calibration.k, scale_x, scale_y) if len(calibration.k) == 9 else ()
    p = scale_projection(calibration.p, scale_x, scale_y) if len(calibration.p) == 12 else ()
    return IntrinsicsChoice(intrinsics_from_matrices(k, p, width, height)[0], 'camera_info')


__all__ = ['CameraCalibration', 'decimate', 'intrinsics_from_matrices',
           'intrinsics_from_parameters', 'IntrinsicsChoice', 'select_intrinsics', 'size_fits']
