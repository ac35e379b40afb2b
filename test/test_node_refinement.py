"""Refinements and extra products in a real rclpy graph: confidence topic and threshold, scale
anchoring from sparse depth and from a LaserScan, focal compensation, the LaserScan output and the
temporal filter.

Expected values come from a second inference session on the same model (the model's own depth
and confidence) and from the camera geometry written out here, never from the node's code.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import ros_graph  # noqa: F401,I100  (sets the loopback DDS environment before rclpy starts)
from ros_graph import Collector, header, ros_context, sample_frames, spin_until, stamped

from diagnostic_msgs.msg import DiagnosticArray  # noqa: I100
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image, LaserScan, PointCloud2

from depth_estimation.geometry import unpack_cloud
from depth_estimation.ros.conversions import depth_to_image, image_to_depth, millimetres_to_image
from depth_estimation.ros.node import DepthEstimationNode, ModelLoadError
from depth_estimation.pipeline.refinement import camera_from_scan

pytestmark = pytest.mark.ros

FRAME_ID = 'camera_color_optical_frame'
DEPTH = {'depth/image': Image}


class Graph:
    """The node under test, a driver with every input publisher, and an output collector."""

    def __init__(self, context, model_path: Path, outputs: dict, **parameters) -> None:
        overrides = [Parameter('model_path', value=str(model_path)),
                     Parameter('num_threads', value=1), Parameter('diagnostics_period', value=0.2)]
        overrides += [Parameter(name, value=value) for name, value in parameters.items()]
        self.node = DepthEstimationNode(context=context, parameter_overrides=overrides)
        self.driver = Node('refinement_driver', context=context)
        self.image_publisher = self.driver.create_publisher(Image, 'image', 10)
        self.info_publisher = self.driver.create_publisher(CameraInfo, 'camera_info', 10)
        self.sparse_publisher = self.driver.create_publisher(Image, 'sparse_depth', 10)
        self.scan_publisher = self.driver.create_publisher(LaserScan, 'scan', 10)
        self.collector = Collector(self.driver, outputs)
        self.diagnostics: list[DiagnosticArray] = []
        self.driver.create_subscription(DiagnosticArray, '/diagnostics', self.diagnostics.append,
                                        10)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.driver)
        anchoring = parameters.get('anchoring', 'off')
        auxiliary = {'sparse_depth': self.sparse_publisher, 'scan': self.scan_publisher}
        assert spin_until(self.executor, lambda: (
            self.image_publisher.get_subscription_count() >= 1
            and self.info_publisher.get_subscription_count() >= 1
            and (anchoring == 'off' or auxiliary[anchoring].get_subscription_count() >= 1)
            and all(s.get_publisher_count() >= 1 for s in self.collector.subscriptions))), \
            'driver and node did not discover each other'

    def send(self, image: Image, info: CameraInfo, stamp_ns: int, before=None) -> None:
        """camera_info (and an anchoring message) first, then the image, all with one stamp."""
        image, info = stamped(image, info, stamp_ns, FRAME_ID)
        self.info_publisher.publish(info)
        if before is not None:
            before.header = header(stamp_ns, before.header.frame_id or 'sensor')
            publisher = self.scan_publisher if isinstance(before, LaserScan) \
                else self.sparse_publisher
            publisher.publish(before)
        spin_until(self.executor, lambda: False, timeout=0.1)
        self.image_publisher.publish(image)

    def answer(self, stamp_ns: int, topic: str = 'depth/image', timeout: float = 15.0):
        assert spin_until(self.executor, lambda: self.collector.with_stamp(topic, stamp_ns),
                          timeout), f'no {topic} for stamp {stamp_ns}'
        return self.collector.with_stamp(topic, stamp_ns)[0]

    def diagnostic(self, key: str, predicate, timeout: float = 10.0) -> str:
        """The newest value of a /diagnostics key once `predicate(value)` holds."""
        def newest() -> str | None:
            for array in reversed(self.diagnostics):
                for status in array.status:
                    values = {v.key: v.value for v in status.values}
                    if key in values:
                        return values[key]
            return None

        spin_until(self.executor, lambda: newest() is not None and predicate(newest()), timeout)
        return newest()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.driver.destroy_node()


@pytest.fixture
def graph_factory():
    graphs = []
    with ros_context() as context:
        def make(model_path: Path, outputs: dict = DEPTH, **parameters) -> Graph:
            graphs.append(Graph(context, model_path, outputs, **parameters))
            return graphs[-1]
        yield make
        for graph in graphs:
            graph.close()


def sample() -> tuple[Image, CameraInfo, np.ndarray]:
    (_, image, info), = sample_frames()[:1]
    rgb = np.frombuffer(image.data, np.uint8).reshape(image.height, image.width, 3)
    return image, info, rgb


def model_outputs(model_path: Path, rgb: np.ndarray):
    """The model's own depth and confidence, from a second session (not the node's)."""
    from depth_estimation.inference import open_backend

    with open_backend(model_path, num_threads=1) as backend:
        return backend.infer_outputs(rgb)


def cloud_xyz(cloud: PointCloud2) -> np.ndarray:
    fields = [(f.name, f.offset, f.datatype) for f in cloud.fields]
    points = unpack_cloud(bytes(cloud.data), fields, cloud.point_step, cloud.height, cloud.width)
    return np.stack([points['x'], points['y'], points['z']], axis=-1)  # (H, W, 3)


# Confidence -----------------------------------------------------------------------------------

def test_confidence_topic_and_threshold(graph_factory, confidence_onnx) -> None:
    outputs = {'depth/image': Image, 'depth/confidence': Image, 'points': PointCloud2}
    graph = graph_factory(confidence_onnx, outputs, points_rgb=False)
    image, info, rgb = sample()
    expected = model_outputs(confidence_onnx, rgb)
    graph.send(image, info, 1_000)
    depth_msg = graph.answer(1_000)
    confidence_msg = graph.answer(1_000, 'depth/confidence')
    assert confidence_msg.header == depth_msg.header
    assert confidence_msg.header.frame_id == FRAME_ID
    assert (confidence_msg.encoding, confidence_msg.step) == ('32FC1', image.width * 4)
    confidence = image_to_depth(confidence_msg)  # (H, W) in [0, 1]
    assert confidence.shape == (image.height, image.width)
    assert np.all((confidence >= 0) & (confidence <= 1))
    np.testing.assert_allclose(confidence, expected.confidence, rtol=1e-5)
    full_cloud = cloud_xyz(graph.answer(1_000, 'points'))
    assert np.isfinite(full_cloud).all(), 'threshold 0 keeps every point'

    threshold = float(np.median(expected.confidence))
    result, = graph.node.set_parameters([Parameter('confidence_threshold', value=threshold)])
    assert result.successful, result.reason
    graph.send(image, info, 2_000)
    cloud = cloud_xyz(graph.answer(2_000, 'points'))
    unsure = expected.confidence < threshold
    assert 0.3 < unsure.mean() < 0.7
    assert np.isnan(cloud[unsure]).all(), 'low-confidence pixels are no points'
    np.testing.assert_allclose(cloud[~unsure], full_cloud[~unsure], rtol=1e-6)
    depth = image_to_depth(graph.answer(2_000))
    assert np.isfinite(depth).all(), 'the depth image itself keeps every pixel'


def test_threshold_needs_a_model_with_confidence(graph_factory, tiny_onnx) -> None:
    graph = graph_factory(tiny_onnx)
    assert graph.node.count_publishers('depth/confidence') == 0
    result, = graph.node.set_parameters([Parameter('confidence_threshold', value=0.5)])
    assert not result.successful and 'export --confidence' in result.reason
    with ros_context() as context:
        with pytest.raises(ModelLoadError, match='confidence_threshold'):
            DepthEstimationNode(context=context, parameter_overrides=[
                Parameter('model_path', value=str(tiny_onnx)),
                Parameter('confidence_threshold', value=0.5)])


# Scale anchoring --------------------------------------------------------------------------------

def test_sparse_depth_anchors_the_scale(graph_factory, tiny_onnx) -> None:
    """Samples at 2x the model's depth scale the output by 2; a jump to 3x (16UC1 millimetres)
    is followed after the second frame that confirms it; /diagnostics reports the scale."""
    graph = graph_factory(tiny_onnx, anchoring='sparse_depth')
    image, info, rgb = sample()
    predicted = model_outputs(tiny_onnx, rgb).depth  # (H, W) metres
    grid = np.zeros(predicted.shape, dtype=bool)
    grid[10::40, 10::40] = True  # 12 x 16 samples, as from projected LiDAR
    samples = int(grid.sum())

    sparse = np.where(grid, 2.0 * predicted, np.nan).astype(np.float32)
    graph.send(image, info, 3_000, before=depth_to_image(sparse, header(0, FRAME_ID)))
    np.testing.assert_allclose(image_to_depth(graph.answer(3_000)), 2.0 * predicted, rtol=1e-5)
    assert float(graph.diagnostic('anchoring scale', lambda v: v != 'none yet')) == \
        pytest.approx(2.0, rel=1e-4)
    assert graph.diagnostic('anchoring inliers', lambda v: True) == str(samples)

    millimetres = np.where(grid, np.rint(3000.0 * predicted), 0).astype(np.uint16)
    for stamp_ns, scale in ((4_000, 2.0), (5_000, 3.0)):  # one outlier frame moves nothing
        graph.send(image, info, stamp_ns,
                   before=millimetres_to_image(millimetres, header(0, FRAME_ID)))
        np.testing.assert_allclose(image_to_depth(graph.answer(stamp_ns)), scale * predicted,
                                   rtol=2e-3)
    assert float(graph.diagnostic('anchoring scale', lambda v: float(v) > 2.5)) == \
        pytest.approx(3.0, rel=2e-3)


def test_scan_anchors_the_scale_through_the_extrinsic(graph_factory, tiny_onnx) -> None:
    """A LaserScan level with the camera whose beams hit the model's depth at 2x."""
    graph = graph_factory(tiny_onnx, anchoring='scan')
    image, info, rgb = sample()
    predicted = model_outputs(tiny_onnx, rgb).depth  # (H, W) metres
    fx, cx, cy = info.p[0], info.p[2], info.p[6]
    row = int(np.rint(cy))  # a level scan lands on the row of the principal point
    angles = np.linspace(-0.4, 0.4, 81)  # right (-) to left (+), inside the field of view
    columns = np.rint(cx - fx * np.tan(angles)).astype(int)  # where each beam lands
    assert columns.min() >= 0 and columns.max() < image.width
    ranges = 2.0 * predicted[row, columns] / np.cos(angles)  # z = 2 x the model's depth
    scan = LaserScan(angle_min=float(angles[0]), angle_max=float(angles[-1]),
                     angle_increment=float(angles[1] - angles[0]), range_min=0.05,
                     range_max=30.0, ranges=ranges.astype(np.float32).tolist())
    scan.header.frame_id = 'laser'
    graph.send(image, info, 6_000, before=scan)
    np.testing.assert_allclose(image_to_depth(graph.answer(6_000)), 2.0 * predicted, rtol=1e-4)


