"""`depth_estimation_player`: publish `image` + `camera_info` from a folder, a video or a bag.

A bag (rosbag2 .db3 / .mcap or ROS 1 .bag, read with `rosbags`' AnyReader) plays at its recorded
timing times `--rate`. camera_info goes out just before each image with the image's header, so
the node matches it by stamp.

Example:
    depth_estimation_player recording.bag \
        --loop --fps 5 --ros-args -r image:=/camera/image -r camera_info:=/camera/camera_info
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import os
from pathlib import Path
import sys
import time
from typing import Any, Callable, Iterator, Optional, Sequence


from depth_estimation.tools.sources import (folder_files, Frame, IMAGE_SUFFIXES, iter_frames,
                                            VIDEO_SUFFIXES, video_properties)

BAG_SUFFIXES = ('.bag', '.db3', '.mcap')
IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'
DEFAULT_FRAME_ID = 'camera_optical_frame'


@dataclass
class SourceFrame:
    """One frame to publish: its recorded time, the Image and the CameraInfo to go with it."""

    time_ns: int  # recorded (or synthetic) time, used for pacing
    image: Any  # sensor_msgs/Image (or CompressedImage from a bag, with keep_compressed)
    camera_info: Optional[Any]  # sensor_msgs/CameraInfo or None


class PlayerError(ValueError):
    """A source that cannot be played, with what is wrong."""


# Sources --------------------------------------------------------------------------------------

class FileSource:
    """Files read as RGB (`sources.iter_frames`; unreadable ones skipped), one every
    `period_ns`, with the camera_info the player gives them."""

    camera_info: Optional[Any] = None  # from --camera-info or --horizontal-fov

    def __init__(self, paths: list[Path], period_ns: float, frame_id: str = '') -> None:
        self.paths, self.period_ns = paths, period_ns
        self.frame_id = frame_id or DEFAULT_FRAME_ID

    def __iter__(self) -> Iterator[SourceFrame]:
        from depth_estimation.ros.conversions import rgb_to_image

        frames = (item for item in iter_frames(self.paths) if isinstance(item, Frame))
        for index, frame in enumerate(frames):
            image = rgb_to_image(frame.rgb)
            image.header.frame_id = self.frame_id
            yield SourceFrame(int(index * self.period_ns), image, self.camera_info)


class FolderSource(FileSource):
    """Images of a folder, sorted by name, at a fixed rate (default 10 frames/s)."""

    def __init__(self, folder: Path, fps: float = 0.0, frame_id: str = '') -> None:
        paths = folder_files(folder, IMAGE_SUFFIXES)
        if not paths:
            raise PlayerError(f'no images ({", ".join(sorted(IMAGE_SUFFIXES))}) in {folder}')
        super().__init__(paths, 1e9 / (fps if fps > 0 else 10.0), frame_id)


class VideoSource(FileSource):
    """Frames of a video file (OpenCV), timed by the file's own frame rate."""

    def __init__(self, path: Path, frame_id: str = '') -> None:
        properties = video_properties(path)
        if properties is None:
            raise PlayerError(f'OpenCV cannot open the video {path}')
        self.fps = properties[1] or 30.0
        super().__init__([Path(path)], 1e9 / self.fps, frame_id)


