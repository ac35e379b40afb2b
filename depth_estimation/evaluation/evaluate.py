"""Evaluate a depth backend on an `RGBDDataset` with the papers' protocol; write tables and plots.

Per sample: the backend's own pre/post-processing gives depth at the image size (optionally the
average with the prediction of the mirrored image, the "flip" protocol of ZoeDepth's evaluate.py,
taken at network resolution), then `metrics.compute_metrics` (ZoeDepth's function, exactly) with
the dataset's crop and depth range. The dataset result is the running average of the per-image
metrics, as evaluate.py reports it. Error by depth range pools the valid pixels of all images
(a per-pixel view, not comparable to the per-image averages).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import cv2
import numpy as np

from depth_estimation.datasets.base import DatasetError, RGBDDataset, RGBDSample
from depth_estimation.evaluation.metrics import (METRIC_KEYS, RunningAverageDict,
                                                 compute_errors, prepare, round_metrics)

RESULTS_FORMAT = 'depth_estimation.evaluation/1'
METRIC_TITLES = {'a1': 'δ1 ↑', 'a2': 'δ2 ↑', 'a3': 'δ3 ↑', 'abs_rel': 'REL ↓',
                 'sq_rel': 'Sq REL ↓', 'rmse': 'RMSE ↓', 'rmse_log': 'RMSE log ↓',
                 'log_10': 'log10 ↓', 'silog': 'SILog ↓'}
TABLE_ORDER = ('a1', 'a2', 'a3', 'abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'log_10', 'silog')
ERROR_MAP_MAX = 0.5  # abs rel error shown at full colour


@dataclass
class Protocol:
    """How predictions are scored (defaults come from the dataset: the papers' settings)."""

    crop: Optional[str]  # 'eigen' | 'garg' | None
    min_depth: float
    max_depth: float
    crop_dataset: str = 'nyu'  # 'kitti' selects the KITTI fractions of the Eigen crop
    flip: bool = False

    @classmethod
    def for_dataset(cls, dataset: RGBDDataset, crop: str = 'auto',
                    min_depth: Optional[float] = None, max_depth: Optional[float] = None,
                    flip: bool = False) -> Protocol:
        chosen = dataset.eval_crop if crop == 'auto' else (None if crop == 'none' else crop)
        if chosen not in (None, 'eigen', 'garg'):
            raise ValueError(f"crop must be auto, none, eigen or garg, got {crop!r}")
        low = dataset.min_depth if min_depth is None else float(min_depth)
        high = dataset.max_depth if max_depth is None else float(max_depth)
        if not 0 <= low < high:
            raise ValueError(f'need 0 <= min depth < max depth, got {low}, {high}')
        return cls(chosen, low, high, 'kitti' if dataset.name == 'kitti' else 'nyu', flip)


# --- prediction ----------------------------------------------------------------------------------

def predict_depth(backend: Any, rgb: np.ndarray, flip: bool = False) -> np.ndarray:
    """Depth (H, W) metres for an RGB image through `backend`; with `flip`, the average of the
    network outputs for the image and its mirror (mirrored back), as the official `infer`.

    A backend with its own flip switch (TorchBackend) uses it; otherwise the backend's
    preprocessor and network are run twice and the outputs averaged before `restore`, so every
    backend shares one implementation of the pre/post-processing.
    """
    if not flip:
        return backend.infer(rgb)
    if hasattr(backend, 'flip'):
        previous = backend.flip
        backend.flip = True
        try:
            return backend.infer(rgb)
        finally:
            backend.flip = previous
    tensor, box = backend.preprocessor.prepare(rgb)  # (1, 3, h, w)
    direct = backend.run_network(tensor)  # (1, 1, h, w)
    mirrored = backend.run_network(np.ascontiguousarray(tensor[..., ::-1]))
    average = 0.5 * (np.asarray(direct, np.float32) + np.asarray(mirrored, np.float32)[..., ::-1])
    return backend.preprocessor.restore(average, box)


# --- error by depth range ------------------------------------------------------------------------

@dataclass
class DepthRanges:
    """Pixel-pooled errors per ground-truth depth range."""

    edges: np.ndarray  # (B + 1,) metres
    pixels: np.ndarray = field(init=False)
    abs_rel_sum: np.ndarray = field(init=False)
    squared_sum: np.ndarray = field(init=False)
    delta1: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        bins = len(self.edges) - 1
        self.pixels = np.zeros(bins, np.int64)
        self.abs_rel_sum = np.zeros(bins, np.float64)
        self.squared_sum = np.zeros(bins, np.float64)
        self.delta1 = np.zeros(bins, np.int64)

    @classmethod
    def for_range(cls, max_depth: float, bins: int = 10) -> DepthRanges:
        from depth_estimation.visualize import nice_ticks

        edges = nice_ticks(0.0, max_depth, bins + 1)
        if edges[-1] < max_depth:
            edges = np.append(edges, edges[-1] + (edges[1] - edges[0]))
        return cls(np.asarray(edges, np.float64))

    def add(self, gt: np.ndarray, pred: np.ndarray) -> None:
        g, p = gt.astype(np.float64), pred.astype(np.float64)  # (N,) valid pixels
        index = np.clip(np.searchsorted(self.edges, g, side='right') - 1, 0, len(self.pixels) - 1)
        count = len(self.pixels)
        self.pixels += np.bincount(index, minlength=count)
        self.abs_rel_sum += np.bincount(index, np.abs(g - p) / g, minlength=count)
        self.squared_sum += np.bincount(index, (g - p) ** 2, minlength=count)
        self.delta1 += np.bincount(index, np.maximum(g / p, p / g) < 1.25, minlength=count
                                   ).astype(np.int64)

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for i, pixels in enumerate(self.pixels):
            empty = pixels == 0
            rows.append({'min': float(self.edges[i]), 'max': float(self.edges[i + 1]),
                         'pixels': int(pixels),
                         'abs_rel': None if empty else float(self.abs_rel_sum[i] / pixels),
                         'rmse': None if empty else float(math.sqrt(self.squared_sum[i] / pixels)),
                         'a1': None if empty else float(self.delta1[i] / pixels)})
        return rows


# --- the loop ------------------------------------------------------------------------------------

def evaluate(backend: Any, dataset: RGBDDataset, protocol: Protocol,
             indices: Optional[Sequence[int]] = None, output: Optional[Path] = None,
             error_maps: int = 4, progress: Optional[Any] = None,
             describe_model: Optional[dict[str, Any]] = None,
             skip_broken: bool = False) -> dict[str, Any]:
    """Score `backend` on `dataset[indices]` (default: all); returns the results mapping (see
    `write_report`) and, with `output`, writes error-map PNGs there as it goes.

    A sample that raises DatasetError stops the evaluation, or with `skip_broken` is listed in
    the results' `skipped` (never replaced by another sample, which would bias the average).
    """
    indices = list(range(len(dataset))) if indices is None else list(indices)
    if not indices:
        raise ValueError(f'{dataset.name}: nothing to evaluate')
    map_positions = set(np.linspace(0, len(indices) - 1, min(error_maps, len(indices)))
                        .round().astype(int).tolist()) if error_maps > 0 else set()
    average = RunningAverageDict()
    ranges = DepthRanges.for_range(protocol.max_depth)
    samples, skipped, maps = [], [], []
    inference_seconds = 0.0
    started = time.perf_counter()
    for position, index in enumerate(indices):
        try:
            sample = dataset[index]
        except DatasetError as error:
            if not skip_broken:
                raise
            skipped.append({'name': dataset.sample_name(index), 'reason': str(error)})
            if progress is not None:
                progress.write(f'evaluate: skipped {dataset.sample_name(index)}: {error}')
                progress.update()
            continue
        tick = time.perf_counter()
        pred = predict_depth(backend, sample.image, protocol.flip)
        inference_seconds += time.perf_counter() - tick
        gt, clipped, valid = prepare(sample.depth, pred, True, protocol.crop,
                                     protocol.crop_dataset, protocol.min_depth,
                                     protocol.max_depth)
        if not valid.any():
            skipped.append({'name': sample.name, 'reason': 'no valid ground truth pixel in the '
                            'crop and depth range'})
        else:
            metrics = compute_errors(gt[valid], clipped[valid])
            average.update(metrics)
            ranges.add(gt[valid], clipped[valid])
            samples.append({'name': sample.name, 'valid_pixels': int(valid.sum()),
                            'metrics': {k: float(v) for k, v in metrics.items()}})
            if output is not None and position in map_positions:
                maps.append(write_error_map(output, len(maps), sample, gt, clipped, valid,
                                            protocol))
        if progress is not None:
            progress.update()
    seconds = time.perf_counter() - started
    values = average.get_value()
    return {
        'format': RESULTS_FORMAT,
        'model': describe_model or (backend.describe() if hasattr(backend, 'describe') else {}),
        'dataset': {'name': dataset.name, 'reader': type(dataset).__name__,
                    'samples': len(dataset), 'requested': len(indices),
                    'evaluated': average.count},
        'protocol': {**asdict(protocol), 'metric_function': 'ZoeDepth compute_metrics '
                     '(zoedepth/utils/misc.py), reproduced exactly',
                     'aggregation': 'RunningAverageDict mean of per-image metrics'},
        'metrics': None if values is None else {k: float(values[k]) for k in METRIC_KEYS},
        'metrics_rounded': None if values is None else round_metrics(
            {k: values[k] for k in METRIC_KEYS}),
        'depth_ranges': ranges.rows(),
        'samples': samples,
        'skipped': skipped,
        'error_maps': maps,
        'timing': {'seconds': seconds, 'inference_seconds': inference_seconds,
                   'inference_per_sample': inference_seconds / max(1, len(samples))},
    }


# --- pictures ------------------------------------------------------------------------------------

def _safe(name: str) -> str:
    return ''.join(c if c.isalnum() or c in '-_.' else '_' for c in name)[:80]


def write_error_map(output: Path, number: int, sample: RGBDSample, gt: np.ndarray,
                    pred: np.ndarray, valid: np.ndarray, protocol: Protocol) -> str:
    """One PNG, a 2 x 2 grid: image, ground truth / prediction (same colour scale, metres), abs
    rel error of the scored pixels (black: not scored). Returns the file name."""
    from depth_estimation.visualize import auto_range, colorize_depth, colorize_with_colorbar

    low, high = auto_range(np.where(valid, gt, 0.0)) or (protocol.min_depth, protocol.max_depth)
    gt_shown = colorize_depth(gt, low, high)
    pred_shown = colorize_with_colorbar(pred, low, high)
    with np.errstate(divide='ignore', invalid='ignore'):
        error = np.where(valid, np.abs(pred - gt) / gt, np.nan)
    error_shown = colorize_with_colorbar(np.where(valid, np.maximum(error, 1e-9), np.nan), 0.0,
                                         ERROR_MAP_MAX, colormap='inferno', title='abs rel')
    parts = [(sample.image, 'image'), (gt_shown, 'ground truth'), (pred_shown, 'prediction'),
             (error_shown, 'abs rel error (scored pixels)')]
    tiles = [_captioned(image, text) for image, text in parts]
    width = max(tile.shape[1] for tile in tiles)
    tiles = [np.pad(tile, ((0, 0), (0, width - tile.shape[1]), (0, 0))) for tile in tiles]
    panel = np.concatenate([np.concatenate(tiles[:2], axis=1),
                            np.concatenate(tiles[2:], axis=1)], axis=0)  # 2 x 2 grid
    scale = min(1.0, 2400.0 / panel.shape[1])
    if scale < 1.0:
        panel = cv2.resize(panel, (int(panel.shape[1] * scale), int(panel.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
    name = f'error_map_{number:02d}_{_safe(sample.name)}.png'
    if not cv2.imwrite(str(output / name), cv2.cvtColor(panel, cv2.COLOR_RGB2BGR)):
        raise OSError(f'cannot write {output / name}')
    return name


def _captioned(image: np.ndarray, text: str) -> np.ndarray:
    """`image` with a black caption strip above it."""
    scale = float(np.clip(image.shape[0] / 600.0, 0.35, 1.0))
    strip = np.zeros((int(30 * scale) + 8, image.shape[1], 3), np.uint8)
    cv2.putText(strip, text, (6, strip.shape[0] - 8), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([strip, image], axis=0)


def draw_depth_range_chart(rows: list[dict[str, Any]], title: str) -> np.ndarray:
    """Bar charts of REL and RMSE per ground-truth depth range (RGB uint8), with pixel counts."""
    panels = []
    for key, label in (('abs_rel', 'REL (pixel mean)'), ('rmse', 'RMSE [m]')):
        width, height, left, bottom, top = 820, 360, 70, 60, 50
        image = np.full((height, width, 3), 255, np.uint8)
        values = [r[key] for r in rows]
        peak = max([v for v in values if v is not None] or [1.0]) or 1.0
        plot_w, plot_h = width - left - 20, height - top - bottom
        bar = plot_w / max(1, len(rows))
        font, black, grey = cv2.FONT_HERSHEY_SIMPLEX, (0, 0, 0), (120, 120, 120)
        cv2.putText(image, f'{title}: {label} by ground-truth depth', (10, 25), font, 0.55, black,
                    1, cv2.LINE_AA)
        cv2.line(image, (left, top + plot_h), (left + plot_w, top + plot_h), black, 1)
        cv2.line(image, (left, top), (left, top + plot_h), black, 1)
        for fraction in (0.0, 0.5, 1.0):
            y = int(top + plot_h * (1 - fraction))
            cv2.putText(image, f'{peak * fraction:.3g}', (5, y + 4), font, 0.4, black, 1,
                        cv2.LINE_AA)
        for i, (row, value) in enumerate(zip(rows, values)):
            x0 = int(left + i * bar + 0.15 * bar)
            x1 = int(left + (i + 1) * bar - 0.15 * bar)
            if value is not None:
                y = int(top + plot_h * (1 - value / peak))
                cv2.rectangle(image, (x0, y), (x1, top + plot_h), (31, 119, 180), -1)
                cv2.putText(image, f'{value:.3g}', (x0, max(top - 5, y - 5)), font, 0.38, black,
                            1, cv2.LINE_AA)
            cv2.putText(image, f'{row["min"]:g}-{row["max"]:g}', (x0, top + plot_h + 18), font,
                        0.38, black, 1, cv2.LINE_AA)
            cv2.putText(image, f'n={row["pixels"]}', (x0, top + plot_h + 36), font, 0.33, grey, 1,
                        cv2.LINE_AA)
        cv2.putText(image, 'depth range [m]', (left + plot_w // 2 - 50, height - 5), font, 0.45,
                    black, 1, cv2.LINE_AA)
        panels.append(image)
    return np.concatenate(panels, axis=0)


# --- report --------------------------------------------------------------------------------------

def markdown_table(metrics: Optional[dict[str, Any]], digits: int = 3) -> list[str]:
    header = '| ' + ' | '.join(METRIC_TITLES[k] for k in TABLE_ORDER) + ' |'
    rule = '|' + '---|' * len(TABLE_ORDER)
    if metrics is None:
        return [header, rule, '| ' + ' | '.join('-' for _ in TABLE_ORDER) + ' |']
    row = '| ' + ' | '.join(f'{float(metrics[k]):.{digits}f}' for k in TABLE_ORDER) + ' |'
    return [header, rule, row]


def write_report(results: dict[str, Any], output: Path) -> dict[str, Path]:
    """Write results.json, results.md and depth_ranges.png into `output`."""
    output.mkdir(parents=True, exist_ok=True)
    chart = draw_depth_range_chart(results['depth_ranges'], results['dataset']['name'])
    chart_path = output / 'depth_ranges.png'
    if not cv2.imwrite(str(chart_path), cv2.cvtColor(chart, cv2.COLOR_RGB2BGR)):
        raise OSError(f'cannot write {chart_path}')
    results = {**results, 'files': {'chart': chart_path.name, 'error_maps': results['error_maps'],
                                    'json': 'results.json', 'markdown': 'results.md'}}
    json_path = output / 'results.json'
    json_path.write_text(json.dumps(results, indent=2, allow_nan=True) + '\n')

    protocol, dataset, model = results['protocol'], results['dataset'], results['model']
    crop = protocol['crop'] or 'none'
    if protocol['crop'] == 'eigen' and protocol['crop_dataset'] == 'kitti':
        crop += ' (KITTI fractions)'
    lines = [f'# Evaluation: {dataset["name"]}', '',
             f'- model: {", ".join(f"{k}={v}" for k, v in model.items())}',
             f'- dataset: {dataset["reader"]} `{dataset["name"]}`, {dataset["evaluated"]} of '
             f'{dataset["requested"]} requested samples scored ({dataset["samples"]} in the '
             'dataset)',
             f'- protocol: crop {crop}, depth {protocol["min_depth"]:g} < gt < '
             f'{protocol["max_depth"]:g} m, '
             f'flip {"on" if protocol["flip"] else "off"}; metrics: '
             f'{protocol["metric_function"]}; {protocol["aggregation"]}', '']
    lines += markdown_table(results['metrics'])
    lines += ['', '## Error by ground-truth depth (all scored pixels pooled)', '',
              '| depth [m] | pixels | REL | RMSE [m] | δ1 |', '|---|---|---|---|---|']
    for row in results['depth_ranges']:
        def show(value: Optional[float]) -> str:
            return '-' if value is None else f'{value:.3f}'
        lines.append(f'| {row["min"]:g}–{row["max"]:g} | {row["pixels"]} | '
                     f'{show(row["abs_rel"])} | {show(row["rmse"])} | {show(row["a1"])} |')
    lines += ['', f'![error by depth range]({chart_path.name})', '']
    for name in results['error_maps']:
        lines.append(f'![{name}]({name})')
    if results['skipped']:
        lines += ['', f'## Skipped ({len(results["skipped"])})', '']
        lines += [f'- {item["name"]}: {item["reason"]}' for item in results['skipped']]
    timing = results['timing']
    lines += ['', f'Wall time {timing["seconds"]:.1f} s, inference '
              f'{timing["inference_per_sample"]:.3f} s per sample (this machine, not a '
              'benchmark).', '']
    markdown_path = output / 'results.md'
    markdown_path.write_text('\n'.join(lines))
    return {'json': json_path, 'markdown': markdown_path, 'chart': chart_path}


__all__ = ['DepthRanges', 'Protocol', 'draw_depth_range_chart', 'evaluate', 'markdown_table',
           'predict_depth', 'write_error_map', 'write_report']
