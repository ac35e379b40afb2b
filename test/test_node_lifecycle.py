"""The lifecycle node through every transition in a real rclpy graph."""

from __future__ import annotations

import pytest
import ros_graph  # noqa: F401,I100  (sets the loopback DDS environment before rclpy starts)
from ros_graph import Collector, ros_context, sample_frames, spin_until, stamped

from lifecycle_msgs.srv import GetState  # noqa: I100
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image

from depth_estimation.ros.node import DepthEstimationLifecycleNode, ModelLoadError

pytestmark = pytest.mark.ros

FRAME_ID = 'camera_color_optical_frame'


def state_of(node: Node, executor: SingleThreadedExecutor, client) -> str:
    future = client.call_async(GetState.Request())
    assert spin_until(executor, future.done, timeout=10.0)
    return future.result().current_state.label


def test_transitions_create_and_remove_topics(tiny_onnx) -> None:
    with ros_context() as context:
        node = DepthEstimationLifecycleNode(context=context, parameter_overrides=[
            Parameter('model_path', value=str(tiny_onnx)), Parameter('num_threads', value=1)])
        driver = Node('lifecycle_driver', context=context)
        image_publisher = driver.create_publisher(Image, 'image', 10)
        info_publisher = driver.create_publisher(CameraInfo, 'camera_info', 10)
        collector = Collector(driver, {'depth/image': Image})
        get_state = driver.create_client(GetState, 'depth_estimation_node/get_state')
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        executor.add_node(driver)
        try:
            assert get_state.wait_for_service(timeout_sec=10.0)
            assert state_of(driver, executor, get_state) == 'unconfigured'
            assert node.backend is None
            assert node.count_publishers('depth/image') == 0

            assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
            assert state_of(driver, executor, get_state) == 'inactive'
            assert node.backend is not None
            assert node.count_publishers('depth/image') == 1
            assert image_publisher.get_subscription_count() == 0, 'no input before activate'
            refused, = node.set_parameters([Parameter('publish_points', value=False)])
            assert not refused.successful and 'unconfigured' in refused.reason

            assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
            assert spin_until(executor, lambda: image_publisher.get_subscription_count() == 1
                              and collector.subscriptions[0].get_publisher_count() == 1)
            (_, image, info), = sample_frames()[:1]
            image, info = stamped(image, info, 21_000, FRAME_ID)
            info_publisher.publish(info)
            image_publisher.publish(image)
            assert spin_until(executor, lambda: collector.with_stamp('depth/image', 21_000),
                              timeout=20.0)

            assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
            assert state_of(driver, executor, get_state) == 'inactive'
            assert spin_until(executor, lambda: image_publisher.get_subscription_count() == 0)

            assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
            assert node.backend is None
            assert spin_until(executor, lambda: node.count_publishers('depth/image') == 0)
            # Unconfigured again: model-time parameters may change now.
            changed, = node.set_parameters([Parameter('publish_points', value=False)])
            assert changed.successful
            assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
            assert [stage.name for stage in node.stages] == ['depth', 'depth_camera_info']
            assert node.trigger_shutdown() == TransitionCallbackReturn.SUCCESS
            assert node.backend is None
        finally:
            executor.shutdown()
            node.destroy_node()
            driver.destroy_node()


def test_invalid_parameters_are_refused_at_start() -> None:
    with ros_context() as context:
        with pytest.raises(ModelLoadError, match='out of range|points_stride'):
            DepthEstimationLifecycleNode(context=context, parameter_overrides=[
                Parameter('points_stride', value=100)])
        with pytest.raises(ModelLoadError, match='min_depth'):
            DepthEstimationLifecycleNode(context=context, parameter_overrides=[
                Parameter('min_depth', value=5.0), Parameter('max_depth', value=1.0)])
