"""What camera drivers send, through the node on a real rclpy graph: every encoding, compressed
images (and corrupt ones), a region of interest, binning, NaN in K or P, an empty frame_id; and
between processes, a USB camera's YUYV stream and the player's compressed bag through the
console-script node.

Each answer is compared with the rgb8 answer: the same pixels through `DepthPipeline` in this
process (the node's own per-frame code, with the node's settings), so a lossless encoding must give
the same depth exactly and a lossy one the same depth within the conversion's error measured in
docs/install.md (the bounds of test_image_encodings.py).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
import subprocess
import sys
import time
from typing import Iterator, Optional

import cv2
import numpy as np
import pytest
import ros_graph  # noqa: F401,I100  (sets the loopback DDS environment before rclpy starts)
from ros_graph import (camera_driver, Collector, executor_for, header, interrupt, ros_context,
                       ros_environment, rosout_log, spin_until)
from test_image_encodings import assert_depth_within, encode, expected, MODEL, RESOURCES

from rcl_interfaces.msg import Log  # noqa: I100
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, RegionOfInterest

from depth_estimation.geometry import unpack_cloud
from depth_estimation.pipeline import DepthPipeline
from depth_estimation.ros.conversions import image_to_compressed, image_to_depth, rgb_to_image
from depth_estimation.ros.node import DepthEstimationNode
from depth_estimation.ros.parameters import NodeSettings

pytestmark = pytest.mark.ros

FRAME_ID = 'camera_color_optical_frame'
SCRIPTS = Path(sys.executable).parent
OUTPUTS = {'depth/image': Image, 'depth/camera_info': CameraInfo, 'points': PointCloud2}
LOSSLESS = ('rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', '8UC1', '8UC3')
LOSSY = ('yuv422_yuy2', 'yuv422', 'nv12', 'nv21', 'bayer_rggb8', 'bayer_bggr8', 'bayer_gbrg8',
         'bayer_grbg8')
BYTES_PER_PIXEL = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1, '8UC1': 1, '8UC3': 3,
                   'yuv422_yuy2': 2, 'yuv422': 2, 'nv12': 1, 'nv21': 1}
# A 640x480 calibration as a RealSense D435 colour camera_info (fx 613.2, cx 319.9).
D435_K = [613.2, 0.0, 319.9, 0.0, 613.4, 239.1, 0.0, 0.0, 1.0]
D435_P = [613.2, 0.0, 319.9, 0.0, 0.0, 613.4, 239.1, 0.0, 0.0, 0.0, 1.0, 0.0]


@pytest.fixture(scope='module')
def rgb() -> np.ndarray:
    bgr = cv2.imread(str(RESOURCES / 'samples' / 'tum_color.png'), cv2.IMREAD_COLOR)
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))  # (480, 640, 3) uint8


def d435_info(**fields) -> CameraInfo:
    return CameraInfo(width=640, height=480, distortion_model='plumb_bob', d=[0.0] * 5,
                      k=list(D435_K), p=list(D435_P), **fields)


def encoded_image(rgb: np.ndarray, encoding: str, is_bigendian: bool = False) -> Image:
    """The frame as a driver publishes it in `encoding` (rows packed, no padding)."""
    rows = encode(rgb, encoding)  # (data rows, row bytes)
    height, width = rgb.shape[:2]
    return Image(height=height, width=width, encoding=encoding, is_bigendian=is_bigendian,
                 step=int(rows.shape[1]), data=rows.tobytes())


def compressed_image(rgb: np.ndarray, codec: str) -> CompressedImage:
    """What image_transport's compressed plugin publishes for a bgr8 image."""
    ok, data = cv2.imencode('.jpg' if codec == 'jpeg' else '.png',
                            np.ascontiguousarray(rgb[..., ::-1]))
    assert ok
    return CompressedImage(format=f'bgr8; {codec} compressed bgr8', data=data.tobytes())


def reference_depth(rgb: np.ndarray, settings: NodeSettings) -> np.ndarray:
    """The rgb8 answer: `rgb` through the node's per-frame pipeline in this process."""
    pipeline = DepthPipeline.open(settings)
    try:
        return pipeline.process(rgb, settings).depth  # (H, W) metres, REP 117 +-Inf kept
    finally:
        pipeline.close()


def assert_same_depth(depth: np.ndarray, reference: np.ndarray, exact: bool, name: str) -> None:
    finite = np.isfinite(depth) & np.isfinite(reference)
    assert finite.mean() > 0.99, name  # a lossy conversion may move a few pixels out of range
    if exact:
        np.testing.assert_array_equal(depth, np.where(np.isnan(reference), np.nan, reference),
                                      err_msg=name)
        return
    assert_depth_within(np.abs(depth[finite] - reference[finite]) / reference[finite], name)


