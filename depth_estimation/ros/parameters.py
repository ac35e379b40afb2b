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

from depth_estimation.inference import BACKENDS
from depth_estimation.visualize import COLORMAPS, DEFAULT_COLORMAP

Value = Union[bool, int, float, str]

RELIABILITIES = ('reliable', 'best_effort')
OUT_OF_RANGE_MODES = ('rep117', 'nan')
COLORIZE_RANGES = ('fixed', 'auto')
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


def runtime_names() -> tuple[str, ...]:
    return tuple(spec.name for spec in PARAMETERS if spec.runtime)


__all__ = ['LIFECYCLE_PARAMETERS', 'NodeSettings', 'PARAMETERS', 'ParameterSpec', 'SPECS',
           'runtime_names']
