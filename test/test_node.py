"""The depth node in a real rclpy graph with the tiny exported model: topics, headers, geometry."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import ros_graph  # noqa: I100  (sets the loopback DDS environment before rclpy starts)
from ros_graph import Collector, ros_context, sample_frames, spin_until, stamped

from diagnostic_msgs.msg import DiagnosticArray  # noqa: I100
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from depth_estimation.artifacts import default_model_path
from depth_estimation.geometry import unpack_cloud, unpack_rgb
from depth_estimation.ros.conversions import image_to_depth, image_to_millimetres
from depth_estimation.ros.node import DepthEstimationNode, ModelLoadError

pytestmark = pytest.mark.ros

FRAME_ID = 'camera_color_optical_frame'
OUTPUTS = {'depth/image': Image, 'depth/camera_info': CameraInfo, 'points': PointCloud2}


class Graph:
    """The node under test and a driver node on one executor."""

    def __init__(self, context, model_path: Path, outputs: dict | None = None,
                 **parameters) -> None:
        overrides = [Parameter('model_path', value=str(model_path)),
                     Parameter('num_threads', value=1)]
        overrides += [Parameter(name, value=value) for name, value in parameters.items()]
        self.node = DepthEstimationNode(context=context, parameter_overrides=overrides)
        self.driver = Node('test_driver', context=context)
        self.image_publisher = self.driver.create_publisher(Image, 'image', 10)
        self.info_publisher = self.driver.create_publisher(CameraInfo, 'camera_info', 10)
        self.collector = Collector(self.driver, outputs or OUTPUTS)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.driver)
        connected = spin_until(self.executor, lambda: (
            self.image_publisher.get_subscription_count() >= 1
            and self.info_publisher.get_subscription_count() >= 1
            and all(s.get_publisher_count() >= 1 for s in self.collector.subscriptions
                    if s.topic_name != '/points' or self.node.publish_points)))
        assert connected, 'driver and node did not discover each other'

    def send(self, image: Image, info: CameraInfo | None) -> None:
        """Publish camera_info first (so the node has it), then the image."""
        if info is not None:
            self.info_publisher.publish(info)
            spin_until(self.executor, lambda: False, timeout=0.1)
        self.image_publisher.publish(image)

    def wait_for(self, stamp_ns: int, topics=tuple(OUTPUTS), timeout: float = 15.0) -> bool:
        return spin_until(self.executor, lambda: all(
            self.collector.with_stamp(t, stamp_ns) for t in topics), timeout)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.driver.destroy_node()


@pytest.fixture
def graph_factory(tiny_onnx):
    graphs = []
    with ros_context() as context:
        def make(outputs: dict | None = None, **parameters) -> Graph:
            graphs.append(Graph(context, tiny_onnx, outputs, **parameters))
            return graphs[-1]
        yield make
        for graph in graphs:
            graph.close()


def back_project(depth: np.ndarray, info: CameraInfo) -> np.ndarray:
    """Reference back-projection in float64 from P: (H, W) metres -> (H, W, 3)."""
    fx, cx, fy, cy = info.p[0], info.p[2], info.p[5], info.p[6]
    v, u = np.mgrid[0:depth.shape[0], 0:depth.shape[1]].astype(np.float64)  # (H, W) pixels
    z = depth.astype(np.float64)
    return np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], axis=-1)


def test_outputs_for_every_sample(graph_factory) -> None:
    graph = graph_factory()
    for index, (name, image, info) in enumerate(sample_frames()):
        stamp_ns = 1_700_000_000_000_000_000 + index * 33_000_000
        image, info = stamped(image, info, stamp_ns, FRAME_ID)
        graph.send(image, info)
        assert graph.wait_for(stamp_ns), f'no complete answer to {name}'

        depth_msg = graph.collector.with_stamp('depth/image', stamp_ns)[0]
        info_msg = graph.collector.with_stamp('depth/camera_info', stamp_ns)[0]
        cloud = graph.collector.with_stamp('points', stamp_ns)[0]
        for message in (depth_msg, info_msg, cloud):
            assert message.header.frame_id == FRAME_ID
            assert message.header.stamp == image.header.stamp

        assert depth_msg.encoding == '32FC1'
        assert (depth_msg.height, depth_msg.width) == (image.height, image.width)
        assert depth_msg.step == image.width * 4
        depth = image_to_depth(depth_msg)  # (H, W) metres
        finite = np.isfinite(depth)
        assert finite.any()
        assert np.all(depth[finite] > 0), 'REP 118: no zero or negative depth, NaN instead'
        assert not np.isinf(depth).any()

        assert (info_msg.height, info_msg.width) == (depth_msg.height, depth_msg.width)
        np.testing.assert_allclose(info_msg.p, info.p)  # same size here, so unscaled
        np.testing.assert_allclose(info_msg.k, info.k)

        assert (cloud.height, cloud.width) == (depth_msg.height, depth_msg.width)
        assert cloud.is_dense is False
        assert cloud.row_step == cloud.point_step * cloud.width
        assert len(cloud.data) == cloud.row_step * cloud.height
        assert [f.name for f in cloud.fields] == ['x', 'y', 'z', 'rgb']
        fields = [(f.name, f.offset, f.datatype) for f in cloud.fields]
        points = unpack_cloud(bytes(cloud.data), fields, cloud.point_step, cloud.height,
                              cloud.width)  # (H, W) structured
        xyz = np.stack([points['x'], points['y'], points['z']], axis=-1)  # (H, W, 3) metres
        expected = back_project(depth, info_msg)  # (H, W, 3)
        np.testing.assert_array_equal(np.isnan(xyz), np.isnan(expected))
        np.testing.assert_allclose(xyz, expected, rtol=1e-5, atol=1e-6, equal_nan=True)
        rgb_in = np.frombuffer(image.data, np.uint8).reshape(image.height, image.width, 3)
        np.testing.assert_array_equal(unpack_rgb(points['rgb']), rgb_in)
    assert graph.node.statistics.skipped == 0


def test_bad_encoding_is_skipped_and_next_frame_answered(graph_factory) -> None:
    graph = graph_factory(points_rgb=False)
    (_, image, info), = sample_frames()[:1]
    bad = Image(height=4, width=4, encoding='16UC1', step=8, data=bytes(32))
    bad, _ = stamped(bad, None, 1_000, FRAME_ID)
    graph.send(bad, None)
    assert spin_until(graph.executor, lambda: graph.node.statistics.skipped >= 1)
    truncated, _ = stamped(Image(height=4, width=4, encoding='rgb8', step=12, data=bytes(40)),
                           None, 2_000, FRAME_ID)
    graph.send(truncated, None)
    assert spin_until(graph.executor, lambda: graph.node.statistics.skipped >= 2)

    image, info = stamped(image, info, 3_000, FRAME_ID)
    graph.send(image, info)
    assert graph.wait_for(3_000)
    assert not graph.collector.with_stamp('depth/image', 1_000)
    assert not graph.collector.with_stamp('depth/image', 2_000)
    cloud = graph.collector.with_stamp('points', 3_000)[0]
    assert [f.name for f in cloud.fields] == ['x', 'y', 'z']
    assert cloud.point_step == 12


def test_without_camera_info_publishes_depth_only(graph_factory) -> None:
    graph = graph_factory()
    (_, image, _), = sample_frames()[:1]
    image, _ = stamped(image, None, 5_000, FRAME_ID)
    graph.send(image, None)
    assert graph.wait_for(5_000, topics=('depth/image',))
    spin_until(graph.executor, lambda: False, timeout=0.3)
    assert not graph.collector.messages['depth/camera_info']
    assert not graph.collector.messages['points']
    assert graph.node.statistics.without_camera_info == 1


def test_camera_info_matched_by_stamp_and_scaled(graph_factory) -> None:
    graph = graph_factory(publish_points=False)
    (_, image, info), = sample_frames()[:1]
    # camera_info at twice the image size, stamped like the image; a newer one with another stamp.
    matching = CameraInfo(width=info.width * 2, height=info.height * 2, k=list(info.k),
                          p=list(info.p), d=list(info.d), r=list(info.r),
                          distortion_model=info.distortion_model)
    matching.k[0] *= 2
    matching.p[0] *= 2
    newer = CameraInfo(width=info.width, height=info.height, k=list(info.k), p=list(info.p))
    image, matching = stamped(image, matching, 7_000, FRAME_ID)
    _, newer = stamped(Image(), newer, 8_000, FRAME_ID)
    graph.info_publisher.publish(matching)
    graph.send(image, newer)
    assert graph.wait_for(7_000, topics=('depth/image', 'depth/camera_info'))
    depth_info = graph.collector.with_stamp('depth/camera_info', 7_000)[0]
    assert (depth_info.width, depth_info.height) == (image.width, image.height)
    assert depth_info.p[0] == pytest.approx(info.p[0])  # 2 fx halved
    assert depth_info.p[2] == pytest.approx((matching.p[2] + 0.5) / 2 - 0.5)
    assert not graph.collector.messages['points']


def test_missing_model_is_a_clear_error(tmp_path) -> None:
    with ros_context() as context:
        with pytest.raises(ModelLoadError, match='cannot load model'):
            DepthEstimationNode(context=context, parameter_overrides=[
                Parameter('model_path', value=str(tmp_path / 'absent.onnx'))])
        node = DepthEstimationNode(context=context)  # empty model_path: the default model
        try:
            assert node.settings.model_path == str(default_model_path())
        finally:
            node.destroy_node()


def test_domain_is_isolated() -> None:
    assert 1 <= ros_graph.DOMAIN_ID <= 100


ALL_OUTPUTS = {**OUTPUTS, 'depth/image_raw': Image, 'depth/colorized': Image}


def model_depth(model_path: Path, rgb: np.ndarray) -> np.ndarray:
    """The model's own depth for `rgb`, from a second ONNX Runtime session (H, W) metres."""
    from depth_estimation.inference import open_backend

    with open_backend(model_path, num_threads=1) as backend:
        return backend.infer(rgb)