class Graph:
    """The plain node (autostart) and a driver (publishers, output collector, /rosout reader)."""

    def __init__(self, context, name: str, transport: str = 'raw',
                 remap: Optional[str] = None) -> None:
        parameters = [Parameter('model_path', value=str(MODEL)), Parameter('num_threads', value=1),
                      Parameter('image_transport', value=transport)]
        self.name = name
        self.node = DepthEstimationNode(name, context=context, parameter_overrides=parameters,
                                        cli_args=['--ros-args', '-r', f'image:={remap}']
                                        if remap else None)
        self.settings = self.node.settings
        self.driver = Node(f'{name}_driver', context=context)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        image_topic = remap or 'image'
        self.raw_publisher = self.driver.create_publisher(Image, image_topic, reliable)
        self.compressed_publisher = self.driver.create_publisher(
            CompressedImage, f'{image_topic}/compressed', reliable)
        self.image_publisher = (self.compressed_publisher if transport == 'compressed'
                                else self.raw_publisher)
        self.info_publisher = self.driver.create_publisher(CameraInfo, 'camera_info', reliable)
        self.collector = Collector(self.driver, OUTPUTS)
        self.logs: list[Log] = rosout_log(self.driver)
        self.executor = executor_for(context, self.node, self.driver)
        self.stamp_ns = 1_000_000_000
        assert spin_until(self.executor, lambda: (
            self.image_publisher.get_subscription_count() >= 1
            and self.info_publisher.get_subscription_count() >= 1
            and all(s.get_publisher_count() >= 1 for s in self.collector.subscriptions)),
            timeout=20.0), 'the node did not subscribe'

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.driver.destroy_node()

    def stamp(self, message, info: Optional[CameraInfo] = None, frame_id: str = FRAME_ID) -> int:
        self.stamp_ns += 40_000_000
        message.header = header(self.stamp_ns, frame_id)
        if info is not None:
            info.header = header(self.stamp_ns, frame_id)
        return self.stamp_ns

    def answer(self, image, info: Optional[CameraInfo] = None,
               frame_id: str = FRAME_ID) -> dict[str, object]:
        """Publish (info and) image until every output with its stamp came back; the outputs."""
        stamp_ns = self.stamp(image, info, frame_id)

        def answered() -> bool:
            return all(self.collector.with_stamp(topic, stamp_ns) for topic in OUTPUTS)

        deadline = time.monotonic() + 60.0
        while not answered() and time.monotonic() < deadline:
            if info is not None:
                self.info_publisher.publish(info)
                spin_until(self.executor, lambda: False, timeout=0.05)
            self.image_publisher.publish(image)
            spin_until(self.executor, answered, timeout=5.0)
        assert answered(), f'no answer to the frame of stamp {stamp_ns}'
        return {topic: self.collector.with_stamp(topic, stamp_ns)[0] for topic in OUTPUTS}

    def skipped(self, image, reason: str) -> None:
        """Publish a bad image and wait until it is counted as skipped for `reason`."""
        before = self.node.statistics.skipped_by_reason[reason]
        stamp_ns = self.stamp(image)
        self.image_publisher.publish(image)
        assert spin_until(self.executor, lambda: (
            self.node.statistics.skipped_by_reason[reason] == before + 1), timeout=20.0), reason
        assert not self.collector.with_stamp('depth/image', stamp_ns)

    def logged(self, *fragments: str) -> str:
        """The first /rosout line of the node containing every fragment (waits for it)."""
        def find() -> str:
            return next((entry.msg for entry in self.logs if entry.name.endswith(self.name)
                         and all(fragment in entry.msg for fragment in fragments)), '')
        spin_until(self.executor, lambda: bool(find()), timeout=10.0)
        return find()


@contextmanager
def running_graph(name: str, **options: str) -> Iterator[Graph]:
    """A Graph in a ROS context of its own, closed after the block."""
    with ros_context() as context:
        graph = Graph(context, name, **options)
        try:
            yield graph
        finally:
            graph.close()