def choose_topics(connections: Sequence[tuple[str, str]], image_topic: Optional[str] = None,
                  camera_info_topic: Optional[str] = None) -> tuple[str, Optional[str]]:
    """(image topic, CameraInfo topic or None) from a bag's (topic, message type) pairs.

    Automatic image topic: an Image or CompressedImage topic, those without 'depth' in the name
    first, then those named colour/color/rgb; CameraInfo: the one sharing the longest namespace
    prefix with it.
    """
    types = dict(connections)
    if image_topic is None:
        candidates = [topic for topic, kind in connections if kind in IMAGE_TYPES]
        if not candidates:
            raise PlayerError(f'the bag has no {" or ".join(IMAGE_TYPES)} topic; topics: '
                              f'{sorted(types)}')

        def preference(topic: str) -> tuple[int, int]:
            lower = topic.lower()
            return ('depth' in lower, not any(word in lower for word in ('color', 'rgb')))

        image_topic = sorted(candidates, key=preference)[0]
    elif types.get(image_topic) not in IMAGE_TYPES:
        raise PlayerError(f'topic {image_topic!r} is not an image topic in this bag: '
                          f'{sorted(t for t, k in connections if k in IMAGE_TYPES)}')
    if camera_info_topic is None:
        infos = [topic for topic, kind in connections if kind == CAMERA_INFO_TYPE]
        camera_info_topic = max(infos, default=None, key=lambda t: len(os.path.commonprefix(
            [t.split('/'), image_topic.split('/')])))  # the most namespace levels in common
    elif types.get(camera_info_topic) != CAMERA_INFO_TYPE:
        raise PlayerError(f'topic {camera_info_topic!r} is not a CameraInfo topic in this bag')
    return image_topic, camera_info_topic


def _bag_paths(path: Path) -> list[Path]:
    """What AnyReader opens: a ROS 1 .bag file, or a rosbag2 directory (also from its file)."""
    path = Path(path)
    if path.is_file() and path.suffix in ('.db3', '.mcap'):
        if not (path.parent / 'metadata.yaml').is_file():
            raise PlayerError(f'{path} has no metadata.yaml beside it: pass its rosbag2 folder')
        return [path.parent]
    return [path]


class BagSource:
    """Image (+ CameraInfo) messages of a rosbag2 or ROS 1 bag, in recorded order."""

    def __init__(self, path: Path, image_topic: Optional[str] = None,
                 camera_info_topic: Optional[str] = None, frame_id: str = '',
                 keep_compressed: bool = False) -> None:
        from rosbags.highlevel import AnyReader, AnyReaderError
        from rosbags.typesys import get_typestore, Stores

        self.paths = _bag_paths(path)
        self._open = lambda: AnyReader(self.paths,
                                       default_typestore=get_typestore(Stores.ROS2_KILTED))
        try:
            with self._open() as reader:
                pairs = [(c.topic, c.msgtype) for c in reader.connections]
        except (AnyReaderError, OSError, ValueError) as error:
            raise PlayerError(f'cannot read the bag {path}: {error}') from error
        self.image_topic, self.camera_info_topic = choose_topics(pairs, image_topic,
                                                                 camera_info_topic)
        self.frame_id = frame_id
        self.keep_compressed = keep_compressed  # CompressedImage messages go out as they are

    def __iter__(self) -> Iterator[SourceFrame]:
        from depth_estimation.ros.conversions import camera_info_from_bag, image_from_bag

        topics = {self.image_topic, self.camera_info_topic} - {None}
        latest_info: Optional[Any] = None
        with self._open() as reader:
            connections = [c for c in reader.connections if c.topic in topics]
            for connection, time_ns, raw in reader.messages(connections=connections):
                message = reader.deserialize(raw, connection.msgtype)
                if connection.msgtype == CAMERA_INFO_TYPE:
                    latest_info = camera_info_from_bag(message)
                    continue
                image = image_from_bag(message, connection.msgtype, self.keep_compressed)
                if self.frame_id:
                    image.header.frame_id = self.frame_id
                yield SourceFrame(int(time_ns), image, latest_info)


