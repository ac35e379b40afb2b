"""Helpers for tests that build a real ROS 2 graph: loopback-only DDS, spinning, sample messages.

Import this module before anything creates an rclpy context: it points Fast DDS at the repository's
loopback-only profile and picks a per-session ROS_DOMAIN_ID, so test traffic never leaves 127.0.0.1
and parallel sessions do not see each other.
"""

from __future__ import annotations

from contextlib import contextmanager
import os
import signal
import subprocess
import time
from typing import Callable, Iterator, Optional

from depth_estimation.tools.processes import loopback_dds_profile

FASTDDS_PROFILE = loopback_dds_profile()
DOMAIN_ID = 1 + os.getpid() % 100  # 1..100, one per test session

os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = str(FASTDDS_PROFILE)
os.environ['ROS_DOMAIN_ID'] = str(DOMAIN_ID)

import rclpy  # noqa: E402  (after the environment above)
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from depth_estimation.ros.conversions import camera_info_from_dict, rgb_to_image  # noqa: E402
from depth_estimation.samples import load_samples  # noqa: E402


def ros_environment() -> dict[str, str]:
    """Environment for a subprocess that uses rclpy: loopback profile and this session's domain."""
    environment = dict(os.environ)
    environment['FASTDDS_DEFAULT_PROFILES_FILE'] = str(FASTDDS_PROFILE)
    environment['ROS_DOMAIN_ID'] = str(DOMAIN_ID)
    environment.setdefault('PYTHONUNBUFFERED', '1')
    return environment


@contextmanager
def ros_context() -> Iterator[Context]:
    """An initialised rclpy context of its own, shut down and destroyed on exit.

    Destroying matters: a context that is only shut down keeps its DDS participant until the
    garbage collector frees it, and a test process holding several of them pushes later
    participants to high participant ids.
    """
    assert os.environ.get('FASTDDS_DEFAULT_PROFILES_FILE') == str(FASTDDS_PROFILE)
    context = Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        rclpy.try_shutdown(context=context)
        context.destroy()


def spin_until(executor: SingleThreadedExecutor, predicate: Callable[[], bool],
               timeout: float = 10.0) -> bool:
    """Spin `executor` until `predicate()` is true or `timeout` seconds pass; its final value."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        executor.spin_once(timeout_sec=0.02)
    return True


def executor_for(context: Context, *nodes: Node) -> SingleThreadedExecutor:
    """A single-threaded executor of `context` spinning `nodes`."""
    executor = SingleThreadedExecutor(context=context)
    for node in nodes:
        executor.add_node(node)
    return executor


def camera_driver(context: Context, name: str, outputs: dict[str, type],
                  image_topic: str = 'image', camera_info_topic: str = 'camera_info') -> tuple:
    """A node that publishes image and camera_info and collects `outputs`, with its executor:
    (node, image publisher, camera_info publisher, Collector, executor)."""
    node = Node(name, context=context)
    image_publisher = node.create_publisher(Image, image_topic, 10)
    info_publisher = node.create_publisher(CameraInfo, camera_info_topic, 10)
    return (node, image_publisher, info_publisher, Collector(node, outputs),
            executor_for(context, node))


def rosout_log(node: Node) -> list:
    """The /rosout lines (rcl_interfaces/Log) `node` receives from now on, as a growing list."""
    from rcl_interfaces.msg import Log

    logs: list = []
    node.create_subscription(Log, '/rosout', logs.append, QoSProfile(
        depth=1000, reliability=ReliabilityPolicy.RELIABLE))
    return logs


def interrupt(process: subprocess.Popen, timeout: float = 15.0) -> str:
    """Stop a console-script process with SIGINT (killed after `timeout`); its captured output."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output


def header(stamp_ns: int, frame_id: str) -> Header:
    """A Header with a stamp given in nanoseconds."""
    message = Header(frame_id=frame_id)
    message.stamp.sec, message.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return message


def sample_frames(encoding: str = 'rgb8') -> list[tuple[str, Image, CameraInfo]]:
    """The shipped samples as (name, Image, CameraInfo); headers are filled in by `stamped`."""
    frames = []
    for sample in load_samples():
        frames.append((sample.name, rgb_to_image(sample.rgb, encoding=encoding),
                       camera_info_from_dict(sample.camera_info)))
    return frames


def stamped(image: Image, info: Optional[CameraInfo], stamp_ns: int,
            frame_id: str) -> tuple[Image, Optional[CameraInfo]]:
    """Give `image` (and `info`) the same header; returns them."""
    image.header = header(stamp_ns, frame_id)
    if info is not None:
        info.header = header(stamp_ns, frame_id)
    return image, info


class Collector:
    """Subscribes a node to topics and keeps every message received, per topic."""

    def __init__(self, node: Node, topics: dict[str, type], qos_depth: int = 10) -> None:
        self.messages: dict[str, list] = {topic: [] for topic in topics}
        self.subscriptions = [
            node.create_subscription(message_type, topic,
                                     lambda msg, topic=topic: self.messages[topic].append(msg),
                                     qos_depth)
            for topic, message_type in topics.items()]

    def with_stamp(self, topic: str, stamp_ns: int) -> list:
        sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
        return [m for m in self.messages[topic]
                if m.header.stamp.sec == sec and m.header.stamp.nanosec == nanosec]