def test_scan_extrinsic_places_the_scan_in_the_optical_frame() -> None:
    """[x, y, z, roll, pitch, yaw] of the scan in the camera body frame (x forward, z up)."""
    def optical(extrinsic, point):
        return (camera_from_scan(extrinsic) @ np.append(point, 1.0))[:3]

    # level and centred: forward is the optical z axis, left is -x, up is -y
    np.testing.assert_allclose(optical([0, 0, 0, 0, 0, 0], [2, 0, 0]), [0, 0, 2], atol=1e-12)
    np.testing.assert_allclose(optical([0, 0, 0, 0, 0, 0], [0, 1, 0]), [-1, 0, 0], atol=1e-12)
    # 0.1 m above and 0.2 m behind the camera: a point 2 m ahead of the scanner
    np.testing.assert_allclose(optical([-0.2, 0, 0.1, 0, 0, 0], [2, 0, 0]), [0, -0.1, 1.8],
                               atol=1e-12)
    # turned 90 degrees left (yaw): the scanner's forward is the camera's left
    np.testing.assert_allclose(optical([0, 0, 0, 0, 0, math.pi / 2], [1, 0, 0]), [-1, 0, 0],
                               atol=1e-12)


# Focal compensation ---------------------------------------------------------------------------

def test_focal_compensation_scales_by_the_focal_ratio(graph_factory, tiny_onnx) -> None:
    graph = graph_factory(tiny_onnx)
    refused, = graph.node.set_parameters([Parameter('focal_compensation', value=True)])
    assert not refused.successful and 'training_camera' in refused.reason  # none in the metadata
    assert all(r.successful for r in graph.node.set_parameters([
        Parameter('training_camera', value='nyu'), Parameter('focal_compensation', value=True)]))
    image, info, rgb = sample()
    predicted = model_outputs(tiny_onnx, rgb).depth
    graph.send(image, info, 7_000)
    # Camera and NYU (518.86, 519.47 px) are both 640 x 480, so both shrink alike to the network
    # input and the factor is the ratio of their focal lengths.
    factor = math.sqrt(info.p[0] * info.p[5]) / math.sqrt(518.8579 * 519.46961)
    assert abs(factor - 1) > 0.05, 'the sample camera must differ from NYU for this test'
    np.testing.assert_allclose(image_to_depth(graph.answer(7_000)), factor * predicted,
                               rtol=1e-5)
    value = graph.diagnostic('focal scale', lambda v: not v.startswith('n/a'))
    assert float(value) == pytest.approx(factor, rel=1e-4)


