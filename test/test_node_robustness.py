"""The node survives what real robots and process supervisors do, in a real rclpy graph.

- A camera that changes resolution (binning, a region of interest, another mode) sends valid
  frames: each one is answered on its own, at its own size, with a matching depth camera_info.
- A 3840x2160 rgb8 frame sent alone from another process reaches the console-script node through
  the loopback Fast DDS profile and is answered (reliable and best-effort writers); the time and
  the node's peak RSS are printed (run with -s), not asserted.
- A model that gives no valid depth (finite but <= 0) is refused at configure with its reason;
  /diagnostics reports ERROR while frames carry no valid depth and OK again after.
- SIGINT and SIGTERM stop the node even when it was started with them ignored; bad `--ros-args`
  give one error line; parameters the node does not declare are named in one warning.

The models are tiny ONNX graphs (onnx_graphs.py) with the real input/output names and metadata.
"""

from __future__ import annotations

from pathlib import Path
import signal
import subprocess
import sys
import time

import cv2
from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
from onnx_graphs import brightness_depth_model, constant_depth_model
import pytest
import ros_graph  # noqa: F401,I100  (sets the loopback DDS environment before rclpy starts)
from ros_graph import (Collector, FASTDDS_PROFILE, header, interrupt, ros_context,
                       ros_environment, spin_until)

from rclpy.executors import SingleThreadedExecutor  # noqa: I100
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from depth_estimation.pipeline.stats import ERROR, OK, ValidDepthMonitor
from depth_estimation.ros.conversions import rgb_to_image
from depth_estimation.ros.node import DepthEstimationNode, ModelLoadError
from depth_estimation.samples import load_samples

pytestmark = pytest.mark.ros

NODE_NAME = 'robustness_depth_node'
NODE_SCRIPT = Path(sys.executable).parent / 'depth_estimation_node'
FRAME_ID = 'camera_color_optical_frame'
RELIABILITY = {'reliable': ReliabilityPolicy.RELIABLE,
               'best_effort': ReliabilityPolicy.BEST_EFFORT}


@pytest.fixture(scope='module')
def brightness_model(tmp_path_factory) -> Path:
    return brightness_depth_model(tmp_path_factory.mktemp('models') / 'brightness.onnx')


def camera_frame(width: int, height: int, stamp_ns: int,
                 level: int | None = None) -> tuple[Image, CameraInfo]:
    """The sample image resized to width x height (or one grey `level`) and its camera_info."""
    sample = load_samples()[0]
    rgb = (np.full((height, width, 3), level, np.uint8) if level is not None
           else cv2.resize(sample.rgb, (width, height), interpolation=cv2.INTER_AREA))
    image = rgb_to_image(np.ascontiguousarray(rgb))
    fx, fy = 600.0 * width / 640, 600.0 * height / 480
    cx, cy = (width - 1) / 2, (height - 1) / 2
    info = CameraInfo(width=width, height=height, k=[fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0],
                      p=[fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0])
    image.header = info.header = header(stamp_ns, FRAME_ID)
    return image, info


class Graph:
    """The plain node and a driver (reliable publishers, output collector) on one executor."""

    def __init__(self, context, model: Path, **parameters) -> None:
        overrides = [Parameter('model_path', value=str(model)), Parameter('num_threads', value=1)]
        overrides += [Parameter(name, value=value) for name, value in parameters.items()]
        self.node = DepthEstimationNode(NODE_NAME, context=context, parameter_overrides=overrides)
        self.driver = Node('robustness_driver', context=context)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.image_publisher = self.driver.create_publisher(Image, 'image', reliable)
        self.info_publisher = self.driver.create_publisher(CameraInfo, 'camera_info', reliable)
        self.collector = Collector(self.driver, {'depth/image': Image,
                                                 'depth/camera_info': CameraInfo,
                                                 '/diagnostics': DiagnosticArray})
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.driver)
        assert spin_until(self.executor, lambda: (
            self.image_publisher.get_subscription_count() >= 1
            and self.info_publisher.get_subscription_count() >= 1
            and all(s.get_publisher_count() >= 1 for s in self.collector.subscriptions)))

    def answer(self, image: Image, info: CameraInfo | None = None) -> tuple[Image, CameraInfo]:
        """Send one frame (again only if the node never received it); its depth and info."""
        stamp_ns = image.header.stamp.sec * 1_000_000_000 + image.header.stamp.nanosec
        for _ in range(3):  # the node subscribes best effort: resend only what it did not get
            received = self.node.statistics.received
            if info is not None:
                self.info_publisher.publish(info)
                spin_until(self.executor, lambda: False, timeout=0.05)
            self.image_publisher.publish(image)
            if spin_until(self.executor, lambda: self.node.statistics.received > received, 5.0):
                break
        topics = ['depth/image'] + (['depth/camera_info'] if info is not None else [])
        assert spin_until(self.executor, lambda: all(
            self.collector.with_stamp(topic, stamp_ns) for topic in topics), timeout=20.0), (
            f'no answer to the {image.width}x{image.height} frame; skipped: '
            f'{dict(self.node.statistics.skipped_by_reason)}')
        depth = self.collector.with_stamp('depth/image', stamp_ns)[0]
        return depth, (self.collector.with_stamp('depth/camera_info', stamp_ns) or [None])[0]

    def status(self, level: int, fragment: str) -> bool:
        """Spin until the newest /diagnostics status has `level` and `fragment` in its message."""
        def newest() -> bool:
            arrays = self.collector.messages['/diagnostics']
            status = arrays[-1].status[0] if arrays else None
            return status is not None and status.level == bytes([level]) \
                and fragment in status.message
        return spin_until(self.executor, newest, timeout=10.0)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.driver.destroy_node()


