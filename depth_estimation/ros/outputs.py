"""Output stages of the depth node: one class per published product.

The worker builds one `DepthFrame` per input image (header, RGB, REP 117 depth, intrinsics at the
depth size, depth CameraInfo, the settings of that moment) and hands it to every enabled stage in
`OUTPUT_STAGES` order. A new product (confidence, LaserScan, a filtered depth) is a new
`OutputStage` subclass appended to that tuple, with its parameters added to `parameters.py`:
the node itself does not change. The math each stage calls lives in plain modules
(`products.py`, `geometry.py`, `visualize.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Optional

import numpy as np
from sensor_msgs.msg import CameraInfo, Image, LaserScan, PointCloud2
from std_msgs.msg import Header

from depth_estimation.geometry import depth_to_points, Intrinsics
from depth_estimation.laserscan import depth_to_scan
from depth_estimation.ros.conversions import (depth_to_image, float_to_image,
                                              millimetres_to_image, points_to_cloud,
                                              ranges_to_scan, rgb_to_image)
from depth_estimation.ros.parameters import NodeSettings
from depth_estimation.ros.products import decimate, depth_to_millimetres, limit_far
from depth_estimation.visualize import auto_range, colorize_depth

# (message type, relative topic name) -> publisher; the node supplies it with the output QoS
# (a lifecycle publisher in lifecycle mode).
PublisherFactory = Callable[[type, str], Any]


@dataclass(frozen=True)
class DepthFrame:
    """Everything an output stage may need about one processed image."""

    header: Header  # input stamp; input optical frame id or the frame_id parameter
    rgb: np.ndarray  # (H, W, 3) uint8, the input image
    depth: np.ndarray  # (H, W) float32 metres; NaN invalid, -Inf too close, +Inf too far
    depth_range: tuple[float, float]  # (min, max) metres reported in `depth`
    intrinsics: Optional[Intrinsics]  # at the depth size; None without camera_info/parameters
    camera_info: Optional[CameraInfo]  # the depth CameraInfo (header of the depth), or None
    settings: NodeSettings
    # (H, W) float32 in [0, 1] from a model with a confidence output, else None
    confidence: Optional[np.ndarray] = None
    # `depth` with the pixels below confidence_threshold set to NaN; None when nothing is dropped
    confident_depth: Optional[np.ndarray] = None

    @property
    def obstacle_depth(self) -> np.ndarray:
        """The depth that 3-D and 2-D obstacle outputs (points, scan_out) use."""
        return self.depth if self.confident_depth is None else self.confident_depth


class OutputStage:
    """One product: creates its publishers once (configure) and publishes each frame."""

    name: ClassVar[str] = ''
    topics: ClassVar[tuple[tuple[str, type], ...]] = ()
    # What the model must offer for this stage to exist (e.g. {'confidence'})
    requires: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, create_publisher: PublisherFactory) -> None:
        self.publishers = {topic: create_publisher(message_type, topic)
                           for topic, message_type in self.topics}

    @staticmethod
    def enabled(settings: NodeSettings) -> bool:
        """Whether this stage exists for these (configure-time) settings."""
        return True

    def publish(self, frame: DepthFrame) -> None:
        raise NotImplementedError


class DepthImageStage(OutputStage):
    """depth/image: 32FC1 metres (REP 118), the canonical output."""

    name = 'depth'
    topics = (('depth/image', Image),)

    def publish(self, frame: DepthFrame) -> None:
        keep_infinity = frame.settings.out_of_range == 'rep117'
        self.publishers['depth/image'].publish(
            depth_to_image(frame.depth, frame.header, keep_infinity=keep_infinity))


class DepthRawStage(OutputStage):
    """depth/image_raw: 16UC1 millimetres, 0 = invalid or out of range (REP 118 raw form)."""

    name = 'depth_raw'
    topics = (('depth/image_raw', Image),)

    @staticmethod
    def enabled(settings: NodeSettings) -> bool:
        return settings.publish_depth_raw

    def publish(self, frame: DepthFrame) -> None:
        self.publishers['depth/image_raw'].publish(
            millimetres_to_image(depth_to_millimetres(frame.depth), frame.header))


class DepthCameraInfoStage(OutputStage):
    """depth/camera_info: the depth header, K and P at the depth size (when intrinsics exist)."""

    name = 'depth_camera_info'
    topics = (('depth/camera_info', CameraInfo),)

    def publish(self, frame: DepthFrame) -> None:
        if frame.camera_info is not None:
            self.publishers['depth/camera_info'].publish(frame.camera_info)


class PointsStage(OutputStage):
    """points: organized PointCloud2 (x y z [rgb]), decimated by points_stride, NaN invalid."""

    name = 'points'
    topics = (('points', PointCloud2),)

    @staticmethod
    def enabled(settings: NodeSettings) -> bool:
        return settings.publish_points

    def publish(self, frame: DepthFrame) -> None:
        if frame.intrinsics is None:
            return
        settings = frame.settings
        stride = settings.points_stride
        depth = frame.obstacle_depth[::stride, ::stride]  # (h, w) metres, the kept pixels
        if settings.points_max_depth > 0:
            depth = limit_far(depth, settings.points_max_depth)
        points = depth_to_points(depth, decimate(frame.intrinsics, stride))  # (h, w, 3)
        rgb = frame.rgb[::stride, ::stride] if settings.points_rgb else None  # (h, w, 3)
        self.publishers['points'].publish(points_to_cloud(points, frame.header, rgb))


class ColorizedStage(OutputStage):
    """depth/colorized: rgb8 colour-mapped depth for people; black = no depth."""

    name = 'colorized'
    topics = (('depth/colorized', Image),)

    @staticmethod
    def enabled(settings: NodeSettings) -> bool:
        return settings.publish_colorized

    def publish(self, frame: DepthFrame) -> None:
        low, high = frame.depth_range
        if frame.settings.colorize_range == 'auto':
            low, high = auto_range(frame.depth) or (low, high)
        coloured = colorize_depth(frame.depth, low, high, frame.settings.colormap)  # (H, W, 3)
        self.publishers['depth/colorized'].publish(rgb_to_image(coloured, frame.header))


class ConfidenceStage(OutputStage):
    """depth/confidence: 32FC1 in [0, 1] (1 = sure), the depth's header and size."""

    name = 'confidence'
    topics = (('depth/confidence', Image),)
    requires = frozenset({'confidence'})

    @staticmethod
    def enabled(settings: NodeSettings) -> bool:
        return settings.publish_confidence

    def publish(self, frame: DepthFrame) -> None:
        if frame.confidence is not None:
            self.publishers['depth/confidence'].publish(
                float_to_image(frame.confidence, frame.header))


