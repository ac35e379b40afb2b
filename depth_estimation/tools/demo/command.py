"""`depth-estimation demo`: the whole system on one machine, measured, for a bounded time.

    source --image, camera_info--> depth_estimation_node (ONNX Runtime, CPU) --depth/image,
    depth/camera_info, points--> this process (metrics, MCAP recording, images, report)

Sources (`--source`):
- `sim` (default): `depth_estimation_sim_camera` in its own process: procedurally generated rooms
  seen from a moving robot, with exact ground-truth depth on `ground_truth/depth`, so accuracy
  (delta1, REL, RMSE) is measured live against it (frames matched by stamp).
- `samples`: the real frames shipped in `depth_estimation/resources/samples/` with their
  camera_info, published from this process (no ground truth).
- `topic:<name>`: a running camera; the node reads `<name>` and the `camera_info` beside it.
- `video:<path>`, `bag:<path>`: played by `depth_estimation_player` in its own process (looped).

Model (`--model`): default the demo model shipped in `depth_estimation/resources/models/demo/`
(the `zoedepth_small` preset trained by `training/` on simulated rooms); if it is absent, the
`tiny` preset with random weights, with a loud warning (the pipeline runs; its depth is noise).
An `.onnx` with its metadata is used as is; one of our checkpoints, official ZoeDepth weights
(.pt) or a Hugging Face directory is converted and exported to ONNX first (once, cached in
`<output>/model/`).

Latency is measured from the image's stamp (when the source made the frame) to the arrival of
its depth here; throughput is depth frames per second. The node answers the newest image and
drops those that arrive while it is busy, as a live camera needs. Everything the run makes goes to
`--output` (default outputs/demo): report.md (+ latency.png, error_histogram.png, panel.png),
summary.json, depth_NN.png and points_NN.png snapshots, the MCAP recording (rosbag2 folder
`recording/`) and the logs of the processes it started.
"""

from __future__ import annotations

import argparse
from collections import OrderedDict
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import shutil
import signal
import struct
import subprocess
import sys
import time
from typing import Any, Optional

import numpy as np

PACKAGE_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = PACKAGE_DIR.parent
DEMO_MODEL_DIR = PACKAGE_DIR / 'resources' / 'models' / 'demo'
DEFAULT_OUTPUT = Path('outputs') / 'demo'
FASTDDS_PROFILE = REPO_ROOT / 'config' / 'fastdds_loopback.xml'
SOURCE_KINDS = ('sim', 'samples', 'topic', 'video', 'bag')
RANDOM_BANNER = ('=' * 78 + '\n'
                 'NO TRAINED DEMO MODEL FOUND: using the tiny preset with RANDOM (UNTRAINED)\n'
                 'weights. The depth values are meaningless; '
                 f'{DEMO_MODEL_DIR.relative_to(REPO_ROOT)}/\nholds the trained demo model when '
                 'it has been added. The pipeline (topics, headers,\ncamera_info, point cloud, '
                 'latency) is real.\n' + '=' * 78)
DEMO_MODEL_NOTE = ('note: the demo model knows simulated rooms, not the world; real cameras need '
                   'real weights (the official ZoeDepth checkpoints or a model you train).')
