"""Settings of the per-frame pipeline: every parameter declared once, in a group, with its default.

Each group is a frozen dataclass whose fields' metadata carry the description, the range or
allowed values and whether the value may change while the node runs (`runtime`); the ROS adapter
generates its descriptors, validation and YAML from them (`depth_estimation.ros.parameters`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
import math
from typing import Any, Mapping, Optional, Sequence, Union

from depth_estimation.artifacts import default_model_path
from depth_estimation.inference import BACKENDS
from depth_estimation.pipeline.anchoring import METHODS as ANCHORING_METHODS
from depth_estimation.pipeline.focal import TRAINING_CAMERAS

Value = Union[bool, int, float, str, list]

OUT_OF_RANGE_MODES = ('rep117', 'nan')
ANCHORING_MODES = ('off', 'sparse_depth', 'scan')
TRAINING_CAMERA_NAMES = ('',) + tuple(sorted(TRAINING_CAMERAS))
MAX_METRES = 1000.0


@dataclass(frozen=True)
class ParameterSpec:
    """One parameter as the ROS adapter declares it: default, description, accepted values."""

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


def parameter(default: Any, description: str, *, runtime: bool = False,
              limits: Optional[tuple[float, float]] = None,
              choices: Optional[Sequence[str]] = None) -> Any:
    """A dataclass field that is also a parameter (its metadata makes the ParameterSpec)."""
    return field(default=default, metadata={'description': description, 'runtime': runtime,
                                            'range': limits, 'choices': choices})


def parameter_specs(*groups: type) -> tuple[ParameterSpec, ...]:
    """The ParameterSpecs of the fields of `groups`, in order (tuples become lists for ROS)."""
    return tuple(ParameterSpec(item.name, list(item.default) if isinstance(item.default, tuple)
                               else item.default, **item.metadata)
                 for group in groups for item in fields(group))


def _checked(name: str, value: Any, default: Any, metadata: Mapping[str, Any]) -> Any:
    if isinstance(default, tuple):  # a double array (rclpy gives array.array)
        return _float_tuple(name, value, len(default))
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not type(default):
        raise ValueError(f'parameter {name} must be {type(default).__name__}, got {value!r}')
    choices, limits = metadata['choices'], metadata['range']
    if choices is not None and value not in choices:
        raise ValueError(f'parameter {name} is {value!r}; expected one of {list(choices)}')
    if limits is not None and not (limits[0] <= value <= limits[1]):
        raise ValueError(f'parameter {name} is {value}; expected {limits[0]:g} to '
                         f'{limits[1]:g}')
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f'parameter {name} must be finite, got {value}')
    return value


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


@dataclass(frozen=True)
class ModelSettings:
    """Model (configure)."""

    model_path: str = parameter('', 'Model artifact: .onnx with its .onnx.json metadata beside '
                                'it, or a torch checkpoint; loaded (and checked) at configure. '
                                'Empty: the default model shipped with the package '
                                '(`depth-estimation models --default` prints its path).')
    backend: str = parameter('auto', 'Inference backend; auto picks it from the model file '
                             'suffix.', choices=BACKENDS)
    num_threads: int = parameter(0, 'CPU threads of the backend; 0 lets the backend choose.',
                                 limits=(0, 256))


@dataclass(frozen=True)
class DepthRangeSettings:
    """Depth range (run time)."""

    min_depth: float = parameter(0.0, 'Nearest depth in metres that is reported; nearer pixels '
                                 'become -Inf (REP 117 "too close"). 0 uses the model\'s own '
                                 'minimum.', runtime=True, limits=(0.0, MAX_METRES))
    max_depth: float = parameter(0.0, 'Farthest depth in metres that is reported; farther pixels '
                                 'become +Inf (REP 117 "out of range"). 0 uses the model\'s own '
                                 'maximum.', runtime=True, limits=(0.0, MAX_METRES))
    out_of_range: str = parameter('rep117', 'How depth outside [min_depth, max_depth] is '
                                  'written: rep117 (-Inf too close, +Inf too far, NaN invalid) '
                                  'or nan (NaN for all three).', runtime=True,
                                  choices=OUT_OF_RANGE_MODES)


@dataclass(frozen=True)
class CloudSettings:
    """Point cloud (whether it exists: configure; the rest: run time)."""

    publish_points: bool = parameter(True, 'Publish the organized PointCloud2 on points (needs '
                                     'intrinsics: camera_info or the fx/fy/cx/cy/horizontal_fov '
                                     'parameters).')
    points_rgb: bool = parameter(True, 'Add the packed rgb field of the input image to the point '
                                 'cloud (xyzrgb; false: xyz).', runtime=True)
    points_stride: int = parameter(1, 'Decimation of the organized cloud: every N-th pixel in '
                                   'both directions ((H / N) x (W / N) points).', runtime=True,
                                   limits=(1, 64))
    points_max_depth: float = parameter(0.0, 'Farthest point in metres put into the cloud '
                                        '(farther points are NaN); 0 uses max_depth.',
                                        runtime=True, limits=(0.0, MAX_METRES))


@dataclass(frozen=True)
class IntrinsicsSettings:
    """Intrinsics without camera_info (run time)."""

    fx: float = parameter(0.0, 'Focal length x in pixels of the input image, used only without a '
                          'valid camera_info; 0 = unset.', runtime=True, limits=(0.0, 1e6))
    fy: float = parameter(0.0, 'Focal length y in pixels; 0 = same as fx.', runtime=True,
                          limits=(0.0, 1e6))
    cx: float = parameter(0.0, 'Principal point x in pixels; 0 = image centre ((width - 1) / '
                          '2).', runtime=True, limits=(0.0, 1e6))
    cy: float = parameter(0.0, 'Principal point y in pixels; 0 = image centre ((height - 1) / '
                          '2).', runtime=True, limits=(0.0, 1e6))
    horizontal_fov: float = parameter(
        0.0, 'Horizontal field of view in degrees, used without camera_info and without fx '
        '(square pixels, centred principal point); 0 = unset.', runtime=True, limits=(0.0, 179.0))


@dataclass(frozen=True)
class ConfidenceSettings:
    """Confidence of a model exported with `export --confidence`."""

    publish_confidence: bool = parameter(True, 'Publish depth/confidence (32FC1, 0 to 1, 1 = '
                                         'sure) beside the depth when the model has a confidence '
                                         'output (export --confidence).')
    confidence_threshold: float = parameter(
        0.0, 'Pixels whose confidence is below this are left out of points and scan_out (NaN); 0 '
        'keeps all. Needs a model with confidence.', runtime=True, limits=(0.0, 1.0))


@dataclass(frozen=True)
class AnchoringSettings:
    """Scale anchoring to sparse measurements (which input: configure; the rest: run time)."""

    anchoring: str = parameter('off', 'Fit the metric scale to sparse measurements: off, '
                               'sparse_depth (subscribes sparse_depth: 32FC1 m or 16UC1 mm, '
                               'registered to the camera, full size or a coarse zone grid such '
                               'as 8x8) or scan (subscribes scan: LaserScan, placed by '
                               'scan_extrinsic).', choices=ANCHORING_MODES)
    anchoring_method: str = parameter('trimmed', 'Robust scale fit on the log ratios measured / '
                                      'predicted: ransac, trimmed or median.', runtime=True,
                                      choices=ANCHORING_METHODS)
    anchoring_min_samples: int = parameter(8, 'Fewest samples (and inliers) a frame needs for a '
                                           'scale fit; fewer keep the previous scale.',
                                           runtime=True, limits=(1, 1000000))
    anchoring_inlier_threshold: float = parameter(
        0.2, 'A sample agrees with the scale when |log(measured / (scale * predicted))| is at '
        'most this (0.1: about 10 %).', runtime=True, limits=(0.001, 2.0))
    anchoring_smoothing: float = parameter(
        0.3, 'Weight of each new frame\'s scale in the moving average (log space; 1 = no '
        'smoothing). Jumps confirmed by 2 frames reset it.', runtime=True, limits=(0.01, 1.0))
    anchoring_max_age: float = parameter(
        0.5, 'Largest stamp difference in seconds between an image and the sparse_depth or scan '
        'message used for it; 0 = use the latest whatever its age.', runtime=True,
        limits=(0.0, 3600.0))
    scan_extrinsic: tuple[float, ...] = parameter(
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0), 'Pose of the scan frame in the camera body frame (x '
        'forward, y left, z up, origin at the optical centre) as [x, y, z, roll, pitch, yaw] in '
        'metres and radians: what tf2_echo <camera frame> <scan frame> prints. tf2 is not used '
        '(no PyPI wheel): this is a static extrinsic.', runtime=True)


@dataclass(frozen=True)
class FocalSettings:
    """Focal-length compensation (run time)."""

    focal_compensation: bool = parameter(
        False, 'Multiply the depth by f_camera / f_training (both at the network input) when the '
        'camera differs from the training camera. Needs intrinsics.', runtime=True)
    training_camera: str = parameter('', 'Training camera for focal_compensation: empty = from '
                                     'the model metadata (export --training-camera), or nyu, '
                                     'kitti, sevenscenes; training_fx wins.', runtime=True,
                                     choices=TRAINING_CAMERA_NAMES)
    training_fx: float = parameter(0.0, 'Focal length in pixels of the training camera at '
                                   'training_width x training_height (square pixels); 0 = '
                                   'unset.', runtime=True, limits=(0.0, 1e6))
    training_width: int = parameter(0, 'Image width in pixels that training_fx refers to.',
                                    runtime=True, limits=(0, 100000))
    training_height: int = parameter(0, 'Image height in pixels that training_fx refers to.',
                                     runtime=True, limits=(0, 100000))


@dataclass(frozen=True)
class ScanSettings:
    """LaserScan output, like depthimage_to_laserscan (whether it exists: configure)."""

    publish_scan: bool = parameter(False, 'Publish scan_out (sensor_msgs/LaserScan) from the rows '
                                   'around the optical centre of the depth, as '
                                   'depthimage_to_laserscan does. Needs intrinsics.')
    scan_height: int = parameter(1, 'Rows around the optical centre compressed into the scan '
                                 '(closest range per angle).', runtime=True, limits=(1, 10000))
    scan_range_min: float = parameter(0.45, 'range_min of scan_out in metres; closer is -Inf.',
                                      runtime=True, limits=(0.0, MAX_METRES))
    scan_range_max: float = parameter(10.0, 'range_max of scan_out in metres; farther is +Inf.',
                                      runtime=True, limits=(0.0, MAX_METRES))
    scan_frame_id: str = parameter('camera_depth_frame', 'Frame id of scan_out: a frame at the '
                                   'camera with x forward and z up (not the optical frame), as '
                                   'depthimage_to_laserscan\'s output_frame.', runtime=True)


@dataclass(frozen=True)
class TemporalSettings:
    """Temporal filter (run time)."""

    temporal_filter: bool = parameter(False, 'Per-pixel gated moving average of inverse depth: '
                                      'less flicker on a static camera, motion followed at once. '
                                      'Reset on a resolution change.', runtime=True)
    temporal_alpha: float = parameter(0.3, 'Weight of the new frame in the temporal filter (1 = '
                                      'off).', runtime=True, limits=(0.01, 1.0))
    temporal_noise: float = parameter(0.03, 'Expected relative frame-to-frame noise of the model; '
                                      'changes beyond 3x this are motion and are followed at '
                                      'once.', runtime=True, limits=(0.001, 1.0))


# The groups the pipeline reads, in the order they are documented.
PIPELINE_GROUPS = (ModelSettings, DepthRangeSettings, CloudSettings, IntrinsicsSettings,
                   ConfidenceSettings, AnchoringSettings, FocalSettings, ScanSettings,
                   TemporalSettings)


@dataclass(frozen=True)
class PipelineSettings(TemporalSettings, ScanSettings, FocalSettings, AnchoringSettings,
                       ConfidenceSettings, IntrinsicsSettings, CloudSettings, DepthRangeSettings,
                       ModelSettings):
    """Every pipeline group in one flat immutable snapshot: `settings.fx`, `settings.anchoring`."""

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> Any:
        """Build and validate; ValueError naming the parameter and what it accepts."""
        merged = {item.name: _checked(item.name, values.get(item.name, item.default),
                                      item.default, item.metadata) for item in fields(cls)}
        if not merged['model_path']:  # the default shipped model ('' when none is installed)
            merged['model_path'] = str(default_model_path(missing_ok=True) or '')
        settings = cls(**merged)
        settings.check_relations()
        return settings

    def check_relations(self) -> None:
        """ValueError when parameters contradict each other."""
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
        """(min, max) metres reported: parameters first, then the model's; ValueError if empty."""
        low = self.min_depth if self.min_depth > 0 else float(model_min)
        high = self.max_depth if self.max_depth > 0 else float(model_max)
        if not low < high:
            raise ValueError(f'depth range [{low}, {high}] is empty: min_depth / max_depth '
                             f'against the model range [{model_min}, {model_max}]')
        return low, high
