"""Message <-> numpy conversions for the depth node (sensor_msgs Image, CameraInfo, PointCloud2,
LaserScan).

Pure functions: they build or read messages and never touch a ROS graph. The geometry itself lives
in `depth_estimation.geometry`.
"""

from __future__ import annotations

from array import array
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Mapping, Optional, Union

import numpy as np
from rosbags.image import message_to_cvimage
from sensor_msgs.msg import CameraInfo, Image, LaserScan, PointCloud2, PointField
from std_msgs.msg import Header
import yaml

from depth_estimation.geometry import depth_to_points, Intrinsics, pack_cloud, scale_projection
from depth_estimation.pipeline.frame import SkippedFrame
from depth_estimation.pipeline.intrinsics import CameraCalibration
from depth_estimation.pipeline.refinement import SparseSample

# Input encodings the node accepts: bytes per pixel of each.
COLOR_ENCODINGS = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1}
DEPTH_ENCODING = '32FC1'
RAW_DEPTH_ENCODING = '16UC1'
FLOAT_ENCODINGS = ('32FC1', '32FC2', '32FC3', '32FC4', '64FC1', '64FC2', '64FC3', '64FC4')


class ImageError(SkippedFrame):
    """An Image the node cannot read; `kind` names the problem (for counters and log keys)."""


def _as_uint8_array(data: Any) -> array:
    """Message byte data (bytes, array('B'), numpy) -> array('B') without per-element copies."""
    if isinstance(data, array) and data.typecode == 'B':
        return data
    result = array('B')
    result.frombytes(memoryview(data).cast('B') if not isinstance(data, np.ndarray)
                     else np.ascontiguousarray(data).tobytes())
    return result


def image_to_rgb(msg: Image) -> np.ndarray:
    """A colour or mono8 Image -> RGB uint8 (H, W, 3), a new array (the node's one image input).

    Raises ValueError for an unsupported encoding (float and 16-bit depth images included), an
    empty image, big-endian data, a step shorter than a row, or data whose length is not
    step * height.
    """
    encoding = msg.encoding
    channels = COLOR_ENCODINGS.get(encoding)
    if channels is None:
        hint = ''
        if encoding in FLOAT_ENCODINGS or encoding in ('16UC1', 'mono16'):
            hint = ' (a depth or float image: is a depth topic remapped to the colour input?)'
        raise ImageError('float_image' if encoding in FLOAT_ENCODINGS else 'encoding',
                         f'unsupported image encoding {encoding!r}{hint}; expected one of '
                         f'{sorted(COLOR_ENCODINGS)}')
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageError('empty', f'empty image {width}x{height}')
    if msg.is_bigendian:
        raise ImageError('big_endian', f'big-endian image data (is_bigendian set on a '
                         f'{encoding} image) is not supported; publish little-endian data with '
                         'is_bigendian = 0')
    row_bytes = width * channels
    if step < row_bytes:
        raise ImageError('step', f'step {step} is shorter than a row of {width} {encoding} '
                         f'pixels ({row_bytes} bytes)')
    data = np.frombuffer(msg.data, dtype=np.uint8)  # (step * H,) bytes
    if data.size != step * height:
        raise ImageError('data_length', f'image data has {data.size} bytes, expected step * '
                         f'height = {step} * {height} = {step * height}')
    rows = data.reshape(height, step)[:, :row_bytes]  # (H, W * C) without row padding
    packed = SimpleNamespace(height=height, width=width, encoding=encoding, is_bigendian=False,
                             step=row_bytes, data=np.ascontiguousarray(rows))
    rgb = message_to_cvimage(packed, 'rgb8')  # (H, W, 3) uint8
    return np.array(rgb, dtype=np.uint8, copy=True).reshape(height, width, 3)