def test_every_driver_encoding_gives_the_rgb8_answer(rgb: np.ndarray) -> None:
    with running_graph('encodings_depth_node') as graph:
        colour = reference_depth(rgb, graph.settings)
        grey = reference_depth(expected(rgb, 'mono8'), graph.settings)
        cases = [(encoding, False) for encoding in LOSSLESS + LOSSY]
        cases += [('rgb8', True), ('mono8', True), ('bgr8', True)]  # byte order: no meaning
        for encoding, big_endian in cases:
            name = f'{encoding}{" is_bigendian=1" if big_endian else ""}'
            outputs = graph.answer(encoded_image(rgb, encoding, big_endian), d435_info())
            depth = image_to_depth(outputs['depth/image'])  # (480, 640) metres
            reference = grey if encoding in ('mono8', '8UC1') else colour
            assert_same_depth(depth, reference, encoding not in LOSSY, name)
        assert graph.node.statistics.skipped == 0


def test_compressed_transport_on_the_remapped_topic_and_corrupt_frames(rgb: np.ndarray) -> None:
    with running_graph('compressed_depth_node', transport='compressed',
                       remap='/camera/color/image_raw') as graph:
        topics = dict(graph.node.get_subscriber_names_and_types_by_node(
            'compressed_depth_node', ''))
        assert topics['/camera/color/image_raw/compressed'] == [
            'sensor_msgs/msg/CompressedImage']
        assert '/camera/color/image_raw' not in topics
        reference = reference_depth(rgb, graph.settings)
        png = graph.answer(compressed_image(rgb, 'png'), d435_info())
        assert_same_depth(image_to_depth(png['depth/image']), reference, True, 'png')
        jpeg = graph.answer(compressed_image(rgb, 'jpeg'), d435_info())
        assert_same_depth(image_to_depth(jpeg['depth/image']), reference, False, 'jpeg')
        good = compressed_image(rgb, 'jpeg')
        truncated = CompressedImage(format=good.format, data=bytes(good.data)[:4000])
        noise = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
        corrupt = CompressedImage(format='jpeg', data=noise)
        for bad, reason, fragment in ((truncated, 'truncated', 'truncated JPEG'),
                                      (corrupt, 'corrupt', 'neither JPEG nor PNG')):
            graph.skipped(bad, reason)
            assert graph.logged(f'frame skipped ({reason})', fragment), reason
            graph.answer(compressed_image(rgb, 'jpeg'), d435_info())  # the next good one
        # image_transport is read-only while the node runs.
        assert not graph.node.set_parameters([Parameter('image_transport', value='raw')])[
            0].successful


def cloud_xyz(cloud: PointCloud2) -> dict[str, np.ndarray]:
    fields = [(f.name, f.offset, f.datatype) for f in cloud.fields]
    return unpack_cloud(bytes(cloud.data), fields, cloud.point_step, cloud.height, cloud.width)


def test_roi_and_binning_give_the_intrinsics_of_the_image_received(rgb: np.ndarray) -> None:
    with running_graph('roi_depth_node') as graph:
        roi = RegionOfInterest(x_offset=100, y_offset=50, width=320, height=240,
                               do_rectify=True)
        crop = np.ascontiguousarray(rgb[50:290, 100:420])  # (240, 320, 3)
        outputs = graph.answer(rgb_to_image(crop), d435_info(roi=roi))
        info = outputs['depth/camera_info']
        assert (info.width, info.height) == (320, 240)
        for matrix in (info.k, info.p):  # shifted, not halved
            assert matrix[0] == pytest.approx(613.2) and matrix[2] == pytest.approx(219.9)
        assert info.p[6] == pytest.approx(189.1)
        assert (info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height,
                info.roi.do_rectify) == (0, 0, 0, 0, False)
        assert (info.binning_x, info.binning_y) == (0, 0)
        # The cloud uses the same intrinsics: x = (u - cx) z / fx.
        points = cloud_xyz(outputs['points'])
        finite = np.isfinite(points['z'])
        columns = np.broadcast_to(np.arange(320, dtype=np.float64), (240, 320))
        np.testing.assert_allclose(points['x'][finite], ((columns - 219.9) * points['z'] /
                                                         613.2)[finite], rtol=1e-4,
                                   atol=1e-5)

        binned = cv2.resize(rgb, (320, 240), interpolation=cv2.INTER_AREA)
        outputs = graph.answer(rgb_to_image(binned), d435_info(binning_x=2, binning_y=2))
        info = outputs['depth/camera_info']
        assert info.p[0] == pytest.approx(306.6)
        assert info.p[2] == pytest.approx((319.9 + 0.5) / 2 - 0.5)
        assert (info.binning_x, info.binning_y) == (0, 0)


