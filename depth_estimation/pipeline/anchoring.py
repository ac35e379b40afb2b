"""Scale anchoring: fit the metric scale of predicted depth to sparse metric measurements (numpy).

`fit_scale` estimates, per frame and robustly, the factor s with metric ~= s * predicted from
(predicted, measured) pairs; `ScaleSmoother` smooths s over time in log space and follows real
jumps. The measurements are a sparse depth image in the optical frame (metres along z, NaN or 0 =
no sample): full size (projected points, `project_points`; a LaserScan, `scan_to_sparse_depth`)
or a coarse zone grid such as an 8 x 8 multizone ToF, against which the prediction is aggregated
per zone (`zone_depths`). Residuals are log ratios: the unknown is a factor, so 2x too far and 2x
too near weigh the same and thresholds are relative (0.2 ~ 20 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from depth_estimation.geometry import Intrinsics
from depth_estimation.pipeline.laserscan import scan_to_points
from depth_estimation.pipeline.ranges import check_bounds

METHODS = ('ransac', 'trimmed', 'median')
# Defaults measured on real frames (benchmarks/anchoring.py, docs/refinement.md).
DEFAULT_METHOD = 'trimmed'
DEFAULT_MIN_SAMPLES = 8
DEFAULT_INLIER_THRESHOLD = 0.2  # |log ratio| <= 0.2: within about 20 % of the consensus scale
DEFAULT_MIN_INLIER_FRACTION = 0.3
DEFAULT_ZONES = (8, 8)


@dataclass(frozen=True)
class ScaleFit:
    """One frame's scale: multiply the predicted depth by `scale` (1.0 when the fit is refused)."""

    scale: float
    ok: bool  # False: too few samples or no consensus; do not apply `scale`
    samples: int  # usable (predicted, measured) pairs
    inliers: int  # pairs that agree with `scale` within the inlier threshold
    spread: float  # median |log residual| of the inliers (0 = perfect agreement), NaN if none
    reason: str = ''  # why the fit was refused, empty when ok

    @property
    def inlier_fraction(self) -> float:
        return self.inliers / self.samples if self.samples else 0.0


def zone_depths(depth: np.ndarray, zones: tuple[int, int] = DEFAULT_ZONES,
                min_valid_fraction: float = 0.5) -> np.ndarray:
    """Depth (H, W) -> a (rows, cols) grid of each block's median valid depth, as a ToF zone.

    Blocks split the image evenly (edges rounded down); one with less than `min_valid_fraction`
    valid pixels is NaN.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f'expected depth of shape (H, W), got {depth.shape}')
    rows, cols = zones
    height, width = depth.shape
    if not (1 <= rows <= height and 1 <= cols <= width):
        raise ValueError(f'cannot split a {width}x{height} image into {cols}x{rows} zones')
    with np.errstate(invalid='ignore'):
        masked = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan).astype(np.float32)
    row_edges = (np.arange(rows + 1) * height) // rows
    col_edges = (np.arange(cols + 1) * width) // cols
    result = np.full((rows, cols), np.nan)
    for i in range(rows):
        for j in range(cols):
            block = masked[row_edges[i]:row_edges[i + 1], col_edges[j]:col_edges[j + 1]]
            block = block[~np.isnan(block)]
            if block.size and block.size >= min_valid_fraction * (
                    (row_edges[i + 1] - row_edges[i]) * (col_edges[j + 1] - col_edges[j])):
                result[i, j] = np.median(block)
    return result


def sample_pairs(predicted: np.ndarray, sparse: np.ndarray,
                 min_valid_fraction: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Usable (predicted, measured) pairs from a prediction (H, W) and a full or zone image."""
    predicted = np.asarray(predicted)
    sparse = np.asarray(sparse)
    if predicted.ndim != 2 or sparse.ndim != 2:
        raise ValueError(f'expected (H, W) depth images, got {predicted.shape} and {sparse.shape}')
    if sparse.shape != predicted.shape:
        if sparse.shape[0] > predicted.shape[0] or sparse.shape[1] > predicted.shape[1]:
            raise ValueError(f'sparse depth {sparse.shape} is larger than the prediction '
                             f'{predicted.shape}: resample it to the prediction or to zones')
        predicted = zone_depths(predicted, sparse.shape, min_valid_fraction)
    with np.errstate(invalid='ignore'):
        index = np.flatnonzero(np.isfinite(sparse) & (sparse > 0))  # few: index those only
    pred_values = predicted.reshape(-1)[index].astype(np.float64)
    measured = sparse.reshape(-1)[index].astype(np.float64)
    with np.errstate(invalid='ignore'):
        usable = np.isfinite(pred_values) & (pred_values > 0)
    return pred_values[usable], measured[usable]