MIN_DEPTH_EVAL, MAX_DEPTH_EVAL = 0.1, 10.0  # metres, the sim dataset's range
ERROR_BINS = np.linspace(-1.0, 1.0, 81)  # signed relative error (pred - gt) / gt
SNAPSHOTS = 4
NODE_NAME = 'depth_estimation_demo_node'  # the node we start, renamed so no other one is taken
# What the recording holds by default: the node's outputs and the input they answer (about
# 2.2 MB per frame at 640x480); ground truth and clouds on request.
RECORD_TOPICS = ('image', 'camera_info', 'depth/image', 'depth/camera_info')


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'demo', help='run the whole system (simulated camera -> node -> metrics, recording, '
                     'report) for a bounded time',
        description='Start a source and depth_estimation_node (ONNX Runtime, CPU), print live '
                    'throughput, latency and accuracy against ground truth, record the outputs '
                    'to MCAP and write images and a report to the output folder.')
    parser.add_argument('--source', default='sim',
                        help='sim (default), samples, topic:<image topic>, video:<file> or '
                             'bag:<rosbag2 folder or .bag>')
    parser.add_argument('--model', type=Path, default=None,
                        help='.onnx (with .onnx.json), our checkpoint .pt, official ZoeDepth '
                             '.pt or a Hugging Face directory; default: the shipped demo model')
    parser.add_argument('--duration', type=float, default=60.0,
                        help='seconds to stream once the node is up (default 60)')
    parser.add_argument('--frames', type=int, default=0,
                        help='stop after this many answered frames instead (0: use --duration)')
    parser.add_argument('--rate', type=float, default=2.0,
                        help='frames per second of the sim, samples and video sources '
                             '(default 2, about what two cores sustain while also rendering; '
                             'the node drops what it cannot keep up with)')
    parser.add_argument('--seed', type=int, default=1,
                        help='sim room family (default 1; the demo model was trained on 0)')
    parser.add_argument('--frames-per-scene', type=int, default=40,
                        help='sim frames before the next room (default 40)')
    parser.add_argument('--output', type=Path, default=DEFAULT_OUTPUT,
                        help='output folder (default outputs/demo)')
    parser.add_argument('--num-threads', type=int, default=1,
                        help='CPU threads of the node\'s backend (default 1: the simulator '
                             'renders on another core; 0: the backend\'s default)')
    parser.add_argument('--camera-info', type=Path, default=None,
                        help='camera_info YAML for a video source')
    parser.add_argument('--horizontal-fov', type=float, default=60.0,
                        help='degrees; pinhole camera_info for a video without --camera-info '
                             '(default 60)')
    parser.add_argument('--no-record', dest='record', action='store_false',
                        help='do not write the MCAP recording')
    parser.add_argument('--record-ground-truth', action='store_true',
                        help='also record ground_truth/depth (1.2 MB per frame)')
    parser.add_argument('--record-points', action='store_true',
                        help='also record the point clouds (about 5 MB per frame)')
    parser.add_argument('--timeout', type=float, default=90.0,
                        help='seconds to wait for the node and source to come up, and at most '
                             'between two depth frames (default 90)')
    parser.set_defaults(handler=run)


# --- source and model ----------------------------------------------------------------------

@dataclass(frozen=True)
class Source:
    """What feeds the node: a kind of SOURCE_KINDS and its argument (topic or path)."""

    kind: str
    argument: str = ''

    @classmethod
    def parse(cls, text: str) -> Source:
        kind, _, argument = text.partition(':')
        if kind not in SOURCE_KINDS:
            raise ValueError(f'unknown source {text!r}: expected sim, samples, topic:<name>, '
                             'video:<path> or bag:<path>')
        if kind in ('sim', 'samples'):
            if argument:
                raise ValueError(f'source {kind} takes no argument, got {text!r}')
            return cls(kind)
        if not argument:
            raise ValueError(f'source {kind} needs an argument: {kind}:<'
                             f'{"name" if kind == "topic" else "path"}>')
        if kind in ('video', 'bag') and not Path(argument).exists():
            raise FileNotFoundError(f'{kind} source {argument} does not exist')
        return cls(kind, argument)

    @property
    def image_topic(self) -> str:
        return self.argument if self.kind == 'topic' else 'image'

    @property
    def camera_info_topic(self) -> str:
        if self.kind != 'topic':
            return 'camera_info'
        namespace = self.argument.rpartition('/')[0]
        return f'{namespace}/camera_info' if namespace or self.argument.startswith('/') \
            else 'camera_info'

    @property
    def has_ground_truth(self) -> bool:
        return self.kind == 'sim'


@dataclass(frozen=True)
class ModelChoice:
    path: Path  # .onnx with its metadata
    description: str
    trained: bool


def shipped_demo_model() -> Optional[Path]:
    """The ONNX model (with metadata) in resources/models/demo/, if the package ships one."""
    candidates = sorted(DEMO_MODEL_DIR.glob('*.onnx')) if DEMO_MODEL_DIR.is_dir() else []
    return next((path for path in candidates if _exported(path)), None)


def _cli(arguments: list[str]) -> None:
    from depth_estimation.cli import main as cli_main

    code = cli_main(arguments)
    if code != 0:  # cli_main has printed why
        raise ValueError(f'depth-estimation {arguments[0]} failed with exit code {code}')