def open_source(path: Path, fps: float = 0.0, frame_id: str = '',
                image_topic: Optional[str] = None, camera_info_topic: Optional[str] = None,
                keep_compressed: bool = False) -> Any:
    """The source for `path`: a folder, a video file or a bag (by suffix or rosbag2 folder);
    `keep_compressed`: a bag's CompressedImage messages are not decoded."""
    path = Path(path)
    if not path.exists():
        raise PlayerError(f'{path} does not exist')
    if path.is_dir() and not (path / 'metadata.yaml').is_file():
        return FolderSource(path, fps, frame_id)
    if path.is_dir() or path.suffix.lower() in BAG_SUFFIXES:
        return BagSource(path, image_topic, camera_info_topic, frame_id, keep_compressed)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoSource(path, frame_id)
    raise PlayerError(f'cannot tell what {path} is: expected a folder of images, a video '
                      f'({", ".join(sorted(VIDEO_SUFFIXES))}) or a bag '
                      f'({", ".join(BAG_SUFFIXES)} or a rosbag2 folder)')


# Playing --------------------------------------------------------------------------------------

def play(source: Any, publish: Callable[[SourceFrame], None], rate: float = 1.0,
         fps: float = 0.0, loop: bool = False, max_frames: int = 0,
         keep_running: Callable[[], bool] = lambda: True,
         clock: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], None] = time.sleep) -> int:
    """Publish the frames of `source` paced by their recorded times / `rate`, or at `fps`.

    Returns the number of frames published. `max_frames` > 0 stops after that many (over loops).
    """
    if rate <= 0 and fps <= 0:
        raise ValueError('rate or fps must be positive')
    published = 0
    start = clock()
    elapsed_before = 0.0  # seconds of schedule used by earlier loops
    while True:
        first_ns: Optional[int] = None
        last_offset = 0.0
        for frame in source:
            if not keep_running() or (max_frames and published >= max_frames):
                return published
            if fps > 0:
                offset = published / fps
            else:
                first_ns = frame.time_ns if first_ns is None else first_ns
                offset = elapsed_before + (frame.time_ns - first_ns) / 1e9 / rate
            last_offset = offset
            wait = start + offset - clock()
            if wait > 0:
                sleep(wait)
            publish(frame)
            published += 1
        if published == 0:
            raise PlayerError('the source has no frames')
        if not loop:
            return published
        period = 1.0 / fps if fps > 0 else 0.1 / rate  # gap before the loop starts over
        elapsed_before = last_offset + period


def add_camera_info_options(parser: argparse.ArgumentParser, horizontal_fov: float) -> None:
    """--camera-info and --horizontal-fov: the camera_info that goes with a folder or a video."""
    parser.add_argument('--camera-info', type=Path, default=None,
                        help='ROS camera_info YAML for a folder or a video')
    parser.add_argument('--horizontal-fov', type=float, default=horizontal_fov,
                        help='degrees; a pinhole camera_info for a folder or a video without '
                             '--camera-info' + (f' (default {horizontal_fov:g})'
                                                if horizontal_fov else ''))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='depth_estimation_player',
        description='Publish image + camera_info from an image folder, a video file or a bag '
                    '(rosbag2 db3/mcap or ROS 1 .bag) for depth_estimation_node. ROS arguments '
                    'go after --ros-args (e.g. -r image:=/camera/image).')
    parser.add_argument('source', type=Path, help='image folder, video file, bag file or '
                        'rosbag2 folder')
    parser.add_argument('--fps', type=float, default=0.0, help='fixed publishing rate '
                        '(default: the recorded timing; 10 for folders)')
    parser.add_argument('--rate', type=float, default=1.0, help='speed factor on the recorded '
                        'timing (default 1.0)')
    parser.add_argument('--loop', action='store_true', help='start over at the end')
    parser.add_argument('--max-frames', type=int, default=0, help='stop after N frames (0: no '
                        'limit)')
    add_camera_info_options(parser, horizontal_fov=0.0)
    parser.add_argument('--frame-id', default='', help='frame id of the published headers '
                        f'(default: the bag\'s, or {DEFAULT_FRAME_ID})')
    parser.add_argument('--keep-stamps', action='store_true', help='keep the recorded stamps '
                        'instead of the current time')
    parser.add_argument('--bag-image-topic', default=None, help='image topic in the bag')
    parser.add_argument('--bag-camera-info-topic', default=None, help='CameraInfo topic in the '
                        'bag')
    parser.add_argument('--reliable', action='store_true', help='reliable publishers (default: '
                        'sensor-data QoS, best effort, as camera drivers)')
    parser.add_argument('--transport', choices=('raw', 'compressed'), default='raw',
                        help='raw: sensor_msgs/Image on image; compressed: CompressedImage on '
                        '<image>/compressed (as image_transport)')
    parser.add_argument('--compressed-format', choices=('jpeg', 'png'), default='jpeg',
                        help='codec of frames the player compresses (default jpeg)')
    parser.add_argument('--jpeg-quality', type=int, default=95, help='JPEG quality, 1 to 100 '
                        '(default 95, as image_transport)')
    parser.add_argument('--wait-for-subscriber', type=float, default=0.0, metavar='SECONDS',
                        help='wait up to this long for a subscriber of image before starting')
    return parser


