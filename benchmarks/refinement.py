"""Every measured figure of docs/refinement.md: confidence, anchoring, focal length, laser scan,
temporal filter, on real frames of ../shared/data with one model (a checkpoint).

    .venv/bin/python benchmarks/refinement.py --model outputs/zoedepth_fastdepth_real.pt
    .venv/bin/python benchmarks/refinement.py --only anchoring  # one part

`--model` (or REFINEMENT_MODEL=<checkpoint>) picks the model; the default is the real-data model
at outputs/zoedepth_fastdepth_real.pt (refinement_data.DEFAULT_MODEL).

Each part is its own script (benchmarks/<part>.py) and can run alone; this one runs them
in one process (the model's predictions are shared) and adds the laser-scan figures. Everything
is written to outputs/refinement/ (JSON with every number, PNG plots); timings are of this machine
and noisy when it is shared.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import anchoring  # noqa: E402
import confidence  # noqa: E402
import focal  # noqa: E402
import refinement_data  # noqa: E402
import temporal  # noqa: E402
from refinement_data import (Frame, OUTPUT_DIR, describe_model, pyplot,  # noqa: E402
                             REPO_ROOT, save_figure, sevenscenes_frames, shared_model, tum_frames,
                             write_json)

from depth_estimation.pipeline.anchoring import fit_scale_to_sparse, zone_depths  # noqa: E402
from depth_estimation.pipeline.laserscan import depth_to_scan  # noqa: E402


def median_ms(function, repeats: int = 100) -> float:  # noqa: ANN001 - a callable
    timings = []
    for _ in range(repeats):
        begin = time.perf_counter()
        function()
        timings.append(time.perf_counter() - begin)
    return float(np.median(timings) * 1000.0)


def scan_differences(frames: list[Frame]) -> dict:
    """Median relative difference of the scan from the predicted depth against the scan from the
    ground truth (scan_height 10, same geometry), mean over frames; finite share of the bins."""
    model = shared_model()
    differences, coverage = [], []
    for frame in frames:
        pred = model.predict_frame(frame)[0]
        truth = np.where(frame.depth > 0, frame.depth, np.nan).astype(np.float32)
        scan_pred, _ = depth_to_scan(pred, frame.intrinsics, scan_height=10)
        scan_true, _ = depth_to_scan(truth, frame.intrinsics, scan_height=10)
        both = np.isfinite(scan_pred) & np.isfinite(scan_true)
        differences.append(np.median(np.abs(scan_pred[both] - scan_true[both]) / scan_true[both]))
        coverage.append(float(np.isfinite(scan_pred).mean()))
    return {'frames': len(frames), 'median_rel_range_difference': float(np.mean(differences)),
            'finite_fraction': float(np.mean(coverage))}


def laserscan() -> dict:
    """Scan from the predicted depth against the scan from the ground truth, and its cost."""
    model = shared_model()
    frames = sevenscenes_frames('held_out')
    sets = {'7-Scenes held-out': scan_differences(frames),
            'TUM fr2_desk + fr1_desk': scan_differences(tum_frames('fr2_desk')
                                                        + tum_frames('fr1_desk'))}
    frame = frames[len(frames) // 2]
    pred = model.predict_frame(frame)[0]
    truth = np.where(frame.depth > 0, frame.depth, np.nan).astype(np.float32)
    latency = {f'scan_height {h}': median_ms(lambda h=h: depth_to_scan(pred, frame.intrinsics,
                                                                       scan_height=h))
               for h in (1, 10, 50)}
    sparse = np.full(pred.shape, np.nan, np.float32)
    rng = np.random.default_rng(0)
    sparse.flat[rng.choice(sparse.size, 64, replace=False)] = 2.0
    latency['anchoring: 8x8 zones of 640x480'] = median_ms(lambda: zone_depths(pred, (8, 8)))
    latency['anchoring: RANSAC fit, 64 points in 640x480'] = median_ms(
        lambda: fit_scale_to_sparse(pred, sparse))

    plt = pyplot()
    figure, axis = plt.subplots(figsize=(5, 5))
    for depth, label in ((truth, 'from ground-truth depth'), (pred, 'from predicted depth')):
        ranges, geometry = depth_to_scan(depth, frame.intrinsics, scan_height=10)
        angles = geometry.angles()
        axis.plot(-ranges * np.sin(angles), ranges * np.cos(angles), '.', ms=2, label=label)
    axis.plot(0, 0, 'k^')
    axis.set_aspect('equal')
    axis.set_xlabel('right (m)')
    axis.set_ylabel('forward (m)')
    axis.set_title(f'{frame.name}: LaserScan, 10 rows around cy')
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    result = {**sets['7-Scenes held-out'], 'sets': sets, 'latency_ms': latency,
              'plot': str(save_figure(figure, 'laserscan.png'))}
    for name, values in sets.items():
        print(f"laser scan (scan_height 10) from predicted vs ground-truth depth, "
              f"{values['frames']} {name} frames: median relative range difference "
              f"{values['median_rel_range_difference']:.3f}, finite ranges "
              f"{100 * values['finite_fraction']:.0f} %")
    for name, value in latency.items():
        print(f'   latency {name}: {value:.2f} ms')
    write_json('laserscan.json', result)
    return result


PARTS = {'confidence': confidence.main, 'anchoring': anchoring.main,
         'focal': focal.main, 'laserscan': laserscan, 'temporal': temporal.main}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--only', choices=sorted(PARTS), action='append',
                        help='run only these parts (repeatable)')
    parser.add_argument('--model', type=Path, default=None,
                        help='checkpoint to measure (default: REFINEMENT_MODEL, else '
                             f'{refinement_data.DEFAULT_MODEL.relative_to(REPO_ROOT)})')
    args = parser.parse_args(argv)
    if args.model is not None:
        refinement_data.MODEL_PATH = args.model.resolve()
    print(f'model: {describe_model()}')
    results = {}
    for name in args.only or list(PARTS):
        print(f'\n=== {name} ===', flush=True)
        begin = time.perf_counter()
        results[name] = PARTS[name]()
        print(f'({name}: {time.perf_counter() - begin:.0f} s)', flush=True)
    print(f'\nwritten to {OUTPUT_DIR}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