def test_each_new_size_is_answered_on_its_own(brightness_model) -> None:
    sizes = [(640, 480), (641, 481), (320, 240), (640, 480), (320, 240), (641, 481)]
    with ros_context() as context:
        graph = Graph(context, brightness_model, temporal_filter=True)
        try:
            for index, (width, height) in enumerate(sizes):
                image, info = camera_frame(width, height, 1_000_000_000 + index * 40_000_000)
                depth, depth_info = graph.answer(image, info)
                assert (depth.width, depth.height) == (width, height)
                assert (depth_info.width, depth_info.height) == (width, height)
                np.testing.assert_allclose(depth_info.k, info.k)
                values = np.frombuffer(depth.data, np.float32)
                assert np.isfinite(values).mean() > 0.9
            assert graph.node.statistics.skipped == 0
            assert graph.node.pipeline.size_changes == len(sizes) - 1
            assert graph.node.statistics.size_changes == len(sizes) - 1
        finally:
            graph.close()


def test_diagnostics_report_error_while_frames_carry_no_valid_depth(brightness_model) -> None:
    with ros_context() as context:
        graph = Graph(context, brightness_model, diagnostics_period=0.2, fx=500.0)
        stamp_ns = 3_000_000_000
        try:
            for level, frames, status, fragment in ((255, 2, OK, 'running'),
                                                    (0, 5, ERROR, 'no valid depth'),
                                                    (255, 1, OK, 'running')):
                for _ in range(frames):  # white: about 2 m; black: -0.05 m, no valid depth
                    stamp_ns += 40_000_000
                    depth, _ = graph.answer(camera_frame(320, 240, stamp_ns, level)[0])
                    values = np.frombuffer(depth.data, np.float32)
                    assert np.isfinite(values).all() if level else np.isnan(values).all()
                assert graph.status(status, fragment), \
                    graph.collector.messages['/diagnostics'][-1].status[0].message
        finally:
            graph.close()
    monitor = ValidDepthMonitor(frames=3)
    for share in (1.0, 0.0, 0.0):
        monitor.add(share)
    assert monitor.problem() is None  # one of the last three frames had depth
    monitor.add(0.0)
    assert 'the last 3 frames had 0.0%' in monitor.problem()


def node_command(*arguments: str) -> list[str]:
    if not NODE_SCRIPT.exists():
        pytest.skip(f'{NODE_SCRIPT} is absent: install the package (pip install -e .)')
    return [NODE_SCRIPT.as_posix(), *arguments]