def _camera_info_for_files(args: argparse.Namespace, source: Any) -> Optional[Any]:
    from depth_estimation.pipeline.intrinsics import intrinsics_from_parameters
    from depth_estimation.ros.conversions import (camera_info_from_intrinsics,
                                                  camera_info_from_yaml)

    if args.camera_info is not None:
        return camera_info_from_yaml(args.camera_info)
    if args.horizontal_fov > 0:
        first = next(iter(source))
        intrinsics = intrinsics_from_parameters(first.image.width, first.image.height,
                                                horizontal_fov_deg=args.horizontal_fov)
        return camera_info_from_intrinsics(intrinsics)
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    from depth_estimation.ros.camera_topics import CameraTopics
    from depth_estimation.ros.runner import (program_arguments, qos_profile, SENSOR_DATA_QOS,
                                             shut_down_after, start_node)

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(program_arguments('player', argv))
    try:
        compressed = args.transport == 'compressed'
        source = open_source(args.source, args.fps, args.frame_id, args.bag_image_topic,
                             args.bag_camera_info_topic, keep_compressed=compressed)
        if isinstance(source, FileSource):
            source.camera_info = _camera_info_for_files(args, source)
    except (PlayerError, OSError, ValueError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    describe = (f'{source.image_topic} (+ {source.camera_info_topic or "no camera_info"})'
                if isinstance(source, BagSource) else str(args.source))

    node = start_node('depth_estimation_player', ['player'] + argv)
    qos = qos_profile(reliable=True, depth=5) if args.reliable else SENSOR_DATA_QOS
    topics = CameraTopics(node, qos, args.transport, codec=args.compressed_format,
                          jpeg_quality=args.jpeg_quality)

    def publish(frame: SourceFrame) -> None:
        topics.publish(frame.image, frame.camera_info, restamp=not args.keep_stamps)

    started = time.monotonic()
    published = 0
    code = 0

    def summary() -> str:
        elapsed = max(time.monotonic() - started, 1e-9)
        return (f'published {published} frames in {elapsed:.1f} s'
                f'{f" ({published / elapsed:.1f} frames/s)" if published else ""}')

    with shut_down_after(node, summary):  # Ctrl-C while waiting or playing ends the same way
        if args.wait_for_subscriber > 0:
            node.get_logger().info(f'waiting up to {args.wait_for_subscriber:g} s for a '
                                   f'subscriber on {topics.image_topic}')
        deadline = time.monotonic() + args.wait_for_subscriber
        while topics.subscribers() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        node.get_logger().info(f'playing {describe} on {topics.image_topic}'
                               f'{" (loop)" if args.loop else ""}')
        started = time.monotonic()
        try:
            published = play(source, publish, rate=args.rate, fps=args.fps, loop=args.loop,
                             max_frames=args.max_frames, keep_running=node.context.ok)
        except ValueError as error:  # PlayerError, or a bag's frame that cannot be decoded
            node.get_logger().error(str(error))
            code = 2
    return code


if __name__ == '__main__':
    sys.exit(main())
