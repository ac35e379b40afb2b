"""The node's parameters: the pipeline's setting groups, the node's own, and their ROS form.

From the settings fields come `PARAMETERS`, the rclpy ParameterDescriptors, the validation
(`NodeSettings.from_values`) and `config/depth_estimation.yaml`, which
`python -m depth_estimation.ros.parameters` rewrites (a test fails when it is stale).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
import sys
import textwrap
from typing import Any, Callable, Optional, Sequence

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.exceptions import ParameterException
from rclpy.parameter import Parameter
import yaml

from depth_estimation.pipeline import ModelLoadError
from depth_estimation.pipeline.settings import (parameter, parameter_specs, ParameterSpec,
                                                PIPELINE_GROUPS, PipelineSettings)
from depth_estimation.visualize import COLORMAPS, DEFAULT_COLORMAP

RELIABILITIES = ('reliable', 'best_effort')
IMAGE_TRANSPORTS = ('raw', 'compressed')
COLORIZE_RANGES = ('fixed', 'auto')
YAML_HEADER = '''\
# Parameters of depth_estimation_node and depth_estimation_lifecycle_node (one block, any
# namespace), each with its default; `ros2 param describe` gives its range. Generated from the
# settings dataclasses by `python -m depth_estimation.ros.parameters`: edit those, not this file.
#   depth_estimation_node --ros-args --params-file config/depth_estimation.yaml \\
#       -p model_path:=/path/to/model.onnx
# "run time": may be changed with `ros2 param set` while the node runs; the others only at start
# (or, for the lifecycle node, while it is unconfigured).
'''
PARAMS_FILE = Path(__file__).resolve().parents[2] / 'config' / 'depth_estimation.yaml'


@dataclass(frozen=True)
class InputSettings:
    """Image input (configure)."""

    image_transport: str = parameter(
        'raw', 'How images arrive (image_transport names): raw (sensor_msgs/Image on image) or '
        'compressed (sensor_msgs/CompressedImage, JPEG or PNG, on the resolved image topic + '
        '/compressed).', choices=IMAGE_TRANSPORTS)


@dataclass(frozen=True)
class OutputSettings:
    """Outputs and QoS (configure; frame_id: run time)."""

    publisher_reliability: str = parameter(
        'reliable', 'QoS reliability of every output: reliable (matches reliable and best-effort '
        'subscribers; RViz default) or best_effort.', choices=RELIABILITIES)
    publisher_depth: int = parameter(1, 'QoS history depth (keep last N) of every output.',
                                     limits=(1, 1000))
    publish_depth_raw: bool = parameter(False, 'Also publish depth/image_raw: 16UC1 millimetres, '
                                        '0 = invalid or out of range (REP 118 raw form).')
    publish_colorized: bool = parameter(False, 'Publish depth/colorized: an rgb8 colour-mapped '
                                        'depth image for people (never a depth topic).')
    diagnostics_period: float = parameter(1.0, 'Seconds between '
                                          'diagnostic_msgs/DiagnosticArray messages on '
                                          '/diagnostics.', limits=(0.1, 60.0))
    frame_id: str = parameter('', 'Frame id written into every output header; empty keeps the '
                              'input image\'s (optical) frame id.', runtime=True)


@dataclass(frozen=True)
class ColorizeSettings:
    """Colourised depth (run time)."""

    colormap: str = parameter(DEFAULT_COLORMAP, 'OpenCV colour map of depth/colorized.',
                              runtime=True, choices=COLORMAPS)
    colorize_range: str = parameter('fixed', 'Colour range of depth/colorized: fixed '
                                    '([min_depth, max_depth], stable colours) or auto (2nd to '
                                    '98th percentile of each frame).', runtime=True,
                                    choices=COLORIZE_RANGES)


@dataclass(frozen=True)
class LifecycleSettings:
    """Lifecycle."""

    autostart: bool = parameter(False, 'Configure and activate at start, without a lifecycle '
                                'manager (depth_estimation_node always does).')


@dataclass(frozen=True)
class NodeSettings(PipelineSettings, ColorizeSettings, OutputSettings, InputSettings):
    """The validated values of every parameter in `PARAMETERS` (one immutable snapshot)."""


NODE_GROUPS = (PIPELINE_GROUPS[:1] + (InputSettings, OutputSettings) + PIPELINE_GROUPS[1:]
               + (ColorizeSettings,))
PARAMETERS: tuple[ParameterSpec, ...] = parameter_specs(*NODE_GROUPS)
LIFECYCLE_PARAMETERS: tuple[ParameterSpec, ...] = parameter_specs(LifecycleSettings)
SPECS: dict[str, ParameterSpec] = {spec.name: spec for spec in PARAMETERS + LIFECYCLE_PARAMETERS}


def runtime_names() -> tuple[str, ...]:
    return tuple(spec.name for spec in PARAMETERS if spec.runtime)


def descriptor(spec: ParameterSpec) -> ParameterDescriptor:
    """The rclpy descriptor of a parameter: description, constraints, numeric range."""
    result = ParameterDescriptor(name=spec.name, description=spec.description,
                                 additional_constraints=spec.constraints)
    if spec.range is not None and isinstance(spec.default, float):
        result.floating_point_range = [FloatingPointRange(
            from_value=float(spec.range[0]), to_value=float(spec.range[1]), step=0.0)]
    elif spec.range is not None:  # an integer (no bool or string has a range)
        result.integer_range = [IntegerRange(
            from_value=int(spec.range[0]), to_value=int(spec.range[1]), step=1)]
    return result


def widen_overrides(overrides: dict[str, Parameter], specs: Sequence[ParameterSpec]) -> None:
    """Give command-line and YAML values the declared types before they are declared.

    `-p fx:=500` arrives as an integer, a YAML `off` as false and `[0, 0, 1]` as integers; the
    declared double, string and double-array parameters would refuse them.
    """
    for spec in specs:
        override = overrides.get(spec.name)
        if override is None:
            continue
        if isinstance(spec.default, float) and override.type_ == Parameter.Type.INTEGER:
            overrides[spec.name] = Parameter(spec.name, value=float(override.value))
        if spec.choices is not None and 'off' in spec.choices \
                and override.type_ == Parameter.Type.BOOL and not override.value:
            overrides[spec.name] = Parameter(spec.name, value='off')
        if isinstance(spec.default, list) and override.type_ == Parameter.Type.INTEGER_ARRAY:
            overrides[spec.name] = Parameter(spec.name, value=[float(v) for v in override.value])


class NodeParameters:
    """Declares every parameter on a node and keeps its validated `settings` snapshot current.

    A change is refused when it may not change now (`configured()` and not a run-time parameter)
    or when the new settings are invalid or `check` (what the loaded model can do) refuses them.
    """

    def __init__(self, node: Any, check: Callable[[NodeSettings], None],
                 configured: Callable[[], bool]) -> None:
        self._node, self._check, self._configured = node, check, configured
        specs = PARAMETERS + LIFECYCLE_PARAMETERS
        widen_overrides(node._parameter_overrides, specs)
        try:
            for spec in specs:
                node.declare_parameter(spec.name, spec.default, descriptor(spec))
        except ParameterException as error:
            raise ModelLoadError(f'invalid parameter: {error}') from error
        self.settings = self.validated()
        node.add_on_set_parameters_callback(self._on_set)
        node.add_post_set_parameters_callback(self._after_set)

    def validated(self, changes: Optional[dict[str, Any]] = None) -> NodeSettings:
        """The node's current values (with `changes`) as NodeSettings; ModelLoadError if bad."""
        values = {spec.name: self._node.get_parameter(spec.name).value for spec in PARAMETERS}
        values.update(changes or {})
        try:
            return NodeSettings.from_values(values)
        except ValueError as error:
            raise ModelLoadError(str(error)) from error

    def _on_set(self, parameters: list[Parameter]) -> SetParametersResult:
        changes = {}
        for changed in parameters:
            spec = SPECS.get(changed.name)
            if spec is None:
                continue  # not ours (use_sim_time, QoS overrides)
            if not spec.runtime and self._configured():
                return SetParametersResult(successful=False, reason=(
                    f'{changed.name} changes only while the node is unconfigured (lifecycle: '
                    'deactivate and clean up first; plain node: restart it)'))
            changes[changed.name] = changed.value
        try:
            if changes:
                settings = self.validated(changes)
                if self._configured():
                    self._check(settings)
        except (ModelLoadError, ValueError) as error:
            return SetParametersResult(successful=False, reason=str(error))
        return SetParametersResult(successful=True)

    def _after_set(self, parameters: list[Parameter]) -> None:
        self.settings = self.validated()  # one snapshot, swapped atomically
        names = ', '.join(f'{p.name}={p.value!r}' for p in parameters if p.name in SPECS)
        if names:
            self._node.get_logger().info(f'parameters changed: {names}')


