"""Depth ranges of the published depth: REP 117 markers (numpy only); bounds of settings.

Float metres: NaN invalid, -Inf too close, +Inf too far; the raw 16UC1 form
(`io.depth_to_mm(depth, saturate=False)`) has 0 for all three.
"""

from __future__ import annotations

import math

import numpy as np


def check_bounds(low: float, high: float = math.inf, **values: float) -> None:
    """ValueError naming the first of `values` outside (low, high] (NaN is outside)."""
    for name, value in values.items():
        if not low < value <= high:
            bounds = 'positive' if (low, high) == (0, math.inf) else f'in ({low:g}, {high:g}]'
            raise ValueError(f'{name} must be {bounds}, got {value}')


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


def limit_far(depth: np.ndarray, max_depth: float) -> np.ndarray:
    """A copy of float depth (H, W) with values beyond `max_depth` set to NaN (for the cloud)."""
    out = np.array(depth, dtype=np.float32, copy=True)
    with np.errstate(invalid='ignore'):
        out[out > np.float32(max_depth)] = np.nan
    return out


__all__ = ['apply_depth_range', 'limit_far']
