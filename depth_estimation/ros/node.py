"""ROS 2 node: camera Image (+ CameraInfo) in; metric depth, depth CameraInfo, PointCloud2 out.

One managed node, `DepthEstimationLifecycleNode`: configure loads the model (a bad artifact, or
one without valid depth on the sample frame, is refused: the node stays unconfigured) and
creates the publishers; activate subscribes and starts the worker; deactivate and cleanup undo
them. `depth_estimation_node` is the same node with autostart = true (`DepthEstimationNode`), as
Nav2 and Isaac ROS run theirs. The node is an adapter: messages become numpy (conversions.py),
`DepthPipeline` makes the depth and its products, the output stages publish them (outputs.py);
runner.py runs it as a process. Topics and parameters: docs/ros.md.
"""

from __future__ import annotations

from functools import partial
import sys
import time
from typing import Any, Callable, Optional, Sequence

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image, LaserScan
from std_msgs.msg import Header

from depth_estimation.pipeline import DepthFrame, DepthPipeline, ModelLoadError, SkippedFrame
from depth_estimation.pipeline.stats import FrameStatistics, ThrottledLog
from depth_estimation.ros.conversions import (camera_info_calibration, camera_info_from_intrinsics,
                                              check_camera_info_message, depth_camera_info,
                                              EMPTY_FRAME_ID, image_to_rgb, IMAGE_TRANSPORTS,
                                              sparse_sample_from_image, sparse_sample_from_scan,
                                              stamp_seconds)
from depth_estimation.ros.diagnostics import model_identity, node_diagnostics
from depth_estimation.ros.inputs import LatestInputs
from depth_estimation.ros.outputs import create_stages, OutputStage
from depth_estimation.ros.parameters import NodeParameters, NodeSettings
from depth_estimation.ros.runner import qos_profile, run_node, SENSOR_DATA_QOS

