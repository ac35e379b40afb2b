"""The player: sources (folder, video, ROS 1 bag, rosbag2 mcap/db3), pacing, and the real RealSense
D435 recording played through the node by the `depth_estimation_player` console script."""

from __future__ import annotations

from pathlib import Path
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from conftest import require_shared, SHARED_DATA
import ros_graph  # noqa: F401,I100  (sets the loopback DDS environment before rclpy starts)
from ros_graph import Collector, interrupt, ros_context, ros_environment, spin_until

from rclpy.executors import SingleThreadedExecutor  # noqa: I100
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from depth_estimation.ros.conversions import image_to_depth, image_to_rgb
from depth_estimation.ros.node import DepthEstimationNode
from depth_estimation.tools.player import (BagSource, choose_topics, FolderSource, open_source,
                                           play, PlayerError, SourceFrame, VideoSource)

pytestmark = pytest.mark.ros

REALSENSE_BAG = SHARED_DATA / 'realsense_librealsense_bag' / 'single_depth_color_640x480.bag'
PLAYER_SCRIPT = Path(sys.executable).parent / 'depth_estimation_player'
# From the bag itself (its colour CameraInfo; MANIFEST.md): K, with P all zeros.
REALSENSE_FX, REALSENSE_CX = 613.2037, 319.9388


def convert_bag(source: Path, destination: Path, storage: str) -> Path:
    """ROS 1 bag -> rosbag2 folder with rosbags' converter API (what rosbags-convert runs)."""
    from rosbags.convert import convert

    convert([source], destination, storage, 9, None, 'none', None, None, [], [], [], [])
    return destination


def test_choose_topics_prefers_colour_and_the_nearest_camera_info() -> None:
    connections = [('/cam/depth/image_raw', 'sensor_msgs/msg/Image'),
                   ('/cam/depth/camera_info', 'sensor_msgs/msg/CameraInfo'),
                   ('/cam/color/image_raw', 'sensor_msgs/msg/Image'),
                   ('/cam/color/camera_info', 'sensor_msgs/msg/CameraInfo'),
                   ('/tf', 'tf2_msgs/msg/TFMessage')]
    assert choose_topics(connections) == ('/cam/color/image_raw', '/cam/color/camera_info')
    assert choose_topics(connections, '/cam/depth/image_raw') == (
        '/cam/depth/image_raw', '/cam/depth/camera_info')
    with pytest.raises(PlayerError, match='not an image topic'):
        choose_topics(connections, '/tf')
    with pytest.raises(PlayerError, match='no sensor_msgs'):
        choose_topics([('/tf', 'tf2_msgs/msg/TFMessage')])


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_play_follows_recorded_time_rate_fps_and_loop() -> None:
    frames = [SourceFrame(t, None, None) for t in (0, 100_000_000, 300_000_000)]  # 0, .1, .3 s
    for kwargs, expected in (
            ({}, [0.0, 0.1, 0.3]),
            ({'rate': 2.0}, [0.0, 0.05, 0.15]),
            ({'fps': 10.0}, [0.0, 0.1, 0.2]),
            ({'loop': True, 'max_frames': 5}, [0.0, 0.1, 0.3, 0.4, 0.5])):
        clock = FakeClock()
        times = []
        count = play(frames, lambda frame: times.append(clock.now - 100.0), clock=clock,
                     sleep=clock.sleep, **kwargs)
        assert count == len(expected)
        np.testing.assert_allclose(times, expected, atol=1e-9, err_msg=str(kwargs))
    with pytest.raises(PlayerError, match='no frames'):
        play([], lambda frame: None)


def test_folder_and_video_sources(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    folder = tmp_path / 'frames'
    folder.mkdir()
    images = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(3)]
    for index, rgb in enumerate(images):
        cv2.imwrite(str(folder / f'{index:03d}.png'), rgb[..., ::-1])
    (folder / 'notes.txt').write_text('not an image')
    source = open_source(folder, fps=20.0)
    assert isinstance(source, FolderSource)
    frames = list(source)
    assert [f.time_ns for f in frames] == [0, 50_000_000, 100_000_000]
    for frame, rgb in zip(frames, images):
        np.testing.assert_array_equal(image_to_rgb(frame.image), rgb)
        assert frame.image.header.frame_id == 'camera_optical_frame'

    video = tmp_path / 'clip.avi'
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]  # RGB; flat, so JPEG keeps them
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 15.0, (64, 48))
    assert writer.isOpened()
    for colour in colours:
        writer.write(np.full((48, 64, 3), colour[::-1], np.uint8))
    writer.release()
    source = open_source(video)
    assert isinstance(source, VideoSource) and source.fps == pytest.approx(15.0)
    frames = list(source)
    assert len(frames) == 3 and frames[1].time_ns == pytest.approx(1e9 / 15, abs=1)
    for frame, colour in zip(frames, colours):
        mean = image_to_rgb(frame.image).reshape(-1, 3).mean(axis=0)
        np.testing.assert_allclose(mean, colour, atol=12)
    with pytest.raises(PlayerError, match='cannot tell'):
        open_source(tmp_path / 'frames' / 'notes.txt')


