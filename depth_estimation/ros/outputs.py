"""Output stages of the depth node: one class per published product, message conversion only.

The node hands each `DepthFrame`, with the output header and the depth CameraInfo, to every
enabled stage in `OUTPUT_STAGES` order; a new product is a new `OutputStage` subclass there.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Optional

from sensor_msgs.msg import CameraInfo, Image, LaserScan, PointCloud2
from std_msgs.msg import Header

from depth_estimation.io import depth_to_mm
from depth_estimation.pipeline.frame import DepthFrame
from depth_estimation.ros.conversions import (depth_to_image, float_to_image,
                                              millimetres_to_image, points_to_cloud,
                                              ranges_to_scan, rgb_to_image)
from depth_estimation.ros.parameters import NodeSettings
from depth_estimation.visualize import auto_range, colorize_depth

# (message type, relative topic name) -> a publisher with the output QoS
PublisherFactory = Callable[[type, str], Any]


class OutputStage:
    """One product: creates its publishers once (configure) and publishes each frame."""

    name: ClassVar[str] = ''
    topics: ClassVar[tuple[tuple[str, type], ...]] = ()
    enabled_by: ClassVar[str] = ''  # the boolean setting that enables the stage; '' = always
    requires: ClassVar[frozenset[str]] = frozenset()  # what the model must offer, e.g. confidence

    def __init__(self, create_publisher: PublisherFactory) -> None:
        self.publishers = {topic: create_publisher(message_type, topic)
                           for topic, message_type in self.topics}

    @classmethod
    def enabled(cls, settings: NodeSettings) -> bool:
        """Whether this stage exists for these (configure-time) settings."""
        return not cls.enabled_by or getattr(settings, cls.enabled_by)

    def publish(self, frame: DepthFrame, header: Header, depth_info: Optional[CameraInfo]) -> None:
        raise NotImplementedError


class DepthImageStage(OutputStage):
    """depth/image: 32FC1 metres (REP 118), the canonical output."""

    name = 'depth'
    topics = (('depth/image', Image),)

    def publish(self, frame: DepthFrame, header: Header, depth_info: Optional[CameraInfo]) -> None:
        keep_infinity = frame.settings.out_of_range == 'rep117'
        self.publishers['depth/image'].publish(
            depth_to_image(frame.depth, header, keep_infinity=keep_infinity))


class DepthRawStage(OutputStage):
    """depth/image_raw: 16UC1 millimetres, 0 = invalid or out of range (REP 118 raw form)."""

    name = 'depth_raw'
    topics = (('depth/image_raw', Image),)
    enabled_by = 'publish_depth_raw'

    def publish(self, frame: DepthFrame, header: Header, depth_info: Optional[CameraInfo]) -> None:
        self.publishers['depth/image_raw'].publish(
            millimetres_to_image(depth_to_mm(frame.depth, saturate=False), header))


class DepthCameraInfoStage(OutputStage):
    """depth/camera_info: the depth header, K and P at the depth size (when intrinsics exist)."""

    name = 'depth_camera_info'
    topics = (('depth/camera_info', CameraInfo),)

    def publish(self, frame: DepthFrame, header: Header, depth_info: Optional[CameraInfo]) -> None:
        if depth_info is not None:
            self.publishers['depth/camera_info'].publish(depth_info)


class PointsStage(OutputStage):
    """points: organized PointCloud2 (x y z [rgb]), decimated by points_stride, NaN invalid."""

    name = 'points'
    topics = (('points', PointCloud2),)
    enabled_by = 'publish_points'

    def publish(self, frame: DepthFrame, header: Header, depth_info: Optional[CameraInfo]) -> None:
        if frame.points is not None:
            self.publishers['points'].publish(points_to_cloud(frame.points, header,
                                                              frame.points_rgb))


class ColorizedStage(OutputStage):
    """depth/colorized: rgb8 colour-mapped depth for people; black = no depth."""

    name = 'colorized'
    topics = (('depth/colorized', Image),)
    enabled_by = 'publish_colorized'

    def publish(self, frame: DepthFrame, header: Header, depth_info: Optional[CameraInfo]) -> None:
        low, high = frame.depth_range
        if frame.settings.colorize_range == 'auto':
            low, high = auto_range(frame.depth) or (low, high)
        coloured = colorize_depth(frame.depth, low, high, frame.settings.colormap)  # (H, W, 3)
        self.publishers['depth/colorized'].publish(rgb_to_image(coloured, header))


class ConfidenceStage(OutputStage):
    """depth/confidence: 32FC1 in [0, 1] (1 = sure), the depth's header and size."""

    name = 'confidence'
    topics = (('depth/confidence', Image),)
    requires = frozenset({'confidence'})
    enabled_by = 'publish_confidence'

    def publish(self, frame: DepthFrame, header: Header, depth_info: Optional[CameraInfo]) -> None:
        if frame.confidence is not None:
            self.publishers['depth/confidence'].publish(
                float_to_image(frame.confidence, header))


class ScanStage(OutputStage):
    """scan_out: LaserScan from the rows around cy, as depthimage_to_laserscan (laserscan.py).

    The header keeps the depth stamp; its frame is `scan_frame_id` (x forward, z up), because
    LaserScan angles turn about the scan frame's z axis, not about the optical frame's.
    """

    name = 'scan'
    topics = (('scan_out', LaserScan),)
    enabled_by = 'publish_scan'

    def publish(self, frame: DepthFrame, header: Header, depth_info: Optional[CameraInfo]) -> None:
        if frame.scan_ranges is None:
            return
        scan_header = Header(stamp=header.stamp,
                             frame_id=frame.settings.scan_frame_id or header.frame_id)
        self.publishers['scan_out'].publish(ranges_to_scan(frame.scan_ranges,
                                                           frame.scan_geometry, scan_header))


OUTPUT_STAGES: tuple[type[OutputStage], ...] = (
    DepthImageStage, DepthRawStage, DepthCameraInfoStage, PointsStage, ColorizedStage,
    ConfidenceStage, ScanStage)


def create_stages(settings: NodeSettings, capabilities: frozenset[str],
                  create_publisher: PublisherFactory) -> list[OutputStage]:
    """The stages these (configure-time) settings enable and the model can serve, in order."""
    return [stage(create_publisher) for stage in OUTPUT_STAGES
            if stage.enabled(settings) and stage.requires <= capabilities]