class ScanStage(OutputStage):
    """scan_out: LaserScan from the rows around cy, as depthimage_to_laserscan (laserscan.py).

    The header keeps the depth stamp; its frame is `scan_frame_id` (x forward, z up), because
    LaserScan angles turn about the scan frame's z axis, not about the optical frame's.
    """

    name = 'scan'
    topics = (('scan_out', LaserScan),)

    @staticmethod
    def enabled(settings: NodeSettings) -> bool:
        return settings.publish_scan

    def publish(self, frame: DepthFrame) -> None:
        if frame.intrinsics is None:
            return
        settings = frame.settings
        ranges, geometry = depth_to_scan(frame.obstacle_depth, frame.intrinsics,
                                         settings.scan_height, settings.scan_range_min,
                                         settings.scan_range_max)  # (W,) metres
        header = Header(stamp=frame.header.stamp,
                        frame_id=settings.scan_frame_id or frame.header.frame_id)
        self.publishers['scan_out'].publish(ranges_to_scan(
            ranges, geometry.angle_min, geometry.angle_max, geometry.angle_increment,
            geometry.range_min, geometry.range_max, header))


OUTPUT_STAGES: tuple[type[OutputStage], ...] = (
    DepthImageStage, DepthRawStage, DepthCameraInfoStage, PointsStage, ColorizedStage,
    ConfidenceStage, ScanStage)

__all__ = ['ColorizedStage', 'ConfidenceStage', 'DepthCameraInfoStage', 'DepthFrame',
           'DepthImageStage', 'DepthRawStage', 'OUTPUT_STAGES', 'OutputStage', 'PointsStage',
           'ScanStage']
