"""Temporal filter: flicker on static clips before/after, smearing on a moving sequence, latency.

Flicker = mean over frames of the mean over pixels of |d_t - d_(t-1)| / d_(t-1), the relative
frame-to-frame change of the output depth (valid pixels of both frames).

1. Static clips made from real frames: 5 held-out 7-Scenes frames, each repeated 20 times with
   sensor-like disturbances applied to the *input image* (Gaussian noise sigma 2 grey levels,
   a random sub-pixel shift of up to +-0.5 px as from vibration, a gain of 1 +- 1 %), then run
   through the measured model. The scene is static, so all change is flicker.
2. The 10 successive held-out 7-Scenes frames with the least camera motion (from the poses),
   as recorded; the ground truth's own frame-to-frame change is given for reference.
3. Smearing: the 80 held-out 7-Scenes frames in order (a moving hand-held camera), and every
   2nd and 4th of them (2x and 4x the motion per frame): REL against ground truth with and
   without, and the camera motion per frame from the poses.
4. Latency of `TemporalFilter.update` on 640 x 480 float32 depth (median of 200 calls).

    .venv/bin/python benchmarks/temporal.py

Prints tables and writes outputs/refinement/temporal.json and temporal.png.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from refinement_data import (Frame, describe_model, evaluation_mask, pyplot, rel,  # noqa: E402
                             save_figure, sevenscenes_frames, shared_model, write_json)

from depth_estimation.pipeline.temporal import TemporalFilter  # noqa: E402

SETTINGS = {  # name: TemporalFilter options; 'default' is the module's default
    'default': {},
    'hard gate': {'soft_gate': False},
    'alpha 0.2': {'alpha': 0.2},
    'alpha 0.5': {'alpha': 0.5},
    'gate 2': {'gate': 2.0},
    'gate 5': {'gate': 5.0},
    'noise 0.05': {'noise': 0.05},
}


def flicker(depths: list[np.ndarray]) -> float:
    values = []
    for previous, current in zip(depths[:-1], depths[1:]):
        valid = np.isfinite(previous) & np.isfinite(current) & (previous > 0) & (current > 0)
        values.append(np.mean(np.abs(current[valid] - previous[valid]) / previous[valid]))
    return float(np.mean(values))


def disturbed(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One noisy, slightly shifted, slightly brighter or darker copy of an image."""
    shift = rng.uniform(-0.5, 0.5, 2)
    matrix = np.array([[1.0, 0.0, shift[0]], [0.0, 1.0, shift[1]]])
    moved = cv2.warpAffine(rgb, matrix, (rgb.shape[1], rgb.shape[0]), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
    noisy = moved.astype(np.float32) * rng.uniform(0.99, 1.01) + rng.normal(0, 2.0, rgb.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def run_filter(depths: list[np.ndarray], **options: float) -> list[np.ndarray]:
    temporal = TemporalFilter(**options)
    return [temporal.update(d) for d in depths]


def least_motion_window(frames: list[Frame], length: int = 10) -> tuple[int, float, float]:
    """Start of the `length` successive frames with the least motion; mm and degrees per frame."""
    steps = []
    for a, b in zip(frames[:-1], frames[1:]):
        relative = np.linalg.inv(a.pose) @ b.pose
        angle = np.degrees(np.arccos(np.clip((np.trace(relative[:3, :3]) - 1) / 2, -1, 1)))
        steps.append((np.linalg.norm(relative[:3, 3]) * 1000.0, angle))
    steps = np.array(steps)
    cost = [steps[i:i + length - 1, 0].mean() + 10 * steps[i:i + length - 1, 1].mean()
            for i in range(len(steps) - length + 2)]
    start = int(np.argmin(cost))
    window = steps[start:start + length - 1]
    return start, float(window[:, 0].mean()), float(window[:, 1].mean())


def main() -> dict:
    model = shared_model()
    held_out = sevenscenes_frames('held_out')
    rng = np.random.default_rng(0)

    static_clips = []
    for frame in held_out[::16][:5]:
        static_clips.append([model.predict(disturbed(frame.rgb, rng))[0] for _ in range(20)])
    static = {}
    for name, options in SETTINGS.items():
        static[name] = float(np.mean([flicker(run_filter(c, **options)) for c in static_clips]))
    raw_static = float(np.mean([flicker(c) for c in static_clips]))

    start, mm, degrees = least_motion_window(held_out)
    window = held_out[start:start + 10]
    window_depth = [model.predict_frame(f)[0] for f in window]
    window_gt = [np.where(evaluation_mask(f), f.depth, np.nan) for f in window]
    quiet = {'first_frame': window[0].name, 'mm_per_frame': mm, 'degrees_per_frame': degrees,
             'flicker_ground_truth': flicker(window_gt), 'flicker_raw': flicker(window_depth),
             'flicker_filtered': {n: flicker(run_filter(window_depth, **o))
                                  for n, o in SETTINGS.items()}}

    moving = {}
    for stride in (1, 2, 4):
        frames = held_out[::stride]
        depths = [model.predict_frame(f)[0] for f in frames]
        raw_rel = [rel(d, f.depth, evaluation_mask(f)) for d, f in zip(depths, frames)]
        motion = [np.linalg.norm((np.linalg.inv(a.pose) @ b.pose)[:3, 3]) * 1000.0
                  for a, b in zip(frames[:-1], frames[1:])]
        entry = {'frames': len(frames), 'rel_raw': float(np.mean(raw_rel)),
                 'mm_per_frame': float(np.mean(motion)),
                 'flicker_raw': flicker(depths), 'settings': {}}
        for name, options in SETTINGS.items():
            filtered = run_filter(depths, **options)
            entry['settings'][name] = {
                'rel': float(np.mean([rel(d, f.depth, evaluation_mask(f))
                                      for d, f in zip(filtered, frames)])),
                'flicker': flicker(filtered)}
        if stride == 1:
            per_frame_raw = raw_rel
            per_frame_filtered = [rel(d, f.depth, evaluation_mask(f))
                                  for d, f in zip(run_filter(depths), frames)]
        moving[f'stride {stride}'] = entry

    depth = held_out[0].depth.copy()
    depth[depth == 0] = np.nan
    temporal = TemporalFilter()
    temporal.update(depth)
    noisy = [depth * np.float32(1 + 0.01 * (i % 3)) for i in range(8)]
    timings = []
    for i in range(200):
        begin = time.perf_counter()
        temporal.update(noisy[i % len(noisy)])
        timings.append(time.perf_counter() - begin)
    latency_ms = float(np.median(timings) * 1000.0)

    print(f'static clips (5 frames x 20 disturbed copies): flicker raw {raw_static:.4f}')
    for name, value in static.items():
        print(f'   {name:<11} {value:.4f}  ({100 * (1 - value / raw_static):.0f} % less)')
    print(f"least-motion window from {quiet['first_frame']} ({mm:.1f} mm, {degrees:.2f} deg per "
          f"frame): flicker GT {quiet['flicker_ground_truth']:.4f}, raw "
          f"{quiet['flicker_raw']:.4f}, filtered {quiet['flicker_filtered']['default']:.4f}")
    for name, entry in moving.items():
        print(f"moving {name} ({entry['frames']} frames, {entry['mm_per_frame']:.0f} mm per "
              f"frame): REL raw {entry['rel_raw']:.4f}, "
              f"flicker raw {entry['flicker_raw']:.4f}")
        for setting, values in entry['settings'].items():
            print(f"   {setting:<11} REL {values['rel']:.4f}  flicker {values['flicker']:.4f}")
    print(f'latency at 640x480: {latency_ms:.2f} ms per frame (median of 200, one thread)')

    plt = pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    clip = static_clips[0]
    filtered = run_filter(clip)
    centre = (clip[0].shape[0] // 2, clip[0].shape[1] // 2)
    axes[0].plot([d[centre] for d in clip], 'o-', label='raw')
    axes[0].plot([d[centre] for d in filtered], 's-', label='filtered')
    axes[0].set_xlabel('frame of a static clip')
    axes[0].set_ylabel('depth at the image centre (m)')
    axes[0].legend()
    axes[1].plot(per_frame_raw, label='raw')
    axes[1].plot(per_frame_filtered, label='filtered')
    axes[1].set_xlabel('7-Scenes held-out frame (moving camera)')
    axes[1].set_ylabel('REL vs ground truth')
    axes[1].legend()
    for axis in axes:
        axis.grid(alpha=0.3)
    summary = {'model': describe_model(), 'static_clips': {'raw': raw_static, 'filtered': static},
               'least_motion_window': quiet, 'moving': moving, 'latency_ms_640x480': latency_ms,
               'plot': str(save_figure(figure, 'temporal.png'))}
    write_json('temporal.json', summary)
    return summary


if __name__ == '__main__':
    main()