NODE_NAME = 'depth_estimation_node'
WARN_THROTTLE_S = 5.0
SPARSE_INPUTS = {'sparse_depth': (Image, sparse_sample_from_image),
                 'scan': (LaserScan, sparse_sample_from_scan)}
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class DepthEstimationLifecycleNode(LifecycleNode):
    """The depth node, managed; `DepthEstimationNode` is it started with autostart.

    Public state: `settings`, `statistics`, `pipeline` and `backend` (None until configured)."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.statistics = FrameStatistics()
        self.pipeline: Optional[DepthPipeline] = None
        self.stages: list[OutputStage] = []
        self._log = ThrottledLog(self.get_logger(), WARN_THROTTLE_S)
        self._inputs = LatestInputs()
        self._active = False
        self._input_subscriptions: list[Any] = []
        self._diagnostics_publisher = self._diagnostics_timer = None
        self._identity: dict[str, str] = {}
        self._configure_error = ''  # why the last configure failed
        try:
            self._depth_parameters = NodeParameters(  # changes checked against the loaded model
                self, lambda settings: self.pipeline.check(settings),
                lambda: self.pipeline is not None)
        except ModelLoadError:
            LifecycleNode.destroy_node(self)
            raise
        # rclpy drops overrides (command line, params file) a node does not declare: say so once
        unknown = sorted(name for name in self._parameter_overrides
                         if not self.has_parameter(name))
        if unknown:
            self.get_logger().warning(f'ignoring unknown parameters (this node does not declare '
                                      f'them; a typo? see docs/ros.md): {", ".join(unknown)}')
        if not self.get_parameter('autostart').value:
            self.get_logger().info('unconfigured: waiting for a lifecycle manager (or set '
                                   'autostart:=true)')
        elif not self.autostart():
            self._cleanup()
            LifecycleNode.destroy_node(self)
            raise ModelLoadError(self._configure_error or 'activation failed')

    @property
    def backend(self) -> Optional[Any]:
        return None if self.pipeline is None else self.pipeline.backend

    @property
    def settings(self) -> NodeSettings:
        """The current parameters as one validated, immutable snapshot."""
        return self._depth_parameters.settings

    @property
    def publish_points(self) -> bool:
        return self.settings.publish_points

    # Lifecycle ----------------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except ModelLoadError as error:
            self._configure_error = str(error)
            self.get_logger().error(f'configure failed: {error}')
            self._cleanup()
            return FAILURE
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)  # enables the lifecycle publishers
        self._activate()
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().info(self.statistics.summary())
        self._cleanup()
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._cleanup()
        return SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().error(f'error in state {state.label}: cleaning up')
        return self.on_shutdown(state)

    def autostart(self) -> bool:
        """Configure and activate (what `autostart: true` does at start); True on success."""
        return self.trigger_configure() == SUCCESS and self.trigger_activate() == SUCCESS

    def destroy_node(self) -> None:
        """Stop the worker, close the model and destroy the node."""
        configured = self.pipeline is not None
        self._cleanup()
        if configured:
            self.get_logger().info(self.statistics.summary())
        super().destroy_node()

    def _configure(self) -> None:
        settings = self._depth_parameters.settings = self._depth_parameters.validated()
        if not settings.model_path:
            raise ModelLoadError('parameter model_path is required (e.g. --ros-args -p '
                                 'model_path:=/path/to/model.onnx)')
        self.pipeline = DepthPipeline.open(settings)
        self._identity = identity = model_identity(settings.model_path,
                                                   self.pipeline.backend.describe())
        capabilities = frozenset({'confidence'} if self.pipeline.has_confidence else ())
        qos = qos_profile(settings.publisher_reliability == 'reliable', settings.publisher_depth)
        self.stages = create_stages(settings, capabilities, lambda kind, topic: (
            self.create_lifecycle_publisher(kind, topic, qos)))
        self._diagnostics_publisher = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._diagnostics_timer = self.create_timer(settings.diagnostics_period,
                                                    self._publish_diagnostics)
        self.statistics = FrameStatistics()
        outputs = ', '.join(topic for stage in self.stages for topic in stage.publishers)
        self.get_logger().info(
            f'loaded {identity.get("model")} ({identity.get("backend")}, sha256 '
            f'{identity["artifact_sha256"]}) from {settings.model_path}; depth range '
            f'{settings.depth_range(*self.pipeline.model_range)} m; outputs: {outputs}')

    def _activate(self) -> None:
        if self._active or self.pipeline is None:
            return
        kind, suffix = IMAGE_TRANSPORTS[self.settings.image_transport]  # as image_transport
        topics = [(kind, self.resolve_topic_name('image') + suffix, self._on_image),
                  (CameraInfo, 'camera_info', self._on_camera_info)]
        anchoring = self.settings.anchoring  # 'sparse_depth' or 'scan': a topic of that name
        if anchoring in SPARSE_INPUTS:
            kind, convert = SPARSE_INPUTS[anchoring]
            topics.append((kind, anchoring, partial(self._store_sample, topic=anchoring,
                                                    convert=convert)))
        self._input_subscriptions = [
            self.create_subscription(kind, topic, callback, SENSOR_DATA_QOS)
            for kind, topic, callback in topics]
        self._inputs.start(self._process_safely)
        self._active = True

    def _deactivate(self) -> None:
        if not self._active:
            return
        self._active = False
        for subscription in self._input_subscriptions:
            self.destroy_subscription(subscription)
        self._input_subscriptions = []
        self._inputs.stop()

    def _cleanup(self) -> None:
        self._deactivate()
        for publisher in [p for stage in self.stages for p in stage.publishers.values()]:
            self.destroy_lifecycle_publisher(publisher)
        self.stages = []
        if self._diagnostics_timer is not None:  # created with the publisher
            self.destroy_timer(self._diagnostics_timer)
            self.destroy_publisher(self._diagnostics_publisher)
            self._diagnostics_timer = self._diagnostics_publisher = None
        if self.pipeline is not None:
            self.pipeline.close()
            self.pipeline = None

    def _skip(self, reason: str, message: str) -> bool:
        self.statistics.on_skipped(time.monotonic(), reason, message)
        self._log(f'skip:{reason}', f'frame skipped ({reason}): {message}')
        return False

    def _problem(self, reason: str, message: str, log_key: str, level: str = 'error') -> None:
        self.statistics.on_problem(time.monotonic(), reason, message)
        self._log(log_key, message, level)

    # Callbacks: store and return ------------------------------------------------------------

    def _on_image(self, msg: Image) -> None:
        replaced = self._inputs.put_image(msg, time.perf_counter())
        self.statistics.on_received(time.monotonic(), replaced)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        try:
            check_camera_info_message(msg)
        except ValueError as error:
            text = f'camera_info rejected (frame {msg.header.frame_id!r}): {error}'
            self.statistics.on_camera_info_rejected(time.monotonic(), text)
            self._log('camera_info_rejected', text, 'error')
            return
        self._inputs.put_camera_info(msg)

    def _store_sample(self, msg: Any, topic: str, convert: Callable[[Any], Any]) -> None:
        """Keep the anchoring sample of a sparse_depth or scan message."""
        try:
            sample = convert(msg)  # SparseSample
        except ValueError as error:
            text = f'{topic} rejected (frame {msg.header.frame_id!r}): {error}'
            return self._problem(f'{topic}_rejected', text, f'{topic}_rejected')
        self._inputs.put_sample(sample)

    def _process_safely(self, image: Image, received_at: float) -> None:
        try:
            self.process(image, received_at)
        except Exception as error:  # never let one frame stop the node
            self._skip('error', f'{type(error).__name__}: {error}')

    def process(self, image: Image, received_at: Optional[float] = None) -> bool:
        """Run the pipeline on one image and publish every output; False when it was skipped."""
        received_at = time.perf_counter() if received_at is None else received_at
        settings = self.settings
        info, sample = self._inputs.for_image(image)
        try:
            rgb = image_to_rgb(image)  # (H, W, 3) uint8
            calibration = None if info is None else camera_info_calibration(info)
            frame = self.pipeline.process(rgb, settings, calibration, sample,
                                          stamp_seconds(image))
        except SkippedFrame as error:
            return self._skip(error.kind, str(error))
        if frame.size_change:
            self.statistics.size_changes += 1
            self._log('size_change', f'{frame.size_change}; answering it', 'info')
        header = Header(stamp=image.header.stamp,
                        frame_id=settings.frame_id or image.header.frame_id)
        if not header.frame_id:
            self._log('empty_frame_id', EMPTY_FRAME_ID, 'warning')
        depth_info = self._depth_camera_info(frame, info, header)
        problems = list(frame.problems)  # products left out, e.g. a scan taller than the image
        for stage in self.stages:
            try:
                stage.publish(frame, header, depth_info)
            except ValueError as error:
                problems.append((stage.name, str(error)))
        for name, reason in problems:
            self._problem(f'{name}_not_published', f'{name}: {reason}', f'stage:{name}',
                          'warning')
        self.statistics.on_processed(time.monotonic(), time.perf_counter() - received_at,
                                     frame.inference_seconds, frame.valid_share)
        return True

    def _depth_camera_info(self, frame: DepthFrame, info: Optional[CameraInfo],
                           header: Header) -> Optional[CameraInfo]:
        """The depth CameraInfo: camera_info scaled to the depth, or from the parameters."""
        height, width = frame.depth.shape
        intrinsics = frame.intrinsics
        if frame.intrinsics_source == 'camera_info':
            return depth_camera_info(info, width, height, header)
        if intrinsics is None:
            self.statistics.without_camera_info += 1
            self._log('no_intrinsics', 'no camera_info received yet and no fx / horizontal_fov '
                      'parameter: publishing depth only (no depth/camera_info, no points)')
            return None
        self.statistics.from_parameters += 1
        self._log('intrinsics_from_parameters', 'no camera_info received: intrinsics from '
                  f'parameters (fx {intrinsics.fx:.1f}, fy {intrinsics.fy:.1f}, cx '
                  f'{intrinsics.cx:.1f}, cy {intrinsics.cy:.1f} at {width}x{height})')
        return camera_info_from_intrinsics(intrinsics, header)

    def _publish_diagnostics(self) -> None:
        self._diagnostics_publisher.publish(node_diagnostics(
            self.get_clock().now().to_msg(), f'{self.get_fully_qualified_name()}: depth',
            self.statistics, self.pipeline and self.pipeline.refiner, self.settings,
            self._active, self._identity))


def DepthEstimationNode(node_name: str = NODE_NAME,  # noqa: N802 (builds the node)
                        **kwargs: Any) -> DepthEstimationLifecycleNode:
    """The plain node: the lifecycle node with autostart = true, configured and active on return.

    Raises ModelLoadError (the node destroyed) when it cannot be configured.
    """
    overrides = list(kwargs.pop('parameter_overrides', None) or [])
    overrides.append(Parameter('autostart', value=True))
    return DepthEstimationLifecycleNode(node_name, parameter_overrides=overrides, **kwargs)


def main(args: Optional[Sequence[str]] = None) -> int:
    """Entry point of `depth_estimation_node`: the node with autostart = true."""
    return run_node(DepthEstimationNode, NODE_NAME, ModelLoadError, args)


def lifecycle_main(args: Optional[Sequence[str]] = None) -> int:
    """Entry point of `depth_estimation_lifecycle_node`: waits unconfigured unless autostart."""
    return run_node(DepthEstimationLifecycleNode, NODE_NAME, ModelLoadError, args)


__all__ = ['DepthEstimationLifecycleNode', 'DepthEstimationNode', 'lifecycle_main', 'main',
           'ModelLoadError']

if __name__ == '__main__':
    sys.exit(main())
