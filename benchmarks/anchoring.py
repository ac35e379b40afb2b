"""Scale anchoring on real RGB-D frames: REL with and without, sparse samples drawn from the GT.

Frames: 7-Scenes redkitchen 440..598 (held out from the measured model's training, in order, so
the temporal smoother sees a real sequence), the TUM fr2_desk and fr1_desk sequences (tabletops,
evaluation-only in the real-data split), the 3 NYU v2 test frames and the 3 KITTI frames
(outdoors).
Sparse metric samples are drawn from each frame's ground truth inside the evaluation crop:
- `zones8x8`: an 8 x 8 multizone time-of-flight sensor covering the image: each zone reports
  the median ground truth of its block (zones with under 50 % valid ground truth report
  nothing), with 2 % multiplicative noise. Indoor frames only (such sensors reach about 4 m).
- `lidar64`: 64 random valid ground-truth pixels, 1 % noise, 10 % of them outliers (depth
  multiplied by exp(+-U(0.2, 1.0)): mixed pixels, multipath).
- `scan`: a planar scanner level with the camera: the LaserScan of the ground truth's row at cy
  (depth_estimation.pipeline.laserscan), 1 % noise, 10 % outliers, projected back into the
  image with `anchoring.scan_to_sparse_depth` (the path a real LaserScan takes in the node).
Depth is the measured model's (refinement_data.MODEL_PATH) and, as a check of the
estimator alone, a synthetic scale-corrupted ground truth: pred = GT * s * exp(0.1 N(0, 1))
for s in {0.5, 0.8, 1.25, 2.0}; the fitted scale should be 1 / s.

    .venv/bin/python benchmarks/anchoring.py

Prints tables and writes outputs/refinement/anchoring.json, anchoring_rel.png and
anchoring_sequence.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from refinement_data import (Frame, delta1, describe_model, evaluation_mask,  # noqa: E402
                             kitti_frames, nyu_frames, pyplot, rel, save_figure,
                             sevenscenes_frames, shared_model, tum_frames, write_json)

from depth_estimation.pipeline.anchoring import (OPTICAL_FROM_FORWARD, ScaleSmoother,  # noqa: E402
                                                 fit_scale_to_sparse, scan_to_sparse_depth,
                                                 zone_depths)
from depth_estimation.pipeline.laserscan import depth_to_scan  # noqa: E402

METHODS = ('median', 'trimmed', 'ransac')
SYNTHETIC_SCALES = (0.5, 0.8, 1.25, 2.0)


def zones_sample(frame: Frame, rng: np.random.Generator, noise: float = 0.02) -> np.ndarray:
    """8 x 8 zone image of the ground truth (NaN where a zone has too little valid depth)."""
    truth = np.where(evaluation_mask(frame), frame.depth, np.nan)
    zones = zone_depths(truth, (8, 8), min_valid_fraction=0.5)
    return zones * np.exp(noise * rng.standard_normal(zones.shape))


def lidar_sample(frame: Frame, rng: np.random.Generator, count: int = 64, noise: float = 0.01,
                 outliers: float = 0.1) -> np.ndarray:
    """Full-size sparse depth with `count` noisy ground-truth pixels, a share of them outliers."""
    rows, cols = np.nonzero(evaluation_mask(frame))
    pick = rng.choice(rows.size, size=min(count, rows.size), replace=False)
    values = frame.depth[rows[pick], cols[pick]] * np.exp(noise * rng.standard_normal(pick.size))
    bad = rng.random(pick.size) < outliers
    values[bad] *= np.exp(rng.choice([-1.0, 1.0], bad.sum()) * rng.uniform(0.2, 1.0, bad.sum()))
    sparse = np.full(frame.depth.shape, np.nan, np.float32)
    sparse[rows[pick], cols[pick]] = values
    return sparse


def scan_sample(frame: Frame, rng: np.random.Generator, noise: float = 0.01,
                outliers: float = 0.1) -> np.ndarray:
    """A planar scanner level with the camera: the ground truth's LaserScan (the row at cy, as
    depth_estimation.pipeline.laserscan makes it), 1 % noise and 10 % outliers, projected back
    into the image through the intrinsics (anchoring.scan_to_sparse_depth)."""
    truth = np.where(evaluation_mask(frame), frame.depth, np.nan).astype(np.float32)
    ranges, geometry = depth_to_scan(truth, frame.intrinsics, scan_height=1, range_min=0.1,
                                     range_max=frame.max_depth)
    ranges = ranges.astype(np.float64) * np.exp(noise * rng.standard_normal(ranges.size))
    bad = rng.random(ranges.size) < outliers
    ranges[bad] *= np.exp(rng.choice([-1.0, 1.0], bad.sum()) * rng.uniform(0.2, 1.0, bad.sum()))
    return scan_to_sparse_depth(ranges, geometry.angle_min, geometry.angle_increment,
                                OPTICAL_FROM_FORWARD, frame.intrinsics)


SAMPLERS = {'zones8x8': zones_sample, 'lidar64': lidar_sample, 'scan': scan_sample}


def oracle_scale(pred: np.ndarray, frame: Frame) -> float:
    """median(GT / pred) over all valid pixels: the per-frame scale an oracle would apply."""
    mask = evaluation_mask(frame) & np.isfinite(pred) & (pred > 0)
    return float(np.median(frame.depth[mask] / pred[mask]))


def run_dataset(frames: list[Frame], samplers: list[str], predictions: list[np.ndarray],
                seed: int = 0) -> dict:
    """REL / delta1 without anchoring, with each method and sampler, with the oracle scale."""
    rng = np.random.default_rng(seed)
    table = {'none': {'rel': [], 'delta1': []}, 'oracle_median': {'rel': [], 'delta1': []}}
    fits = {}
    for sampler in samplers:
        for method in METHODS:
            table[f'{sampler}/{method}'] = {'rel': [], 'delta1': [], 'refused': 0}
            fits[f'{sampler}/{method}'] = []
    for frame, pred in zip(frames, predictions):
        mask = evaluation_mask(frame)
        table['none']['rel'].append(rel(pred, frame.depth, mask))
        table['none']['delta1'].append(delta1(pred, frame.depth, mask))
        oracle = oracle_scale(pred, frame)
        table['oracle_median']['rel'].append(rel(pred * oracle, frame.depth, mask))
        table['oracle_median']['delta1'].append(delta1(pred * oracle, frame.depth, mask))
        for sampler in samplers:
            sparse = SAMPLERS[sampler](frame, rng)
            for method in METHODS:
                key = f'{sampler}/{method}'
                fit = fit_scale_to_sparse(pred, sparse, method)
                fits[key].append(fit)
                scale = fit.scale if fit.ok else 1.0
                table[key]['refused'] += int(not fit.ok)
                table[key]['rel'].append(rel(pred * scale, frame.depth, mask))
                table[key]['delta1'].append(delta1(pred * scale, frame.depth, mask))
    summary = {}
    for key, values in table.items():
        summary[key] = {'rel': float(np.mean(values['rel'])),
                        'delta1': float(np.mean(values['delta1']))}
        if 'refused' in values:
            summary[key]['refused_frames'] = values['refused']
            summary[key]['mean_inliers'] = float(np.mean([f.inliers for f in fits[key]]))
    return {'frames': len(frames), 'table': summary, '_fits': fits}


def synthetic(frames: list[Frame], samplers: list[str], seed: int = 1) -> dict:
    """pred = GT * s * noise: does the fit return 1 / s? Median |log(fit * s)| over frames."""
    rng = np.random.default_rng(seed)
    result = {}
    for s in SYNTHETIC_SCALES:
        errors = {f'{sampler}/{m}': [] for sampler in samplers for m in METHODS}
        rel_before, rel_after = [], {k: [] for k in errors}
        for frame in frames:
            mask = evaluation_mask(frame)
            noise = np.exp(0.1 * rng.standard_normal(frame.depth.shape))
            pred = np.where(frame.depth > 0, frame.depth * s * noise, np.nan).astype(np.float32)
            rel_before.append(rel(pred, frame.depth, mask))
            for sampler in samplers:
                sparse = SAMPLERS[sampler](frame, rng)
                for method in METHODS:
                    key = f'{sampler}/{method}'
                    fit = fit_scale_to_sparse(pred, sparse, method)
                    scale = fit.scale if fit.ok else 1.0
                    errors[key].append(abs(np.log(scale * s)))
                    rel_after[key].append(rel(pred * scale, frame.depth, mask))
        result[str(s)] = {
            'rel_before': float(np.mean(rel_before)),
            'methods': {k: {'median_abs_log_error': float(np.median(v)),
                            'max_abs_log_error': float(np.max(v)),
                            'rel_after': float(np.mean(rel_after[k]))}
                        for k, v in errors.items()}}
    return result


def sequence(frames: list[Frame], predictions: list[np.ndarray], seed: int = 2) -> dict:
    """7-Scenes in order: per-frame fits vs the smoothed scale, and a simulated scale jump.

    Fits use the module's defaults (`fit_scale`). From the middle of the sequence on, the
    prediction is multiplied by 1.5 (what a different scene, a zoom or a model update does to
    the scale): the smoother should follow in `jump_frames` frames.
    """
    rng = np.random.default_rng(seed)
    smoother = ScaleSmoother()
    trace = {'frame': [], 'per_frame': [], 'smoothed': [], 'oracle': [], 'rel_none': [],
             'rel_per_frame': [], 'rel_smoothed': []}
    half = len(frames) // 2
    for index, (frame, pred) in enumerate(zip(frames, predictions)):
        if index >= half:
            pred = pred * 1.5
        mask = evaluation_mask(frame)
        fit = fit_scale_to_sparse(pred, lidar_sample(frame, rng))  # the module's defaults
        smoothed = smoother.update(fit)
        per_frame = fit.scale if fit.ok else 1.0
        trace['frame'].append(index)
        trace['per_frame'].append(per_frame)
        trace['smoothed'].append(smoothed if smoothed is not None else 1.0)
        trace['oracle'].append(oracle_scale(pred, frame))
        trace['rel_none'].append(rel(pred, frame.depth, mask))
        trace['rel_per_frame'].append(rel(pred * per_frame, frame.depth, mask))
        trace['rel_smoothed'].append(rel(pred * trace['smoothed'][-1], frame.depth, mask))
    settled = [i for i in trace['frame'] if not half <= i < half + smoother.jump_frames]
    return {'jump_at_frame': half, 'resets': smoother.resets,
            'rel_per_frame_without_jump_frames': float(np.mean(
                [trace['rel_per_frame'][i] for i in settled])),
            'rel_smoothed_without_jump_frames': float(np.mean(
                [trace['rel_smoothed'][i] for i in settled])),
            'rel_none': float(np.mean(trace['rel_none'])),
            'rel_per_frame': float(np.mean(trace['rel_per_frame'])),
            'rel_smoothed': float(np.mean(trace['rel_smoothed'])),
            'scale_jitter_per_frame': float(np.std(np.diff(np.log(trace['per_frame'][:half])))),
            'scale_jitter_smoothed': float(np.std(np.diff(np.log(trace['smoothed'][:half])))),
            'trace': trace}


def threshold_sweep(frames: list[Frame], predictions: list[np.ndarray], seed: int = 3) -> dict:
    """Every method on lidar64 for several inlier thresholds and minimum inlier fractions."""
    rng = np.random.default_rng(seed)
    samples = [lidar_sample(frame, rng) for frame in frames]
    result = {}
    for method in METHODS:
        for threshold in (0.05, 0.1, 0.2, 0.3):
            for fraction in (0.2, 0.3, 0.5):
                rels, refused = [], 0
                for frame, pred, sparse in zip(frames, predictions, samples):
                    fit = fit_scale_to_sparse(pred, sparse, method,
                                              inlier_threshold=threshold,
                                              min_inlier_fraction=fraction)
                    refused += int(not fit.ok)
                    rels.append(rel(pred * (fit.scale if fit.ok else 1.0), frame.depth,
                                    evaluation_mask(frame)))
                result[f'{method}, threshold {threshold}, min fraction {fraction}'] = {
                    'rel': float(np.mean(rels)), 'refused_frames': refused}
    return result


def plot(results: dict, seq: dict) -> list[Path]:
    plt = pyplot()
    figure, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.6), squeeze=False)
    for axis, (dataset, result) in zip(axes[0], results.items()):
        keys = list(result['table'])
        values = [result['table'][k]['rel'] for k in keys]
        colours = {'none': '0.6', 'oracle_median': 'k'}
        axis.barh(range(len(keys)), values, color=[colours.get(k, 'C0') for k in keys])
        axis.set_yticks(range(len(keys)), keys, fontsize=8)
        axis.invert_yaxis()
        axis.set_xlabel('REL (lower is better)')
        axis.set_title(f"{dataset} ({result['frames']} frames)")
        axis.grid(alpha=0.3, axis='x')
    paths = [save_figure(figure, 'anchoring_rel.png')]
    figure, axis = plt.subplots(figsize=(8, 3.4))
    trace = seq['trace']
    axis.plot(trace['frame'], trace['oracle'], 'k-', label='oracle median(GT / pred)')
    axis.plot(trace['frame'], trace['per_frame'], '.', color='C1',
              label='per-frame fit (trimmed, lidar64)')
    axis.plot(trace['frame'], trace['smoothed'], '-', color='C0', label='smoothed (EMA in log)')
    axis.axvline(seq['jump_at_frame'], color='0.6', ls=':', label='prediction x1.5 from here')
    axis.set_xlabel('7-Scenes held-out frame')
    axis.set_ylabel('scale applied to the prediction')
    axis.legend(fontsize=7)
    axis.grid(alpha=0.3)
    paths.append(save_figure(figure, 'anchoring_sequence.png'))
    return paths


def main() -> dict:
    model = shared_model()
    indoor = ['zones8x8', 'lidar64', 'scan']
    datasets = {'7-Scenes held-out': (sevenscenes_frames('held_out'), indoor),
                'TUM fr2_desk': (tum_frames('fr2_desk'), indoor),
                'TUM fr1_desk': (tum_frames('fr1_desk'), indoor),
                'NYU v2': (nyu_frames(), indoor), 'KITTI': (kitti_frames(), ['lidar64', 'scan'])}
    results, synthetic_results = {}, {}
    predictions = {}
    for name, (frames, samplers) in datasets.items():
        predictions[name] = [model.predict_frame(f)[0] for f in frames]
        results[name] = run_dataset(frames, samplers, predictions[name])
        synthetic_results[name] = synthetic(frames, samplers)
    seq = sequence(datasets['7-Scenes held-out'][0], predictions['7-Scenes held-out'])
    sweep = {name: threshold_sweep(frames, predictions[name])
             for name, (frames, _) in datasets.items()}

    print('REL (delta1) with the measured model; anchoring fits the scale on the sparse samples')
    for name, result in results.items():
        print(f"-- {name} ({result['frames']} frames)")
        for key, values in result['table'].items():
            extra = ''
            if 'refused_frames' in values:
                extra = (f"  refused {values['refused_frames']}, "
                         f"inliers {values['mean_inliers']:.1f}")
            print(f"   {key:<20} REL {values['rel']:.3f}  delta1 {values['delta1']:.3f}{extra}")
    print('synthetic pred = GT * s * noise(10 %): median |log(fitted * s)| (0 = s recovered)')
    for name, by_scale in synthetic_results.items():
        for s, values in by_scale.items():
            cells = '  '.join(f"{k} {v['median_abs_log_error']:.4f}"
                              for k, v in values['methods'].items())
            print(f"   {name:<18} s={s:<5} REL before {values['rel_before']:.3f}  {cells}")
    print(f"sequence (7-Scenes, default fit on lidar64, x1.5 from frame {seq['jump_at_frame']}): "
          f"REL none {seq['rel_none']:.3f}, per-frame {seq['rel_per_frame']:.3f}, smoothed "
          f"{seq['rel_smoothed']:.3f}; frame-to-frame log-scale jitter per-frame "
          f"{seq['scale_jitter_per_frame']:.4f} vs smoothed {seq['scale_jitter_smoothed']:.4f}; "
          f"resets {seq['resets']}; without the {ScaleSmoother().jump_frames} frames after the "
          f"jump: per-frame {seq['rel_per_frame_without_jump_frames']:.3f}, smoothed "
          f"{seq['rel_smoothed_without_jump_frames']:.3f}")
    print('lidar64: method, inlier threshold (log) and minimum inlier fraction')
    for name, rows in sweep.items():
        for key, values in rows.items():
            print(f"   {name:<18} {key:<42} REL {values['rel']:.3f}  refused "
                  f"{values['refused_frames']}")
    for result in results.values():
        result.pop('_fits')
    summary = {'model': describe_model(), 'results': results, 'synthetic': synthetic_results,
               'sequence': seq, 'threshold_sweep': sweep,
               'plots': [str(p) for p in plot(results, seq)]}
    write_json('anchoring.json', summary)
    return summary


if __name__ == '__main__':
    main()
