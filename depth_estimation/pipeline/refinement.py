"""The per-frame corrections of the model's depth, as one plain class (numpy, no rclpy).

    model depth -> temporal filter -> x focal factor -> x anchored scale -> the REP 117 range

each step optional. The temporal filter sees the network's own output, whose noise its
`temporal_noise` describes, and not the steps a new anchoring fit or another camera add (its gate
would take a global factor for motion). The anchoring fit sees the depth with every other
correction applied, so the scale it finds is what remains. The node converts each anchoring
message (`sparse_depth` or `scan`) to a `SparseSample`; the pipeline hands the latest to `refine`.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from depth_estimation.geometry import Intrinsics
from depth_estimation.pipeline.anchoring import (apply_scale, fit_scale_to_sparse,
                                                 OPTICAL_FROM_FORWARD, ScaleFit, ScaleSmoother,
                                                 scan_to_sparse_depth)
from depth_estimation.pipeline.focal import focal_scale, TrainingCamera, training_camera
from depth_estimation.pipeline.temporal import TemporalFilter

# Anchoring warns in /diagnostics after this many frames in a row without an accepted fit.
STALE_FIT_FRAMES = 10


@dataclass(frozen=True)
class SparseSample:
    """One anchoring message as numpy: a sparse depth image or a LaserScan (stamps in seconds)."""

    stamp: float  # header stamp, seconds
    depth: Optional[np.ndarray] = None  # (h, w) float32 metres, NaN = no sample (sparse_depth)
    ranges: Optional[np.ndarray] = None  # (N,) float32 metres (scan)
    angle_min: float = 0.0
    angle_increment: float = 0.0
    range_min: float = 0.0
    range_max: float = math.inf


def camera_from_scan(extrinsic: Sequence[float]) -> np.ndarray:
    """4 x 4 transform from the scan frame into the camera's optical frame.

    `extrinsic` is [x, y, z, roll, pitch, yaw]: the pose of the scan frame in the camera body frame
    (x forward, y left, z up; REP 103), rotation R = Rz(yaw) Ry(pitch) Rx(roll) as tf2 composes
    roll, pitch and yaw. The optical frame (x right, y down, z forward) has the same origin.
    """
    x, y, z, roll, pitch, yaw = (float(v) for v in extrinsic)
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    rotation = (np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
                @ np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
                @ np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]]))
    body_from_scan = np.eye(4)
    body_from_scan[:3, :3] = rotation
    body_from_scan[:3, 3] = (x, y, z)
    return OPTICAL_FROM_FORWARD @ body_from_scan


class DepthRefiner:
    """Temporal filter, focal compensation and scale anchoring with their state between frames.

    `settings` is the PipelineSettings of the frame (any object with the same attributes);
    changes take effect on the next frame: a new temporal `alpha` or `noise` restarts the filter,
    a new `anchoring_smoothing` keeps the current scale. Public read-outs for diagnostics:
    `last_fit`, `last_problem`, `focal_factor`, `smoother`, `temporal`.
    """

    def __init__(self, network_size: tuple[int, int],
                 metadata_camera: Optional[Mapping[str, Any]] = None,
                 keep_aspect_ratio: bool = True) -> None:
        self.network_size = (int(network_size[0]), int(network_size[1]))
        self.keep_aspect_ratio = keep_aspect_ratio
        self._metadata_camera = (training_camera(dict(metadata_camera))
                                 if metadata_camera else None)
        self.temporal: Optional[TemporalFilter] = None
        self.smoother = ScaleSmoother()
        self.last_fit: Optional[ScaleFit] = None
        self.last_problem = ''  # why the last frame had no scale fit ('' when it had one)
        self.focal_factor: Optional[float] = None  # last factor applied (None: not applied)
        self.fits = 0  # accepted fits
        self.frames = 0

    def training_camera(self, settings: Any) -> Optional[TrainingCamera]:
        """The training camera the settings name: training_fx, then a name, then the metadata."""
        if settings.training_fx > 0:
            return TrainingCamera('parameters', settings.training_fx, settings.training_fx,
                                  settings.training_width, settings.training_height)
        if settings.training_camera:
            return training_camera(settings.training_camera)
        return self._metadata_camera

    def check(self, settings: Any) -> None:
        """ValueError when the settings ask for something this model cannot do."""
        if settings.focal_compensation and self.training_camera(settings) is None:
            raise ValueError('focal_compensation needs the training camera: the model metadata '
                             'has none (export --training-camera), so set training_camera '
                             '(nyu, kitti, sevenscenes) or training_fx / training_width / '
                             'training_height')

    def reset(self) -> None:
        """Forget the state of the old stream (a new image size); the next frame starts afresh.

        That is the temporal filter's per-pixel state and the anchored scale.
        """
        if self.temporal is not None:
            self.temporal.reset()
        self.smoother.reset()
        self.last_fit = None

    def _temporal_filter(self, settings: Any) -> Optional[TemporalFilter]:
        key = (settings.temporal_alpha, settings.temporal_noise)
        if not settings.temporal_filter:
            self.temporal = None
        elif self.temporal is None or key != (self.temporal.alpha, self.temporal.noise):
            self.temporal = TemporalFilter(alpha=key[0], noise=key[1])
        return self.temporal

    def refine(self, depth: np.ndarray, intrinsics: Optional[Intrinsics], settings: Any,
               sample: Optional[SparseSample] = None,
               image_stamp: Optional[float] = None) -> np.ndarray:
        """Model depth (H, W) metres -> corrected depth (H, W) float32 (NaN stays NaN)."""
        self.frames += 1
        depth = np.asarray(depth, dtype=np.float32)
        temporal = self._temporal_filter(settings)
        if temporal is not None:
            depth = temporal.update(depth)

        self.focal_factor = None
        if settings.focal_compensation:
            camera = self.training_camera(settings)
            if camera is not None and intrinsics is not None:
                self.focal_factor = focal_scale(intrinsics, camera, self.network_size,
                                                self.keep_aspect_ratio)
                depth = apply_scale(depth, self.focal_factor)

        if settings.anchoring == 'off':
            return depth
        self.smoother.alpha = float(settings.anchoring_smoothing)
        fit = self._fit(depth, intrinsics, settings, sample, image_stamp)
        self.last_fit = fit
        if fit is None:  # keep the current scale and count the frame
            self.smoother.frames_since_fit += 1
            return apply_scale(depth, self.smoother.scale)
        self.fits += int(fit.ok)
        self.last_problem = fit.reason
        return apply_scale(depth, self.smoother.update(fit))

    def _fit(self, depth: np.ndarray, intrinsics: Optional[Intrinsics], settings: Any,
             sample: Optional[SparseSample], image_stamp: Optional[float]) -> Optional[ScaleFit]:
        """This frame's scale fit, or None with `last_problem` saying why there is none."""
        if sample is None:
            self.last_problem = f'no {settings.anchoring} message received yet'
            return None
        if settings.anchoring_max_age > 0 and image_stamp is not None \
                and abs(image_stamp - sample.stamp) > settings.anchoring_max_age:
            self.last_problem = (f'latest {settings.anchoring} message is '
                                 f'{abs(image_stamp - sample.stamp):.3f} s from the image '
                                 f'(anchoring_max_age {settings.anchoring_max_age:g} s)')
            return None
        if sample.depth is not None:
            sparse = sample.depth
        else:
            if intrinsics is None or sample.ranges is None:
                self.last_problem = 'scan anchoring needs intrinsics (camera_info) to project it'
                return None
            sparse = scan_to_sparse_depth(
                sample.ranges, sample.angle_min, sample.angle_increment,
                camera_from_scan(settings.scan_extrinsic), intrinsics, sample.range_min,
                sample.range_max)  # (H, W) metres, NaN where no beam lands
        try:
            return fit_scale_to_sparse(depth, sparse, settings.anchoring_method,
                                       min_samples=settings.anchoring_min_samples,
                                       inlier_threshold=settings.anchoring_inlier_threshold)
        except ValueError as error:  # a sparse image larger than the depth, say
            self.last_problem = str(error)
            return None

    def diagnostics(self, settings: Any) -> list[tuple[str, str]]:
        """Key-value pairs for /diagnostics about the corrections that are switched on."""
        values: list[tuple[str, str]] = []
        if settings.anchoring != 'off':
            scale = self.smoother.scale
            fit = self.last_fit
            values += [
                ('anchoring', settings.anchoring),
                ('anchoring scale', 'none yet' if scale is None else f'{scale:.4f}'),
                ('anchoring last fit scale', f'{fit.scale:.4f}' if fit and fit.ok else 'n/a'),
                ('anchoring samples', str(fit.samples) if fit else '0'),
                ('anchoring inliers', str(fit.inliers) if fit else '0'),
                ('anchoring frames since fit', str(self.smoother.frames_since_fit)),
                ('anchoring fits accepted', str(self.fits)),
                ('anchoring scale resets', str(self.smoother.resets)),
                ('anchoring last problem', self.last_problem or 'none'),
            ]
        if settings.focal_compensation:
            camera = self.training_camera(settings)
            values += [('focal training camera', camera.name if camera else 'unknown'),
                       ('focal scale', 'n/a (no intrinsics)' if self.focal_factor is None
                        else f'{self.focal_factor:.4f}')]
        if settings.temporal_filter and self.temporal is not None:
            values += [('temporal scene changes', str(self.temporal.scene_changes)),
                       ('temporal pixels following the new frame',
                        f'{self.temporal.last_reset_fraction:.3f}')]
        return values

    def warning(self, settings: Any) -> Optional[str]:
        """A problem worth a WARN status: anchoring on but without a scale, or stale for long."""
        if settings.anchoring == 'off' or self.frames == 0:
            return None
        since = self.smoother.frames_since_fit
        if self.smoother.scale is None:
            return f'anchoring has no scale yet: {self.last_problem or "no accepted fit"}'
        if since >= STALE_FIT_FRAMES:
            return (f'anchoring: no accepted scale fit for {since} frames (holding '
                    f'{self.smoother.scale:.3f}): {self.last_problem or "fits refused"}')
        return None