def test_nan_in_p_or_k_and_an_unusable_camera_info(rgb: np.ndarray) -> None:
    with running_graph('nan_depth_node') as graph:
        image = rgb_to_image(rgb)
        nan_p = d435_info()
        nan_p.p = [613.2, 0.0, float('nan'), 0.0, 0.0, 613.4, float('inf'), 0.0, 0.0, 0.0,
                   1.0, 0.0]
        info = graph.answer(image, nan_p)['depth/camera_info']  # K is used
        np.testing.assert_allclose(info.p, D435_P)
        np.testing.assert_allclose(info.k, D435_K)

        nan_k = d435_info()
        nan_k.k = [float('nan')] * 9
        info = graph.answer(rgb_to_image(rgb), nan_k)['depth/camera_info']
        assert np.all(np.isfinite(info.k)) and np.all(np.isfinite(info.p))
        np.testing.assert_allclose(info.k, D435_K)
        assert graph.node.statistics.skipped == 0
        assert graph.node.statistics.rejected_camera_info == 0

        unusable = d435_info()
        unusable.k, unusable.p = [float('nan')] * 9, [float('inf')] * 12
        unusable.header = header(graph.stamp_ns, FRAME_ID)
        graph.info_publisher.publish(unusable)
        assert spin_until(graph.executor,
                          lambda: graph.node.statistics.rejected_camera_info == 1)
        assert graph.logged('camera_info rejected', 'non-finite')


def test_empty_frame_id_is_warned_about_and_answered(rgb: np.ndarray) -> None:
    with running_graph('frame_id_depth_node') as graph:
        outputs = graph.answer(rgb_to_image(rgb), d435_info(), frame_id='')
        assert outputs['depth/image'].header.frame_id == ''
        assert graph.logged('frame_id is empty')