def _exported(path: Path) -> bool:
    from depth_estimation.artifacts import metadata_path

    return path.is_file() and metadata_path(path).is_file()


def _is_our_checkpoint(path: Path) -> bool:
    from depth_estimation.model.checkpoint import read_checkpoint

    try:
        read_checkpoint(path)
    except ValueError:  # not ours (official ZoeDepth weights) or not a torch file
        return False
    return True


def random_model(output: Path) -> Path:
    """The tiny preset exported with random weights to <output>/model/tiny.onnx (once)."""
    model_path = output / 'model' / 'tiny.onnx'
    if _exported(model_path):
        return model_path
    print(f'exporting the tiny preset with random weights to {model_path} ...', flush=True)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    _cli(['export', '--preset', 'tiny', '--random-weights', '--output', str(model_path)])
    return model_path


def prepare_model(model: Optional[Path], output: Path) -> ModelChoice:
    """The ONNX model the node will run (see the module docstring)."""
    from depth_estimation.artifacts import read_metadata

    if model is None:
        shipped = shipped_demo_model()
        if shipped is not None:
            return ModelChoice(shipped, f'demo model {shipped.name}', True)
        print(RANDOM_BANNER, flush=True)
        return ModelChoice(random_model(output), 'tiny preset, RANDOM weights', False)
    model = Path(model)
    if not model.exists():
        raise FileNotFoundError(f'model {model} does not exist')
    if model.suffix == '.onnx':
        read_metadata(model)  # a clear error now rather than in the node
        return ModelChoice(model, model.name, True)
    if not (model.is_dir() or model.suffix in ('.pt', '.pth', '.ckpt')):
        raise ValueError(f'model {model}: expected .onnx, .pt/.pth or a Hugging Face directory')
    from depth_estimation.artifacts import file_sha256

    tag = file_sha256(model)[:12] if model.is_file() else 'hf'
    model_dir = output / 'model'
    onnx_path = model_dir / f'{model.stem}-{tag}.onnx'
    if _exported(onnx_path):
        print(f'using {onnx_path}, exported earlier from {model}')
        return ModelChoice(onnx_path, f'{model.name} (exported to ONNX)', True)
    model_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = model
    if model.is_dir() or not _is_our_checkpoint(model):
        checkpoint = model_dir / f'{model.stem}-{tag}.pt'  # official / Hugging Face: convert
        print(f'converting {model} to {checkpoint} ...', flush=True)
        _cli(['convert', str(model), str(checkpoint)])
    print(f'exporting {checkpoint} to {onnx_path} (once; large models take minutes) ...',
          flush=True)
    _cli(['export', '--checkpoint', str(checkpoint), '--output', str(onnx_path)])
    return ModelChoice(onnx_path, f'{model.name} (exported to ONNX)', True)


# --- statistics (plain numpy) -------------------------------------------------------------

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
        """ZoeDepth's metrics of one frame (no crop, 0.1 to 10 m); None without valid pixels."""
        from depth_estimation.evaluation.metrics import compute_errors, prepare

        gt, pred, valid = prepare(ground_truth, depth, crop=None, dataset='sim',
                                  min_depth_eval=MIN_DEPTH_EVAL, max_depth_eval=MAX_DEPTH_EVAL)
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
        from depth_estimation.evaluation.metrics import RunningAverageDict

        average = RunningAverageDict()
        for metrics in self.evaluated():
            average.update(metrics)
        value = average.get_value()
        return None if value is None else {key: float(v) for key, v in value.items()}

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
        }
        if latency.size:
            result['latency_ms'] = {
                'mean': round(float(latency.mean()), 1),
                'p50': round(float(np.percentile(latency, 50)), 1),
                'p90': round(float(np.percentile(latency, 90)), 1),
                'max': round(float(latency.max()), 1)}
        means = self.mean_metrics()
        if means is not None:
            result['accuracy'] = {'delta1': means['a1'], 'abs_rel': means['abs_rel'],
                                  'rmse_m': means['rmse'], 'delta2': means['a2'],
                                  'delta3': means['a3'], 'silog': means['silog'],
                                  'log10': means['log_10']}
        return result


# --- images and report ---------------------------------------------------------------------

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


