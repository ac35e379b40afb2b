"""rosbag2 recordings (sqlite3 `.db3` or `.mcap` storage) of a colour and a depth Image topic.

Read with the pure-Python `rosbags` package (no rclpy, no ROS installation needed) and decoded
with `rosbags-image` for CompressedImage. A sample is a colour frame paired with the depth frame
closest to it in header stamp (each frame used once, pairs further apart than `max_difference`
seconds dropped; the rule of the TUM benchmark's associate.py).

- Colour: sensor_msgs/Image in rgb8 / bgr8 / rgba8 / bgra8 / mono8, or a CompressedImage (JPEG /
  PNG).
- Depth: sensor_msgs/Image in 16UC1 / mono16 (times `depth_scale` metres per unit, 0.001 by
  REP 118's millimetre convention) or 32FC1 (metres; NaN / Inf / <= 0 = no measurement).
  It must be registered to the colour camera and of the same size (e.g. RealSense
  `aligned_depth_to_color`); an unaligned depth stream raises DatasetError.
- Intrinsics: the first sensor_msgs/CameraInfo on `camera_info_topic` (default: the
  `camera_info` beside the colour topic, else the only CameraInfo of the colour size); P is used
  when it has positive focal lengths, else K.

Topics are picked automatically when there is one colour and one depth stream (by encoding;
'aligned_depth_to_color' wins among several depth topics); otherwise pass them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np

from depth_estimation.datasets.base import (LOGGER, DatasetError, PathLike, RGBDDataset,
                                            RGBDSample, associate_stamps, lazy_import)
from depth_estimation.datasets.folder import scale_depth
from depth_estimation.geometry import Intrinsics

IMAGE_TYPE = 'sensor_msgs/msg/Image'
COMPRESSED_TYPE = 'sensor_msgs/msg/CompressedImage'
INFO_TYPE = 'sensor_msgs/msg/CameraInfo'
COLOR_ENCODINGS = {'rgb8': (3, None), 'bgr8': (3, cv2.COLOR_BGR2RGB),
                   'rgba8': (4, cv2.COLOR_RGBA2RGB), 'bgra8': (4, cv2.COLOR_BGRA2RGB),
                   'mono8': (1, cv2.COLOR_GRAY2RGB), '8UC3': (3, cv2.COLOR_BGR2RGB)}
DEPTH_ENCODINGS = {'16UC1': np.uint16, 'mono16': np.uint16, '32FC1': np.float32}


@dataclass(frozen=True)
class _Frame:
    bag_time: int  # ns, the storage timestamp (used to fetch the message again)
    stamp: float  # s, header stamp


def _bag_dir(path: Path) -> Path:
    """The rosbag2 folder (metadata.yaml + storage files) for a folder or a storage file."""
    if path.is_file() and path.suffix in ('.db3', '.mcap'):
        return path.parent
    return path


def _stamp(message: Any) -> float:
    return message.header.stamp.sec + message.header.stamp.nanosec * 1e-9


class RosbagDataset(RGBDDataset):
    """Colour + depth pairs from a rosbag2 (see the module docstring)."""

    def __init__(self, path: PathLike, color_topic: Optional[str] = None,
                 depth_topic: Optional[str] = None, camera_info_topic: Optional[str] = None,
                 max_difference: float = 0.02, depth_scale: float = 0.001,
                 min_depth: float = 1e-3, max_depth: float = 10.0,
                 skip_broken: bool = False, name: Optional[str] = None) -> None:
        self.path = _bag_dir(Path(path))
        self.skip_broken = bool(skip_broken)
        self.depth_scale = float(depth_scale)
        self.min_depth, self.max_depth, self.eval_crop = float(min_depth), float(max_depth), None
        self.name = name or f'rosbag:{self.path.name}'
        self._reader: Any = None
        self._pid: Optional[int] = None
        self._typestore: Any = None
        reader = self._open()
        topics = {topic: info.msgtype for topic, info in reader.topics.items()}
        self.color_topic, self.depth_topic = self._pick_topics(reader, topics, color_topic,
                                                               depth_topic)
        colour = self._index(reader, self.color_topic)
        depth = self._index(reader, self.depth_topic)
        pairs = associate_stamps([f.stamp for f in colour], [f.stamp for f in depth],
                                 max_difference)
        if not pairs:
            raise DatasetError(f'{self.path}: no {self.color_topic} / {self.depth_topic} pair '
                               f'is closer than {max_difference} s in header stamp')
        self.pairs = [(colour[i], depth[j]) for i, j in pairs]
        self.camera_info_topic, self.intrinsics = self._camera_info(reader, topics,
                                                                    camera_info_topic)

    # --- opening and indexing ----------------------------------------------------------------

    def _open(self) -> Any:
        """The rosbags Reader, opened once per process (sqlite handles do not survive fork)."""
        if self._reader is None or self._pid != os.getpid():
            rosbag2 = lazy_import('rosbags.rosbag2', 'reading rosbag2 recordings')
            if not (self.path / 'metadata.yaml').is_file():
                raise DatasetError(f'{self.path}: not a rosbag2 folder (no metadata.yaml)')
            try:
                reader = rosbag2.Reader(self.path)
                reader.open()
            except Exception as error:  # rosbags raises ReaderError and storage errors
                raise DatasetError(f'{self.path}: cannot open the rosbag2 ({error})') from None
            self._reader, self._pid = reader, os.getpid()
        if self._typestore is None:
            typesys = lazy_import('rosbags.typesys', 'reading rosbag2 recordings')
            self._typestore = typesys.get_typestore(typesys.Stores.LATEST)
        return self._reader

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state['_reader'] = None  # reopened in the worker process
        state['_typestore'] = None  # generated code does not pickle; rebuilt on open
        return state

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _deserialize(self, raw: bytes, msgtype: str, where: str) -> Any:
        try:
            return self._typestore.deserialize_cdr(raw, msgtype)
        except Exception as error:  # a truncated or corrupt message
            raise DatasetError(f'{self.path}: cannot decode a {msgtype} message on {where} '
                               f'({error})') from None

    def _connections(self, reader: Any, topic: str) -> list[Any]:
        return [c for c in reader.connections if c.topic == topic]

    def _first(self, reader: Any, topic: str) -> Any:
        for connection, _, raw in reader.messages(connections=self._connections(reader, topic)):
            return self._deserialize(raw, connection.msgtype, topic)
        return None

    def _pick_topics(self, reader: Any, topics: dict[str, str], color_topic: Optional[str],
                     depth_topic: Optional[str]) -> tuple[str, str]:
        for topic in (color_topic, depth_topic):
            if topic is not None and topics.get(topic) not in (IMAGE_TYPE, COMPRESSED_TYPE):
                raise DatasetError(f'{self.path}: no Image topic {topic!r}; image topics: '
                                   f'{self._describe(topics)}')
        if color_topic is not None and depth_topic is not None:
            return color_topic, depth_topic
        colours, depths = [], []
        for topic, msgtype in sorted(topics.items()):
            if msgtype == COMPRESSED_TYPE:
                message = self._first(reader, topic)
                if message is not None and 'compresseddepth' not in message.format.lower():
                    colours.append(topic)
            elif msgtype == IMAGE_TYPE:
                message = self._first(reader, topic)
                if message is None:
                    continue
                if message.encoding in DEPTH_ENCODINGS:
                    depths.append(topic)
                elif message.encoding in COLOR_ENCODINGS:
                    colours.append(topic)
        if len(depths) > 1:
            aligned = [t for t in depths if 'aligned_depth_to_color' in t]
            depths = aligned if len(aligned) == 1 else depths
        colour = color_topic or (colours[0] if len(colours) == 1 else None)
        depth = depth_topic or (depths[0] if len(depths) == 1 else None)
        if colour is None or depth is None:
            raise DatasetError(f'{self.path}: cannot pick the colour and depth topics '
                               f'automatically (colour candidates {colours}, depth candidates '
                               f'{depths}); pass color_topic= and depth_topic=')
        return colour, depth

    @staticmethod
    def _describe(topics: dict[str, str]) -> str:
        images = [t for t, m in topics.items() if m in (IMAGE_TYPE, COMPRESSED_TYPE)]
        return ', '.join(sorted(images)) or 'none'

    def _index(self, reader: Any, topic: str) -> list[_Frame]:
        frames = []
        for connection, bag_time, raw in reader.messages(
                connections=self._connections(reader, topic)):
            message = self._deserialize(raw, connection.msgtype, topic)
            frames.append(_Frame(int(bag_time), _stamp(message)))
        if not frames:
            raise DatasetError(f'{self.path}: topic {topic} has no messages')
        return frames

    def _camera_info(self, reader: Any, topics: dict[str, str],
                     topic: Optional[str]) -> tuple[Optional[str], Optional[Intrinsics]]:
        infos = sorted(t for t, m in topics.items() if m == INFO_TYPE)
        if topic is not None and topic not in infos:
            raise DatasetError(f'{self.path}: no CameraInfo topic {topic!r} (found {infos})')
        if topic is None:
            sibling = self.color_topic.rsplit('/', 1)[0] + '/camera_info'
            if sibling in infos:
                topic = sibling
            else:
                colour = self._decode_color(self._fetch(reader, self.color_topic,
                                                        self.pairs[0][0]))
                matching = [t for t in infos if self._info_size(reader, t) ==
                            (colour.shape[1], colour.shape[0])]
                topic = matching[0] if len(matching) == 1 else None
        if topic is None:
            LOGGER.warning('%s: no CameraInfo for %s; samples have no intrinsics', self.path,
                           self.color_topic)
            return None, None
        info = self._first(reader, topic)
        try:
            projection = np.asarray(info.p, dtype=np.float64).reshape(-1)
            if projection.size == 12 and projection[0] > 0 and projection[5] > 0:
                return topic, Intrinsics.from_projection(projection, info.width, info.height)
            return topic, Intrinsics.from_k(np.asarray(info.k, dtype=np.float64), info.width,
                                            info.height)
        except ValueError as error:
            raise DatasetError(f'{self.path}: unusable CameraInfo on {topic} ({error})') from None

    def _info_size(self, reader: Any, topic: str) -> tuple[int, int]:
        info = self._first(reader, topic)
        return (int(info.width), int(info.height)) if info is not None else (0, 0)

    # --- samples -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.pairs)

    def sample_name(self, index: int) -> str:
        return f'{self.path.name}/{self.pairs[index][0].stamp:.6f}'

    def timestamps(self, index: int) -> tuple[float, float]:
        """(colour, depth) header stamps in seconds of sample `index`."""
        return self.pairs[index][0].stamp, self.pairs[index][1].stamp

    def _fetch(self, reader: Any, topic: str, frame: _Frame) -> Any:
        for connection, _, raw in reader.messages(connections=self._connections(reader, topic),
                                                  start=frame.bag_time,
                                                  stop=frame.bag_time + 1):
            message = self._deserialize(raw, connection.msgtype, topic)
            if _stamp(message) == frame.stamp:
                return message
        raise DatasetError(f'{self.path}: the {topic} message at {frame.bag_time} ns is gone '
                           '(was the bag modified?)')

    def _decode_color(self, message: Any) -> np.ndarray:
        where = f'{self.path} {self.color_topic}'
        if hasattr(message, 'format'):  # CompressedImage
            from rosbags.image import compressed_image_to_cvimage

            try:
                return compressed_image_to_cvimage(message, 'rgb8')
            except Exception as error:  # rosbags-image asserts on undecodable data
                raise DatasetError(f'{where}: cannot decode the compressed image '
                                   f'({type(error).__name__}: {error})') from None
        spec = COLOR_ENCODINGS.get(message.encoding)
        if spec is None:
            raise DatasetError(f'{where}: colour encoding {message.encoding!r} is not one of '
                               f'{sorted(COLOR_ENCODINGS)}')
        channels, conversion = spec
        image = _image_array(message, np.dtype(np.uint8), channels, where)
        if conversion is not None:
            image = cv2.cvtColor(image, conversion)
        return np.ascontiguousarray(image)

    def _decode_depth(self, message: Any) -> np.ndarray:
        where = f'{self.path} {self.depth_topic}'
        dtype = DEPTH_ENCODINGS.get(getattr(message, 'encoding', ''))
        if dtype is None:
            raise DatasetError(f'{where}: depth encoding {getattr(message, "encoding", "?")!r} '
                               f'is not one of {sorted(DEPTH_ENCODINGS)}')
        raw = _image_array(message, np.dtype(dtype), 1, where)
        if raw.dtype == np.uint16:
            return scale_depth(raw, self.depth_scale)
        depth = raw.astype(np.float32)
        with np.errstate(invalid='ignore'):
            depth[~(np.isfinite(depth) & (depth > 0))] = 0.0
        return depth

    def _load(self, index: int) -> RGBDSample:
        reader = self._open()
        colour_frame, depth_frame = self.pairs[index]
        image = self._decode_color(self._fetch(reader, self.color_topic, colour_frame))
        depth = self._decode_depth(self._fetch(reader, self.depth_topic, depth_frame))
        if image.shape[:2] != depth.shape:
            raise DatasetError(f'{self.path}: depth on {self.depth_topic} is {depth.shape[1]}x'
                               f'{depth.shape[0]} but colour on {self.color_topic} is '
                               f'{image.shape[1]}x{image.shape[0]}; record depth aligned to the '
                               'colour camera (e.g. aligned_depth_to_color)')
        intrinsics = self.intrinsics and self.intrinsics.scaled(image.shape[1], image.shape[0])
        return RGBDSample(image=image, depth=depth, intrinsics=intrinsics,
                          name=self.sample_name(index))


def _image_array(message: Any, dtype: np.dtype, channels: int, where: str) -> np.ndarray:
    """sensor_msgs/Image data -> (H, W[, C]) array, honouring `step` padding and endianness."""
    height, width, step = int(message.height), int(message.width), int(message.step)
    row_bytes = width * channels * dtype.itemsize
    data = np.asarray(message.data, dtype=np.uint8).reshape(-1)
    if step < row_bytes or data.size < step * height:
        raise DatasetError(f'{where}: Image {width}x{height} {message.encoding} has step {step} '
                           f'and {data.size} bytes (need {row_bytes} per row)')
    rows = data[:step * height].reshape(height, step)[:, :row_bytes]
    order = '>' if message.is_bigendian else '<'
    array = np.ascontiguousarray(rows).view(dtype.newbyteorder(order)).astype(dtype)
    shape = (height, width) if channels == 1 else (height, width, channels)
    return array.reshape(shape)


__all__ = ['RosbagDataset']