def _yaml_value(value: Any) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(_yaml_value(v) for v in value) + ']'
    if isinstance(value, str) and (value == '' or yaml.safe_load(value) != value):
        return f'"{value}"'  # "" and words YAML would read as something else ("off")
    return repr(value) if isinstance(value, float) else str(value)


def parameters_yaml(groups: Optional[Sequence[type]] = None) -> str:
    """The text of config/depth_estimation.yaml: every parameter with its default, commented."""
    lines = YAML_HEADER.splitlines() + ['/**/depth_estimation_node:', '  ros__parameters:']
    for group in groups or NODE_GROUPS + (LifecycleSettings,):
        lines.append(f'    # --- {group.__doc__.rstrip(".")}')
        for spec in parameter_specs(group):
            text = spec.description + (' [run time]' if spec.runtime else '')
            lines += textwrap.wrap(text, 99, initial_indent='    # ',
                                   subsequent_indent='    # ', break_on_hyphens=False)
            lines.append(f'    {spec.name}: {_yaml_value(spec.default)}')
    return '\n'.join(lines) + '\n'


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Rewrite config/depth_estimation.yaml (or the path given) from the settings dataclasses."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    path = Path(arguments[0]) if arguments else PARAMS_FILE
    path.write_text(parameters_yaml(), encoding='utf-8')
    print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
