"""Held-out comparison: a trained zoedepth_fastdepth checkpoint against its FastDepth core alone.

    python -m training.heldout outputs/training/zoedepth_fastdepth_real/export/model_best.pt \
        --baseline outputs/fastdepth_core.pt --output docs/training/heldout.json

Every frame of the split's `evaluate` sets (never trained or validated on) and, marked as such,
its `val` sets goes through the runtime's preprocessing (depth_estimation.processing, as the
model's config says: letterbox or stretch to the network size, restore to the frame size), then
both models: the trained ZoeDepth (depth and the bin confidence the release exports) and the
FastDepth core of `--baseline` (the float import of the TFLite weights, its own depth). Per
source (`depth_estimation.evaluation.metrics.frame_scores`, the reader's depth range, NYU's Eigen
crop): REL, delta1, RMSE, REL after scaling each prediction by the median ratio to the ground
truth, and the Spearman rank correlation between the confidence and the absolute error
(negative: confident pixels err less).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from tqdm import tqdm

from depth_estimation.evaluation.metrics import frame_scores
from depth_estimation.model.checkpoint import load_checkpoint
from depth_estimation.model.confidence import DepthWithConfidence
from depth_estimation.processing import Preprocessor
from training.data import open_spec, read_split
from training.release import RELEASE_CONFIDENCE_METHOD


@torch.no_grad()
def predict(model: torch.nn.Module, preprocessor: Preprocessor,
            rgb: np.ndarray) -> list[np.ndarray]:
    """Every output of `model` for an RGB frame, restored to the frame size (H, W)."""
    tensor, box = preprocessor.prepare(rgb)  # (1, 3, h, w)
    outputs = model(torch.from_numpy(tensor))  # (1, 1, h, w) each
    if isinstance(outputs, torch.Tensor):
        outputs = (outputs,)
    return [preprocessor.restore(value.numpy(), box) for value in outputs]


def evaluate(checkpoint: Path, baseline: Path, split: Path,
             data_root: Path) -> dict[str, Any]:
    """Per set and source, the mean metrics of the trained model and of the baseline core."""
    model = DepthWithConfidence(load_checkpoint(checkpoint), RELEASE_CONFIDENCE_METHOD)
    baseline_core = load_checkpoint(baseline).core
    config = model.config
    preprocessor = Preprocessor.matching(config)
    sets = read_split(split, data_root)
    results: dict[str, Any] = {}
    for set_name, specs in (('evaluate', sets.evaluate), ('val', sets.val)):
        for spec in specs:
            dataset, options = open_spec(spec)
            indices = range(len(dataset))[slice(options.get('start'), options.get('stop'))]
            eval_crop = spec.get('eval_crop')
            depth_range = (dataset.min_depth, dataset.max_depth)
            per_frame: dict[str, list[dict[str, float]]] = {'trained': [], 'fastdepth': []}
            for index in tqdm(indices, desc=f'{set_name}/{spec["source"]}', leave=False):
                sample = dataset[index]
                depth, confidence = predict(model, preprocessor, sample.image)
                core, = predict(baseline_core, preprocessor, sample.image)
                per_frame['trained'].append(frame_scores(sample.depth, depth, confidence,
                                                         eval_crop, *depth_range))
                per_frame['fastdepth'].append(frame_scores(sample.depth, core, None, eval_crop,
                                                           *depth_range))
            key = f'{set_name}/{spec["source"]}'
            entry = results.setdefault(key, {'frames': 0, 'trained': [], 'fastdepth': []})
            entry['frames'] += len(indices)
            for name in ('trained', 'fastdepth'):
                entry[name].extend(per_frame[name])
    return {key: {'frames': entry['frames'],
                  **{name: {metric: float(np.mean([f[metric] for f in entry[name]]))
                            for metric in entry[name][0]}
                     for name in ('trained', 'fastdepth')}}
            for key, entry in results.items()}


def markdown_table(results: dict[str, Any]) -> str:
    """One row per source and model, for docs/training.md."""
    lines = ['| set / source | frames | model | REL | delta1 | RMSE (m) | REL median-scaled | '
             'Spearman(confidence, abs error) |', '|---|---|---|---|---|---|---|---|']
    for key, entry in results.items():
        for name, label in (('trained', 'zoedepth_fastdepth (trained)'),
                            ('fastdepth', 'FastDepth alone')):
            values = entry[name]
            spearman = values.get('confidence_spearman')
            lines.append(f"| {key} | {entry['frames']} | {label} | {values['abs_rel']:.3f} | "
                         f"{values['a1']:.3f} | {values['rmse']:.3f} | "
                         f"{values['abs_rel_median_scaled']:.3f} | "
                         f"{'-' if spearman is None else f'{spearman:.3f}'} |")
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('checkpoint', type=Path, help='trained zoedepth_fastdepth checkpoint')
    parser.add_argument('--baseline', type=Path, required=True,
                        help='checkpoint whose FastDepth core is the baseline (depth-estimation '
                             'convert of the TFLite file)')
    parser.add_argument('--split', type=Path, default=Path('training/splits/real_rgbd.yaml'))
    parser.add_argument('--data-root', type=Path, default=Path('../shared/data'))
    parser.add_argument('--output', type=Path, help='JSON file for the results')
    parser.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = evaluate(args.checkpoint, args.baseline, args.split, args.data_root)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2) + '\n')
    print(markdown_table(results))
    return 0


if __name__ == '__main__':
    sys.exit(main())