def colourise_depth(depth: np.ndarray, depth_range: Optional[tuple[float, float]] = None
                    ) -> np.ndarray:
    """Depth (H, W) metres -> BGR uint8 image with a colour bar in metres (for cv2.imwrite)."""
    from depth_estimation.visualize import add_colorbar, auto_range, colorize_depth

    low, high = depth_range or auto_range(depth) or (0.0, 1.0)
    coloured = add_colorbar(colorize_depth(depth, low, high), low, high)  # (H, W + bar, 3) RGB
    return np.ascontiguousarray(coloured[..., ::-1])


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


def write_snapshot_images(output: Path, snapshots: list[Snapshot]) -> list[Path]:
    """depth_NN.png (colour | depth [| ground truth]) and points_NN.png (top-down cloud)."""
    import cv2

    from depth_estimation.visualize import auto_range

    written = []
    for index, snapshot in enumerate(snapshots):
        # With ground truth, prediction and truth share its colour range.
        depth_range = auto_range(snapshot.ground_truth) if snapshot.ground_truth is not None \
            else None
        parts = [('predicted depth', colourise_depth(snapshot.depth, depth_range))]
        if snapshot.ground_truth is not None:
            parts.append(('ground truth', colourise_depth(snapshot.ground_truth, depth_range)))
        if snapshot.rgb is not None:
            parts.insert(0, ('image', np.ascontiguousarray(snapshot.rgb[..., ::-1])))
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


def write_plots(output: Path, statistics: DemoStatistics,
                snapshots: list[Snapshot]) -> list[Path]:
    """latency.png, error_histogram.png (with ground truth) and panel.png (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    written = []
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
        figure.tight_layout()
        written.append(output / 'latency.png')
        figure.savefig(written[-1])
        plt.close(figure)
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
        figure.tight_layout()
        written.append(output / 'error_histogram.png')
        figure.savefig(written[-1])
        plt.close(figure)
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
                                       (row[2], truth, 'ground truth (m)')):
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
        figure.tight_layout()
        written.append(output / 'panel.png')
        figure.savefig(written[-1])
        plt.close(figure)
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
    lines += ['', 'Accuracy: ZoeDepth\'s metrics (delta1 = share of pixels within 25 % of the '
              'truth, REL = mean |error| / truth, RMSE in metres) per frame over pixels with '
              f'ground truth in {MIN_DEPTH_EVAL:g} to {MAX_DEPTH_EVAL:g} m (no crop), averaged '
              'over frames. Depth and ground truth are matched by stamp. Throughput and latency '
              'include everything that shares this machine with the node (on the default '
              'source: the simulator rendering the next frame).', '']
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


# --- ROS -----------------------------------------------------------------------------------

def ros_environment() -> dict[str, str]:
    """Set (in this process) and return the loopback-only DDS environment for every rclpy user."""
    if not FASTDDS_PROFILE.is_file():
        raise FileNotFoundError(f'{FASTDDS_PROFILE} is missing: the demo keeps DDS on loopback')
    os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = str(FASTDDS_PROFILE)
    # 101..200: clear of the test suite's 1..100 (test/ros_graph.py) on a shared machine.
    os.environ.setdefault('ROS_DOMAIN_ID', str(101 + os.getpid() % 100))
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    return dict(os.environ)


def executable(name: str) -> str:
    """A console script of this package: beside this Python, else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise FileNotFoundError(f'{name} is not installed (pip install -e .)')
    return found


def source_command(source: Source, args: argparse.Namespace) -> Optional[list[str]]:
    """The process that publishes the source's frames (None: this process or an outside one)."""
    if source.kind == 'sim':
        return [executable('depth_estimation_sim_camera'), '--ros-args',
                '-p', f'seed:={args.seed}', '-p', f'rate:={float(args.rate)}',
                '-p', f'frames_per_scene:={args.frames_per_scene}']
    if source.kind in ('video', 'bag'):
        command = [executable('depth_estimation_player'), str(source.argument), '--loop']
        if source.kind == 'video':
            command += ['--fps', str(float(args.rate))]
            command += (['--camera-info', str(args.camera_info)] if args.camera_info
                        else ['--horizontal-fov', str(float(args.horizontal_fov))])
        return command
    return None


