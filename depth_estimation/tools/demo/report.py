"""What a demo run measures and leaves for people.

Throughput, latency, ZoeDepth's metrics and an error histogram (plain numpy: each answered frame
is matched with its ground truth by stamp before it gets here; pixels count where the ground truth
lies in the model's depth range, from its metadata), then snapshot images, plots and report.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import os
from pathlib import Path
import time
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


@dataclass
class Snapshot:
    """One frame kept for the pictures."""

    stamp_ns: int
    received: float
    rgb: Optional[np.ndarray]  # (H, W, 3) uint8 or None when the image was not seen
    depth: np.ndarray  # (H, W) metres as published (NaN / +-Inf where REP 117 says)
    ground_truth: Optional[np.ndarray]
    metrics: Optional[dict[str, float]]
    points: Optional[np.ndarray] = None  # (H, W, 3) metres from the node's PointCloud2


def render_top_down(points: np.ndarray, rgb: Optional[np.ndarray], size: int = 480) -> np.ndarray:
    """Bird's-eye view (x right, z up) of points (H, W, 3) -> BGR uint8 (size, size, 3)."""
    import cv2

    xyz = points.reshape(-1, 3)  # (N, 3) metres
    valid = np.isfinite(xyz).all(axis=1)
    canvas = np.full((size, size, 3), 30, dtype=np.uint8)
    if not valid.any():
        return canvas
    xyz = xyz[valid]
    colours = (rgb.reshape(-1, 3)[valid][:, ::-1] if rgb is not None
               else np.full((len(xyz), 3), 255, np.uint8))  # (N, 3) BGR
    far = float(np.percentile(xyz[:, 2], 99)) * 1.05
    metres_per_pixel = far / (size - 20)
    columns = np.round(xyz[:, 0] / metres_per_pixel + size / 2).astype(np.int64)  # (N,)
    rows = np.round(size - 10 - xyz[:, 2] / metres_per_pixel).astype(np.int64)  # (N,)
    inside = (columns >= 0) & (columns < size) & (rows >= 0) & (rows < size)
    canvas[rows[inside], columns[inside]] = colours[inside]
    cv2.circle(canvas, (size // 2, size - 10), 4, (0, 0, 255), -1)  # the camera
    cv2.putText(canvas, f'top-down, {far:.1f} m deep', (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                (255, 255, 255), 1)
    return canvas


def write_snapshot_images(output: Path, snapshots: list[Snapshot],
                          truth_label: str = 'ground truth') -> list[Path]:
    """depth_NN.png (colour | depth [| ground truth]) and points_NN.png (top-down cloud)."""
    import cv2

    from depth_estimation.visualize import auto_range, colorize_with_colorbar

    written = []
    for index, snapshot in enumerate(snapshots):
        truth = snapshot.ground_truth  # with it, prediction and truth share its colour range
        low, high = (truth is not None and auto_range(truth)) or auto_range(snapshot.depth) \
            or (0.0, 1.0)
        parts = [('predicted depth', colorize_with_colorbar(snapshot.depth, low, high))]
        if truth is not None:
            parts.append((truth_label, colorize_with_colorbar(truth, low, high)))
        if snapshot.rgb is not None:
            parts.insert(0, ('image', snapshot.rgb))
        parts = [(label, np.ascontiguousarray(part[..., ::-1])) for label, part in parts]  # BGR
        for label, part in parts:
            cv2.putText(part, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
        parts = [part for _, part in parts]
        height = min(part.shape[0] for part in parts)
        path = output / f'depth_{index:02d}.png'
        cv2.imwrite(str(path), np.concatenate([part[:height] for part in parts], axis=1))
        written.append(path)
        if snapshot.points is not None:
            rgb = snapshot.rgb if snapshot.rgb is not None and \
                snapshot.rgb.shape[:2] == snapshot.points.shape[:2] else None
            path = output / f'points_{index:02d}.png'
            cv2.imwrite(str(path), render_top_down(snapshot.points, rgb))
            written.append(path)
    return written


def write_plots(output: Path, statistics: DemoStatistics, snapshots: list[Snapshot],
                truth_label: str = 'ground truth') -> list[Path]:
    """latency.png, error_histogram.png (with ground truth) and panel.png (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    written = []

    def save(figure: Any, name: str) -> None:
        figure.tight_layout()
        written.append(output / name)
        figure.savefig(written[-1])
        plt.close(figure)

    if statistics.frames:
        figure, axis = plt.subplots(figsize=(8, 3.5), dpi=110)
        times = [frame.received for frame in statistics.frames]
        axis.plot(times, statistics.latency_ms(), '.-', linewidth=0.8, markersize=3)
        axis.set_xlabel('time since start (s)')
        axis.set_ylabel('latency (ms)')
        axis.set_title(f'image stamp to depth received: {statistics.answered} frames, '
                       f'{statistics.throughput():.2f} frames/s')
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
        save(figure, 'latency.png')
    if statistics.error_counts.sum():
        figure, axis = plt.subplots(figsize=(8, 3.5), dpi=110)
        counts = statistics.error_counts
        fractions = counts / counts.sum()
        centres = (ERROR_BINS[:-1] + ERROR_BINS[1:]) / 2
        axis.bar(centres * 100, fractions[1:-1] * 100, width=(ERROR_BINS[1] - ERROR_BINS[0]) * 100,
                 color='tab:blue')
        axis.set_xlabel('relative error (predicted - true) / true (%)')
        axis.set_ylabel('pixels (%)')
        axis.set_title(f'all evaluated pixels ({counts.sum():,}); beyond +100 %: '
                       f'{fractions[-1] * 100:.1f} %')
        axis.grid(alpha=0.3)
        save(figure, 'error_histogram.png')
    with_truth = [s for s in snapshots if s.ground_truth is not None and s.rgb is not None]
    if with_truth:
        figure, axes = plt.subplots(len(with_truth), 4, figsize=(16, 3.2 * len(with_truth)),
                                    dpi=90, squeeze=False)
        for row, snapshot in zip(axes, with_truth):
            truth = snapshot.ground_truth
            finite = truth[np.isfinite(truth)]
            high = float(np.percentile(finite, 99)) if finite.size else 1.0
            depth = np.where(np.isfinite(snapshot.depth), snapshot.depth, np.nan)
            error = np.abs(depth - truth)
            row[0].imshow(snapshot.rgb)
            row[0].set_title('image')
            for axis, image, title in ((row[1], depth, 'predicted depth (m)'),
                                       (row[2], truth, f'{truth_label} (m)')):
                shown = axis.imshow(image, cmap='turbo', vmin=0.0, vmax=high)
                axis.set_title(title)
                figure.colorbar(shown, ax=axis, fraction=0.035)
            shown = row[3].imshow(error, cmap='magma', vmin=0.0,
                                  vmax=max(float(np.nanpercentile(error, 98)), 1e-3)
                                  if np.isfinite(error).any() else 1.0)
            metrics = snapshot.metrics or {}
            row[3].set_title('|error| (m)' + (f': delta1 {metrics["a1"]:.2f}, REL '
                                              f'{metrics["abs_rel"]:.2f}' if metrics else ''))
            figure.colorbar(shown, ax=row[3], fraction=0.035)
            for axis in row:
                axis.axis('off')
        save(figure, 'panel.png')
    return written


def write_report(output: Path, config: dict[str, Any], summary: dict[str, Any],
                 images: list[Path], recording: Optional[dict[str, Any]]) -> Path:
    """report.md: what ran, throughput, latency, accuracy, the pictures and the recording."""
    lines = ['# depth_estimation demo report', '',
             f'Run {time.strftime("%Y-%m-%d %H:%M:%S")} on {os.cpu_count()} CPU core(s); '
             'every number below was measured in this run.', '',
             '| setting | value |', '|---|---|']
    lines += [f'| {key} | {value} |' for key, value in config.items()]
    lines += ['', '## Results', '', '| measure | value |', '|---|---|',
              f'| streamed | {summary["seconds"]:.1f} s |',
              f'| images seen on the input topic | {summary["images_seen"]} |',
              f'| depth frames received | {summary["frames_answered"]} |',
              f'| throughput | {summary["throughput_fps"]:.2f} frames/s |']
    if 'latency_ms' in summary:
        latency = summary['latency_ms']
        lines.append(f'| latency (image stamp to depth here) | mean {latency["mean"]:.0f} ms, '
                     f'median {latency["p50"]:.0f} ms, 90th percentile {latency["p90"]:.0f} ms, '
                     f'max {latency["max"]:.0f} ms |')
    accuracy = summary.get('accuracy')
    if accuracy:
        lines += [f'| frames evaluated against ground truth | {summary["frames_evaluated"]} |',
                  f'| delta1 (higher is better) | {accuracy["delta1"]:.3f} |',
                  f'| REL (lower is better) | {accuracy["abs_rel"]:.3f} |',
                  f'| RMSE (lower is better) | {accuracy["rmse_m"]:.3f} m |']
    else:
        lines.append('| accuracy | not measured: this source has no ground truth |')
    low, high = summary['evaluated_range_m']
    lines += ['', 'Accuracy: ZoeDepth\'s metrics (delta1 = share of pixels within 25 % of the '
              'truth, REL = mean |error| / truth, RMSE in metres) per frame over pixels with '
              f'ground truth in the model\'s range, {low:g} to {high:g} m (no crop), averaged '
              'over frames. Depth and ground truth are matched by stamp. Throughput and latency '
              'include everything that shares this machine with the node (this process '
              'publishing and measuring; with the sim source, the simulator rendering).', '']
    if not config.get('model trained', True):
        lines += ['**The model has random weights: its depth and accuracy are meaningless.**', '']
    lines += ['## Pictures', '']
    lines += [f'![{path.stem}]({path.name})' for path in images]
    if recording:
        lines += ['', '## Recording', '',
                  f'`{recording["path"]}` ({recording["megabytes"]:.0f} MB, MCAP rosbag2): '
                  + ', '.join(f'{topic} ({count})' for topic, count in
                              recording['counts'].items()),
                  '', 'Play it with `depth_estimation_player`, `ros2 bag play` or Foxglove.']
    path = output / 'report.md'
    path.write_text('\n'.join(lines) + '\n')
    return path
