"""Every parameter of the depth node, declared once here (rclpy-free, so it is testable alone).

A `ParameterSpec` holds the name, default, description, numeric range or allowed values, and
whether the value may change while the node runs (`runtime=True`: ranges, stride, colour map,
intrinsics, frame id) or only while it is unconfigured (model, backend, QoS, which outputs exist).
The node turns each spec into an rclpy `ParameterDescriptor` with a `FloatingPointRange` or
`IntegerRange`; `NodeSettings.from_values` checks what ranges cannot express (allowed strings and
relations between parameters) at start and on every change.

New outputs add their parameters to `PARAMETERS` (one line each) and read them from
`NodeSettings`, so the launch file, the YAML and the documentation stay in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
import math
from typing import Any, Mapping, Optional, Sequence, Union

from depth_estimation.anchoring import METHODS as ANCHORING_METHODS
from depth_estimation.focal import TRAINING_CAMERAS
from depth_estimation.inference import BACKENDS
from depth_estimation.visualize import COLORMAPS, DEFAULT_COLORMAP

Value = Union[bool, int, float, str, list]

RELIABILITIES = ('reliable', 'best_effort')
OUT_OF_RANGE_MODES = ('rep117', 'nan')
COLORIZE_RANGES = ('fixed', 'auto')
ANCHORING_MODES = ('off', 'sparse_depth', 'scan')
TRAINING_CAMERA_NAMES = ('',) + tuple(sorted(TRAINING_CAMERAS))
MAX_METRES = 1000.0


@dataclass(frozen=True)
class ParameterSpec:
    """One node parameter: default, description and the values it accepts."""

    name: str
    default: Value
    description: str
    runtime: bool = False  # may change while the node is active
    range: Optional[tuple[float, float]] = None  # inclusive, for int and float parameters
    choices: Optional[Sequence[str]] = None  # allowed values of a string parameter

    @property
    def constraints(self) -> str:
        """Human-readable constraints (goes into ParameterDescriptor.additional_constraints)."""
        parts = []
        if self.choices is not None:
            parts.append('one of: ' + ', '.join(self.choices))
        if self.range is not None:
            parts.append(f'{self.range[0]:g} to {self.range[1]:g}')
        parts.append('changes at run time' if self.runtime
                     else 'changes only while unconfigured (lifecycle) or at start')
        return '; '.join(parts)


def _spec(name: str, default: Value, description: str, **options: Any) -> ParameterSpec:
    return ParameterSpec(name, default, description, **options)


PARAMETERS: tuple[ParameterSpec, ...] = (
    # Model (configure).
    _spec('model_path', '', 'Model artifact: .onnx with its .onnx.json metadata beside it, or a '
          'torch checkpoint. Required; loaded (and checked) at configure.'),
    _spec('backend', 'auto', 'Inference backend; auto picks it from the model file suffix.',
          choices=BACKENDS),
    _spec('num_threads', 0, 'CPU threads of the backend; 0 lets the backend choose.',
          range=(0, 256)),
    # Outputs and QoS (configure).
    _spec('publisher_reliability', 'reliable', 'QoS reliability of every output: reliable '
          '(matches reliable and best-effort subscribers; RViz default) or best_effort.',
          choices=RELIABILITIES),
    _spec('publisher_depth', 1, 'QoS history depth (keep last N) of every output.',
          range=(1, 1000)),
    _spec('publish_depth_raw', False, 'Also publish depth/image_raw: 16UC1 millimetres, 0 = '
          'invalid or out of range (REP 118 raw form).'),
    _spec('publish_points', True, 'Publish the organized PointCloud2 on points (needs '
          'intrinsics: camera_info or the fx/fy/cx/cy/horizontal_fov parameters).'),
    _spec('publish_colorized', False, 'Publish depth/colorized: an rgb8 colour-mapped depth '
          'image for people (never a depth topic).'),
    _spec('diagnostics_period', 1.0, 'Seconds between diagnostic_msgs/DiagnosticArray messages '
          'on /diagnostics.', range=(0.1, 60.0)),
    # Depth range (run time).
    _spec('min_depth', 0.0, 'Nearest depth in metres that is reported; nearer pixels become '
          '-Inf (REP 117 "too close"). 0 uses the model\'s own minimum.', runtime=True,
          range=(0.0, MAX_METRES)),
    _spec('max_depth', 0.0, 'Farthest depth in metres that is reported; farther pixels become '
          '+Inf (REP 117 "out of range"). 0 uses the model\'s own maximum.', runtime=True,
          range=(0.0, MAX_METRES)),
    _spec('out_of_range', 'rep117', 'How depth outside [min_depth, max_depth] is written: rep117 '
          '(-Inf too close, +Inf too far, NaN invalid) or nan (NaN for all three).',
          runtime=True, choices=OUT_OF_RANGE_MODES),
    # Point cloud (run time).
    _spec('points_rgb', True, 'Add the packed rgb field of the input image to the point cloud '
          '(xyzrgb; false: xyz).', runtime=True),
    _spec('points_stride', 1, 'Decimation of the organized cloud: every N-th pixel in both '
          'directions ((H / N) x (W / N) points).', runtime=True, range=(1, 64)),
    _spec('points_max_depth', 0.0, 'Farthest point in metres put into the cloud (farther points '
          'are NaN); 0 uses max_depth.', runtime=True, range=(0.0, MAX_METRES)),
    # Colourised depth (run time).
    _spec('colormap', DEFAULT_COLORMAP, 'OpenCV colour map of depth/colorized.', runtime=True,
          choices=COLORMAPS),
    _spec('colorize_range', 'fixed', 'Colour range of depth/colorized: fixed ([min_depth, '
          'max_depth], stable colours) or auto (2nd to 98th percentile of each frame).',
          runtime=True, choices=COLORIZE_RANGES),
    # Header and intrinsics (run time).
    _spec('frame_id', '', 'Frame id written into every output header; empty keeps the input '
          'image\'s (optical) frame id.', runtime=True),
    _spec('fx', 0.0, 'Focal length x in pixels of the input image, used only without a valid '
          'camera_info; 0 = unset.', runtime=True, range=(0.0, 1e6)),
    _spec('fy', 0.0, 'Focal length y in pixels; 0 = same as fx.', runtime=True, range=(0.0, 1e6)),
    _spec('cx', 0.0, 'Principal point x in pixels; 0 = image centre ((width - 1) / 2).',
          runtime=True, range=(0.0, 1e6)),
    _spec('cy', 0.0, 'Principal point y in pixels; 0 = image centre ((height - 1) / 2).',
          runtime=True, range=(0.0, 1e6)),
    _spec('horizontal_fov', 0.0, 'Horizontal field of view in degrees, used without camera_info '
          'and without fx (square pixels, centred principal point); 0 = unset.', runtime=True,
          range=(0.0, 179.0)),
    # Confidence (issue 8): a model exported with `export --confidence`.
    _spec('publish_confidence', True, 'Publish depth/confidence (32FC1, 0 to 1, 1 = sure) beside '
          'the depth when the model has a confidence output (export --confidence).'),
    _spec('confidence_threshold', 0.0, 'Pixels whose confidence is below this are left out of '
          'points and scan_out (NaN); 0 keeps all. Needs a model with confidence.', runtime=True,
          range=(0.0, 1.0)),
    # Scale anchoring (issue 8).
    _spec('anchoring', 'off', 'Fit the metric scale to sparse measurements: off, sparse_depth '
          '(subscribes sparse_depth: 32FC1 m or 16UC1 mm, registered to the camera, full size '
          'or a coarse zone grid such as 8x8) or scan (subscribes scan: LaserScan, placed by '
          'scan_extrinsic).', choices=ANCHORING_MODES),
    _spec('anchoring_method', 'trimmed', 'Robust scale fit on the log ratios measured / '
          'predicted: ransac, trimmed or median.', runtime=True, choices=ANCHORING_METHODS),
    _spec('anchoring_min_samples', 8, 'Fewest samples (and inliers) a frame needs for a scale '
          'fit; fewer keep the previous scale.', runtime=True, range=(1, 1000000)),
    _spec('anchoring_inlier_threshold', 0.2, 'A sample agrees with the scale when |log(measured '
          '/ (scale * predicted))| is at most this (0.1: about 10 %).', runtime=True,
          range=(0.001, 2.0)),
    _spec('anchoring_smoothing', 0.3, 'Weight of each new frame\'s scale in the moving average '
          '(log space; 1 = no smoothing). Jumps confirmed by 2 frames reset it.', runtime=True,
          range=(0.01, 1.0)),
    _spec('anchoring_max_age', 0.5, 'Largest stamp difference in seconds between an image and '
          'the sparse_depth or scan message used for it; 0 = use the latest whatever its age.',
          runtime=True, range=(0.0, 3600.0)),
    _spec('scan_extrinsic', [0.0, 0.0, 0.0, 0.0, 0.0, 0.0], 'Pose of the scan frame in the '
          'camera body frame (x forward, y left, z up, origin at the optical centre) as [x, y, '
          'z, roll, pitch, yaw] in metres and radians: what tf2_echo <camera frame> <scan frame> '
          'prints. tf2 is not used (no PyPI wheel): this is a static extrinsic.', runtime=True),
    # Focal-length compensation (issue 8).
    _spec('focal_compensation', False, 'Multiply the depth by f_camera / f_training (both at the '
          'network input) when the camera differs from the training camera. Needs intrinsics.',
          runtime=True),
    _spec('training_camera', '', 'Training camera for focal_compensation: empty = from the model '
          'metadata (export --training-camera), or nyu, kitti, sevenscenes; training_fx wins.',
          runtime=True, choices=TRAINING_CAMERA_NAMES),
    _spec('training_fx', 0.0, 'Focal length in pixels of the training camera at training_width '
          'x training_height (square pixels); 0 = unset.', runtime=True, range=(0.0, 1e6)),
    _spec('training_width', 0, 'Image width in pixels that training_fx refers to.', runtime=True,
          range=(0, 100000)),
    _spec('training_height', 0, 'Image height in pixels that training_fx refers to.',
          runtime=True, range=(0, 100000)),
    # LaserScan output (issue 8), like depthimage_to_laserscan.
    _spec('publish_scan', False, 'Publish scan_out (sensor_msgs/LaserScan) from the rows around '
          'the optical centre of the depth, as depthimage_to_laserscan does. Needs intrinsics.'),
    _spec('scan_height', 1, 'Rows around the optical centre compressed into the scan (closest '
          'range per angle).', runtime=True, range=(1, 10000)),
    _spec('scan_range_min', 0.45, 'range_min of scan_out in metres; closer is -Inf.',
          runtime=True, range=(0.0, MAX_METRES)),
    _spec('scan_range_max', 10.0, 'range_max of scan_out in metres; farther is +Inf.',
          runtime=True, range=(0.0, MAX_METRES)),
    _spec('scan_frame_id', 'camera_depth_frame', 'Frame id of scan_out: a frame at the camera '
          'with x forward and z up (not the optical frame), as depthimage_to_laserscan\'s '
          'output_frame.', runtime=True),
    # Temporal filter (issue 8).
    _spec('temporal_filter', False, 'Per-pixel gated moving average of inverse depth: less '
          'flicker on a static camera, motion followed at once. Reset on a resolution change.',
          runtime=True),
    _spec('temporal_alpha', 0.3, 'Weight of the new frame in the temporal filter (1 = off).',
          runtime=True, range=(0.01, 1.0)),
    _spec('temporal_noise', 0.03, 'Expected relative frame-to-frame noise of the model; changes '
          'beyond 3x this are motion and are followed at once.', runtime=True,
          range=(0.001, 1.0)),
)

LIFECYCLE_PARAMETERS: tuple[ParameterSpec, ...] = (
    _spec('autostart', False, 'Lifecycle node only: configure and activate by itself at start '
          '(without a lifecycle manager).'),
)

SPECS: dict[str, ParameterSpec] = {spec.name: spec for spec in PARAMETERS + LIFECYCLE_PARAMETERS}


@dataclass(frozen=True)
class NodeSettings:
    """The validated values of every parameter in `PARAMETERS` (one immutable snapshot)."""

    model_path: str
    backend: str
    num_threads: int
    publisher_reliability: str
    publisher_depth: int
    publish_depth_raw: bool
    publish_points: bool
    publish_colorized: bool
    diagnostics_period: float
    min_depth: float
    max_depth: float
    out_of_range: str
    points_rgb: bool
    points_stride: int
    points_max_depth: float
    colormap: str
    colorize_range: str
    frame_id: str
    fx: float
    fy: float
    cx: float
    cy: float
    horizontal_fov: float
    publish_confidence: bool
    confidence_threshold: float
    anchoring: str
    anchoring_method: str
    anchoring_min_samples: int
    anchoring_inlier_threshold: float
    anchoring_smoothing: float
    anchoring_max_age: float
    scan_extrinsic: tuple[float, ...]
    focal_compensation: bool
    training_camera: str
    training_fx: float
    training_width: int
    training_height: int
    publish_scan: bool
    scan_height: int
    scan_range_min: float
    scan_range_max: float
    scan_frame_id: str
    temporal_filter: bool
    temporal_alpha: float
    temporal_noise: float

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> NodeSettings:
        """Build and validate; ValueError naming the parameter and what it accepts."""
        known = {f.name for f in fields(cls)}
        merged = {spec.name: spec.default for spec in PARAMETERS}
        merged.update({k: v for k, v in values.items() if k in known})
        for name in known:
            spec = SPECS[name]
            value = merged[name]
            if isinstance(spec.default, float) and isinstance(value, int) \
                    and not isinstance(value, bool):
                value = merged[name] = float(value)
            if isinstance(spec.default, list):  # a double array (rclpy gives array.array)
                value = merged[name] = _float_tuple(name, value, len(spec.default))
                continue
            if type(value) is not type(spec.default):
                raise ValueError(f'parameter {name} must be {type(spec.default).__name__}, got '
                                 f'{value!r}')
            if spec.choices is not None and value not in spec.choices:
                raise ValueError(f'parameter {name} is {value!r}; expected one of '
                                 f'{list(spec.choices)}')
            if spec.range is not None and not (spec.range[0] <= value <= spec.range[1]):
                raise ValueError(f'parameter {name} is {value}; expected {spec.range[0]:g} to '
                                 f'{spec.range[1]:g}')
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f'parameter {name} must be finite, got {value}')
        settings = cls(**merged)
        settings._check_relations()
        return settings

    def _check_relations(self) -> None:
        if self.min_depth > 0 and self.max_depth > 0 and self.min_depth >= self.max_depth:
            raise ValueError(f'min_depth ({self.min_depth}) must be below max_depth '
                             f'({self.max_depth})')
        if self.fy > 0 and self.fx <= 0:
            raise ValueError('fy is set but fx is not: set fx (and optionally fy)')
        if self.fx > 0 and self.horizontal_fov > 0:
            raise ValueError('set either fx/fy or horizontal_fov, not both')
        if self.scan_range_min >= self.scan_range_max:
            raise ValueError(f'scan_range_min ({self.scan_range_min}) must be below '
                             f'scan_range_max ({self.scan_range_max})')
        if self.training_fx > 0 and (self.training_width <= 0 or self.training_height <= 0):
            raise ValueError('training_fx is set: set training_width and training_height too '
                             '(the image size the focal length refers to)')

    def depth_range(self, model_min: float, model_max: float) -> tuple[float, float]:
        """(min, max) metres reported, parameters first, then the model's range; ValueError if
        they cross."""
        low = self.min_depth if self.min_depth > 0 else float(model_min)
        high = self.max_depth if self.max_depth > 0 else float(model_max)
        if not low < high:
            raise ValueError(f'depth range [{low}, {high}] is empty: min_depth / max_depth '
                             f'against the model range [{model_min}, {model_max}]')
        return low, high

    @property
    def has_intrinsics_parameters(self) -> bool:
        return self.fx > 0 or self.horizontal_fov > 0


def _float_tuple(name: str, value: Any, length: int) -> tuple[float, ...]:
    """A double-array parameter as a tuple of `length` finite floats (integers widened)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, '__len__'):
        raise ValueError(f'parameter {name} must be a list of {length} numbers, got {value!r}')
    values = list(value)
    if len(values) != length or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ValueError(f'parameter {name} must be a list of {length} numbers, got {values!r}')
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f'parameter {name} must be finite, got {values!r}')
    return tuple(float(v) for v in values)


def runtime_names() -> tuple[str, ...]:
    return tuple(spec.name for spec in PARAMETERS if spec.runtime)


__all__ = ['LIFECYCLE_PARAMETERS', 'NodeSettings', 'PARAMETERS', 'ParameterSpec', 'SPECS',
           'runtime_names']
