"""Plain numpy math behind the node's outputs (no rclpy): depth ranges, raw depth, intrinsics.

REP 117 / REP 118 for float depth (metres along the optical axis):
- NaN: no valid measurement (the model gave a non-finite or non-positive value);
- -Inf: nearer than the reported range ("too close to quantify");
- +Inf: farther than the reported range ("out of range").
The raw 16UC1 form holds millimetres with 0 for all three cases.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from depth_estimation.geometry import Intrinsics

UINT16_MAX_MM = 65535


def apply_depth_range(depth: np.ndarray, min_depth: float, max_depth: float,
                      mode: str = 'rep117') -> np.ndarray:
    """Model depth (H, W) metres -> float32 (H, W) with REP 117 markers (or NaN for all).

    `mode` 'rep117': NaN invalid, -Inf below `min_depth`, +Inf above `max_depth`; 'nan': NaN for
    all three. Values inside [min_depth, max_depth] are kept as they are.
    """
    if mode not in ('rep117', 'nan'):
        raise ValueError(f'unknown out-of-range mode {mode!r}')
    if not (0 <= min_depth < max_depth):
        raise ValueError(f'expected 0 <= min_depth < max_depth, got [{min_depth}, {max_depth}]')
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f'expected depth of shape (H, W), got {depth.shape}')
    out = depth.astype(np.float32, copy=True)  # (H, W) metres
    with np.errstate(invalid='ignore'):
        invalid = ~(np.isfinite(out) & (out > 0))  # (H, W)
        near = ~invalid & (out < np.float32(min_depth))
        far = ~invalid & (out > np.float32(max_depth))
    out[invalid] = np.nan
    out[near] = -np.inf if mode == 'rep117' else np.nan
    out[far] = np.inf if mode == 'rep117' else np.nan
    return out


def depth_to_millimetres(depth: np.ndarray) -> np.ndarray:
    """Float depth (H, W) metres -> uint16 (H, W) millimetres; 0 where not finite, not positive,
    or beyond 65.535 m (REP 118 raw form)."""
    depth = np.asarray(depth, dtype=np.float32)
    with np.errstate(invalid='ignore'):
        millimetres = np.rint(depth * np.float32(1000.0))  # (H, W) float32
        valid = np.isfinite(millimetres) & (millimetres > 0) & (millimetres <= UINT16_MAX_MM)
    return np.where(valid, millimetres, 0).astype(np.uint16)


def limit_far(depth: np.ndarray, max_depth: float) -> np.ndarray:
    """A copy of float depth (H, W) with values beyond `max_depth` set to NaN (for the cloud)."""
    out = np.array(depth, dtype=np.float32, copy=True)
    with np.errstate(invalid='ignore'):
        out[out > np.float32(max_depth)] = np.nan
    return out


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


__all__ = ['apply_depth_range', 'decimate', 'depth_to_millimetres', 'intrinsics_from_matrices',
           'intrinsics_from_parameters', 'limit_far', 'size_fits']
