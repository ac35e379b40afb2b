"""Recording the node's outputs to an MCAP rosbag2 that ros2 bag and Foxglove can read.

Read back three independent ways: rosbags' rosbag2 reader (what `ros2 bag info` checks: the
metadata and storage), the `mcap` library with `mcap_ros2`'s decoder, which decodes from the schema
text alone as Foxglove does, and rclpy's own deserializer. The RIHS01 type hashes in the bag must
equal the ones the live publishers advertise.
"""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest
import ros_graph  # noqa: F401,I100  (sets the loopback DDS environment before rclpy starts)
from ros_graph import Collector, ros_context, ros_environment, sample_frames, spin_until, stamped

from diagnostic_msgs.msg import DiagnosticArray  # noqa: I100
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from depth_estimation.ros.conversions import image_to_depth
from depth_estimation.ros.node import DepthEstimationNode
from depth_estimation.tools.recorder import McapRecorder

pytestmark = pytest.mark.ros

TOPICS = {'/depth/image': Image, '/depth/camera_info': CameraInfo, '/points': PointCloud2,
          '/diagnostics': DiagnosticArray}
RECORDER_SCRIPT = Path(sys.executable).parent / 'depth_estimation_recorder'


def test_outputs_recorded_to_mcap_readable_like_ros2_bag_and_foxglove(tiny_onnx,
                                                                      tmp_path: Path) -> None:
    output = tmp_path / 'depth_bag'
    frames = sample_frames()
    with ros_context() as context:
        node = DepthEstimationNode(context=context, parameter_overrides=[
            Parameter('model_path', value=str(tiny_onnx)), Parameter('num_threads', value=1),
            Parameter('diagnostics_period', value=0.2)])
        driver = Node('recording_driver', context=context)
        image_publisher = driver.create_publisher(Image, 'image', 10)
        info_publisher = driver.create_publisher(CameraInfo, 'camera_info', 10)
        collector = Collector(driver, {topic.lstrip('/'): kind for topic, kind in TOPICS.items()
                                       if topic != '/diagnostics'})
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        executor.add_node(driver)
        recorder = McapRecorder(driver, output, list(TOPICS))
        advertised = {}
        try:

            def subscribed() -> bool:
                recorder.poll()  # subscribes to the topics that have publishers now
                return all(topic in recorder.counts for topic in TOPICS)

            assert spin_until(executor, subscribed), recorder.counts
            advertised = {topic: str(driver.get_publishers_info_by_topic(topic)[0].topic_type_hash)
                          for topic in TOPICS}
            assert spin_until(executor, lambda: image_publisher.get_subscription_count() >= 1)
            stamps = []
            for index, (_, image, info) in enumerate(frames):
                stamp_ns = 5_000_000_000 + index * 100_000_000
                image, info = stamped(image, info, stamp_ns, 'camera_color_optical_frame')
                info_publisher.publish(info)
                spin_until(executor, lambda: False, timeout=0.05)
                image_publisher.publish(image)
                assert spin_until(executor, lambda: all(
                    collector.with_stamp(t, stamp_ns) for t in collector.messages), 20.0)
                stamps.append(stamp_ns)
            assert spin_until(executor, lambda: recorder.counts['/points'] == len(frames)
                              and recorder.counts['/diagnostics'] >= 2)
        finally:
            recorder.close()
            executor.shutdown()
            node.destroy_node()
            driver.destroy_node()

    # 1. rosbag2 layout (metadata.yaml + .mcap) through rosbags' rosbag2 reader.
    from rosbags.rosbag2 import Reader

    import yaml

    information = yaml.safe_load((output / 'metadata.yaml').read_text())[
        'rosbag2_bagfile_information']
    assert information['storage_identifier'] == 'mcap' and information['version'] == 9
    assert information['message_count'] == sum(recorder.counts.values())
    with Reader(output) as reader:
        by_topic = {c.topic: c for c in reader.connections}
        assert set(by_topic) == set(TOPICS)
        for topic, message_type in TOPICS.items():
            connection = by_topic[topic]
            package = message_type.__module__.split('.')[0]
            assert connection.msgtype == f'{package}/msg/{message_type.__name__}'
            assert connection.digest == advertised[topic], f'{topic}: RIHS01 differs'
        depth_connection = by_topic['/depth/image']
        recorded = [deserialize_message(raw, Image) for _, _, raw in
                    reader.messages(connections=[depth_connection])]
    assert len(recorded) == len(frames)
    for message in recorded:
        stamp_ns = message.header.stamp.sec * 1_000_000_000 + message.header.stamp.nanosec
        live = collector.with_stamp('depth/image', stamp_ns)[0]
        np.testing.assert_array_equal(image_to_depth(message), image_to_depth(live))

    # 2. MCAP decoded from its schemas alone, as Foxglove does.
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    mcap_file, = output.glob('*.mcap')
    seen = {}
    with open(mcap_file, 'rb') as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        for schema, channel, message, decoded in reader.iter_decoded_messages():
            assert schema.encoding == 'ros2msg' and channel.message_encoding == 'cdr'
            seen.setdefault(channel.topic, []).append(decoded)
    assert {t: len(m) for t, m in seen.items() if t != '/diagnostics'} == {
        '/depth/image': len(frames), '/depth/camera_info': len(frames),
        '/points': len(frames)}
    first_depth = seen['/depth/image'][0]
    assert (first_depth.encoding, first_depth.width) == ('32FC1', recorded[0].width)
    assert bytes(first_depth.data) == bytes(recorded[0].data)
    cloud = seen['/points'][0]
    assert [f.name for f in cloud.fields] == ['x', 'y', 'z', 'rgb'] and cloud.is_dense is False
    status = seen['/diagnostics'][-1].status[0]
    assert {v.key for v in status.values} >= {'latency p99 (ms)', 'artifact_sha256'}


def test_recorder_console_script_writes_a_bag(tmp_path: Path) -> None:
    if not RECORDER_SCRIPT.exists():
        pytest.skip(f'{RECORDER_SCRIPT} is absent: install the package (pip install -e .)')
    output = tmp_path / 'empty_bag'
    result = subprocess.run([str(RECORDER_SCRIPT), '-o', str(output), '--duration', '1',
                             '--topics', 'depth/image'], env=ros_environment(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (output / 'metadata.yaml').is_file() and list(output.glob('*.mcap'))
    again = subprocess.run([str(RECORDER_SCRIPT), '-o', str(output), '--duration', '1'],
                           env=ros_environment(), capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and 'exists' in again.stderr
