"""ROS 2 node: camera Image (+ CameraInfo) in; metric depth, depth CameraInfo, PointCloud2 out.

Two ways to run the same code:
- `DepthEstimationNode` (console script `depth_estimation_node`): a plain node that loads the model
  and starts at construction, exiting with a clear error if it cannot;
- `DepthEstimationLifecycleNode` (`depth_estimation_lifecycle_node`): a managed node.
  configure: validate parameters, load the model (refused cleanly on a missing or corrupt
  artifact, node stays unconfigured), one warm-up inference, create publishers and diagnostics;
  activate: subscribe and start the worker; deactivate: unsubscribe and stop it; cleanup: destroy
  publishers and close the model. Parameter `autostart` configures and activates by itself.

Topics (relative, so namespaces and remaps work):
- in: `image` (rgb8, bgr8, rgba8, bgra8, mono8) and `camera_info`, sensor-data QoS (best effort,
  as camera drivers publish; a reliable publisher matches it too);
- out (QoS from `publisher_reliability` / `publisher_depth`, default reliable, keep last 1):
  `depth/image` (32FC1 metres; NaN invalid, -Inf / +Inf outside [min_depth, max_depth] as REP 117
  says), `depth/camera_info` (depth header; K, P scaled to the depth size), `points` (organized
  PointCloud2, xyz or xyzrgb, `points_stride` decimation), optional `depth/image_raw` (16UC1 mm)
  and `depth/colorized` (rgb8 for people); `/diagnostics` (diagnostic_msgs).
- issue 8 (all optional): `depth/confidence` (32FC1, 0..1) from a model exported with
  `--confidence`, `confidence_threshold` dropping unsure pixels from `points` and `scan_out`;
  scale anchoring from `sparse_depth` (Image) or `scan` (LaserScan) in; focal-length compensation;
  `scan_out` (LaserScan) out; a temporal filter. The per-frame corrections live in
  `refinement.py` (plain numpy), the products in `outputs.py`.

Intrinsics: camera_info P (rectified), else K; without camera_info, the fx/fy/cx/cy or
horizontal_fov parameters (throttled warning); camera_info without a focal length is rejected.

Only the newest frame is processed: callbacks store the latest image and one worker thread runs the
model and the output stages, so a slow model drops frames (counted) instead of building a queue and
latency stays bounded by one inference. Every bad input is logged (throttled per problem), counted
and skipped; the next good frame is answered.
"""

from __future__ import annotations

from collections import deque
import signal
import sys
import threading
import time
from typing import Any, Callable, Optional, Sequence

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
import rclpy.logging
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, Image, LaserScan
from std_msgs.msg import Header

from depth_estimation.inference import open_backend
from depth_estimation.ros.conversions import (camera_info_from_intrinsics,
                                              camera_info_intrinsics, image_to_rgb, ImageError,
                                              scale_camera_info, scan_ranges,
                                              sparse_depth_from_image)
from depth_estimation.ros.diagnostics import diagnostic_array, model_identity
from depth_estimation.ros.outputs import DepthFrame, OUTPUT_STAGES, OutputStage
from depth_estimation.ros.parameters import (LIFECYCLE_PARAMETERS, NodeSettings, PARAMETERS,
                                             ParameterSpec, SPECS)
from depth_estimation.ros.products import (apply_depth_range, intrinsics_from_matrices,
                                           intrinsics_from_parameters, size_fits)
from depth_estimation.ros.refinement import DepthRefiner, SparseSample
from depth_estimation.ros.stats import FrameStatistics, LogThrottle, OK, WARN

NODE_NAME = 'depth_estimation_node'
RELIABILITY = {'reliable': ReliabilityPolicy.RELIABLE,
               'best_effort': ReliabilityPolicy.BEST_EFFORT}
CAMERA_INFO_BUFFER = 10  # CameraInfo messages kept to match image stamps
WARN_THROTTLE_S = 5.0
WARM_UP_SIZE = (48, 64)  # (H, W) of the image of the configure-time test inference


