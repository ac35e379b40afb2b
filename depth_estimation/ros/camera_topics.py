"""A camera's topics as drivers publish them, for the workbench's ROS programs (the simulated
camera, the player, the demo's own frames).

`image` (raw, or CompressedImage on `image/compressed` as image_transport's compressed plugin
publishes it) and `camera_info`; each camera_info carries its image's header and goes out just
before the image, so a node that matches camera_info by stamp has it when the image arrives. A
simulated camera adds its ground-truth depth (32FC1) under the same header.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from sensor_msgs.msg import CameraInfo, Image

from depth_estimation.ros.conversions import depth_to_image, IMAGE_TRANSPORTS, image_to_compressed


class CameraTopics:
    """Publishers of one camera on `node`: `image` in `transport` ('raw' or 'compressed'; raw
    Images are compressed with `codec` on the way), `camera_info` and, when `truth_topic` is
    given, ground-truth depth on it."""

    def __init__(self, node: Any, qos: Any, transport: str = 'raw',
                 truth_topic: Optional[str] = None, codec: str = 'jpeg',
                 jpeg_quality: int = 95) -> None:
        message_type, suffix = IMAGE_TRANSPORTS[transport]
        self.node = node
        self.compressed = transport == 'compressed'
        self.codec, self.jpeg_quality = codec, jpeg_quality
        self.image_publisher = node.create_publisher(
            message_type, node.resolve_topic_name('image') + suffix, qos)
        self.info_publisher = node.create_publisher(CameraInfo, 'camera_info', qos)
        self.truth_publisher = (node.create_publisher(Image, truth_topic, qos)
                                if truth_topic else None)

    @property
    def image_topic(self) -> str:
        return str(self.image_publisher.topic_name)

    def subscribers(self) -> int:
        """Subscriptions matched to the image topic."""
        return int(self.image_publisher.get_subscription_count())

    def publish(self, image: Any, camera_info: Optional[Any] = None,
                truth: Optional[np.ndarray] = None, restamp: bool = True,
                frame_id: Optional[str] = None) -> int:
        """Publish `image` (an Image or CompressedImage), with `camera_info` and ground-truth depth
        `truth` (H, W) metres under its header. `restamp`: stamped now (else the image keeps
        its stamp); `frame_id`: replaces the image's. Returns the stamp in nanoseconds."""
        if self.compressed and isinstance(image, Image):
            image = image_to_compressed(image, self.codec, self.jpeg_quality)
        if frame_id is not None:
            image.header.frame_id = frame_id
        if restamp:
            image.header.stamp = self.node.get_clock().now().to_msg()
        if camera_info is not None:
            camera_info.header = image.header
            self.info_publisher.publish(camera_info)
        if truth is not None and self.truth_publisher is not None:
            self.truth_publisher.publish(depth_to_image(truth, image.header))
        self.image_publisher.publish(image)
        return int(image.header.stamp.sec) * 1_000_000_000 + int(image.header.stamp.nanosec)
