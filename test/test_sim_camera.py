"""The simulated camera's ROS publisher in a real rclpy graph: image, camera_info and ground truth
with one stamp, intrinsics consistent with the render, and the frames the simulator renders."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip('pybullet', reason='the simulator needs pybullet (requirements.txt)')

from ros_graph import Collector, ros_context, ros_environment, spin_until  # noqa: E402,I100

from rclpy.executors import SingleThreadedExecutor  # noqa: E402,I100
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from depth_estimation.ros.conversions import image_to_depth, image_to_rgb  # noqa: E402
from depth_estimation.tools.sim_camera import NODE_NAME, SimCamera  # noqa: E402
from depth_estimation.sim.camera import CameraModel  # noqa: E402
from depth_estimation.sim.scenes import scene_frames  # noqa: E402

pytestmark = pytest.mark.ros

TOPICS = {'image': Image, 'camera_info': CameraInfo, 'ground_truth/depth': Image}
SCRIPT = Path(sys.executable).parent / 'depth_estimation_sim_camera'


def stamp_of(message: object) -> tuple[int, int]:
    return message.header.stamp.sec, message.header.stamp.nanosec


def test_sim_camera_publishes_consistent_frames_in_a_ros_graph() -> None:
    seed, rate, frames_per_scene = 3, 4.0, 2
    with ros_context() as context:
        node = Node(NODE_NAME, context=context, parameter_overrides=[
            Parameter('seed', value=seed), Parameter('rate', value=rate),
            Parameter('frames_per_scene', value=frames_per_scene),
            Parameter('width', value=160), Parameter('height', value=120),
            Parameter('max_frames', value=3)])
        camera = SimCamera(node)
        listener = Node('sim_camera_listener', context=context)
        collector = Collector(listener, TOPICS)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        executor.add_node(listener)
        try:
            assert spin_until(executor, lambda: all(
                len(collector.messages[t]) >= 3 for t in TOPICS), timeout=60.0), \
                {t: len(m) for t, m in collector.messages.items()}
        finally:
            executor.shutdown()
            camera.close()
            node.destroy_node()
            listener.destroy_node()
    images, infos, depths = (collector.messages[t] for t in TOPICS)
    assert camera.done and camera.published == 3
    # One stamp per frame on all three topics, increasing, with the optical frame id.
    assert [stamp_of(m) for m in images] == [stamp_of(m) for m in infos] \
        == [stamp_of(m) for m in depths]
    assert len({stamp_of(m) for m in images}) == 3
    assert all(m.header.frame_id == 'camera_color_optical_frame' for m in images + depths)
    # camera_info: K and P are the renderer's intrinsics (checked against the render in
    # test_sim.py), at the image size.
    expected = CameraModel(width=160, height=120).intrinsics()
    for info in infos:
        assert (info.width, info.height) == (160, 120)
        np.testing.assert_allclose(np.asarray(info.k).reshape(3, 3), expected.camera_matrix())
        np.testing.assert_allclose(np.asarray(info.p).reshape(3, 4)[:, :3],
                                   expected.camera_matrix())
    # The pixels are the simulator's frames: room 0 for two frames, then room 1 (1 / rate apart).
    rendered = list(scene_frames(seed, 0, 2, 1.0 / rate, CameraModel(width=160, height=120))) \
        + list(scene_frames(seed, 1, 1, 1.0 / rate, CameraModel(width=160, height=120)))
    for image, depth, frame in zip(images, depths, rendered):
        assert image.encoding == 'rgb8' and depth.encoding == '32FC1'
        np.testing.assert_array_equal(image_to_rgb(image), frame.rgb)
        np.testing.assert_array_equal(image_to_depth(depth), frame.depth)


def test_console_script_stops_after_max_frames_and_rejects_a_bad_rate() -> None:
    if not SCRIPT.exists():
        pytest.skip(f'{SCRIPT} is absent: install the package (pip install -e .)')
    result = subprocess.run(
        [str(SCRIPT), '--ros-args', '-p', 'max_frames:=2', '-p', 'rate:=20.0', '-p',
         'width:=80', '-p', 'height:=60', '-p', 'publish_ground_truth:=false'],
        env=ros_environment(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert 'published 2 frames' in result.stdout + result.stderr
    bad = subprocess.run([str(SCRIPT), '--ros-args', '-p', 'rate:=0.0'],
                         env=ros_environment(), capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and 'rate must be positive' in bad.stderr
