"""Depth image -> 2-D laser scan, as ros-perception/depthimage_to_laserscan does it (numpy only).

The geometry is the reference's (docs/refinement.md, "LaserScan output"): W ranges between the
rays through the image edges at cy (left of the principal point is a positive angle), the range
sqrt(x^2 + z^2) within the scan plane, the closest range per bin over `scan_height` rows. Uniform
bins over non-uniformly spaced pixel angles leave some bins near the centre NaN, as in the
reference. It differs in two places: the band is the rows whose centres are nearest cy
(`scan_rows`), and out-of-range values follow REP 117 (`mark_out_of_range=False`: the reference's
NaN): a bin holds the closest range within [range_min, range_max], else -Inf if something was
nearer, else +Inf if something was farther, else NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from depth_estimation.geometry import Intrinsics

# depthimage_to_laserscan's defaults
DEFAULT_SCAN_HEIGHT = 1
DEFAULT_RANGE_MIN = 0.45
DEFAULT_RANGE_MAX = 10.0


@dataclass(frozen=True)
class ScanGeometry:
    """The angle and range fields of a `sensor_msgs/LaserScan` (radians, metres)."""

    angle_min: float
    angle_max: float
    angle_increment: float
    range_min: float
    range_max: float
    count: int  # number of ranges (the image width)

    def angles(self) -> np.ndarray:
        """Angle of every range, float64 (count,): angle_min + i * angle_increment."""
        return self.angle_min + self.angle_increment * np.arange(self.count, dtype=np.float64)


def scan_geometry(intrinsics: Intrinsics, range_min: float = DEFAULT_RANGE_MIN,
                  range_max: float = DEFAULT_RANGE_MAX) -> ScanGeometry:
    """Scan angles for a depth image with these intrinsics (pinhole, rectified)."""
    if not (0.0 <= range_min < range_max):
        raise ValueError(f'need 0 <= range_min < range_max, got {range_min} and {range_max}')
    if intrinsics.width < 2:
        raise ValueError(f'a scan needs an image at least 2 pixels wide, got {intrinsics.width}')
    # Angle between the ray through (u, cy) and the ray through (cx, cy) is atan(|u - cx| / fx).
    angle_max = math.atan2(intrinsics.cx - 0.0, intrinsics.fx)
    angle_min = -math.atan2((intrinsics.width - 1) - intrinsics.cx, intrinsics.fx)
    increment = (angle_max - angle_min) / (intrinsics.width - 1)
    return ScanGeometry(angle_min, angle_max, increment, float(range_min), float(range_max),
                        intrinsics.width)


def scan_rows(intrinsics: Intrinsics, scan_height: int) -> tuple[int, int]:
    """First row and number of rows of the `scan_height` rows whose centres are nearest cy.

    The reference reads int(cy - scan_height / 2), half a row higher; the size check is its own.
    """
    if scan_height < 1:
        raise ValueError(f'scan_height must be at least 1, got {scan_height}')
    half = scan_height // 2
    if half > intrinsics.cy or half > intrinsics.height - intrinsics.cy:
        raise ValueError(f'scan_height ({scan_height} pixels) is too large for an image '
                         f'{intrinsics.height} pixels high with cy = {intrinsics.cy}')
    first = math.floor(intrinsics.cy - (scan_height - 1) / 2.0 + 0.5)
    first = min(max(first, 0), intrinsics.height - scan_height)
    return first, scan_height


def depth_to_scan(depth: np.ndarray, intrinsics: Intrinsics,
                  scan_height: int = DEFAULT_SCAN_HEIGHT,
                  range_min: float = DEFAULT_RANGE_MIN, range_max: float = DEFAULT_RANGE_MAX,
                  mark_out_of_range: bool = True) -> tuple[np.ndarray, ScanGeometry]:
    """Depth (H, W) in float metres or uint16 millimetres -> ranges float32 (W,) and geometry."""
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f'expected depth of shape (H, W), got {depth.shape}')
    if depth.shape != (intrinsics.height, intrinsics.width):
        raise ValueError(f'depth is {depth.shape[1]}x{depth.shape[0]} but the intrinsics are for '
                         f'{intrinsics.width}x{intrinsics.height}; scale them first')
    geometry = scan_geometry(intrinsics, range_min, range_max)
    first, rows = scan_rows(intrinsics, scan_height)
    band = depth[first:first + rows]  # (rows, W)
    if band.dtype == np.uint16:
        z = band.astype(np.float64) / 1000.0
        z[band == 0] = np.nan
    elif np.issubdtype(band.dtype, np.floating):
        z = band.astype(np.float64)
        z[z == 0.0] = np.nan
    else:
        raise ValueError(f'depth must be float metres or uint16 millimetres, got {band.dtype}')

    u = np.arange(intrinsics.width, dtype=np.float64)
    tan_theta = (u - intrinsics.cx) / intrinsics.fx  # (W,) x / z of each column's ray
    theta = -np.arctan(tan_theta)
    bins = np.floor((theta - geometry.angle_min) / geometry.angle_increment + 1e-9)
    bins = np.clip(bins, 0, geometry.count - 1).astype(np.intp)  # (W,) bin of each column
    bins = np.broadcast_to(bins, z.shape)

    with np.errstate(invalid='ignore'):
        ranges = np.abs(z) * np.sqrt(1.0 + tan_theta ** 2)  # (rows, W); keeps NaN and Inf
        ranges = np.where(np.isinf(z), z, ranges)  # -Inf stays -Inf
        finite = np.isfinite(ranges)
        in_range = finite & (ranges >= range_min) & (ranges <= range_max)
        too_close = (ranges == -np.inf) | (finite & (ranges < range_min))
        too_far = (ranges == np.inf) | (finite & (ranges > range_max))
    if not mark_out_of_range:  # the reference: finite values out of range are dropped
        too_close = ranges == -np.inf
        too_far = ranges == np.inf

    best = np.full(geometry.count, np.inf)
    np.minimum.at(best, bins[in_range], ranges[in_range])
    has_close = np.bincount(bins[too_close], minlength=geometry.count) > 0  # (W,) bool
    has_far = np.bincount(bins[too_far], minlength=geometry.count) > 0
    has_valid = np.bincount(bins[in_range], minlength=geometry.count) > 0

    result = np.full(geometry.count, np.nan)
    result[has_far] = np.inf
    result[has_close] = -np.inf
    result[has_valid] = best[has_valid]
    return result.astype(np.float32), geometry


def scan_to_points(ranges: np.ndarray, angle_min: float, angle_increment: float) -> np.ndarray:
    """Ranges (N,) -> points (N, 3) float64 in the scan frame; NaN rows for non-finite ranges."""
    ranges = np.asarray(ranges, dtype=np.float64).reshape(-1)
    angles = angle_min + angle_increment * np.arange(ranges.size, dtype=np.float64)
    valid = np.isfinite(ranges)
    r = np.where(valid, ranges, np.nan)
    return np.stack([r * np.cos(angles), r * np.sin(angles), np.where(valid, 0.0, np.nan)],
                    axis=-1)