def test_runtime_range_rep117_raw_colorized_and_frame_id(graph_factory, tiny_onnx) -> None:
    graph = graph_factory(outputs=ALL_OUTPUTS, publish_depth_raw=True, publish_colorized=True,
                          frame_id='override_frame')
    (_, image, info), = sample_frames()[:1]
    rgb = np.frombuffer(image.data, np.uint8).reshape(image.height, image.width, 3)
    expected = model_depth(tiny_onnx, rgb)  # (H, W) metres
    low, high = (float(v) for v in np.percentile(expected, [30, 70]))
    result = graph.node.set_parameters([Parameter('min_depth', value=low),
                                        Parameter('max_depth', value=high)])
    assert all(r.successful for r in result), result
    image, info = stamped(image, info, 9_000, FRAME_ID)
    graph.send(image, info)
    assert graph.wait_for(9_000, topics=tuple(ALL_OUTPUTS))
    messages = {topic: graph.collector.with_stamp(topic, 9_000)[0] for topic in ALL_OUTPUTS}
    assert {m.header.frame_id for m in messages.values()} == {'override_frame'}

    depth = image_to_depth(messages['depth/image'])  # (H, W) metres, REP 117
    near, far = expected < low, expected > high
    assert near.any() and far.any()
    assert np.all(depth[near] == -np.inf) and np.all(depth[far] == np.inf)
    inside = ~near & ~far
    np.testing.assert_allclose(depth[inside], expected[inside], rtol=1e-5)

    raw = messages['depth/image_raw']
    assert (raw.encoding, raw.step) == ('16UC1', raw.width * 2)
    millimetres = image_to_millimetres(raw)  # (H, W) uint16
    assert np.all(millimetres[near | far] == 0)
    np.testing.assert_allclose(millimetres[inside], expected[inside] * 1000, atol=0.51)

    coloured = messages['depth/colorized']
    assert coloured.encoding == 'rgb8'
    assert (coloured.height, coloured.width) == (image.height, image.width)
    pixels = np.frombuffer(coloured.data, np.uint8).reshape(image.height, image.width, 3)
    assert np.all(pixels[near | far] == 0), 'no depth is drawn black'
    assert pixels[inside].any()

    cloud = messages['points']
    fields = [(f.name, f.offset, f.datatype) for f in cloud.fields]
    points = unpack_cloud(bytes(cloud.data), fields, cloud.point_step, cloud.height, cloud.width)
    assert np.isnan(points['z'][near | far]).all(), 'out-of-range depth is no point'