class ModelLoadError(RuntimeError):
    """The node cannot be configured: bad parameters or a model that failed to load."""


def _stamp_key(msg: Any) -> tuple[int, int]:
    return (int(msg.header.stamp.sec), int(msg.header.stamp.nanosec))


def _stamp_seconds(msg: Any) -> float:
    return int(msg.header.stamp.sec) + int(msg.header.stamp.nanosec) * 1e-9


def _descriptor(spec: ParameterSpec) -> ParameterDescriptor:
    descriptor = ParameterDescriptor(name=spec.name, description=spec.description,
                                     additional_constraints=spec.constraints)
    if spec.range is not None and isinstance(spec.default, float):
        descriptor.floating_point_range = [FloatingPointRange(
            from_value=float(spec.range[0]), to_value=float(spec.range[1]), step=0.0)]
    elif spec.range is not None and isinstance(spec.default, int) \
            and not isinstance(spec.default, bool):
        descriptor.integer_range = [IntegerRange(
            from_value=int(spec.range[0]), to_value=int(spec.range[1]), step=1)]
    return descriptor


class DepthEstimationMixin:
    """The depth pipeline, shared by the plain and the lifecycle node (used with an rclpy Node).

    Public state for tests and tools: `settings` (the current NodeSettings), `statistics`
    (FrameStatistics), `backend` (None until configured), `stages` (enabled output stages).
    """

    def _init_depth_node(self, extra_specs: Sequence[ParameterSpec] = ()) -> None:
        self.statistics = FrameStatistics()
        self.backend: Optional[Any] = None
        self.stages: list[OutputStage] = []
        self._log_throttle = LogThrottle(WARN_THROTTLE_S)
        self._condition = threading.Condition()
        self._pending: Optional[tuple[Image, float]] = None  # newest image and its arrival time
        self._camera_infos: deque[CameraInfo] = deque(maxlen=CAMERA_INFO_BUFFER)
        self._stopping = False
        self._worker: Optional[threading.Thread] = None
        self._subscriptions: list[Any] = []
        self._diagnostics_publisher: Optional[Any] = None
        self._diagnostics_timer: Optional[Any] = None
        self._configured = False
        self._active = False
        self._expected_size: Optional[tuple[int, int]] = None  # (W, H) of the stream
        self._model_range = (0.0, 0.0)
        self._identity: dict[str, str] = {}
        self._capabilities: frozenset[str] = frozenset()  # what the model offers: 'confidence'
        self._refiner: Optional[DepthRefiner] = None
        self._sparse_sample: Optional[SparseSample] = None  # latest anchoring message
        self._declare_parameters(tuple(PARAMETERS) + tuple(extra_specs))
        self.settings = self._validated_settings()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.add_post_set_parameters_callback(self._after_set_parameters)

    # Parameters -------------------------------------------------------------------------------

    def _declare_parameters(self, specs: Sequence[ParameterSpec]) -> None:
        # `-p fx:=500` arrives as an integer; a double parameter refuses it, so widen it first.
        overrides = getattr(self, '_parameter_overrides', None)
        for spec in specs:
            override = overrides.get(spec.name) if isinstance(overrides, dict) else None
            if override is not None and isinstance(spec.default, float) \
                    and override.type_ == Parameter.Type.INTEGER:
                overrides[spec.name] = Parameter(spec.name, value=float(override.value))
            if override is not None and spec.choices is not None and 'off' in spec.choices \
                    and override.type_ == Parameter.Type.BOOL and not override.value:
                overrides[spec.name] = Parameter(spec.name, value='off')  # YAML read off as false
            if override is not None and isinstance(spec.default, list) \
                    and override.type_ == Parameter.Type.INTEGER_ARRAY:  # [0, 0, 1, ...]
                overrides[spec.name] = Parameter(spec.name,
                                                 value=[float(v) for v in override.value])
        try:
            for spec in specs:
                self.declare_parameter(spec.name, spec.default, _descriptor(spec))
        except ParameterException as error:
            raise ModelLoadError(f'invalid parameter: {error}') from error

    def _parameter_values(self) -> dict[str, Any]:
        return {spec.name: self.get_parameter(spec.name).value for spec in PARAMETERS}

    def _validated_settings(self, changes: Optional[dict[str, Any]] = None) -> NodeSettings:
        values = self._parameter_values()
        values.update(changes or {})
        try:
            return NodeSettings.from_values(values)
        except ValueError as error:
            raise ModelLoadError(str(error)) from error

    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        """Accept a change only if it may change now and the new settings are valid."""
        changes = {}
        for parameter in parameters:
            spec = SPECS.get(parameter.name)
            if spec is None:
                continue  # not ours (use_sim_time, QoS overrides)
            if not spec.runtime and self._configured:
                return SetParametersResult(successful=False, reason=(
                    f'{parameter.name} changes only while the node is unconfigured (lifecycle: '
                    'deactivate and clean up first; plain node: restart it)'))
            changes[parameter.name] = parameter.value
        if changes:
            try:
                settings = self._validated_settings(changes)
                if self._configured:
                    settings.depth_range(*self._model_range)
                    self._check_capabilities(settings)
            except (ModelLoadError, ValueError) as error:
                return SetParametersResult(successful=False, reason=str(error))
        return SetParametersResult(successful=True)

    def _after_set_parameters(self, parameters: list[Parameter]) -> None:
        self.settings = self._validated_settings()  # one snapshot, swapped atomically
        names = ', '.join(f'{p.name}={p.value!r}' for p in parameters if p.name in SPECS)
        if names:
            self.get_logger().info(f'parameters changed: {names}')

    def _check_capabilities(self, settings: NodeSettings) -> None:
        """ValueError when the settings ask for what the loaded model cannot give."""
        if settings.confidence_threshold > 0 and 'confidence' not in self._capabilities:
            raise ValueError('confidence_threshold needs a model with a confidence output '
                             '(export it with `depth-estimation export --confidence`, or use a '
                             'checkpoint with the torch backend)')
        if self._refiner is not None:
            self._refiner.check(settings)

    # Lifecycle steps (the plain node runs configure + activate at construction) ---------------

    def _configure(self) -> None:
        settings = self._validated_settings()
        if not settings.model_path:
            raise ModelLoadError('parameter model_path is required (e.g. --ros-args -p '
                                 'model_path:=/path/to/model.onnx)')
        try:
            backend = open_backend(settings.model_path, settings.backend,
                                   num_threads=settings.num_threads)
        except Exception as error:  # any failure to load is refused with its reason
            raise ModelLoadError(f'cannot load model {settings.model_path!r} with backend '
                                 f'{settings.backend!r}: {type(error).__name__}: {error}'
                                 ) from error
        try:
            model_range = (float(backend.metadata.min_depth), float(backend.metadata.max_depth))
            settings.depth_range(*model_range)
            warm_up = backend.infer(np.full(WARM_UP_SIZE + (3,), 127, np.uint8))  # (h, w) m
            if not np.isfinite(warm_up).any():
                raise ValueError('the model gives no finite depth on a grey test image')
            identity = model_identity(settings.model_path, backend.describe())
            self._capabilities = frozenset({'confidence'} if backend.has_confidence else ())
            self._refiner = DepthRefiner(backend.metadata.input_size,
                                         backend.metadata.extra.get('training_camera'))
            self._check_capabilities(settings)
        except Exception as error:
            backend.close()
            self._refiner = None
            raise ModelLoadError(f'model {settings.model_path!r} refused: '
                                 f'{type(error).__name__}: {error}') from error
        self.backend = backend
        self._model_range = model_range
        self._identity = identity
        self.settings = settings
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=settings.publisher_depth,
                         reliability=RELIABILITY[settings.publisher_reliability])

        def create(message_type: type, topic: str) -> Any:
            return self._create_output_publisher(message_type, topic, qos)

        self.stages = [stage(create) for stage in OUTPUT_STAGES
                       if stage.enabled(settings) and stage.requires <= self._capabilities]
        self._diagnostics_publisher = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._diagnostics_timer = self.create_timer(settings.diagnostics_period,
                                                    self._publish_diagnostics)
        self.statistics = FrameStatistics()
        self._expected_size = None
        self._configured = True
        outputs = ', '.join(topic for stage in self.stages for topic in stage.publishers)
        self.get_logger().info(
            f'loaded {identity.get("model")} ({identity.get("backend")}, sha256 '
            f'{identity["artifact_sha256"]}) from {settings.model_path}; depth range '
            f'{settings.depth_range(*model_range)} m; outputs: {outputs}')

    def _activate(self) -> None:
        if self._active or not self._configured:
            return
        with self._condition:
            self._stopping = False
            self._pending = None
        self._camera_infos.clear()
        self._sparse_sample = None
        self._subscriptions = [
            self.create_subscription(Image, 'image', self._on_image, qos_profile_sensor_data),
            self.create_subscription(CameraInfo, 'camera_info', self._on_camera_info,
                                     qos_profile_sensor_data)]
        if self.settings.anchoring == 'sparse_depth':
            self._subscriptions.append(self.create_subscription(
                Image, 'sparse_depth', self._on_sparse_depth, qos_profile_sensor_data))
        elif self.settings.anchoring == 'scan':
            self._subscriptions.append(self.create_subscription(
                LaserScan, 'scan', self._on_scan, qos_profile_sensor_data))
        self._worker = threading.Thread(target=self._work, name='depth_inference', daemon=True)
        self._worker.start()
        self._active = True

    def _deactivate(self) -> None:
        if not self._active:
            return
        self._active = False
        for subscription in self._subscriptions:
            self.destroy_subscription(subscription)
        self._subscriptions = []
        with self._condition:
            self._stopping = True
            self._pending = None
            self._condition.notify_all()
        worker, self._worker = self._worker, None
        if worker is not None and worker.is_alive() and worker is not threading.current_thread():
            worker.join(timeout=60.0)

    def _cleanup(self) -> None:
        self._deactivate()
        for stage in self.stages:
            for publisher in stage.publishers.values():
                self._destroy_output_publisher(publisher)
        self.stages = []
        if self._diagnostics_timer is not None:
            self.destroy_timer(self._diagnostics_timer)
            self._diagnostics_timer = None
        if self._diagnostics_publisher is not None:
            self.destroy_publisher(self._diagnostics_publisher)
            self._diagnostics_publisher = None
        if self.backend is not None:
            self.backend.close()
            self.backend = None
        self._refiner = None
        self._capabilities = frozenset()
        self._configured = False

    def _log_summary(self) -> None:
        stats = self.statistics
        self.get_logger().info(f'{stats.processed} frames processed, {stats.dropped} dropped, '
                               f'{stats.skipped} skipped, mean latency '
                               f'{stats.mean_latency * 1e3:.1f} ms')

    # Publisher creation differs between Node and LifecycleNode --------------------------------

    def _create_output_publisher(self, message_type: type, topic: str, qos: QoSProfile) -> Any:
        return self.create_publisher(message_type, topic, qos)

    def _destroy_output_publisher(self, publisher: Any) -> None:
        self.destroy_publisher(publisher)

    # Logging ----------------------------------------------------------------------------------

    def _log_throttled(self, key: str, message: str, level: str = 'warning') -> None:
        held = self._log_throttle.allow(key, time.monotonic())
        if held is None:
            return
        if held:
            message += f' ({held} more like this in the last {WARN_THROTTLE_S:g} s)'
        # One call site per severity: rclpy refuses a call site whose severity changes.
        logger = self.get_logger()
        if level == 'error':
            logger.error(message)
        elif level == 'info':
            logger.info(message)
        else:
            logger.warning(message)

    def _skip(self, reason: str, message: str) -> bool:
        self.statistics.on_skipped(time.monotonic(), reason, message)
        self._log_throttled(f'skip:{reason}', f'frame skipped ({reason}): {message}')
        return False

    # Callbacks: store and return ------------------------------------------------------------

    def _on_image(self, msg: Image) -> None:
        with self._condition:
            self.statistics.on_received(time.monotonic(), self._pending is not None)
            self._pending = (msg, time.perf_counter())
            self._condition.notify()

    def _on_camera_info(self, msg: CameraInfo) -> None:
        try:
            intrinsics_from_matrices(msg.k, msg.p, max(1, msg.width), max(1, msg.height))
        except ValueError as error:
            text = f'camera_info rejected (frame {msg.header.frame_id!r}): {error}'
            self.statistics.on_camera_info_rejected(time.monotonic(), text)
            self._log_throttled('camera_info_rejected', text, 'error')
            return
        with self._condition:
            self._camera_infos.append(msg)

    def _on_sparse_depth(self, msg: Image) -> None:
        try:
            depth = sparse_depth_from_image(msg)  # (h, w) metres, NaN = no sample
        except ValueError as error:
            text = f'sparse_depth rejected (frame {msg.header.frame_id!r}): {error}'
            self.statistics.on_problem(time.monotonic(), 'sparse_depth_rejected', text)
            self._log_throttled('sparse_depth_rejected', text, 'error')
            return
        with self._condition:
            self._sparse_sample = SparseSample(_stamp_seconds(msg), depth=depth)

    def _on_scan(self, msg: LaserScan) -> None:
        if not (msg.angle_increment != 0 and np.isfinite(msg.angle_increment)):
            text = (f'scan rejected (frame {msg.header.frame_id!r}): angle_increment is '
                    f'{msg.angle_increment}')
            self.statistics.on_problem(time.monotonic(), 'scan_rejected', text)
            self._log_throttled('scan_rejected', text, 'error')
            return
        sample = SparseSample(_stamp_seconds(msg), ranges=scan_ranges(msg),
                              angle_min=float(msg.angle_min),
                              angle_increment=float(msg.angle_increment),
                              range_min=float(msg.range_min),
                              range_max=float(msg.range_max) if msg.range_max > 0 else np.inf)
        with self._condition:
            self._sparse_sample = sample

    def _camera_info_for(self, image: Image, size: tuple[int, int]
                         ) -> tuple[Optional[CameraInfo], Optional[str]]:
        """(CameraInfo with the image's stamp, else the latest; or None, problem or None)."""
        with self._condition:
            infos = list(self._camera_infos)
        if not infos:
            return None, None
        stamp = _stamp_key(image)
        matched = [info for info in reversed(infos) if _stamp_key(info) == stamp]
        info = matched[0] if matched else infos[-1]
        info_size = (int(info.width), int(info.height))
        if not size_fits(info_size, size):
            return None, (f'camera_info is {info_size[0]}x{info_size[1]} but the image is '
                          f'{size[0]}x{size[1]} (another aspect ratio: another camera mode or '
                          'the wrong camera_info topic)')
        if info_size != size and 0 not in info_size:
            self._log_throttled('camera_info_scaled', f'camera_info is {info_size[0]}x'
                                f'{info_size[1]}, the image {size[0]}x{size[1]}: scaling the '
                                'intrinsics to the image', 'info')
        return info, None

    # Worker ----------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._condition:
                while self._pending is None and not self._stopping:
                    self._condition.wait()
                if self._stopping:
                    return
                image, received_at = self._pending
                self._pending = None
            try:
                self.process(image, received_at)
            except Exception as error:  # never let one frame stop the node
                self._skip('error', f'{type(error).__name__}: {error}')

    def process(self, image: Image, received_at: Optional[float] = None) -> bool:
        """Run the model on one image and publish every output; False when it was skipped."""
        received_at = time.perf_counter() if received_at is None else received_at
        settings = self.settings
        try:
            rgb = image_to_rgb(image)  # (H, W, 3) uint8
        except ImageError as error:
            return self._skip(error.kind, str(error))
        height, width = rgb.shape[:2]
        size = (width, height)
        if self._expected_size is not None and size != self._expected_size:
            previous, self._expected_size = self._expected_size, size
            if self._refiner is not None:
                self._refiner.reset_temporal()  # its state is per pixel of the old size
            return self._skip('resolution_change', f'image size changed from {previous[0]}x'
                              f'{previous[1]} to {width}x{height}; this frame is dropped and the '
                              'new size is used from the next frame on')
        self._expected_size = size
        header = Header(stamp=image.header.stamp,
                        frame_id=settings.frame_id or image.header.frame_id)

        info, problem = self._camera_info_for(image, size)
        if problem is not None:
            return self._skip('camera_info_size', problem)
        if info is not None:
            depth_info = scale_camera_info(info, width, height, header)
        else:
            depth_info = None
            intrinsics = intrinsics_from_parameters(
                width, height, settings.fx, settings.fy, settings.cx, settings.cy,
                settings.horizontal_fov)
            if intrinsics is not None:
                self.statistics.from_parameters += 1
                depth_info = camera_info_from_intrinsics(intrinsics, header)
                self._log_throttled('intrinsics_from_parameters', 'no camera_info received: '
                                    f'intrinsics from parameters (fx {intrinsics.fx:.1f}, fy '
                                    f'{intrinsics.fy:.1f}, cx {intrinsics.cx:.1f}, cy '
                                    f'{intrinsics.cy:.1f} at {width}x{height})')
            else:
                self.statistics.without_camera_info += 1
                self._log_throttled('no_intrinsics', 'no camera_info received yet and no fx / '
                                    'horizontal_fov parameter: publishing depth only (no '
                                    'depth/camera_info, no points)')

        want_confidence = 'confidence' in self._capabilities and (
            settings.confidence_threshold > 0
            or any(stage.requires for stage in self.stages))
        result = self.backend.infer_outputs(rgb, confidence=want_confidence)
        depth = result.depth  # (H, W) float32 metres
        inference = self.backend.last_timings.total
        if not np.isfinite(depth).any():
            return self._skip('model_output', 'the model returned no finite depth for this image')
        intrinsics = camera_info_intrinsics(depth_info) if depth_info is not None else None
        with self._condition:
            sample = self._sparse_sample
        if self._refiner is not None:
            depth = self._refiner.refine(depth, intrinsics, settings, sample,
                                         _stamp_seconds(image))  # (H, W) metres
        depth_range = settings.depth_range(*self._model_range)
        depth = apply_depth_range(depth, *depth_range, settings.out_of_range)
        confident_depth = None
        if result.confidence is not None and settings.confidence_threshold > 0:
            confident_depth = np.where(result.confidence >= settings.confidence_threshold,
                                       depth, np.float32(np.nan))  # (H, W) metres
        frame = DepthFrame(header=header, rgb=rgb, depth=depth, depth_range=depth_range,
                           intrinsics=intrinsics, camera_info=depth_info, settings=settings,
                           confidence=result.confidence, confident_depth=confident_depth)
        for stage in self.stages:
            try:
                stage.publish(frame)
            except ValueError as error:  # e.g. scan_height taller than this image
                self.statistics.on_problem(time.monotonic(), f'{stage.name}_not_published',
                                           f'{stage.name}: {error}')
                self._log_throttled(f'stage:{stage.name}', f'{stage.name} not published for '
                                    f'this frame: {error}')

        latency = time.perf_counter() - received_at
        self.statistics.on_processed(time.monotonic(), latency, inference)
        return True

    # Diagnostics -----------------------------------------------------------------------------

    def _publish_diagnostics(self) -> None:
        if self._diagnostics_publisher is None:
            return
        level, message, values = self.statistics.report(time.monotonic(), self._active,
                                                        self._identity)
        refiner, settings = self._refiner, self.settings
        if refiner is not None:
            values += refiner.diagnostics(settings)
            warning = refiner.warning(settings) if self._active else None
            if warning and level == OK:
                level, message = WARN, warning
        hardware_id = (f'{self._identity.get("backend", "")} '
                       f'{self._identity.get("model", "")}').strip()
        self._diagnostics_publisher.publish(diagnostic_array(
            self.get_clock().now().to_msg(), f'{self.get_fully_qualified_name()}: depth',
            hardware_id, level, message, values))

    @property
    def publish_points(self) -> bool:
        return self.settings.publish_points


