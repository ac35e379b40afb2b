"""The demo's own ROS node: it watches the node under test and publishes the shipped frames."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
import struct
import sys
import time
from typing import Any, Callable, Optional

import numpy as np

from depth_estimation.tools.demo.report import DemoStatistics, Snapshot
from depth_estimation.tools.demo.sources import Source
from depth_estimation.tools.processes import first_failure, Process

SNAPSHOTS = 4
STALL_SECONDS = 10.0  # a published frame not answered by then: the next one goes out anyway


def _stamp(message: Any) -> int:
    return int(message.header.stamp.sec) * 1_000_000_000 + int(message.header.stamp.nanosec)


def _cdr_stamp(data: bytes) -> int:
    """The header stamp (ns) of a serialized message whose first field is a std_msgs/Header.

    After the 4-byte CDR encapsulation come int32 sec and uint32 nanosec.
    """
    little_endian = data[1] == 1  # encapsulation CDR_LE (0x0001) or CDR_BE (0x0000)
    sec, nanosec = struct.unpack_from('<iI' if little_endian else '>iI', data, 4)
    return sec * 1_000_000_000 + nanosec


class Keeper(OrderedDict):
    """stamp -> item, keeping the newest `size` items."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: int, value: Any) -> None:
        self[key] = value
        while len(self) > self.size:
            self.popitem(last=False)


class DemoGraph:
    """This process's node: matches input, ground truth and the node's outputs by stamp for
    `DemoStatistics`, keeps snapshots and records to MCAP."""

    def __init__(self, node: Any, source: Source, statistics: DemoStatistics,
                 record_path: Optional[Path], record_topics: tuple[str, ...]) -> None:
        from depth_estimation.ros.runner import message_class, qos_profile

        self.source = source
        self.statistics = statistics
        self.node = node
        # The input may come best effort (camera drivers, the player): best effort matches any
        # publisher. The node and the simulated camera publish reliably, and so no depth or
        # ground truth is lost here.
        qos = qos_profile(reliable=False, depth=10)
        reliable = qos_profile(reliable=True, depth=10)
        self.images = Keeper(30)
        self.truths = Keeper(30)
        # The stamp of the first ground truth received: frames made earlier may have had theirs
        # published before this subscription matched, so they are not measured.
        self.first_truth_stamp: Optional[int] = None
        self.last_depth_stamp: Optional[int] = None
        self.pending = Keeper(30)  # stamp -> (depth Image, seconds received) awaiting truth
        self.points = Keeper(6)  # stamp -> serialized PointCloud2
        self.started: Optional[float] = None
        self.finished: Optional[float] = None  # seconds streamed when measuring stopped
        self.snapshots: list[Snapshot] = []
        self.snapshot_due: list[float] = []  # seconds (or frame counts) of the next snapshots
        self.snapshot_by_frames = False
        image = message_class('sensor_msgs/msg/Image')
        self.node.create_subscription(image, source.image_topic, self._on_image, qos)
        self.node.create_subscription(image, 'depth/image', self._on_depth, reliable)
        self.node.create_subscription(message_class('sensor_msgs/msg/PointCloud2'), 'points',
                                      self._on_points, reliable, raw=True)
        if source.truth_topic is not None:
            self.node.create_subscription(image, source.truth_topic, self._on_truth, reliable)
        self.recorder = None
        self.next_poll = 0.0  # monotonic seconds of the recorder's next look for new topics
        if record_path is not None:
            from depth_estimation.tools.recorder import McapRecorder

            self.recorder = McapRecorder(self.node, record_path, record_topics)

    def start(self, duration: float, frames: int) -> None:
        """Streaming starts now: counts and snapshot times run from here."""
        self.started = time.monotonic()
        if frames:
            self.snapshot_by_frames = True
            self.snapshot_due = [max(1, round(frames * k / SNAPSHOTS)) for k in range(SNAPSHOTS)]
        else:
            self.snapshot_due = [duration * k / SNAPSHOTS for k in range(SNAPSHOTS)]

    def failed(self, processes: list[Process], poll_interval: float) -> bool:
        """A wait step: new topics to record (every `poll_interval` s); a failure printed."""
        if self.recorder is not None and time.monotonic() >= self.next_poll:
            self.recorder.poll()
            self.next_poll = time.monotonic() + poll_interval
        failure = first_failure(processes)
        if failure:
            print(f'error: {failure}', file=sys.stderr)
        return failure is not None

    def elapsed(self) -> float:
        return 0.0 if self.started is None else time.monotonic() - self.started

    def _on_image(self, msg: Any) -> None:
        if self.started is not None:
            self.statistics.images_seen += 1
        self.images.put(_stamp(msg), msg)

    def _on_truth(self, msg: Any) -> None:
        from depth_estimation.ros.conversions import image_to_depth

        self.add_truth(_stamp(msg), image_to_depth(msg))  # (H, W) metres

    def add_truth(self, stamp: int, depth: np.ndarray) -> None:
        """The ground truth (H, W) metres (NaN: none) of the frame stamped `stamp` (ns)."""
        if self.first_truth_stamp is None:
            self.first_truth_stamp = stamp
        self.truths.put(stamp, depth)

    def _on_points(self, data: bytes) -> None:
        # Keep the serialized cloud (about 5 MB); only snapshots decode one.
        self.points.put(_cdr_stamp(data), data)

    def ground_truth_flows(self) -> bool:
        """True once the simulator's ground truth arrives (always for other sources)."""
        return self.source.truth_topic is None or self.first_truth_stamp is not None

    def _on_depth(self, msg: Any) -> None:
        stamp = self.last_depth_stamp = _stamp(msg)
        if self.started is None or not self.ground_truth_flows() or \
                (self.first_truth_stamp is not None and stamp < self.first_truth_stamp):
            return
        self.pending.put(stamp, (msg, time.time(), self.elapsed()))

    def settle(self, wait_for_truth: float = 2.0) -> None:
        """Turn received depth into results: with its ground truth, or without once it is late.
        """
        from depth_estimation.ros.conversions import image_to_depth

        for stamp in list(self.pending):
            msg, arrived, received = self.pending[stamp]
            truth = self.truths.get(stamp)  # (H, W) metres
            if self.source.has_ground_truth and truth is None and \
                    self.elapsed() - received < wait_for_truth:
                continue
            del self.pending[stamp]
            latency = arrived - stamp / 1e9
            depth = image_to_depth(msg)  # (H, W) metres
            result = self.statistics.add(stamp, received, latency, truth, depth)
            self._maybe_snapshot(stamp, received, depth, truth, result.metrics)

    def _maybe_snapshot(self, stamp: int, received: float, depth: np.ndarray,
                        truth: Optional[np.ndarray], metrics: Optional[dict[str, float]]) -> None:
        from depth_estimation.ros.conversions import image_to_rgb

        if not self.snapshot_due:
            return
        position = self.statistics.answered if self.snapshot_by_frames else received
        if position < self.snapshot_due[0]:
            return
        self.snapshot_due.pop(0)
        image = self.images.get(stamp)
        rgb = image_to_rgb(image) if image is not None else None
        self.snapshots.append(Snapshot(stamp, received, rgb, depth, truth, metrics))

    def attach_points(self) -> None:
        """Give each snapshot the node's point cloud of the same stamp, once it has arrived."""
        from depth_estimation.ros.conversions import cloud_points

        for snapshot in self.snapshots:
            data = self.points.get(snapshot.stamp_ns)
            if snapshot.points is not None or data is None:
                continue
            snapshot.points = cloud_points(data)  # (H, W, 3) metres

    def close(self) -> Optional[dict[str, Any]]:
        recording = None
        if self.recorder is not None:
            self.recorder.close()
            size = sum(p.stat().st_size for p in self.recorder.output.rglob('*') if p.is_file())
            recording = {'path': str(self.recorder.output), 'megabytes': size / 1e6,
                         'counts': dict(self.recorder.counts)}
        return recording