def test_points_stride_xyz_and_far_limit(graph_factory, tiny_onnx) -> None:
    graph = graph_factory(points_stride=3, points_rgb=False)
    (_, image, info), = sample_frames()[:1]
    rgb = np.frombuffer(image.data, np.uint8).reshape(image.height, image.width, 3)
    expected = model_depth(tiny_onnx, rgb)  # (H, W) metres
    limit = float(np.median(expected))
    assert all(r.successful for r in graph.node.set_parameters(
        [Parameter('points_max_depth', value=limit)]))
    image, info = stamped(image, info, 11_000, FRAME_ID)
    graph.send(image, info)
    assert graph.wait_for(11_000)
    cloud = graph.collector.with_stamp('points', 11_000)[0]
    assert (cloud.height, cloud.width) == (-(-image.height // 3), -(-image.width // 3))
    assert [f.name for f in cloud.fields] == ['x', 'y', 'z'] and cloud.point_step == 12
    fields = [(f.name, f.offset, f.datatype) for f in cloud.fields]
    points = unpack_cloud(bytes(cloud.data), fields, cloud.point_step, cloud.height, cloud.width)
    xyz = np.stack([points['x'], points['y'], points['z']], axis=-1)  # (h, w, 3)
    reference = back_project(expected, info)[::3, ::3]  # (h, w, 3), P of the full image
    reference[reference[..., 2] > limit] = np.nan
    np.testing.assert_allclose(xyz, reference, rtol=1e-4, atol=1e-5, equal_nan=True)
    assert np.isnan(xyz).any() and np.isfinite(xyz).any()


def test_intrinsics_from_field_of_view_without_camera_info(graph_factory) -> None:
    graph = graph_factory(horizontal_fov=90)  # an integer: widened to 90.0
    (_, image, _), = sample_frames()[:1]
    image, _ = stamped(image, None, 13_000, FRAME_ID)
    graph.send(image, None)
    assert graph.wait_for(13_000)
    depth_info = graph.collector.with_stamp('depth/camera_info', 13_000)[0]
    assert depth_info.p[0] == pytest.approx(image.width / 2)  # tan(45 deg) = 1
    assert depth_info.p[2] == pytest.approx((image.width - 1) / 2)
    assert graph.node.statistics.from_parameters == 1


def test_parameters_checked_when_set(graph_factory) -> None:
    graph = graph_factory(publish_points=False)
    node = graph.node
    refused = {
        'model_path': Parameter('model_path', value='/elsewhere.onnx'),  # not at run time
        'min above max': Parameter('min_depth', value=50.0),  # above the model's 10 m
        'range': Parameter('points_stride', value=0),
        'choice': Parameter('colormap', value='no_such_map'),
    }
    for case, parameter in refused.items():
        result, = node.set_parameters([parameter])
        assert not result.successful, case
        assert result.reason, case
    assert node.settings.points_stride == 1 and node.settings.colormap == 'turbo'
    result, = node.set_parameters([Parameter('colormap', value='viridis')])
    assert result.successful and node.settings.colormap == 'viridis'
    descriptor, = node.describe_parameters(['points_stride'])
    assert descriptor.description and descriptor.integer_range[0].to_value == 64


def test_diagnostics_name_the_model_and_count_frames(graph_factory, tiny_onnx) -> None:
    graph = graph_factory(diagnostics_period=0.2)
    arrays = []
    graph.driver.create_subscription(DiagnosticArray, '/diagnostics', arrays.append, 10)
    (_, image, info), = sample_frames()[:1]
    image, info = stamped(image, info, 15_000, FRAME_ID)
    graph.send(image, info)
    assert graph.wait_for(15_000)

    def counted() -> bool:
        return any(dict((v.key, v.value) for v in s.values).get('frames processed') == '1'
                   for a in arrays for s in a.status)

    assert spin_until(graph.executor, counted, timeout=10.0)
    status = arrays[-1].status[0]
    values = {v.key: v.value for v in status.values}
    assert status.name.endswith('depth') and 'onnxruntime' in status.hardware_id
    assert values['artifact_sha256'] == hashlib.sha256(tiny_onnx.read_bytes()).hexdigest()[:16]
    assert values['model'] == 'tiny'
    assert float(values['latency p50 (ms)']) > 0
    for key in ('input rate (Hz)', 'output rate (Hz)', 'latency p99 (ms)',
                'frames dropped (newer frame won)'):
        assert key in values