def rgb_to_image(rgb: np.ndarray, header: Optional[Header] = None,
                 encoding: str = 'rgb8') -> Image:
    """RGB uint8 (H, W, 3) -> Image in `encoding` (rgb8, bgr8, rgba8, bgra8 or mono8)."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f'expected RGB uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}')
    if encoding == 'rgb8':
        pixels = rgb
    elif encoding == 'bgr8':
        pixels = rgb[..., ::-1]
    elif encoding in ('rgba8', 'bgra8'):
        colour = rgb if encoding == 'rgba8' else rgb[..., ::-1]
        alpha = np.full(rgb.shape[:2] + (1,), 255, dtype=np.uint8)  # (H, W, 1)
        pixels = np.concatenate([colour, alpha], axis=2)  # (H, W, 4)
    elif encoding == 'mono8':
        weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
        pixels = np.round(rgb.astype(np.float32) @ weights).astype(np.uint8)  # (H, W)
    else:
        raise ValueError(f'cannot write encoding {encoding!r}')
    pixels = np.ascontiguousarray(pixels)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = False
    msg.step = int(msg.width * COLOR_ENCODINGS[encoding])
    msg.data = _as_uint8_array(pixels.tobytes())
    return msg


def depth_to_image(depth: np.ndarray, header: Header, keep_infinity: bool = False) -> Image:
    """Depth (H, W) metres -> 32FC1 Image (REP 118); invalid (non-finite, <= 0) written as NaN.

    With `keep_infinity`, -Inf and +Inf pass through (REP 117: too close / out of range).
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f'expected depth of shape (H, W), got {depth.shape}')
    values = depth.astype('<f4')  # (H, W) metres, little-endian copy
    with np.errstate(invalid='ignore'):
        invalid = ~(np.isfinite(values) & (values > 0))
        if keep_infinity:
            invalid &= ~np.isinf(values)
        values[invalid] = np.nan
    return _single_channel_image(values, header, DEPTH_ENCODING)


def millimetres_to_image(millimetres: np.ndarray, header: Header) -> Image:
    """uint16 (H, W) millimetres -> 16UC1 Image (REP 118 raw form, 0 = invalid)."""
    millimetres = np.asarray(millimetres)
    if millimetres.ndim != 2 or millimetres.dtype != np.uint16:
        raise ValueError(f'expected uint16 (H, W), got {millimetres.dtype} {millimetres.shape}')
    return _single_channel_image(millimetres.astype('<u2'), header, RAW_DEPTH_ENCODING)


def image_to_millimetres(msg: Image) -> np.ndarray:
    """A 16UC1 Image -> uint16 (H, W) millimetres (a copy)."""
    if msg.encoding != RAW_DEPTH_ENCODING:
        raise ValueError(f'expected a {RAW_DEPTH_ENCODING} image, got {msg.encoding!r}')
    return _single_channel_values(msg, 'u2', '16UC1')  # (H, W) mm


def _single_channel_values(msg: Image, kind: str, name: str) -> np.ndarray:
    """The pixels of a one-channel Image as a native (H, W) array of `kind` ('f4', 'u2'), a copy;
    row padding (step) and byte order handled, a size mismatch refused."""
    itemsize = np.dtype(kind).itemsize
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.frombuffer(msg.data, dtype=np.uint8)  # (step * H,)
    if step < width * itemsize or data.size != step * height:
        raise ValueError(f'{name} image data has {data.size} bytes for step {step} and {width}x'
                         f'{height}')
    rows = data.reshape(height, step)[:, :width * itemsize]  # (H, W * itemsize)
    dtype = np.dtype(('>' if msg.is_bigendian else '<') + kind)
    return np.ascontiguousarray(rows).view(dtype).astype(kind)  # (H, W)


def float_to_image(values: np.ndarray, header: Header) -> Image:
    """Any float map (H, W) -> 32FC1 Image, values as they are (e.g. a confidence in [0, 1])."""
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f'expected a map of shape (H, W), got {values.shape}')
    return _single_channel_image(values.astype('<f4'), header, DEPTH_ENCODING)


