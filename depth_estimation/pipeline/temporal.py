"""Temporal filter for predicted depth: less flicker on a static camera, no smearing of motion.

Per pixel, an exponential moving average of *inverse* depth (w = 1 / depth), gated by the
innovation e = w_new - w_state:

    |e| <= gate * noise * w_state  ->  w_state += gain(e) * e     (noise: smooth it)
    |e| >  gate * noise * w_state  ->  w_state  = w_new           (motion: follow at once)

`noise` is the model's relative frame-to-frame noise (benchmarks/temporal.py measures it). With
`soft_gate` the gain grows from `alpha` towards 1 as |e| nears the gate. When more than
`scene_change_fraction` of the valid pixels are over the gate, the state restarts from the new
frame. Invalid input (NaN, <= 0: NaN out; +-Inf: kept) clears the pixel's state.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from depth_estimation.pipeline.ranges import check_bounds


class TemporalFilter:
    """Per-pixel gated EMA of inverse depth; `update(depth)` returns the filtered depth."""

    def __init__(self, alpha: float = 0.3, noise: float = 0.03, gate: float = 3.0,
                 soft_gate: bool = True, scene_change_fraction: float = 0.5) -> None:
        check_bounds(0.0, 1.0, alpha=alpha, scene_change_fraction=scene_change_fraction)
        check_bounds(0.0, noise=noise, gate=gate)
        self.alpha = float(alpha)
        self.noise = float(noise)
        self.gate = float(gate)
        self.soft_gate = bool(soft_gate)
        self.scene_change_fraction = float(scene_change_fraction)
        self.last_reset_fraction = 0.0  # share of valid pixels that followed the new frame
        self.scene_changes = 0
        self._state: Optional[np.ndarray] = None  # (H, W) float32 inverse depth, NaN = empty

    def reset(self) -> None:
        self._state = None

    def update(self, depth: np.ndarray) -> np.ndarray:
        """Filter one frame of depth (H, W) metres; returns float32 (H, W), NaN where invalid."""
        depth = np.asarray(depth)
        if depth.ndim != 2:
            raise ValueError(f'expected depth of shape (H, W), got {depth.shape}')
        depth = depth.astype(np.float32, copy=False)
        with np.errstate(invalid='ignore', divide='ignore'):
            valid = np.isfinite(depth) & (depth > 0)
            inverse = np.where(valid, np.float32(1.0) / depth, np.float32(np.nan))
        state = self._state
        if state is None or state.shape != inverse.shape:
            self._state = inverse
            self.last_reset_fraction = 1.0
            return self._invalid_as_input(depth, valid, depth)

        with np.errstate(invalid='ignore'):
            innovation = inverse - state  # NaN where either side is invalid
            limit = np.float32(self.gate * self.noise) * state
            ratio = np.abs(innovation) / limit  # NaN where no state or no new depth
            follow = valid & ~(ratio <= 1.0)  # over the gate, or no state to filter
        valid_count = int(valid.sum())
        self.last_reset_fraction = float(follow.sum()) / valid_count if valid_count else 0.0
        if self.last_reset_fraction > self.scene_change_fraction:
            self.scene_changes += 1
            self._state = inverse
            return self._invalid_as_input(depth, valid, depth)

        if self.soft_gate:
            gain = np.float32(self.alpha) + np.float32(1.0 - self.alpha) * np.minimum(
                ratio, np.float32(1.0)) ** 2
        else:
            gain = np.float32(self.alpha)
        updated = state + gain * innovation  # NaN where invalid or no state
        updated = np.where(follow, inverse, updated)  # invalid input -> NaN state
        self._state = updated.astype(np.float32, copy=False)
        with np.errstate(divide='ignore', invalid='ignore'):
            filtered = (np.float32(1.0) / self._state).astype(np.float32, copy=False)
        return self._invalid_as_input(filtered, valid, depth)

    @staticmethod
    def _invalid_as_input(values: np.ndarray, valid: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """`values` where the input was valid; +-Inf copied from the input; NaN elsewhere."""
        out = np.where(valid, values, np.float32(np.nan))
        infinite = np.isinf(depth)
        if infinite.any():
            out[infinite] = depth[infinite]
        return out
