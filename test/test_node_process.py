"""The node started by its console script in a subprocess answers frames from this process."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from ros_graph import (camera_driver, FASTDDS_PROFILE, interrupt, ros_context, ros_environment,
                       sample_frames, spin_until, stamped)

from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: I100

from depth_estimation.ros.conversions import rgb_to_image

pytestmark = pytest.mark.ros

NODE_SCRIPT = Path(sys.executable).parent / 'depth_estimation_node'
OUTPUTS = {'depth/image': Image, 'depth/camera_info': CameraInfo, 'points': PointCloud2}


def node_command(*parameters: str) -> list[str]:
    if not NODE_SCRIPT.exists():
        pytest.skip(f'{NODE_SCRIPT} is absent: install the package (pip install -e .)')
    arguments = [NODE_SCRIPT.as_posix(), '--ros-args']
    for parameter in parameters:
        arguments += ['-p', parameter]
    return arguments


def half_size(image: Image) -> Image:
    """The same bgr8 image at half resolution (keeps a 640x480 frame under 512 KB)."""
    pixels = np.frombuffer(image.data, np.uint8).reshape(image.height, image.width, 3)
    half = cv2.resize(pixels, (image.width // 2, image.height // 2), interpolation=cv2.INTER_AREA)
    return rgb_to_image(np.ascontiguousarray(half[..., ::-1]), encoding='bgr8')


@pytest.mark.parametrize('full_size', [False, True], ids=['half_size', 'full_size'])
def test_console_script_node_answers_frames(tiny_onnx, full_size: bool) -> None:
    if full_size and 'segment_size' not in FASTDDS_PROFILE.read_text():
        pytest.skip('the loopback Fast DDS profile keeps the 512 KB default SHM segment: '
                    'best-effort images larger than that (640x480 rgb8) are dropped between '
                    'processes; add <segment_size> to its SHM transport')
    command = node_command(f'model_path:={tiny_onnx}', 'num_threads:=1')
    process = subprocess.Popen(command, env=ros_environment(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        with ros_context() as context:
            driver, image_publisher, info_publisher, collector, executor = camera_driver(
                context, 'process_test_driver', OUTPUTS)
            assert spin_until(executor, lambda: (
                image_publisher.get_subscription_count() >= 1
                and info_publisher.get_subscription_count() >= 1
                and all(s.get_publisher_count() >= 1 for s in collector.subscriptions)),
                timeout=60.0), 'the node process did not come up'
            for index, (name, image, info) in enumerate(sample_frames('bgr8')):
                if not full_size:
                    image = half_size(image)  # camera_info stays 640x480: the node scales it
                stamp_ns = 2_000_000_000 + index * 1_000_000
                image, info = stamped(image, info, stamp_ns, 'camera_optical_frame')

                def answered() -> bool:
                    return all(collector.with_stamp(topic, stamp_ns) for topic in OUTPUTS)

                # The node subscribes best effort (sensor-data QoS, like camera drivers), so a
                # message may be lost, above all on a loaded machine; a camera would send the next
                # frame. Send this stamped frame again each second until it is answered.
                deadline = time.monotonic() + 30.0
                while not answered() and time.monotonic() < deadline:
                    info_publisher.publish(info)
                    spin_until(executor, lambda: False, timeout=0.1)
                    image_publisher.publish(image)
                    spin_until(executor, answered, timeout=1.0)
                assert answered(), f'no complete answer to {name} within 30 s'
                depth = collector.with_stamp('depth/image', stamp_ns)[0]
                assert depth.encoding == '32FC1'
                assert depth.header.frame_id == 'camera_optical_frame'
                cloud = collector.with_stamp('points', stamp_ns)[0]
                assert (cloud.height, cloud.width) == (image.height, image.width)
                depth_info = collector.with_stamp('depth/camera_info', stamp_ns)[0]
                assert (depth_info.width, depth_info.height) == (image.width, image.height)
                scale = image.width / info.width
                assert depth_info.p[0] == pytest.approx(info.p[0] * scale)
                assert depth_info.p[2] == pytest.approx((info.p[2] + 0.5) * scale - 0.5)
            executor.shutdown()
            driver.destroy_node()
        assert process.poll() is None, 'the node exited while serving'
    finally:
        output = interrupt(process)
    assert process.returncode == 0, output
    assert 'frames processed' in output


def test_console_script_fails_clearly_without_a_model(tmp_path) -> None:
    absent = tmp_path / 'absent.onnx'
    result = subprocess.run(node_command(f'model_path:={absent}'), env=ros_environment(),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert 'cannot load model' in result.stderr + result.stdout


def test_lifecycle_console_script_refuses_a_bad_model_at_configure(tmp_path) -> None:
    script = NODE_SCRIPT.with_name('depth_estimation_lifecycle_node')
    if not script.exists():
        pytest.skip(f'{script} is absent: install the package (pip install -e .)')
    absent = tmp_path / 'absent.onnx'
    result = subprocess.run([str(script), '--ros-args', '-p', f'model_path:={absent}', '-p',
                             'autostart:=true'], env=ros_environment(), capture_output=True,
                            text=True, timeout=30)
    output = result.stderr + result.stdout
    assert result.returncode == 1, output
    assert 'configure failed' in output and 'cannot load model' in output