def node_command(model: Path, source: Source, args: argparse.Namespace) -> list[str]:
    command = [executable('depth_estimation_node'), '--ros-args', '-r', f'__node:={NODE_NAME}',
               '-p', f'model_path:={model.resolve()}', '-p', f'num_threads:={args.num_threads}']
    if source.kind == 'topic':
        command += ['-r', f'image:={source.image_topic}',
                    '-r', f'camera_info:={source.camera_info_topic}']
    return command


class Process:
    """A child process whose output goes to a log file; stopped with SIGTERM (our nodes log their
    summary and exit cleanly on it, even where a background shell ignores SIGINT), then killed."""

    def __init__(self, name: str, command: list[str], log: Path,
                 environment: dict[str, str]) -> None:
        self.name = name
        self.log = log
        self._stream = open(log, 'w')  # noqa: SIM115 - closed in stop()
        self.launched = time.monotonic()
        self.process = subprocess.Popen(command, env=environment, stdout=self._stream,
                                        stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 15) -> str:
        self._stream.flush()
        text = self.log.read_text(errors='replace').splitlines()
        return '\n'.join(text[-lines:])

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._stream.close()


def _stamp(message: Any) -> int:
    return int(message.header.stamp.sec) * 1_000_000_000 + int(message.header.stamp.nanosec)


def _cdr_stamp(data: bytes) -> int:
    """The header stamp (ns) of a serialized message whose first field is a std_msgs/Header:
    after the 4-byte CDR encapsulation come int32 sec and uint32 nanosec."""
    little_endian = data[1] == 1  # encapsulation CDR_LE (0x0001) or CDR_BE (0x0000)
    sec, nanosec = struct.unpack_from('<iI' if little_endian else '>iI', data, 4)
    return sec * 1_000_000_000 + nanosec