def _single_channel_image(values: np.ndarray, header: Header, encoding: str) -> Image:
    """A little-endian (H, W) array -> an Image of that encoding, rows packed (step = W * item)."""
    msg = Image()
    msg.header = header
    msg.height, msg.width = int(values.shape[0]), int(values.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = False
    msg.step = int(msg.width * values.itemsize)
    msg.data = _as_uint8_array(values.tobytes())
    return msg


def sparse_sample_from_image(msg: Image) -> SparseSample:
    """A sparse depth Image (32FC1 metres or 16UC1 mm) -> the anchoring sample of its stamp.

    The sample is float32 (h, w) metres, NaN where there is none (NaN, Inf, 0 or negative in
    32FC1; 0 in 16UC1, REP 118)."""
    if msg.encoding == DEPTH_ENCODING:
        depth = image_to_depth(msg)
    elif msg.encoding in (RAW_DEPTH_ENCODING, 'mono16'):
        millimetres = _single_channel_values(msg, 'u2', msg.encoding)  # (h, w)
        depth = millimetres.astype(np.float32) / np.float32(1000.0)
    else:
        raise ImageError('sparse_depth_encoding', f'sparse depth encoding {msg.encoding!r} is '
                         f'not supported; expected {DEPTH_ENCODING} (metres) or '
                         f'{RAW_DEPTH_ENCODING} (millimetres)')
    with np.errstate(invalid='ignore'):
        depth[~(np.isfinite(depth) & (depth > 0))] = np.nan
    return SparseSample(stamp_seconds(msg), depth=depth)


def sparse_sample_from_scan(msg: LaserScan) -> SparseSample:
    """A LaserScan -> the anchoring sample of its stamp (ValueError without an angle step)."""
    if not (msg.angle_increment != 0 and np.isfinite(msg.angle_increment)):
        raise ValueError(f'angle_increment is {msg.angle_increment}')
    return SparseSample(stamp_seconds(msg), ranges=np.asarray(msg.ranges, dtype=np.float32),
                        angle_min=float(msg.angle_min),
                        angle_increment=float(msg.angle_increment),
                        range_min=float(msg.range_min),
                        range_max=float(msg.range_max) if msg.range_max > 0 else np.inf)


def stamp_seconds(msg: Any) -> float:
    """The header stamp of a message in seconds."""
    return int(msg.header.stamp.sec) + int(msg.header.stamp.nanosec) * 1e-9


def ranges_to_scan(ranges: np.ndarray, angle_min: float, angle_max: float,
                   angle_increment: float, range_min: float, range_max: float,
                   header: Header) -> LaserScan:
    """A LaserScan with these angles (radians) and ranges (metres, REP 117 NaN / +-Inf kept)."""
    msg = LaserScan()
    msg.header = header
    msg.angle_min, msg.angle_max = float(angle_min), float(angle_max)
    msg.angle_increment = float(angle_increment)
    msg.time_increment = 0.0  # every range comes from the same exposure
    msg.scan_time = 0.0
    msg.range_min, msg.range_max = float(range_min), float(range_max)
    msg.ranges = array('f', np.asarray(ranges, dtype=np.float32).tobytes())
    return msg


def image_to_depth(msg: Image) -> np.ndarray:
    """A 32FC1 Image -> float32 (H, W) metres (a copy)."""
    if msg.encoding != DEPTH_ENCODING:
        raise ValueError(f'expected a {DEPTH_ENCODING} depth image, got {msg.encoding!r}')
    return _single_channel_values(msg, 'f4', 'depth')  # (H, W) metres


def camera_info_calibration(info: CameraInfo) -> CameraCalibration:
    """The K, P and size of a CameraInfo as plain numbers (the pipeline's camera input)."""
    return CameraCalibration(tuple(float(v) for v in info.k), tuple(float(v) for v in info.p),
                             int(info.width), int(info.height))


def camera_info_intrinsics(info: CameraInfo) -> Intrinsics:
    """Intrinsics of a CameraInfo at its own size: from P (as image_geometry), else from K."""
    projection = np.asarray(info.p, dtype=np.float64)
    if projection.size == 12 and projection[0] > 0 and projection[5] > 0:
        return Intrinsics.from_projection(projection, info.width, info.height)
    return Intrinsics.from_k(info.k, info.width, info.height)


def scale_camera_info(info: CameraInfo, width: int, height: int,
                      header: Optional[Header] = None) -> CameraInfo:
    """CameraInfo for the same camera at `width` x `height` (K and P scaled), with `header`.

    A CameraInfo whose size is 0 (unknown) is taken to be at the target size. A P of all zeros
    (uncalibrated driver) is filled from K so consumers that read P (depth_image_proc) work.
    """
    source_width = int(info.width) or int(width)
    source_height = int(info.height) or int(height)
    scale_x = width / source_width
    scale_y = height / source_height
    camera_matrix = np.asarray(info.k, dtype=np.float64)
    projection = np.asarray(info.p, dtype=np.float64)
    if not (projection.size == 12 and projection[0] > 0 and projection[5] > 0):
        projection = np.zeros((3, 4))
        projection[:, :3] = camera_matrix.reshape(3, 3)
    out = CameraInfo()
    out.header = header if header is not None else info.header
    out.width, out.height = int(width), int(height)
    out.distortion_model = info.distortion_model
    out.d = [float(v) for v in info.d]
    out.k = scale_projection(camera_matrix, scale_x, scale_y)
    out.r = [float(v) for v in info.r]
    if not any(out.r):
        out.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    out.p = scale_projection(projection, scale_x, scale_y)
    # binning and ROI describe the full-resolution sensor; the scaled image has neither.
    return out


def camera_info_from_intrinsics(intrinsics: Intrinsics, header: Header) -> CameraInfo:
    """A CameraInfo (plumb_bob, no distortion, identity R, P = [K | 0]) for pinhole intrinsics."""
    info = CameraInfo()
    info.header = header
    info.width, info.height = int(intrinsics.width), int(intrinsics.height)
    info.distortion_model = 'plumb_bob'
    info.d = [0.0] * 5
    info.k = [float(v) for v in intrinsics.camera_matrix().reshape(-1)]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [intrinsics.fx, 0.0, intrinsics.cx, 0.0, 0.0, intrinsics.fy, intrinsics.cy, 0.0,
              0.0, 0.0, 1.0, 0.0]
    return info


def points_to_cloud(points: np.ndarray, header: Header,
                    rgb: Optional[np.ndarray] = None) -> PointCloud2:
    """Organized points (H, W, 3) [+ RGB uint8 (H, W, 3)] -> PointCloud2, is_dense False."""
    fields, point_step, data = pack_cloud(points, rgb)
    height, width = int(points.shape[0]), int(points.shape[1])
    msg = PointCloud2()
    msg.header = header
    msg.height, msg.width = height, width
    msg.fields = [PointField(name=name, offset=offset, datatype=datatype, count=1)
                  for name, offset, datatype in fields]
    msg.is_bigendian = False
    msg.point_step = point_step
    msg.row_step = point_step * width
    msg.is_dense = False
    msg.data = _as_uint8_array(data)
    return msg


def depth_to_cloud(depth: np.ndarray, info: CameraInfo, header: Header,
                   rgb: Optional[np.ndarray] = None) -> PointCloud2:
    """Depth (H, W) metres and its (depth-sized) CameraInfo -> organized PointCloud2."""
    points = depth_to_points(depth, camera_info_intrinsics(info))  # (H, W, 3) metres
    return points_to_cloud(points, header, rgb)


def camera_info_from_dict(data: Mapping[str, Any], header: Optional[Header] = None) -> CameraInfo:
    """A parsed ROS camera_info YAML (camera_calibration_parsers format) -> CameraInfo."""
    info = CameraInfo()
    if header is not None:
        info.header = header
    info.width = int(data['image_width'])
    info.height = int(data['image_height'])
    info.distortion_model = str(data.get('distortion_model', 'plumb_bob'))
    info.k = [float(v) for v in data['camera_matrix']['data']]
    info.d = [float(v) for v in data.get('distortion_coefficients', {}).get('data', [])]
    info.r = [float(v) for v in data.get('rectification_matrix', {}).get(
        'data', [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0])]
    info.p = [float(v) for v in data['projection_matrix']['data']]
    return info


def camera_info_from_yaml(path: Union[str, Path], header: Optional[Header] = None) -> CameraInfo:
    """Read a ROS camera_info YAML file into a CameraInfo."""
    with open(path, encoding='utf-8') as stream:
        return camera_info_from_dict(yaml.safe_load(stream), header)