# LaserScan output ------------------------------------------------------------------------------

def expected_scan(depth: np.ndarray, fx: float, cx: float, cy: float, rows: int,
                  range_min: float, range_max: float) -> tuple[float, float, np.ndarray]:
    """depthimage_to_laserscan's geometry written out: angles of the edge rays, closest range
    per angle bin over the `rows` rows nearest cy, NaN where no pixel lands."""
    height, width = depth.shape
    angle_max = math.atan2(cx, fx)  # ray through column 0: left, positive
    angle_min = -math.atan2(width - 1 - cx, fx)
    increment = (angle_max - angle_min) / (width - 1)
    band = np.argsort(np.abs(np.arange(height) - cy), kind='stable')[:rows]
    ranges = np.full(width, np.nan)
    for v in band:
        for u in range(width):
            z = float(depth[v, u])
            r = z * math.hypot(1.0, (u - cx) / fx)
            if not range_min <= r <= range_max:
                continue
            index = min(width - 1, max(0, math.floor(
                (-math.atan((u - cx) / fx) - angle_min) / increment + 1e-9)))
            ranges[index] = r if np.isnan(ranges[index]) else min(ranges[index], r)
    return angle_min, angle_max, ranges


def test_scan_out_follows_depthimage_to_laserscan(graph_factory, tiny_onnx) -> None:
    outputs = {'depth/image': Image, 'scan_out': LaserScan}
    graph = graph_factory(tiny_onnx, outputs, publish_scan=True, scan_height=3,
                          scan_range_min=0.1, scan_range_max=50.0)
    image, info, _ = sample()
    graph.send(image, info, 8_000)
    depth = image_to_depth(graph.answer(8_000))  # (H, W) metres, what the node published
    scan = graph.answer(8_000, 'scan_out')
    assert scan.header.stamp == graph.answer(8_000).header.stamp
    assert scan.header.frame_id == 'camera_depth_frame'
    fx, cx, cy = info.p[0], info.p[2], info.p[6]
    angle_min, angle_max, reference = expected_scan(depth, fx, cx, cy, 3, 0.1, 50.0)
    assert (scan.angle_min, scan.angle_max) == pytest.approx((angle_min, angle_max), abs=1e-6)
    assert (scan.range_min, scan.range_max) == pytest.approx((0.1, 50.0))
    ranges = np.asarray(scan.ranges, dtype=np.float64)
    assert ranges.shape == (image.width,)
    np.testing.assert_array_equal(np.isnan(ranges), np.isnan(reference))
    np.testing.assert_allclose(ranges, reference, rtol=1e-5, equal_nan=True)

    # range_max below part of the scene: those angles become +Inf (REP 117), the rest stay
    limit = float(np.nanmedian(reference))
    assert graph.node.set_parameters([Parameter('scan_range_max', value=limit)])[0].successful
    graph.send(image, info, 9_000)
    ranges = np.asarray(graph.answer(9_000, 'scan_out').ranges, dtype=np.float64)
    far = reference > limit
    assert far.any() and np.all(ranges[far] == np.inf)
    near = reference <= limit
    np.testing.assert_allclose(ranges[near], reference[near], rtol=1e-5)