def test_realsense_bag_read_directly_and_after_conversion(tmp_path: Path) -> None:
    bag = require_shared(REALSENSE_BAG)
    direct = list(BagSource(bag))
    assert len(direct) == 1
    for storage in ('mcap', 'sqlite3'):
        converted = convert_bag(bag, tmp_path / storage, storage)
        source = open_source(converted)
        assert source.image_topic == '/device_0/sensor_1/Color_0/image/data'
        frames = list(source)
        assert len(frames) == 1
        image, info = frames[0].image, frames[0].camera_info
        assert (image.encoding, image.width, image.height) == ('rgb8', 640, 480)
        assert image.header.stamp == direct[0].image.header.stamp
        np.testing.assert_array_equal(image_to_rgb(image), image_to_rgb(direct[0].image))
        assert info.k[0] == pytest.approx(REALSENSE_FX) and not any(info.p)  # ROS 1 K -> k
        storage_file = next(converted.glob('*.mcap' if storage == 'mcap' else '*.db3'))
        assert len(list(open_source(storage_file))) == 1  # the file inside the folder works too


def test_realsense_recording_plays_through_the_node(tiny_onnx, tmp_path: Path) -> None:
    """The real D435 frame, converted to a rosbag2 MCAP, played by the console script in its own
    process, answered by the node: depth, depth camera_info (from K: the bag's P is zero) and
    points."""
    bag = convert_bag(require_shared(REALSENSE_BAG), tmp_path / 'realsense', 'mcap')
    if not PLAYER_SCRIPT.exists():
        pytest.skip(f'{PLAYER_SCRIPT} is absent: install the package (pip install -e .)')
    outputs = {'depth/image': Image, 'depth/camera_info': CameraInfo, 'points': PointCloud2}
    with ros_context() as context:
        node = DepthEstimationNode(context=context, parameter_overrides=[
            Parameter('model_path', value=str(tiny_onnx)), Parameter('num_threads', value=1)])
        driver = Node('player_test_driver', context=context)
        collector = Collector(driver, outputs)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        executor.add_node(driver)
        player = subprocess.Popen(
            [str(PLAYER_SCRIPT), str(bag), '--loop', '--fps', '4', '--reliable',
             '--frame-id', 'camera_color_optical_frame', '--wait-for-subscriber', '20'],
            env=ros_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            def complete() -> bool:
                depth_stamps = {(m.header.stamp.sec, m.header.stamp.nanosec)
                                for m in collector.messages['depth/image']}
                return any((m.header.stamp.sec, m.header.stamp.nanosec) in depth_stamps
                           for m in collector.messages['points'])

            assert spin_until(executor, complete, timeout=60.0), 'no answer to the recording'
        finally:
            log = interrupt(player)
            executor.shutdown()
            node.destroy_node()
            driver.destroy_node()
    assert player.returncode == 0, log
    assert 'Color_0/image/data' in log and 'published' in log
    cloud = collector.messages['points'][-1]
    stamp = cloud.header.stamp
    depth_msg = next(m for m in collector.messages['depth/image'] if m.header.stamp == stamp)
    info = next(m for m in collector.messages['depth/camera_info'] if m.header.stamp == stamp)
    assert (depth_msg.width, depth_msg.height) == (640, 480)
    assert depth_msg.header.frame_id == 'camera_color_optical_frame'
    assert np.isfinite(image_to_depth(depth_msg)).mean() > 0.99
    assert info.p[0] == pytest.approx(REALSENSE_FX, rel=1e-6)
    assert info.p[2] == pytest.approx(REALSENSE_CX, rel=1e-6)
    assert (cloud.width, cloud.height) == (640, 480)
    assert time.time() - stamp.sec < 120, 'restamped with the current time'


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a shell's background job inherits it


@pytest.mark.parametrize('inherited', ['default', 'ignored'])
def test_ctrl_c_while_waiting_for_a_subscriber_exits_cleanly(
        tmp_path: Path, inherited: str) -> None:
    """Also when the player is started with SIGINT ignored (a background job of a shell)."""
    if not PLAYER_SCRIPT.exists():
        pytest.skip(f'{PLAYER_SCRIPT} is absent: install the package (pip install -e .)')
    cv2.imwrite(str(tmp_path / 'frame.png'), np.full((48, 64, 3), 128, np.uint8))
    player = subprocess.Popen(
        [str(PLAYER_SCRIPT), str(tmp_path), '--wait-for-subscriber', '120', '--ros-args', '-r',
         'image:=nobody_listens'],
        env=ros_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=_ignore_sigint if inherited == 'ignored' else None)
    lines = []
    try:
        for line in player.stdout:  # the player logs before it starts waiting
            lines.append(line)
            if 'waiting up to 120 s for a subscriber on /nobody_listens' in line:
                break
    finally:
        log = ''.join(lines) + interrupt(player)
    assert player.returncode == 0, log
    assert 'published 0 frames' in log and 'Traceback' not in log