class Keeper(OrderedDict):
    """stamp -> item, keeping the newest `size` items."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: int, value: Any) -> None:
        self[key] = value
        while len(self) > self.size:
            self.popitem(last=False)


class DemoGraph:
    """This process's node: subscribes to the input, the ground truth and the node's outputs,
    matches them by stamp, feeds `DemoStatistics`, keeps snapshots and records to MCAP."""

    def __init__(self, context: Any, source: Source, statistics: DemoStatistics,
                 record_path: Optional[Path], record_topics: tuple[str, ...]) -> None:
        import rclpy
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image, PointCloud2

        self.source = source
        self.statistics = statistics
        self.node = rclpy.create_node('depth_estimation_demo', context=context)
        # The input may come best effort (camera drivers, the player): best effort matches any
        # publisher. The node and the simulated camera publish reliably, and so no depth or
        # ground truth is lost here.
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.images = Keeper(30)
        self.truths = Keeper(30)
        self.pending = Keeper(30)  # stamp -> (depth Image, seconds received) awaiting truth
        self.points = Keeper(6)  # stamp -> serialized PointCloud2
        self.started: Optional[float] = None
        self.finished: Optional[float] = None  # seconds streamed when measuring stopped
        self.snapshots: list[Snapshot] = []
        self.snapshot_due: list[float] = []  # seconds (or frame counts) of the next snapshots
        self.snapshot_by_frames = False
        self.node.create_subscription(Image, source.image_topic, self._on_image, qos)
        self.node.create_subscription(Image, 'depth/image', self._on_depth, reliable)
        self.node.create_subscription(PointCloud2, 'points', self._on_points, reliable, raw=True)
        if source.has_ground_truth:
            self.node.create_subscription(Image, 'ground_truth/depth', self._on_truth, reliable)
        self.recorder = None
        if record_path is not None:
            from depth_estimation.ros.recorder import McapRecorder

            self.recorder = McapRecorder(self.node, record_path, record_topics)

    def start(self, duration: float, frames: int) -> None:
        """Streaming starts now: counts and snapshot times run from here."""
        self.started = time.monotonic()
        if frames:
            self.snapshot_by_frames = True
            self.snapshot_due = [max(1, round(frames * k / SNAPSHOTS)) for k in range(SNAPSHOTS)]
        else:
            self.snapshot_due = [duration * k / SNAPSHOTS for k in range(SNAPSHOTS)]

    def elapsed(self) -> float:
        return 0.0 if self.started is None else time.monotonic() - self.started

    def _on_image(self, msg: Any) -> None:
        if self.started is not None:
            self.statistics.images_seen += 1
        self.images.put(_stamp(msg), msg)

    def _on_truth(self, msg: Any) -> None:
        self.truths.put(_stamp(msg), msg)

    def _on_points(self, data: bytes) -> None:
        # Keep the serialized cloud (about 5 MB); only snapshots decode one.
        self.points.put(_cdr_stamp(data), data)

    def _on_depth(self, msg: Any) -> None:
        if self.started is None:
            return
        self.pending.put(_stamp(msg), (msg, time.time(), self.elapsed()))

    def settle(self, wait_for_truth: float = 2.0) -> None:
        """Turn received depth into results: with its ground truth, or without once it is late.
        """
        from depth_estimation.ros.conversions import image_to_depth

        for stamp in list(self.pending):
            msg, arrived, received = self.pending[stamp]
            truth_msg = self.truths.get(stamp)
            if self.source.has_ground_truth and truth_msg is None and \
                    self.elapsed() - received < wait_for_truth:
                continue
            del self.pending[stamp]
            latency = arrived - stamp / 1e9
            depth = image_to_depth(msg)  # (H, W) metres
            truth = image_to_depth(truth_msg) if truth_msg is not None else None
            result = self.statistics.add(stamp, received, latency, truth, depth)
            self._maybe_snapshot(stamp, received, depth, truth, result.metrics)

    def _maybe_snapshot(self, stamp: int, received: float, depth: np.ndarray,
                        truth: Optional[np.ndarray], metrics: Optional[dict[str, float]]) -> None:
        from depth_estimation.ros.conversions import image_to_rgb

        if not self.snapshot_due:
            return
        position = self.statistics.answered if self.snapshot_by_frames else received
        if position < self.snapshot_due[0]:
            return
        self.snapshot_due.pop(0)
        image = self.images.get(stamp)
        rgb = image_to_rgb(image) if image is not None else None
        self.snapshots.append(Snapshot(stamp, received, rgb, depth, truth, metrics))

    def attach_points(self) -> None:
        """Give each snapshot the node's point cloud of the same stamp, once it has arrived."""
        from depth_estimation.geometry import unpack_cloud

        from rclpy.serialization import deserialize_message
        from sensor_msgs.msg import PointCloud2

        for snapshot in self.snapshots:
            data = self.points.get(snapshot.stamp_ns)
            if snapshot.points is not None or data is None:
                continue
            cloud = deserialize_message(data, PointCloud2)
            fields = [(f.name, f.offset, f.datatype) for f in cloud.fields]
            points = unpack_cloud(bytes(cloud.data), fields, cloud.point_step, cloud.height,
                                  cloud.width)  # (H, W) structured
            snapshot.points = np.stack([points['x'], points['y'], points['z']], axis=-1)

    def close(self) -> Optional[dict[str, Any]]:
        recording = None
        if self.recorder is not None:
            self.recorder.close()
            size = sum(p.stat().st_size for p in self.recorder.output.rglob('*') if p.is_file())
            recording = {'path': str(self.recorder.output), 'megabytes': size / 1e6,
                         'counts': dict(self.recorder.counts)}
        self.node.destroy_node()
        return recording


class SamplesPublisher:
    """Publishes the shipped sample frames with their camera_info at `rate`, cycling."""

    def __init__(self, node: Any, rate: float) -> None:
        from sensor_msgs.msg import CameraInfo, Image

        from depth_estimation.ros.conversions import camera_info_from_dict, rgb_to_image
        from depth_estimation.samples import load_samples

        self.node = node
        self.period = 1.0 / rate
        self.frames = [(rgb_to_image(s.rgb, encoding='rgb8'),
                        camera_info_from_dict(s.camera_info) if s.camera_info else None)
                       for s in load_samples()]
        if not self.frames:
            raise FileNotFoundError('no sample frames are installed')
        self.image_publisher = node.create_publisher(Image, 'image', 5)
        self.info_publisher = node.create_publisher(CameraInfo, 'camera_info', 5)
        self.index = 0
        self.next_time = 0.0

    def poll(self, now: float) -> None:
        if now < self.next_time:
            return
        self.next_time = now + self.period
        image, info = self.frames[self.index % len(self.frames)]
        self.index += 1
        image.header.stamp = self.node.get_clock().now().to_msg()
        image.header.frame_id = 'camera_color_optical_frame'
        if info is not None:
            info.header = image.header
            self.info_publisher.publish(info)
        self.image_publisher.publish(image)