def load_frames(source: Source) -> list[tuple[Any, Any, Optional[np.ndarray]]]:
    """(Image, CameraInfo or None, ground truth (H, W) metres or None) of each frame that this
    process publishes: the shipped sequence (sensor depth, NaN where it has none) or samples."""
    from depth_estimation.ros.conversions import camera_info_from_dict, camera_info_from_yaml, \
        rgb_to_image

    if source.kind == 'samples':
        from depth_estimation.samples import load_samples

        return [(rgb_to_image(s.rgb), camera_info_from_dict(s.camera_info) if s.camera_info
                 else None, None) for s in load_samples()]
    from depth_estimation.datasets.sequences import CAMERA_INFO_FILE, open_sequence, \
        sequence_root

    info = camera_info_from_yaml(sequence_root(source.argument) / CAMERA_INFO_FILE)
    sequence = open_sequence(source.argument)
    return [(rgb_to_image(sample.image), info, np.where(sample.depth > 0, sample.depth, np.nan))
            for sample in (sequence[index] for index in range(len(sequence)))]


class FramePublisher:
    """Publishes frames with their camera_info on image and camera_info, looping.

    At most `rate` frames per second, and paced by the node: the next frame goes out once the
    previous one is answered (or after STALL_SECONDS), so the node drops none. Each frame gets a
    new stamp, which the node copies into its depth: the ground truth handed to `on_truth` under
    that stamp is the frame's own, matched exactly.
    """

    def __init__(self, node: Any, frames: list[tuple[Any, Any, Optional[np.ndarray]]],
                 rate: float, on_truth: Callable[[int, np.ndarray], None]) -> None:
        from depth_estimation.ros.camera_topics import CameraTopics
        from depth_estimation.ros.runner import qos_profile

        if not frames:
            raise FileNotFoundError('no frames to publish are installed')
        self.frames, self.period, self.on_truth = frames, 1.0 / rate, on_truth
        self.topics = CameraTopics(node, qos_profile(reliable=True, depth=5))
        self.count = 0
        self.next_time = 0.0
        self.last: Optional[tuple[int, float]] = None  # (stamp ns, seconds) of the newest frame

    def poll(self, now: float, answered_stamp: Optional[int]) -> None:
        """Publish the next frame if it is due and the node has answered the previous one."""
        waiting = self.last is not None and answered_stamp != self.last[0] and \
            now - self.last[1] < STALL_SECONDS
        if now < self.next_time or waiting:
            return
        self.next_time = now + self.period
        index = self.count % len(self.frames)
        self.count += 1
        image, info, truth = self.frames[index]
        # Nothing is received between publishing and on_truth: callbacks run in this thread.
        self.last = (self.topics.publish(image, info, frame_id='camera_color_optical_frame'), now)
        if truth is not None:
            self.on_truth(self.last[0], truth)
