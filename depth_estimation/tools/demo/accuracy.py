"""Live accuracy of a demo run: throughput, latency, ZoeDepth's metrics and an error histogram.

Plain numpy; each answered frame is matched with its ground truth by stamp before it gets here.
Pixels count where the ground truth lies in the model's depth range (from its metadata).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

ERROR_BINS = np.linspace(-1.0, 1.0, 81)  # signed relative error (pred - gt) / gt


@dataclass
class FrameResult:
    """One answered frame."""

    stamp_ns: int
    received: float  # seconds since streaming started
    latency: float  # seconds from the image stamp to the depth's arrival here
    metrics: Optional[dict[str, float]] = None  # a1, abs_rel, rmse, ... (None: no ground truth)


@dataclass
class DemoStatistics:
    """Throughput, latency, accuracy and the error histogram of a run."""

    depth_range: tuple[float, float]  # metres: the model's; pixels with truth inside count
    frames: list[FrameResult] = field(default_factory=list)
    images_seen: int = 0
    error_counts: np.ndarray = field(default_factory=lambda: np.zeros(len(ERROR_BINS) + 1,
                                                                      np.int64))

    def add(self, stamp_ns: int, received: float, latency: float,
            ground_truth: Optional[np.ndarray] = None,
            depth: Optional[np.ndarray] = None) -> FrameResult:
        """Record an answered frame; with ground truth, its metrics and its pixels' errors."""
        result = FrameResult(stamp_ns, received, latency)
        if ground_truth is not None and depth is not None:
            result.metrics = self.evaluate(ground_truth, depth)
        self.frames.append(result)
        return result

    def evaluate(self, ground_truth: np.ndarray, depth: np.ndarray) -> Optional[dict[str, float]]:
        """ZoeDepth's metrics of one frame (no crop, `depth_range`); None without valid pixels."""
        from depth_estimation.evaluation.metrics import compute_errors, prepare

        low, high = self.depth_range
        gt, pred, valid = prepare(ground_truth, depth, crop=None, min_depth_eval=low,
                                  max_depth_eval=high)
        if not valid.any():
            return None
        relative = (pred[valid] - gt[valid]) / gt[valid]
        # Counts below the first bin edge, per bin, and above the last edge.
        self.error_counts += np.bincount(np.searchsorted(ERROR_BINS, relative, side='right'),
                                         minlength=len(ERROR_BINS) + 1)
        with np.errstate(invalid='ignore'):  # silog of a constant ratio: sqrt of -0.0 rounding
            errors = compute_errors(gt[valid], pred[valid])
        return {key: float(value) for key, value in errors.items()}

    @property
    def answered(self) -> int:
        return len(self.frames)

    def evaluated(self) -> list[dict[str, float]]:
        return [frame.metrics for frame in self.frames if frame.metrics is not None]

    def throughput(self, window: Optional[float] = None) -> float:
        """Answered frames per second (over the last `window` seconds, or the whole run)."""
        times = [frame.received for frame in self.frames]
        if window is not None:
            times = [t for t in times if t >= times[-1] - window] if times else []
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    def latency_ms(self) -> np.ndarray:
        return np.array([frame.latency for frame in self.frames]) * 1e3

    def mean_metrics(self) -> Optional[dict[str, float]]:
        """Mean of the per-frame metrics (as ZoeDepth's evaluate.py aggregates images)."""
        evaluated = self.evaluated()
        return {key: float(np.mean([metrics[key] for metrics in evaluated]))
                for key in evaluated[0]} if evaluated else None

    def live_line(self, elapsed: float, last: int = 20) -> str:
        """One progress line: frames, recent throughput, and latency and accuracy of the last
        `last` frames."""
        text = f'[{elapsed:6.1f} s] {self.answered:4d} frames'
        if not self.frames:
            return text
        recent = self.frames[-last:]
        text += (f' | {self.throughput(window=10.0):4.1f} fps | last {len(recent)}: latency '
                 f'median {np.median([f.latency for f in recent]) * 1e3:5.0f} ms')
        metrics = [f.metrics for f in recent if f.metrics is not None]
        if metrics:
            text += (f', delta1 {np.mean([m["a1"] for m in metrics]):.3f}, REL '
                     f'{np.mean([m["abs_rel"] for m in metrics]):.3f}, RMSE '
                     f'{np.mean([m["rmse"] for m in metrics]):.3f} m')
        return text

    def summary(self, elapsed: float) -> dict[str, Any]:
        latency = self.latency_ms()
        result: dict[str, Any] = {
            'seconds': round(elapsed, 2), 'images_seen': self.images_seen,
            'frames_answered': self.answered, 'frames_evaluated': len(self.evaluated()),
            'throughput_fps': round(self.throughput(), 3),
            'evaluated_range_m': list(self.depth_range),
        }
        if latency.size:
            values = (latency.mean(), *np.percentile(latency, [50, 90]), latency.max())
            result['latency_ms'] = {name: round(float(value), 1) for name, value in
                                    zip(('mean', 'p50', 'p90', 'max'), values)}
        means = self.mean_metrics()
        if means is not None:
            result['accuracy'] = {'delta1': means['a1'], 'abs_rel': means['abs_rel'],
                                  'rmse_m': means['rmse'], 'delta2': means['a2'],
                                  'delta3': means['a3'], 'silog': means['silog'],
                                  'log10': means['log_10']}
        return result