def fit_scale(predicted: np.ndarray, measured: np.ndarray, method: str = DEFAULT_METHOD,
              min_samples: int = DEFAULT_MIN_SAMPLES,
              inlier_threshold: float = DEFAULT_INLIER_THRESHOLD,
              min_inlier_fraction: float = DEFAULT_MIN_INLIER_FRACTION) -> ScaleFit:
    """Robust scale s with measured ~= s * predicted, from paired samples (any equal shapes).

    Methods on the log ratios r_i = log(measured_i / predicted_i): 'ransac' (each r_i is a
    hypothesis; the one with most samples within `inlier_threshold`, refined to the median of its
    inliers), 'trimmed' (from the median, keep |r - centre| <= max(3 MAD * 1.4826,
    inlier_threshold / 2) and re-centre until nothing changes) or 'median'. The fit is refused
    (ok False, scale 1.0) with fewer than `min_samples` pairs or inliers, or an inlier fraction
    below `min_inlier_fraction`.
    """
    if method not in METHODS:
        raise ValueError(f'unknown scale method {method!r}; expected one of {METHODS}')
    check_bounds(0, min_samples=min_samples, inlier_threshold=inlier_threshold)
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1)
    measured = np.asarray(measured, dtype=np.float64).reshape(-1)
    if predicted.shape != measured.shape:
        raise ValueError(f'{predicted.size} predicted but {measured.size} measured samples')
    with np.errstate(invalid='ignore', divide='ignore'):
        usable = (np.isfinite(predicted) & (predicted > 0) & np.isfinite(measured)
                  & (measured > 0))
        residuals = np.sort(np.log(measured[usable]) - np.log(predicted[usable]))
    count = residuals.size
    if count < min_samples:
        return ScaleFit(1.0, False, count, 0, math.nan,
                        f'{count} usable samples, fewer than {min_samples}')

    if method == 'ransac':
        low = np.searchsorted(residuals, residuals - inlier_threshold, side='left')
        high = np.searchsorted(residuals, residuals + inlier_threshold, side='right')
        support = high - low  # (N,) inliers of the hypothesis r_i
        best = np.flatnonzero(support == support.max())
        # ties: the hypothesis in the middle of the tied ones (they span one dense cluster)
        index = int(best[len(best) // 2])
        centre = float(np.median(residuals[low[index]:high[index]]))
    elif method == 'trimmed':
        centre = float(np.median(residuals))
        kept = np.ones(count, dtype=bool)
        for _ in range(20):
            deviation = np.abs(residuals - centre)
            mad = float(np.median(deviation[kept])) * 1.4826
            new_kept = deviation <= max(3.0 * mad, inlier_threshold / 2.0)
            if not new_kept.any():
                break
            centre = float(np.median(residuals[new_kept]))
            if np.array_equal(new_kept, kept):
                break
            kept = new_kept
    else:
        centre = float(np.median(residuals))

    deviation = np.abs(residuals - centre)
    inlier_mask = deviation <= inlier_threshold
    inliers = int(inlier_mask.sum())
    spread = float(np.median(deviation[inlier_mask])) if inliers else math.nan
    scale = math.exp(centre)
    if inliers < min_samples:
        return ScaleFit(1.0, False, count, inliers, spread,
                        f'{inliers} inliers, fewer than {min_samples}')
    if inliers / count < min_inlier_fraction:
        return ScaleFit(1.0, False, count, inliers, spread,
                        f'inlier fraction {inliers / count:.2f} below {min_inlier_fraction}')
    return ScaleFit(scale, True, count, inliers, spread)


def fit_scale_to_sparse(predicted: np.ndarray, sparse: np.ndarray, method: str = DEFAULT_METHOD,
                        **options: float) -> ScaleFit:
    """`fit_scale` on the pairs of `sample_pairs(predicted, sparse)`."""
    pred_values, measured_values = sample_pairs(predicted, sparse)
    return fit_scale(pred_values, measured_values, method, **options)


def project_points(points: np.ndarray, intrinsics: Intrinsics,
                   min_depth: float = 1e-3) -> np.ndarray:
    """Points (N, 3) in the optical frame -> sparse depth (H, W) float32: the nearest, or NaN."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f'expected points of shape (N, 3), got {points.shape}')
    sparse = np.full((intrinsics.height, intrinsics.width), np.inf)
    with np.errstate(invalid='ignore'):
        keep = np.all(np.isfinite(points), axis=1) & (points[:, 2] >= min_depth)
    x, y, z = points[keep].T
    u = np.rint(intrinsics.fx * x / z + intrinsics.cx).astype(np.int64)
    v = np.rint(intrinsics.fy * y / z + intrinsics.cy).astype(np.int64)
    inside = (u >= 0) & (u < intrinsics.width) & (v >= 0) & (v < intrinsics.height)
    np.minimum.at(sparse, (v[inside], u[inside]), z[inside])
    sparse[np.isinf(sparse)] = np.nan
    return sparse.astype(np.float32)


def scan_to_sparse_depth(ranges: np.ndarray, angle_min: float, angle_increment: float,
                         camera_from_scan: np.ndarray, intrinsics: Intrinsics,
                         range_min: float = 0.0, range_max: float = math.inf) -> np.ndarray:
    """A LaserScan projected into the camera: sparse depth (H, W) float32, NaN elsewhere.

    `camera_from_scan` is the 4 x 4 pose of the scan frame (x forward, y left, z up) in the
    optical frame (x right, y down, z forward). Non-finite ranges or ranges outside
    [range_min, range_max] are not samples.
    """
    transform = np.asarray(camera_from_scan, dtype=np.float64)
    if transform.shape != (4, 4):
        raise ValueError(f'camera_from_scan must be a 4 x 4 matrix, got {transform.shape}')
    ranges = np.asarray(ranges, dtype=np.float64).reshape(-1)
    with np.errstate(invalid='ignore'):
        keep = np.isfinite(ranges) & (ranges >= range_min) & (ranges <= range_max)
    scan_points = scan_to_points(ranges, angle_min, angle_increment)[keep]  # (N, 3) scan frame
    camera_points = scan_points @ transform[:3, :3].T + transform[:3, 3]  # (N, 3) optical
    return project_points(camera_points, intrinsics)


# Optical frame (x right, y down, z forward) from a forward frame (x forward, y left, z up).
OPTICAL_FROM_FORWARD = np.array([[0.0, -1.0, 0.0, 0.0],
                                 [0.0, 0.0, -1.0, 0.0],
                                 [1.0, 0.0, 0.0, 0.0],
                                 [0.0, 0.0, 0.0, 1.0]])


class ScaleSmoother:
    """Exponential moving average of per-frame scales in log space, with a reset on real jumps.

    A fit within `jump_threshold` (log) of the scale moves it by `alpha` of the difference; a
    refused fit leaves it (`frames_since_fit` counts them). A fit further away is a candidate
    jump: after `jump_frames` consecutive candidates that agree within `jump_threshold`, the scale
    resets to their median, so one outlier frame never moves it. None until the first fit.
    """

    def __init__(self, alpha: float = 0.3, jump_threshold: float = 0.25,
                 jump_frames: int = 2) -> None:
        check_bounds(0.0, 1.0, alpha=alpha)
        check_bounds(0, jump_threshold=jump_threshold, jump_frames=jump_frames)
        self.alpha = alpha
        self.jump_threshold = jump_threshold
        self.jump_frames = jump_frames
        self.resets = 0
        self.frames_since_fit = 0
        self._log_scale: Optional[float] = None
        self._pending: list[float] = []

    @property
    def scale(self) -> Optional[float]:
        return None if self._log_scale is None else math.exp(self._log_scale)

    def reset(self) -> None:
        self._log_scale = None
        self._pending = []
        self.frames_since_fit = 0

    def update(self, fit: ScaleFit) -> Optional[float]:
        """Feed one frame's fit; returns the smoothed scale (None before any accepted fit)."""
        if not fit.ok or not (fit.scale > 0 and math.isfinite(fit.scale)):
            self.frames_since_fit += 1
            return self.scale
        self.frames_since_fit = 0
        value = math.log(fit.scale)
        if self._log_scale is None:
            self._log_scale = value
        elif abs(value - self._log_scale) <= self.jump_threshold:
            self._pending = []
            self._log_scale += self.alpha * (value - self._log_scale)
        else:
            if self._pending and abs(value - float(np.median(self._pending))) > \
                    self.jump_threshold:
                self._pending = []  # the candidates disagree: start counting again
            self._pending.append(value)
            if len(self._pending) >= self.jump_frames:
                self._log_scale = float(np.median(self._pending))
                self._pending = []
                self.resets += 1
        return self.scale


def apply_scale(depth: np.ndarray, scale: Optional[float]) -> np.ndarray:
    """depth * scale as float32 (NaN and Inf kept); None or 1.0 returns the depth unchanged."""
    depth = np.asarray(depth)
    if scale is None or scale == 1.0:
        return depth
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f'scale must be finite and positive, got {scale}')
    return (depth * np.float32(scale)).astype(np.float32, copy=False)
