"""Does the bin-mixture confidence rank the errors? Spearman rank correlation on real frames.

For every held-out frame with ground truth (7-Scenes redkitchen 440..598, the TUM fr2_desk and
fr1_desk sequences, the 3 NYU v2 test frames, the TUM desk frame of Open3D, the RealSense D435
frame), the measured model (refinement_data.MODEL_PATH) predicts depth and the confidence of
each method in depth_estimation.model.confidence; then, over the valid ground-truth pixels of the
evaluation crop:
- Spearman rho(confidence, |error|), rho(confidence, |error| / depth) and rho(confidence,
  |log(s pred / GT)|) with s = median(GT / pred) of the frame (the error left once the scale is
  right, e.g. after anchoring): negative = the confidence ranks errors (low confidence where
  errors are large); per frame, then the mean over frames;
- the same for a trivial baseline, -predicted depth (far pixels err more in metres), so the
  report shows what confidence adds beyond distance, and for the disagreement between the
  image's and its mirror's depth (1 / (1 + |d - d_mirror| / d): a second forward pass, what
  flip averaging costs anyway);
- sparsification: REL of the pixels kept when the least confident are dropped (10 %, 20 %, ...),
  against the oracle order (by true error) and the area between them (AUSE, lower is better).

    .venv/bin/python benchmarks/confidence.py

Prints a table and writes outputs/refinement/confidence.json, confidence_sparsification.png and
confidence_example.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from refinement_data import (Frame, describe_model, evaluation_mask, nyu_frames,  # noqa: E402
                             pyplot, realsense_frame, save_figure, sevenscenes_frames,
                             shared_model, tum_frame, tum_frames, write_json)

from depth_estimation.evaluation.metrics import spearman  # noqa: E402

KEEP = np.linspace(1.0, 0.1, 10)  # fractions of pixels kept in the sparsification curve


def sparsification(order_key: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """Mean error of the pixels kept, dropping the highest `order_key` first, for each KEEP."""
    order = np.argsort(order_key, kind='stable')  # ascending: keep the first
    sorted_errors = errors[order]
    return np.array([sorted_errors[:max(1, int(round(k * errors.size)))].mean() for k in KEEP])


def evaluate(frames: list[Frame]) -> dict:
    from depth_estimation.model.confidence import METHODS

    model = shared_model()
    candidates = list(METHODS) + ['flip_disagreement', 'baseline_-depth']
    per_frame = {m: {'abs': [], 'rel': [], 'aligned': []} for m in candidates}
    curves = {m: [] for m in candidates}
    oracle_curves = []
    for frame in frames:
        depth, confidences = model.predict_frame(frame)
        mask = evaluation_mask(frame) & np.isfinite(depth) & (depth > 0)
        gt = frame.depth[mask]
        pred = depth[mask]
        abs_error = np.abs(pred - gt)
        rel_error = abs_error / gt
        # what is left once the frame's scale is right (anchoring's job): |log(s * pred / gt)|
        aligned_error = np.abs(np.log(pred * np.median(gt / pred) / gt))
        oracle_curves.append(sparsification(rel_error, rel_error))
        # a second pass on the mirrored image: 1 / (1 + |d - d_mirrored| / d), the cost of
        # flip averaging (the official protocol) turned into a confidence
        mirrored = np.ascontiguousarray(frame.rgb[:, ::-1])
        depth_mirrored = model.predict(mirrored)[0][:, ::-1][mask]
        flip = 1.0 / (1.0 + np.abs(pred - depth_mirrored) / pred)
        for method in candidates:
            if method == 'baseline_-depth':
                score = -pred
            elif method == 'flip_disagreement':
                score = flip
            else:
                score = confidences[method][mask]
            per_frame[method]['abs'].append(spearman(score, abs_error))
            per_frame[method]['rel'].append(spearman(score, rel_error))
            per_frame[method]['aligned'].append(spearman(score, aligned_error))
            curves[method].append(sparsification(-score, rel_error))
    oracle = np.mean(oracle_curves, axis=0)
    result = {'frames': len(frames), 'keep_fractions': KEEP.tolist(),
              'oracle_rel_curve': oracle.tolist(), 'methods': {}}
    for method in candidates:
        curve = np.mean(curves[method], axis=0)
        result['methods'][method] = {
            'spearman_abs_error': float(np.mean(per_frame[method]['abs'])),
            'spearman_abs_error_std': float(np.std(per_frame[method]['abs'])),
            'spearman_rel_error': float(np.mean(per_frame[method]['rel'])),
            'spearman_scale_aligned_error': float(np.mean(per_frame[method]['aligned'])),
            'rel_curve': curve.tolist(),
            'ause': float(-np.trapezoid(curve - oracle, KEEP)),  # KEEP descends
        }
    return result


def plot(results: dict) -> Path:
    plt = pyplot()
    figure, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.6), squeeze=False)
    for axis, (dataset, result) in zip(axes[0], results.items()):
        keep = np.array(result['keep_fractions'])
        for method, values in result['methods'].items():
            axis.plot(keep, values['rel_curve'], marker='.', label=method)
        axis.plot(keep, result['oracle_rel_curve'], 'k--', label='oracle (true error)')
        axis.invert_xaxis()
        axis.set_xlabel('fraction of pixels kept (least confident dropped)')
        axis.set_ylabel('REL of kept pixels')
        axis.set_title(f"{dataset} ({result['frames']} frames)")
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    return save_figure(figure, 'confidence_sparsification.png')


def plot_example(frame: Frame, method: str) -> Path:
    plt = pyplot()
    depth, confidences = shared_model().predict_frame(frame)
    mask = evaluation_mask(frame)
    error = np.where(mask, np.abs(depth - frame.depth) / np.maximum(frame.depth, 1e-3), np.nan)
    figure, axes = plt.subplots(1, 4, figsize=(16, 3.2))
    panels = [(frame.rgb, 'image', None), (depth, 'predicted depth (m)', 'turbo'),
              (confidences[method], f'confidence ({method})', 'viridis'),
              (error, '|error| / depth (ground truth)', 'magma')]
    for axis, (image, title, cmap) in zip(axes, panels):
        shown = axis.imshow(image, cmap=cmap)
        if cmap:
            figure.colorbar(shown, ax=axis, fraction=0.035)
        axis.set_title(title)
        axis.axis('off')
    return save_figure(figure, 'confidence_example.png')


def main() -> dict:
    from depth_estimation.model.confidence import METHODS

    held_out_frames = sevenscenes_frames('held_out')
    datasets = {'7-Scenes held-out': held_out_frames,
                'TUM fr2_desk + fr1_desk': tum_frames('fr2_desk') + tum_frames('fr1_desk'),
                'NYU v2': nyu_frames(),
                'TUM + RealSense': [tum_frame(), realsense_frame()]}
    results = {name: evaluate(frames) for name, frames in datasets.items()}
    print('Spearman rho per frame, mean over frames (negative: low confidence = large error)')
    print(f"{'dataset':<27} {'method':<18} {'rho(|err|)':>10} {'rho(rel)':>9} "
          f"{'rho(aligned)':>12} {'AUSE':>7}")
    for name, result in results.items():
        for method, values in result['methods'].items():
            print(f"{name:<27} {method:<18} {values['spearman_abs_error']:>10.3f} "
                  f"{values['spearman_rel_error']:>9.3f} "
                  f"{values['spearman_scale_aligned_error']:>12.3f} {values['ause']:>7.4f}")
    held_out = results['7-Scenes held-out']['methods']
    best = min((m for m in held_out if m in METHODS),
               key=lambda m: held_out[m]['spearman_abs_error'])
    print(f'best ranking on 7-Scenes held-out: {best}')
    summary = {'model': describe_model(), 'best_method': best, 'results': results,
               'plot': str(plot(results)),
               'example': str(plot_example(held_out_frames[len(held_out_frames) // 2], best))}
    write_json('confidence.json', summary)
    return summary


if __name__ == '__main__':
    main()
