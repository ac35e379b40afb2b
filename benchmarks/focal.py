"""Focal-length compensation: REL with and without, for cameras unlike the training camera.

The demo model was trained on 7-Scenes only (fx = 585 at 640 x 480;
benchmarks/train_refinement_model.py).
Two measurements:
1. Zoom on held-out 7-Scenes frames (same scene and sensor, so only the focal length changes):
   crop the centre 1/k of image and ground truth and resize back to 640 x 480, which is the
   same camera with fx = 585 k. REL of the raw prediction and of the prediction multiplied by
   `focal_scale` (= k here), and the oracle scale median(GT / pred) before and after (1 = right).
2. Real frames of other cameras with ground truth in ../shared/data: NYU v2 (fx 518.9 at
   640 x 480), TUM (525 assumed: the sequence is unknown), the RealSense D435 recording (colour
   fx 613.2, depth registered into the colour camera with the bag's extrinsic), KITTI (707 at
   1242 x 375, whose wide image is shrunk much more by the letterbox into the network input).
   These also change the scene, so the domain gap of a model trained on one kitchen dominates;
   the table says so.

    .venv/bin/python benchmarks/focal.py

Prints tables and writes outputs/refinement/focal.json and focal_zoom.png.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from refinement_data import (Frame, describe_model, evaluation_mask, kitti_frames,  # noqa: E402
                             nyu_frames, pyplot, realsense_frame, rel, save_figure,
                             sevenscenes_frames, shared_model, tum_frame, write_json)

from depth_estimation.pipeline.focal import TRAINING_CAMERAS, focal_scale  # noqa: E402
from depth_estimation.geometry import Intrinsics  # noqa: E402

ZOOMS = (1.0, 1.15, 1.3, 1.5, 1.75)


def zoom(frame: Frame, factor: float) -> Frame:
    """The centre 1/factor of the frame resized back to full size: focal length x factor."""
    height, width = frame.depth.shape
    crop_h, crop_w = int(round(height / factor)), int(round(width / factor))
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    rgb = cv2.resize(frame.rgb[top:top + crop_h, left:left + crop_w], (width, height),
                     interpolation=cv2.INTER_LINEAR)
    depth = cv2.resize(frame.depth[top:top + crop_h, left:left + crop_w], (width, height),
                       interpolation=cv2.INTER_NEAREST)
    k = frame.intrinsics
    scale_x, scale_y = width / crop_w, height / crop_h
    intrinsics = Intrinsics(k.fx * scale_x, k.fy * scale_y, (k.cx - left + 0.5) * scale_x - 0.5,
                            (k.cy - top + 0.5) * scale_y - 0.5, width, height)
    return replace(frame, name=f'{frame.name}@x{factor}', rgb=rgb, depth=depth,
                   intrinsics=intrinsics)


def measure(frames: list[Frame]) -> dict:
    model = shared_model()
    training = TRAINING_CAMERAS['sevenscenes']
    network = model.config.input_size
    raw, compensated, oracle_raw, oracle_comp, factors = [], [], [], [], []
    for frame in frames:
        pred = model.predict(frame.rgb)[0]
        factor = focal_scale(frame.intrinsics, training, network, model.config.keep_aspect_ratio)
        mask = evaluation_mask(frame)
        valid = mask & np.isfinite(pred) & (pred > 0)
        raw.append(rel(pred, frame.depth, mask))
        compensated.append(rel(pred * factor, frame.depth, mask))
        ratio = float(np.median(frame.depth[valid] / pred[valid]))
        oracle_raw.append(ratio)
        oracle_comp.append(ratio / factor)
        factors.append(factor)
    return {'frames': len(frames), 'focal_scale': float(np.mean(factors)),
            'rel_raw': float(np.mean(raw)), 'rel_compensated': float(np.mean(compensated)),
            'rel_raw_per_frame': raw, 'rel_compensated_per_frame': compensated,
            'median_gt_over_pred_raw': float(np.median(oracle_raw)),
            'median_gt_over_pred_compensated': float(np.median(oracle_comp))}


def main() -> dict:
    held_out = sevenscenes_frames('held_out')[::2]  # 40 frames: 5 zooms each
    zoom_results = {str(k): measure([zoom(f, k) for f in held_out]) for k in ZOOMS}
    cameras = {'NYU v2 (fx 518.9)': nyu_frames(), 'TUM (fx 525, assumed)': [tum_frame()],
               'RealSense D435 (fx 613.2)': [realsense_frame()],
               'KITTI (fx 707 at 1242 wide)': kitti_frames()}
    camera_results = {name: measure(frames) for name, frames in cameras.items()}

    print('zoomed 7-Scenes held-out (fx = 585 k): REL raw -> compensated; median(GT/pred) '
          'raw -> compensated (1 = right scale)')
    for k, r in zoom_results.items():
        print(f"  k={k:<5} factor {r['focal_scale']:.3f}  REL {r['rel_raw']:.3f} -> "
              f"{r['rel_compensated']:.3f}   median GT/pred {r['median_gt_over_pred_raw']:.3f} "
              f"-> {r['median_gt_over_pred_compensated']:.3f}")
    print('other cameras (the scene changes too):')
    for name, r in camera_results.items():
        print(f"  {name:<28} {r['frames']} frames, factor {r['focal_scale']:.3f}  REL "
              f"{r['rel_raw']:.3f} -> {r['rel_compensated']:.3f}   median GT/pred "
              f"{r['median_gt_over_pred_raw']:.3f} -> {r['median_gt_over_pred_compensated']:.3f}")

    plt = pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    ks = [float(k) for k in zoom_results]
    axes[0].plot(ks, [r['rel_raw'] for r in zoom_results.values()], 'o-', label='raw')
    axes[0].plot(ks, [r['rel_compensated'] for r in zoom_results.values()], 's-',
                 label='focal-compensated')
    axes[0].set_xlabel('zoom k (fx = 585 k)')
    axes[0].set_ylabel('REL')
    axes[0].legend()
    axes[1].plot(ks, [r['median_gt_over_pred_raw'] for r in zoom_results.values()], 'o-',
                 label='raw')
    axes[1].plot(ks, [r['median_gt_over_pred_compensated'] for r in zoom_results.values()],
                 's-', label='focal-compensated')
    axes[1].plot(ks, ks, 'k:', label='ideal size-cue model: k')
    axes[1].set_xlabel('zoom k')
    axes[1].set_ylabel('median(GT / prediction)')
    axes[1].legend()
    for axis in axes:
        axis.grid(alpha=0.3)
    figure.suptitle('7-Scenes held-out frames, zoomed: demo model trained at fx = 585')
    summary = {'model': describe_model(), 'zoom': zoom_results, 'cameras': camera_results,
               'plot': str(save_figure(figure, 'focal_zoom.png'))}
    write_json('focal.json', summary)
    return summary


if __name__ == '__main__':
    main()
