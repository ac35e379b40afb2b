"""ROS 2 node: camera Image (+ CameraInfo) in, metric depth, depth CameraInfo and PointCloud2 out.

Topics (relative names, so namespaces and remapping work):
- subscribes `image` (sensor_msgs/Image: rgb8, bgr8, rgba8, bgra8, mono8) and `camera_info`, both
  with the sensor-data QoS (best effort, as camera drivers publish);
- publishes `depth/image` (32FC1 metres, REP 118, NaN where invalid), `depth/camera_info` (same
  header, K and P scaled to the depth size) and `points` (organized PointCloud2, x y z [+ rgb]),
  each with the input image header.

Only the newest frame is processed: callbacks store the latest message and one worker thread runs
the model and publishes, so a slow model drops frames (counted) instead of building a queue.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
import signal
import sys
import threading
import time
from typing import Any, Optional, Sequence

from rcl_interfaces.msg import ParameterDescriptor
import rclpy
import rclpy.logging
from rclpy.signals import SignalHandlerOptions
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import (HistoryPolicy, qos_profile_sensor_data, QoSProfile,
                       ReliabilityPolicy)
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from depth_estimation.inference import BACKENDS, open_backend
from depth_estimation.ros.conversions import (depth_to_cloud, depth_to_image, image_to_rgb,
                                              scale_camera_info)

NODE_NAME = 'depth_estimation_node'
RELIABILITY = {'reliable': ReliabilityPolicy.RELIABLE,
               'best_effort': ReliabilityPolicy.BEST_EFFORT}
CAMERA_INFO_BUFFER = 10  # CameraInfo messages kept to match image stamps
WARN_THROTTLE_S = 5.0


class ModelLoadError(RuntimeError):
    """The node could not start: bad parameters or a model that failed to load."""


@dataclass
class FrameStatistics:
    """Counters and the last latencies of the node (seconds)."""

    received: int = 0
    processed: int = 0
    dropped: int = 0  # replaced by a newer frame before the worker took it
    skipped: int = 0  # bad input or a failure while processing
    without_camera_info: int = 0
    last_latency: float = 0.0  # image received -> all outputs published
    last_inference: float = 0.0  # backend.infer, all stages
    total_latency: float = 0.0

    @property
    def mean_latency(self) -> float:
        return self.total_latency / self.processed if self.processed else 0.0


def _stamp_key(msg: Any) -> tuple[int, int]:
    return (int(msg.header.stamp.sec), int(msg.header.stamp.nanosec))


class DepthEstimationNode(Node):
    """Runs a depth model on the newest image; publishes depth, its CameraInfo and points."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        declare = self._declare
        self.model_path = declare('model_path', '', 'Path of the model artifact (.onnx with its '
                                  '.onnx.json metadata, or a torch checkpoint). Required.')
        self.backend_name = declare('backend', 'auto', f'Inference backend, one of {BACKENDS}; '
                                    'auto picks it from the model file suffix.')
        self.num_threads = declare('num_threads', 0, 'CPU threads of the backend; 0 lets the '
                                   'backend choose.')
        self.publish_points = declare('publish_points', True, 'Publish the organized PointCloud2 '
                                      'on points (needs camera_info).')
        self.points_rgb = declare('points_rgb', True, 'Add the packed rgb field of the input '
                                  'image to the point cloud.')
        self.publisher_reliability = declare(
            'publisher_reliability', 'reliable', 'QoS reliability of the outputs: reliable '
            '(matches reliable and best-effort subscribers, RViz default) or best_effort.')
        self.publisher_depth = declare('publisher_depth', 1, 'QoS history depth of the outputs '
                                       '(keep last N).')
        try:
            self._check_parameters()
            self.backend = self._open_backend()
        except ModelLoadError:
            Node.destroy_node(self)
            raise
        self.get_logger().info(f'loaded {self.backend.describe()} from {self.model_path}')

        output_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=self.publisher_depth,
                                reliability=RELIABILITY[self.publisher_reliability])
        self.depth_publisher = self.create_publisher(Image, 'depth/image', output_qos)
        self.depth_info_publisher = self.create_publisher(CameraInfo, 'depth/camera_info',
                                                          output_qos)
        self.points_publisher: Optional[Any] = None
        if self.publish_points:
            self.points_publisher = self.create_publisher(PointCloud2, 'points', output_qos)

        self.statistics = FrameStatistics()
        self._condition = threading.Condition()
        self._pending: Optional[tuple[Image, float]] = None  # newest image and its arrival time
        self._camera_infos: deque[CameraInfo] = deque(maxlen=CAMERA_INFO_BUFFER)
        self._stopping = False
        self.create_subscription(Image, 'image', self._on_image, qos_profile_sensor_data)
        self.create_subscription(CameraInfo, 'camera_info', self._on_camera_info,
                                 qos_profile_sensor_data)
        self._worker = threading.Thread(target=self._work, name='depth_inference', daemon=True)
        self._worker.start()

    # Parameters -----------------------------------------------------------------------------

    def _declare(self, name: str, default: Any, description: str) -> Any:
        descriptor = ParameterDescriptor(description=description, read_only=True)
        return self.declare_parameter(name, default, descriptor).value

    def _open_backend(self) -> Any:
        try:
            return open_backend(self.model_path, self.backend_name, num_threads=self.num_threads)
        except Exception as error:  # any failure to load is fatal at start, with its reason
            raise ModelLoadError(f'cannot load model {self.model_path!r} with backend '
                                 f'{self.backend_name!r}: {type(error).__name__}: {error}'
                                 ) from error

    def _check_parameters(self) -> None:
        if not self.model_path:
            raise ModelLoadError('parameter model_path is required (e.g. --ros-args -p '
                                 'model_path:=/path/to/model.onnx)')
        if self.backend_name not in BACKENDS:
            raise ModelLoadError(f'parameter backend is {self.backend_name!r}; expected one of '
                                 f'{BACKENDS}')
        if self.publisher_reliability not in RELIABILITY:
            raise ModelLoadError(f'parameter publisher_reliability is '
                                 f'{self.publisher_reliability!r}; expected one of '
                                 f'{sorted(RELIABILITY)}')
        if self.publisher_depth < 1:
            raise ModelLoadError(f'parameter publisher_depth must be >= 1, got '
                                 f'{self.publisher_depth}')
        if self.num_threads < 0:
            raise ModelLoadError(f'parameter num_threads must be >= 0, got {self.num_threads}')

    # Callbacks: store and return -----------------------------------------------------------

    def _on_image(self, msg: Image) -> None:
        with self._condition:
            self.statistics.received += 1
            if self._pending is not None:
                self.statistics.dropped += 1
            self._pending = (msg, time.perf_counter())
            self._condition.notify()

    def _on_camera_info(self, msg: CameraInfo) -> None:
        with self._condition:
            self._camera_infos.append(msg)

    def _camera_info_for(self, image: Image) -> Optional[CameraInfo]:
        """The buffered CameraInfo with the image's stamp, else the latest one, else None."""
        with self._condition:
            if not self._camera_infos:
                return None
            stamp = _stamp_key(image)
            for info in reversed(self._camera_infos):
                if _stamp_key(info) == stamp:
                    return info
            return self._camera_infos[-1]

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
                self.statistics.skipped += 1
                self.get_logger().error(f'frame skipped: {type(error).__name__}: {error}',
                                        throttle_duration_sec=WARN_THROTTLE_S)

    def process(self, image: Image, received_at: Optional[float] = None) -> bool:
        """Run the model on one image and publish the outputs; False when the frame was skipped."""
        received_at = time.perf_counter() if received_at is None else received_at
        try:
            rgb = image_to_rgb(image)  # (H, W, 3) uint8
        except ValueError as error:
            self.statistics.skipped += 1
            self.get_logger().warning(f'frame skipped: {error}',
                                      throttle_duration_sec=WARN_THROTTLE_S)
            return False
        depth = self.backend.infer(rgb)  # (H, W) float32 metres
        self.statistics.last_inference = self.backend.last_timings.total
        header = image.header
        height, width = depth.shape
        self.depth_publisher.publish(depth_to_image(depth, header))

        info = self._camera_info_for(image)
        if info is None:
            self.statistics.without_camera_info += 1
            self.get_logger().warning('no camera_info received yet: publishing depth only (no '
                                      'depth/camera_info, no points)',
                                      throttle_duration_sec=WARN_THROTTLE_S)
        else:
            depth_info = scale_camera_info(info, width, height, header)
            self.depth_info_publisher.publish(depth_info)
            if self.points_publisher is not None:
                cloud = depth_to_cloud(depth, depth_info, header,
                                       rgb if self.points_rgb else None)
                self.points_publisher.publish(cloud)

        latency = time.perf_counter() - received_at
        stats = self.statistics
        stats.processed += 1
        stats.last_latency = latency
        stats.total_latency += latency
        self.get_logger().debug(f'frame {stats.processed}: {latency * 1e3:.1f} ms '
                                f'(inference {stats.last_inference * 1e3:.1f} ms), '
                                f'{stats.dropped} dropped')
        return True

    def destroy_node(self) -> None:
        """Stop the worker, close the model and destroy the node."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        if self._worker.is_alive() and self._worker is not threading.current_thread():
            self._worker.join(timeout=30.0)
        self.backend.close()
        stats = self.statistics
        self.get_logger().info(f'{stats.processed} frames processed, {stats.dropped} dropped, '
                               f'{stats.skipped} skipped, mean latency '
                               f'{stats.mean_latency * 1e3:.1f} ms')
        super().destroy_node()


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(args: Optional[Sequence[str]] = None) -> int:
    """Entry point of `ros2 run depth_estimation depth_estimation_node` and the console script."""
    # SIGINT/SIGTERM raise KeyboardInterrupt instead of shutting the context down under the
    # executor, so the node can still log its summary and close the model.
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    logger = rclpy.logging.get_logger(NODE_NAME)
    try:
        node = DepthEstimationNode()
    except ModelLoadError as error:
        logger.error(str(error))
        rclpy.try_shutdown()
        return 1
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while rclpy.ok():  # short waits so that KeyboardInterrupt is raised promptly
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