class DepthEstimationNode(DepthEstimationMixin, Node):
    """Plain node: configured and active from construction (ModelLoadError if it cannot be)."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        Node.__init__(self, node_name, **kwargs)
        try:
            self._init_depth_node()
            self._configure()
        except ModelLoadError:
            self._cleanup()
            Node.destroy_node(self)
            raise
        self._activate()

    def destroy_node(self) -> None:
        """Stop the worker, close the model and destroy the node."""
        configured = self._configured
        self._cleanup()
        if configured:
            self._log_summary()
        Node.destroy_node(self)


class DepthEstimationLifecycleNode(DepthEstimationMixin, LifecycleNode):
    """Managed node: the model is loaded at configure; topics exist between activate and
    deactivate."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        LifecycleNode.__init__(self, node_name, **kwargs)
        try:
            self._init_depth_node(LIFECYCLE_PARAMETERS)
        except ModelLoadError:
            LifecycleNode.destroy_node(self)
            raise

    def _create_output_publisher(self, message_type: type, topic: str, qos: QoSProfile) -> Any:
        return self.create_lifecycle_publisher(message_type, topic, qos)

    def _destroy_output_publisher(self, publisher: Any) -> None:
        self.destroy_lifecycle_publisher(publisher)

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except ModelLoadError as error:
            self.get_logger().error(f'configure failed: {error}')
            self._cleanup()
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = LifecycleNode.on_activate(self, state)  # enables the lifecycle publishers
        self._activate()
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        return LifecycleNode.on_deactivate(self, state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._log_summary()
        self._cleanup()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._cleanup()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().error(f'error in state {state.label}: cleaning up')
        self._cleanup()
        return TransitionCallbackReturn.SUCCESS

    def autostart(self) -> bool:
        """Configure and activate (what `autostart: true` does at start); True on success."""
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return False
        return self.trigger_activate() == TransitionCallbackReturn.SUCCESS

    def destroy_node(self) -> None:
        configured = self._configured
        self._cleanup()
        if configured:
            self._log_summary()
        LifecycleNode.destroy_node(self)


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _run(make_node: Callable[[], Node], after_start: Callable[[Node], bool],
         args: Optional[Sequence[str]]) -> int:
    # SIGINT/SIGTERM raise KeyboardInterrupt instead of shutting the context down under the
    # executor, so the node can still log its summary and close the model.
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    logger = rclpy.logging.get_logger(NODE_NAME)
    try:
        node = make_node()
    except ModelLoadError as error:
        logger.error(str(error))
        rclpy.try_shutdown()
        return 1
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    code = 0
    try:
        if not after_start(node):
            code = 1
        while code == 0 and rclpy.ok():  # short waits so KeyboardInterrupt is raised promptly
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return code


def main(args: Optional[Sequence[str]] = None) -> int:
    """Entry point of `ros2 run depth_estimation depth_estimation_node` (plain node)."""
    return _run(DepthEstimationNode, lambda node: True, args)


def lifecycle_main(args: Optional[Sequence[str]] = None) -> int:
    """Entry point of `depth_estimation_lifecycle_node`: waits unconfigured unless autostart."""
    def after_start(node: Node) -> bool:
        if not node.get_parameter('autostart').value:
            node.get_logger().info('unconfigured: waiting for a lifecycle manager (or set '
                                   'autostart:=true)')
            return True
        if node.autostart():
            return True
        node.get_logger().error('autostart failed; exiting')
        return False

    return _run(DepthEstimationLifecycleNode, after_start, args)


if __name__ == '__main__':
    sys.exit(main())