def run(args: argparse.Namespace) -> int:
    source = Source.parse(args.source)
    if args.duration <= 0 and args.frames <= 0:
        raise ValueError('give a positive --duration or --frames')
    if args.rate <= 0:
        raise ValueError(f'--rate must be positive, got {args.rate}')
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    for stale in list(output.glob('depth_*.png')) + list(output.glob('points_*.png')):
        stale.unlink()  # pictures of an earlier run
    model = prepare_model(args.model, output)
    if model.trained and args.model is None:
        print(DEMO_MODEL_NOTE)
    environment = ros_environment()
    print(f'model: {model.description} ({model.path})\nsource: {args.source}; DDS on loopback '
          f'only ({FASTDDS_PROFILE.name}), ROS_DOMAIN_ID={environment["ROS_DOMAIN_ID"]}',
          flush=True)
    record_path = None
    if args.record:
        record_path = output / 'recording'
        if (record_path / 'metadata.yaml').is_file():
            shutil.rmtree(record_path)  # the previous run's recording
        elif record_path.exists():
            raise FileExistsError(f'{record_path} exists and is not a recording of an earlier '
                                  'demo; move it away')
    topics = tuple(source.image_topic if t == 'image' else
                   source.camera_info_topic if t == 'camera_info' else t for t in RECORD_TOPICS)
    topics += ('ground_truth/depth',) if args.record_ground_truth and source.has_ground_truth \
        else ()
    topics += ('points',) if args.record_points else ()
    processes = [Process('node', node_command(model.path, source, args), output / 'node.log',
                         environment)]
    command = source_command(source, args)
    if command is not None:
        processes.append(Process(source.kind, command, output / f'{source.kind}.log',
                                 environment))
    statistics = DemoStatistics()
    try:
        graph_result = _stream(args, source, statistics, processes, record_path, topics)
    finally:
        for process in processes:
            process.stop()
    code, graph, recording = graph_result
    summary = statistics.summary(graph.finished or 0.0)
    config = {'source': args.source, 'model': f'{model.description} ({model.path.name})',
              'model trained': model.trained, 'backend': 'ONNX Runtime (CPU)',
              'node threads': args.num_threads or 'backend default',
              'source rate': f'{args.rate:g} frames/s' if source.kind != 'topic' else 'as sent',
              'stop': f'{args.frames} frames' if args.frames else f'{args.duration:g} s'}
    if source.kind == 'sim':
        config['sim'] = (f'seed {args.seed}, {args.frames_per_scene} frames per room, 640x480, '
                         'vertical FOV 58 deg')
    images = write_snapshot_images(output, graph.snapshots)
    images += write_plots(output, statistics, graph.snapshots)
    report = write_report(output, config, summary, images, recording)
    (output / 'summary.json').write_text(json.dumps(
        {'config': {k: str(v) for k, v in config.items()}, 'summary': summary,
         'recording': recording, 'exit_code': code}, indent=2) + '\n')
    _print_summary(summary, model, report, recording)
    return code


def _print_summary(summary: dict[str, Any], model: ModelChoice, report: Path,
                   recording: Optional[dict[str, Any]]) -> None:
    print(f'summary: {summary["frames_answered"]} depth frames in {summary["seconds"]:.0f} s, '
          f'{summary["throughput_fps"]:.2f} frames/s', end='')
    if 'latency_ms' in summary:
        latency = summary['latency_ms']
        print(f', latency median {latency["p50"]:.0f} ms (p90 {latency["p90"]:.0f} ms)', end='')
    print()
    if 'accuracy' in summary:
        accuracy = summary['accuracy']
        print(f'accuracy over {summary["frames_evaluated"]} frames: delta1 '
              f'{accuracy["delta1"]:.3f}, REL {accuracy["abs_rel"]:.3f}, RMSE '
              f'{accuracy["rmse_m"]:.3f} m')
    if recording:
        print(f'recording: {recording["path"]} ({recording["megabytes"]:.0f} MB)')
    print(f'report: {report}')
    if not model.trained:
        print(RANDOM_BANNER.splitlines()[1])