# Temporal filter --------------------------------------------------------------------------------

def frame_to_frame_change(graph: Graph, image: Image, info: CameraInfo, rgb: np.ndarray,
                          first_stamp: int, seed: int, frames: int = 5) -> float:
    """Mean relative change between consecutive depths of the same scene under sensor noise."""
    from depth_estimation.ros.conversions import rgb_to_image

    generator = np.random.default_rng(seed)
    depths = []
    for index in range(frames):
        noise = generator.normal(0.0, 8.0, rgb.shape)
        noisy = np.clip(rgb + noise, 0, 255).astype(np.uint8)
        stamp_ns = first_stamp + index * 1_000
        graph.send(rgb_to_image(noisy), info, stamp_ns)
        depths.append(image_to_depth(graph.answer(stamp_ns)))
    return float(np.mean([np.mean(np.abs(b - a) / a) for a, b in zip(depths, depths[1:])]))


def test_temporal_filter_reduces_flicker_on_a_static_scene(graph_factory, tiny_onnx) -> None:
    graph = graph_factory(tiny_onnx)
    image, info, rgb = sample()
    unfiltered = frame_to_frame_change(graph, image, info, rgb.astype(np.float64), 10_000, 1)
    assert graph.node.set_parameters([Parameter('temporal_filter', value=True)])[0].successful
    filtered = frame_to_frame_change(graph, image, info, rgb.astype(np.float64), 20_000, 2)
    assert unfiltered > 0, 'the noise must move the model output for this test to mean much'
    assert filtered < 0.5 * unfiltered, (filtered, unfiltered)
    assert graph.diagnostic('temporal scene changes', lambda v: True) == '0'