def test_player_compresses_frames_as_image_transport(rgb: np.ndarray) -> None:
    image = rgb_to_image(rgb, header(5, FRAME_ID), 'bgr8')
    png = image_to_compressed(image, 'png')
    assert png.format == 'bgr8; png compressed bgr8' and png.header.frame_id == FRAME_ID
    decoded = cv2.imdecode(np.frombuffer(bytes(png.data), np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(decoded[..., ::-1], rgb)
    jpeg = image_to_compressed(image, 'jpeg', 90)
    assert jpeg.format == 'bgr8; jpeg compressed bgr8' and bytes(jpeg.data[:2]) == b'\xff\xd8'


# Between processes: the console-script node ------------------------------------------------

def start_node(*arguments: str) -> subprocess.Popen:
    script = SCRIPTS / 'depth_estimation_node'
    if not script.exists():
        pytest.skip(f'{script} is absent: install the package (pip install -e .)')
    command = [str(script), '--ros-args', '-p', f'model_path:={MODEL}', '-p', 'num_threads:=1',
               *arguments]
    return subprocess.Popen(command, env=ros_environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def first_answer(executor, collector: Collector, timeout: float = 60.0,
                 publish=lambda: None) -> dict[str, object]:
    """The outputs of the first stamp answered on every output topic (calls `publish` each
    second until then: a best-effort subscriber may lose a message)."""
    def stamps(topic: str) -> set[tuple[int, int]]:
        return {(m.header.stamp.sec, m.header.stamp.nanosec) for m in collector.messages[topic]}

    def complete() -> set[tuple[int, int]]:
        return set.intersection(*(stamps(topic) for topic in OUTPUTS))

    deadline = time.monotonic() + timeout
    while not complete() and time.monotonic() < deadline:
        publish()
        spin_until(executor, lambda: bool(complete()), timeout=1.0)
    assert complete(), 'no answer from the node process'
    stamp = sorted(complete())[0]
    return {topic: next(m for m in collector.messages[topic]
                        if (m.header.stamp.sec, m.header.stamp.nanosec) == stamp)
            for topic in OUTPUTS}


def test_usb_camera_yuyv_stream_through_the_node_process(rgb: np.ndarray) -> None:
    """usb_cam / v4l2_camera publish yuv422_yuy2 on image_raw with a camera_info beside it."""
    process = start_node('-r', 'image:=/usb_cam/image_raw', '-r',
                         'camera_info:=/usb_cam/camera_info')
    try:
        with ros_context() as context:
            camera, image_publisher, info_publisher, collector, executor = camera_driver(
                context, 'usb_cam', OUTPUTS, '/usb_cam/image_raw', '/usb_cam/camera_info')
            assert spin_until(executor, lambda: image_publisher.get_subscription_count() >= 1,
                              timeout=60.0), 'the node process did not subscribe'
            image, info = encoded_image(rgb, 'yuv422_yuy2'), d435_info()
            image.header = info.header = header(3_000_000_000, 'usb_cam')

            def publish() -> None:
                info_publisher.publish(info)
                image_publisher.publish(image)

            outputs = first_answer(executor, collector, publish=publish)
            executor.shutdown()
            camera.destroy_node()
        depth = image_to_depth(outputs['depth/image'])
        assert outputs['depth/image'].header.frame_id == 'usb_cam'
        settings = NodeSettings.from_values({'model_path': str(MODEL), 'num_threads': 1})
        assert_same_depth(depth, reference_depth(rgb, settings), False, 'yuv422_yuy2')
        assert outputs['depth/camera_info'].p[0] == pytest.approx(613.2)
        assert process.poll() is None, 'the node exited while serving'
    finally:
        output = interrupt(process)
    assert process.returncode == 0, output


def write_compressed_bag(path: Path, rgb: np.ndarray, frames: int = 3) -> Path:
    """A rosbag2 (MCAP) of a camera that records CompressedImage (JPEG) and its CameraInfo."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import get_typestore, Stores

    store = get_typestore(Stores.ROS2_HUMBLE)
    types = store.types
    Compressed = types['sensor_msgs/msg/CompressedImage']
    Info = types['sensor_msgs/msg/CameraInfo']
    Header, Time = types['std_msgs/msg/Header'], types['builtin_interfaces/msg/Time']
    Roi = types['sensor_msgs/msg/RegionOfInterest']
    jpeg = np.frombuffer(bytes(compressed_image(rgb, 'jpeg').data), np.uint8)
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        images = writer.add_connection('/camera/color/image_raw/compressed',
                                       Compressed.__msgtype__, typestore=store)
        infos = writer.add_connection('/camera/color/camera_info', Info.__msgtype__,
                                      typestore=store)
        for index in range(frames):
            stamp_ns = 1_700_000_000 * 10**9 + index * 100_000_000
            stamp = Header(stamp=Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9),
                           frame_id=FRAME_ID)
            info = Info(header=stamp, height=480, width=640, distortion_model='plumb_bob',
                        d=np.zeros(5), k=np.array(D435_K), r=np.eye(3).reshape(-1),
                        p=np.array(D435_P), binning_x=0, binning_y=0,
                        roi=Roi(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
            writer.write(infos, stamp_ns, store.serialize_cdr(info, Info.__msgtype__))
            message = Compressed(header=stamp, format='bgr8; jpeg compressed bgr8', data=jpeg)
            writer.write(images, stamp_ns + 1000, store.serialize_cdr(message,
                                                                      Compressed.__msgtype__))
    return path


def test_player_compressed_bag_through_the_node_process(rgb: np.ndarray, tmp_path: Path) -> None:
    """The player sends a bag's CompressedImage messages as recorded on <image>/compressed; the
    node process with image_transport compressed, both remapped alike, answers them."""
    player_script = SCRIPTS / 'depth_estimation_player'
    if not player_script.exists():
        pytest.skip(f'{player_script} is absent: install the package (pip install -e .)')
    bag = write_compressed_bag(tmp_path / 'compressed_bag', rgb)
    remap = ['-r', 'image:=/camera/color/image_raw', '-r',
             'camera_info:=/camera/color/camera_info']
    process = start_node('-p', 'image_transport:=compressed', *remap)
    player = subprocess.Popen(
        [str(player_script), str(bag), '--transport', 'compressed', '--loop', '--fps', '4',
         '--wait-for-subscriber', '60', '--ros-args', *remap],
        env=ros_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with ros_context() as context:
            listener = Node('compressed_listener', context=context)
            collector = Collector(listener, OUTPUTS)
            executor = executor_for(context, listener)
            outputs = first_answer(executor, collector, timeout=90.0)
            executor.shutdown()
            listener.destroy_node()
        assert outputs['depth/image'].header.frame_id == FRAME_ID
        settings = NodeSettings.from_values({'model_path': str(MODEL), 'num_threads': 1})
        assert_same_depth(image_to_depth(outputs['depth/image']),
                          reference_depth(rgb, settings), False, 'jpeg')
        assert outputs['depth/camera_info'].p[2] == pytest.approx(319.9)
        assert process.poll() is None, 'the node exited while serving'
    finally:
        player_log = interrupt(player)
        output = interrupt(process)
    assert player.returncode == 0, player_log
    assert 'on /camera/color/image_raw/compressed' in player_log, player_log
    assert process.returncode == 0, output