def test_a_model_without_valid_depth_is_refused(tmp_path) -> None:
    model = constant_depth_model(tmp_path / 'negative.onnx', -1.0)
    with ros_context() as context:
        with pytest.raises(ModelLoadError, match='valid depth .* for 0.0% of the sample frame'):
            DepthEstimationNode(NODE_NAME, context=context, parameter_overrides=[
                Parameter('model_path', value=str(model))])
    result = subprocess.run(node_command('--ros-args', '-p', f'model_path:={model}'),
                            env=ros_environment(), capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert 'configure failed' in output and 'its output there: -1 .. -1 m' in output
    assert 'Traceback' not in output


def ignore_stop_signals() -> None:
    """What a background shell or some supervisors hand a child: SIGINT (and SIGTERM) ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


@pytest.mark.parametrize('stop', [signal.SIGINT, signal.SIGTERM], ids=['sigint', 'sigterm'])
def test_stop_signals_work_when_inherited_ignored_and_unknown_parameters_are_named(
        brightness_model, tmp_path, stop: signal.Signals) -> None:
    params = tmp_path / 'params.yaml'
    params.write_text('depth_estimation_node:\n  ros__parameters:\n    num_threads: 1\n'
                      '    temporal_filtr: true\n')
    command = node_command('--ros-args', '-p', f'model_path:={brightness_model}', '-p',
                           'image_transprot:=compressed', '--params-file', str(params))
    process = subprocess.Popen(command, env=ros_environment(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, preexec_fn=ignore_stop_signals)
    output = ''
    try:
        with ros_context() as context:
            driver = Node('signal_driver', context=context)
            publisher = driver.create_publisher(Image, 'image', 10)
            executor = SingleThreadedExecutor(context=context)
            executor.add_node(driver)
            up = spin_until(executor, lambda: publisher.get_subscription_count() >= 1, 60.0)
            executor.shutdown()
            driver.destroy_node()
        assert up, 'the node process did not come up'
        process.send_signal(stop)
        output, _ = process.communicate(timeout=20)
    finally:
        output = interrupt(process, timeout=1.0) if process.poll() is None else output
    assert process.returncode == 0, output
    assert 'frames processed' in output  # the summary: it stopped cleanly
    warnings = [line for line in output.splitlines() if 'unknown parameters' in line]
    assert len(warnings) == 1 and warnings[0].endswith('image_transprot, temporal_filtr'), output


@pytest.mark.parametrize('arguments, reason', [
    (['--ros-args', '-p'], "Couldn't parse trailing -p flag"),
    (['--ros-args', '-r', 'image'], "Couldn't parse remap rule: '-r image'")])
def test_bad_ros_arguments_give_one_error_line(arguments, reason) -> None:
    result = subprocess.run(node_command(*arguments), env=ros_environment(), capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2, result.stdout + result.stderr
    assert 'Traceback' not in result.stderr + result.stdout
    ours = [line for line in result.stderr.splitlines() if 'invalid arguments' in line]
    assert len(ours) == 1 and reason in ours[0] and '.c:' not in ours[0], result.stderr


def peak_rss_mib(pid: int) -> float:
    """VmHWM of a process (its peak resident set) in MiB."""
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) / 1024
    return float('nan')


@pytest.mark.parametrize('reliability', sorted(RELIABILITY))
def test_a_single_4k_frame_from_another_process_is_answered(brightness_model,
                                                            reliability: str) -> None:
    if 'segment_size' not in FASTDDS_PROFILE.read_text():
        pytest.skip('the loopback Fast DDS profile keeps the 512 KB default SHM segment')
    command = node_command('--ros-args', '-p', f'model_path:={brightness_model}', '-p',
                           'num_threads:=1')
    process = subprocess.Popen(command, env=ros_environment(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        with ros_context() as context:
            driver = Node('large_frame_driver', context=context)
            publisher = driver.create_publisher(Image, 'image', QoSProfile(
                depth=1, reliability=RELIABILITY[reliability]))
            collector = Collector(driver, {'depth/image': Image}, qos_depth=2)
            executor = SingleThreadedExecutor(context=context)
            executor.add_node(driver)
            assert spin_until(executor, lambda: publisher.get_subscription_count() >= 1 and (
                collector.subscriptions[0].get_publisher_count() >= 1), 60.0), 'no node process'
            # A 640x480 frame first (answered, resent if lost), then the 4K frame once.
            small, _ = camera_frame(640, 480, 5_000_000_000)
            for _ in range(5):
                publisher.publish(small)
                if spin_until(executor, lambda: collector.messages['depth/image'], 5.0):
                    break
            assert collector.messages['depth/image'], 'the 640x480 frame was not answered'
            large, _ = camera_frame(3840, 2160, 6_000_000_000)
            sent = time.perf_counter()
            publisher.publish(large)
            answered = spin_until(executor, lambda: collector.with_stamp(
                'depth/image', 6_000_000_000), timeout=60.0)
            seconds = time.perf_counter() - sent
            rss = peak_rss_mib(process.pid)
            executor.shutdown()
            driver.destroy_node()
        assert answered, f'the single 4K frame ({reliability} writer) was not answered'
        depth = collector.with_stamp('depth/image', 6_000_000_000)[0]
        assert (depth.width, depth.height) == (3840, 2160)
        print(f'\n4K rgb8 frame, {reliability} writer: depth back in {seconds:.2f} s; node peak '
              f'RSS {rss:.0f} MiB')
    finally:
        output = interrupt(process)
    assert process.returncode == 0, output
