"""Issue 6, item 8: every bad input against a real rclpy graph, in one test.

Each bad input must be logged (read back from /rosout, as an operator would see it), counted and
skipped, and the next good frame must be answered. The node is the lifecycle node, so the model
artifacts (missing, corrupt) are refused at configure before the stream starts.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import ros_graph  # noqa: F401,I100  (sets the loopback DDS environment before rclpy starts)
from ros_graph import (Collector, executor_for, header, ros_context, rosout_log, sample_frames,
                       spin_until, stamped)

from rcl_interfaces.msg import Log  # noqa: I100
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from depth_estimation.artifacts import metadata_path
from depth_estimation.ros.conversions import rgb_to_image
from depth_estimation.ros.node import DepthEstimationLifecycleNode

pytestmark = pytest.mark.ros

FRAME_ID = 'camera_color_optical_frame'
NODE_NAME = 'bad_input_depth_node'
OUTPUTS = {'depth/image': Image, 'depth/camera_info': CameraInfo, 'points': PointCloud2}


class Harness:
    """Lifecycle node + driver (publishers, output collector, /rosout reader) on one executor."""

    def __init__(self, context) -> None:
        # A name of its own: rcl routes /rosout by node name, and other tests in this process
        # create depth_estimation_node too.
        self.node = DepthEstimationLifecycleNode(NODE_NAME, context=context, parameter_overrides=[
            Parameter('num_threads', value=1)])
        self.driver = Node('bad_input_driver', context=context)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.image_publisher = self.driver.create_publisher(Image, 'image', reliable)
        self.info_publisher = self.driver.create_publisher(CameraInfo, 'camera_info', reliable)
        self.collector = Collector(self.driver, OUTPUTS)
        self.logs: list[Log] = rosout_log(self.driver)
        self.executor = executor_for(context, self.node, self.driver)
        self.stamp_ns = 1_000_000_000

    def next_stamp(self) -> int:
        self.stamp_ns += 40_000_000
        return self.stamp_ns

    def logged(self, *fragments: str, timeout: float = 10.0) -> str:
        """The first /rosout line of the node containing every fragment (waits for it)."""
        def find() -> str:
            for entry in self.logs:
                if entry.name.endswith(NODE_NAME) and all(
                        f in entry.msg for f in fragments):
                    return entry.msg
            return ''
        spin_until(self.executor, lambda: bool(find()), timeout)
        return find()

    def send(self, image: Image | None, info: CameraInfo | None) -> None:
        if info is not None:
            self.info_publisher.publish(info)
            spin_until(self.executor, lambda: False, timeout=0.05)
        if image is not None:
            self.image_publisher.publish(image)

    def answered(self, stamp_ns: int) -> bool:
        return all(self.collector.with_stamp(topic, stamp_ns) for topic in OUTPUTS)


def good_frame(harness: Harness, size: tuple[int, int] | None = None) -> int:
    """Send a good sample frame (optionally resized to (W, H)) and wait for every output."""
    import cv2

    (_, image, info), = sample_frames()[:1]
    if size is not None:
        rgb = np.frombuffer(image.data, np.uint8).reshape(image.height, image.width, 3)
        image = rgb_to_image(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))
    stamp_ns = harness.next_stamp()
    image, info = stamped(image, info, stamp_ns, FRAME_ID)  # info stays 640x480: scaled
    harness.send(image, info)
    assert spin_until(harness.executor, lambda: harness.answered(stamp_ns), timeout=20.0), \
        'the next good frame was not answered'
    return stamp_ns


def test_every_bad_input_is_logged_skipped_and_the_next_frame_answered(tiny_onnx,
                                                                       tmp_path) -> None:
    # Model artifacts: a missing file and a corrupt one are refused at configure.
    corrupt = tmp_path / 'corrupt.onnx'
    corrupt.write_bytes(b'this is not an ONNX protobuf' * 100)
    shutil.copy(metadata_path(tiny_onnx), metadata_path(corrupt))
    with ros_context() as context:
        harness = Harness(context)
        node = harness.node
        try:
            for bad_model, fragment in ((tmp_path / 'absent.onnx', 'not found'),
                                        (corrupt, 'cannot load ONNX model')):
                assert node.set_parameters([Parameter('model_path', value=str(bad_model))])[
                    0].successful
                assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
                assert node.backend is None and not node.stages
                assert str(bad_model) in harness.logged('configure failed', fragment)
            assert node.set_parameters([Parameter('model_path', value=str(tiny_onnx))])[
                0].successful
            assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
            assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
            assert spin_until(harness.executor, lambda: (
                harness.image_publisher.get_subscription_count() >= 1
                and harness.info_publisher.get_subscription_count() >= 1
                and all(s.get_publisher_count() >= 1 for s in harness.collector.subscriptions)))
            good_frame(harness)

            (_, sample, sample_info), = sample_frames()[:1]
            width, height = sample.width, sample.height
            nan_float = np.full((height, width), np.nan, np.float32)
            # (name, image, camera_info, reason counted, fragments of the log line)
            bad_images = [
                ('unsupported encoding',
                 Image(height=4, width=4, encoding='bayer_rggb16', step=8, data=bytes(32)),
                 'encoding', ("unsupported image encoding 'bayer_rggb16'",)),
                ('step shorter than a row',
                 Image(height=4, width=4, encoding='rgb8', step=10, data=bytes(40)),
                 'step', ('step 10 is shorter than a row',)),
                ('data length not step x height',
                 Image(height=4, width=4, encoding='rgb8', step=12, data=bytes(40)),
                 'data_length', ('40 bytes', 'step * rows')),
                ('zero-sized image',
                 Image(height=0, width=640, encoding='rgb8', step=1920, data=b''),
                 'empty', ('empty image 640x0',)),
                ('NaN-filled float image',
                 Image(height=height, width=width, encoding='32FC1', step=width * 4,
                       data=nan_float.tobytes()),
                 'float_image', ("'32FC1'", 'depth or float image')),
            ]
            for name, image, reason, fragments in bad_images:
                before = node.statistics.skipped_by_reason[reason]
                stamp_ns = harness.next_stamp()
                image.header = header(stamp_ns, FRAME_ID)
                harness.send(image, None)
                assert spin_until(harness.executor, lambda: (
                    node.statistics.skipped_by_reason[reason] == before + 1)), name
                assert harness.logged(f'frame skipped ({reason})', *fragments), name
                good_frame(harness)
                assert not harness.collector.with_stamp('depth/image', stamp_ns), name

            # camera_info with zeros: rejected, never used.
            zeros = CameraInfo(width=width, height=height, header=header(harness.next_stamp(),
                                                                         FRAME_ID))
            harness.send(None, zeros)
            assert spin_until(harness.executor,
                              lambda: node.statistics.rejected_camera_info == 1)
            assert harness.logged('camera_info rejected', 'all zeros')
            stamp_ns = good_frame(harness)
            info_out = harness.collector.with_stamp('depth/camera_info', stamp_ns)[0]
            np.testing.assert_allclose(info_out.p, sample_info.p)

            # camera_info of another size (another aspect ratio) with the image's stamp.
            image, other = stamped(sample_frames()[0][1], CameraInfo(
                width=400, height=400, k=list(sample_info.k), p=list(sample_info.p)),
                harness.next_stamp(), FRAME_ID)
            harness.send(image, other)
            assert spin_until(harness.executor, lambda: (
                node.statistics.skipped_by_reason['camera_info_size'] == 1))
            assert harness.logged('frame skipped (camera_info_size)', 'camera_info is 400x400')
            good_frame(harness)

            # Resolution change mid-stream: the per-size state restarts, the frame is answered.
            new_size = (width // 2, height // 2)
            import cv2

            rgb = np.frombuffer(sample.data, np.uint8).reshape(height, width, 3)
            answered = good_frame(harness, new_size)
            assert harness.logged('image size changed', f'from {width}x{height} to '
                                  f'{new_size[0]}x{new_size[1]}')
            depth = harness.collector.with_stamp('depth/image', answered)[0]
            assert (depth.width, depth.height) == new_size

            # Messages much faster than the model: the newest frame wins, nothing queues.
            processed_before = node.statistics.processed
            burst = []
            for _ in range(30):
                image, info = stamped(
                    rgb_to_image(cv2.resize(rgb, new_size, interpolation=cv2.INTER_AREA)),
                    CameraInfo(width=width, height=height, k=list(sample_info.k),
                               p=list(sample_info.p)), harness.next_stamp(), FRAME_ID)
                harness.info_publisher.publish(info)
                harness.image_publisher.publish(image)
                harness.executor.spin_once(timeout_sec=0)
                burst.append(image)
            last = burst[-1]
            last_ns = last.header.stamp.sec * 1_000_000_000 + last.header.stamp.nanosec
            for _ in range(3):  # best-effort input: a camera would send the next frame
                if spin_until(harness.executor, lambda: harness.answered(last_ns), timeout=15.0):
                    break
                harness.image_publisher.publish(last)
            assert harness.answered(last_ns), 'the newest frame of the burst was not answered'
            stats = node.statistics
            answered_in_burst = stats.processed - processed_before
            assert stats.dropped > 0 and answered_in_burst < len(burst)
            assert stats.received == stats.processed + stats.dropped + stats.skipped
            assert all(reason in stats.skipped_by_reason for reason in (
                'encoding', 'step', 'data_length', 'empty', 'float_image',
                'camera_info_size'))
        finally:
            harness.executor.shutdown()
            node.destroy_node()
            harness.driver.destroy_node()