def _stream(args: argparse.Namespace, source: Source, statistics: DemoStatistics,
            processes: list[Process], record_path: Optional[Path],
            topics: tuple[str, ...]) -> tuple[int, DemoGraph, Optional[dict[str, Any]]]:
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor

    context = Context()
    rclpy.init(context=context, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    graph = DemoGraph(context, source, statistics, record_path, topics)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(graph.node)
    samples = SamplesPublisher(graph.node, args.rate) if source.kind == 'samples' else None
    code = 0
    try:
        code = _wait_until_up(args, source, graph, executor, processes, samples)
        if code == 0:
            code = _measure(args, graph, executor, processes, samples)
    except KeyboardInterrupt:
        print('interrupted: writing what was measured so far')
        code = 130
    finally:
        graph.finished = graph.elapsed() if graph.started is not None else None
        graph.settle(wait_for_truth=0.0)
        graph.attach_points()
        recording = graph.close()
        executor.shutdown()
        rclpy.try_shutdown(context=context)
        context.destroy()  # frees the DDS participant now, not at garbage collection
    return code, graph, recording


def _failed(processes: list[Process]) -> Optional[str]:
    for process in processes:
        if not process.alive():
            return (f'{process.name} exited with code {process.process.returncode}; the end of '
                    f'{process.log}:\n{process.tail()}')
    return None


def _wait_until_up(args: argparse.Namespace, source: Source, graph: DemoGraph, executor: Any,
                   processes: list[Process], samples: Optional[SamplesPublisher]) -> int:
    node = graph.node
    launched = min((process.launched for process in processes), default=time.monotonic())
    print('waiting for the node and the source ...', flush=True)
    next_poll = 0.0
    while True:
        executor.spin_once(timeout_sec=0.05)
        if graph.recorder is not None and time.monotonic() >= next_poll:
            graph.recorder.poll()
            next_poll = time.monotonic() + 0.5
        failure = _failed(processes)
        if failure:
            print(f'error: {failure}', file=sys.stderr)
            return 1
        node_up = node.count_publishers('depth/image') > 0 and any(
            info.node_name == NODE_NAME
            for info in node.get_subscriptions_info_by_topic(source.image_topic))
        source_up = node.count_publishers(source.image_topic) > 0 or samples is not None
        if node_up and source_up:
            break
        if time.monotonic() - launched > args.timeout:
            what = 'the node' if not node_up else f'a publisher of {source.image_topic}'
            print(f'error: {what} did not come up within {args.timeout:.0f} s', file=sys.stderr)
            return 1
    print(f'node and source up {time.monotonic() - launched:.1f} s after launch; streaming for '
          + (f'{args.frames} frames' if args.frames else f'{args.duration:g} s'), flush=True)
    graph.start(args.duration, args.frames)
    return 0


def _measure(args: argparse.Namespace, graph: DemoGraph, executor: Any,
             processes: list[Process], samples: Optional[SamplesPublisher]) -> int:
    statistics = graph.statistics
    next_print = 2.0
    next_poll = 0.0
    while True:
        executor.spin_once(timeout_sec=0.02)
        elapsed = graph.elapsed()
        if samples is not None:
            samples.poll(elapsed)
        graph.settle()
        graph.attach_points()
        if graph.recorder is not None and elapsed >= next_poll:
            graph.recorder.poll()
            next_poll = elapsed + 1.0
        if elapsed >= next_print:
            print(statistics.live_line(elapsed), flush=True)
            next_print = elapsed + 2.0
        if args.frames and statistics.answered >= args.frames:
            return 0
        if not args.frames and elapsed >= args.duration:
            return 0
        failure = _failed(processes)
        if failure:
            print(f'error: {failure}', file=sys.stderr)
            return 1
        last = statistics.frames[-1].received if statistics.frames else 0.0
        if elapsed - last > args.timeout:
            print(f'error: no depth for {args.timeout:.0f} s'
                  + ('' if statistics.images_seen else
                     f' and no image on {graph.source.image_topic}'), file=sys.stderr)
            return 1
