"""Message <-> numpy conversions of the depth node (Image, CameraInfo, PointCloud2, LaserScan),
and of the workbench's ROS programs (bag messages, compressed images, serialized clouds): pure
functions that never touch a ROS graph; the geometry lives in `depth_estimation.geometry`."""

from __future__ import annotations

from array import array
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import cv2
import numpy as np
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import (CameraInfo, CompressedImage, Image, LaserScan, PointCloud2,
                             PointField)
from std_msgs.msg import Header
import yaml

from depth_estimation.geometry import depth_to_points, Intrinsics, pack_cloud, unpack_cloud
from depth_estimation.pipeline.camera_model import (camera_matrix_in_use, check_camera_info,
                                                    projection_for_image, projection_in_use,
                                                    RegionOfInterest)
from depth_estimation.pipeline.frame import SkippedFrame
from depth_estimation.pipeline.image_decoding import compressed_to_rgb
from depth_estimation.pipeline.image_decoding import image_to_rgb as decode_image
from depth_estimation.pipeline.intrinsics import CameraCalibration
from depth_estimation.pipeline.laserscan import ScanGeometry
from depth_estimation.pipeline.refinement import SparseSample

# Encodings rgb_to_image writes: bytes per pixel of each (the node reads many more).
COLOR_ENCODINGS = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1}
DEPTH_ENCODING = '32FC1'
RAW_DEPTH_ENCODING = '16UC1'
IDENTITY_ROTATION = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)  # CameraInfo.r: no rectification
# image_transport name -> the message and the suffix of the resolved `image` topic it arrives on
IMAGE_TRANSPORTS = {'raw': (Image, ''), 'compressed': (CompressedImage, '/compressed')}
EMPTY_FRAME_ID = ('image header.frame_id is empty: the outputs carry no frame (set the driver\'s '
                  'frame id, or the frame_id parameter)')


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


def image_to_rgb(msg: Union[Image, CompressedImage]) -> np.ndarray:
    """An Image in any encoding drivers send (`image_decoding.SUPPORTED_ENCODINGS`) or a
    CompressedImage (JPEG, PNG) -> RGB uint8 (H, W, 3), a new array (the node's one image input).

    Raises ImageEncodingError (a SkippedFrame whose `kind` names the problem) for an unsupported
    encoding, a malformed image, or corrupt or truncated compressed data.
    """
    if isinstance(msg, CompressedImage):
        return compressed_to_rgb(msg.format, msg.data)
    return decode_image(msg.encoding, msg.data, msg.height, msg.width, msg.step, msg.is_bigendian)


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
    return pixels_to_image(np.ascontiguousarray(pixels), header or Header(), encoding)


def depth_to_image(depth: np.ndarray, header: Header, keep_infinity: bool = False) -> Image:
    """Depth (H, W) metres -> 32FC1 Image (REP 118); invalid (non-finite, <= 0) written as NaN.

    With `keep_infinity`, -Inf and +Inf pass through (REP 117: too close / out of range).
    """
    values = np.array(depth, dtype=np.float32)  # (H, W) metres, a copy
    with np.errstate(invalid='ignore'):
        invalid = ~(np.isfinite(values) & (values > 0))
        if keep_infinity:
            invalid &= ~np.isinf(values)
        values[invalid] = np.nan
    return float_to_image(values, header)


def millimetres_to_image(millimetres: np.ndarray, header: Header) -> Image:
    """uint16 (H, W) millimetres -> 16UC1 Image (REP 118 raw form, 0 = invalid)."""
    millimetres = np.asarray(millimetres)
    if millimetres.ndim != 2 or millimetres.dtype != np.uint16:
        raise ValueError(f'expected uint16 (H, W), got {millimetres.dtype} {millimetres.shape}')
    return pixels_to_image(millimetres.astype('<u2'), header, RAW_DEPTH_ENCODING)


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
    return pixels_to_image(values.astype('<f4'), header, DEPTH_ENCODING)


def pixels_to_image(values: np.ndarray, header: Header, encoding: str) -> Image:
    """A little-endian (H, W[, C]) array -> an Image of that encoding, rows packed."""
    return Image(header=header, height=int(values.shape[0]), width=int(values.shape[1]),
                 encoding=encoding, is_bigendian=False, step=int(values[0].nbytes),
                 data=_as_uint8_array(values.tobytes()))


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


def ranges_to_scan(ranges: np.ndarray, geometry: ScanGeometry, header: Header) -> LaserScan:
    """A LaserScan of these ranges (metres, REP 117 NaN / +-Inf kept) and angles (radians)."""
    # time_increment and scan_time stay 0: every range comes from the same exposure
    return LaserScan(header=header, angle_min=float(geometry.angle_min),
                     angle_max=float(geometry.angle_max),
                     angle_increment=float(geometry.angle_increment),
                     range_min=float(geometry.range_min), range_max=float(geometry.range_max),
                     ranges=array('f', np.asarray(ranges, dtype=np.float32).tobytes()))


def image_to_depth(msg: Image) -> np.ndarray:
    """A 32FC1 Image -> float32 (H, W) metres (a copy)."""
    if msg.encoding != DEPTH_ENCODING:
        raise ValueError(f'expected a {DEPTH_ENCODING} depth image, got {msg.encoding!r}')
    return _single_channel_values(msg, 'f4', 'depth')  # (H, W) metres


def camera_info_calibration(info: CameraInfo) -> CameraCalibration:
    """The K, P, size, ROI and binning of a CameraInfo as plain numbers (the pipeline's input)."""
    roi = RegionOfInterest(int(info.roi.x_offset), int(info.roi.y_offset), int(info.roi.width),
                           int(info.roi.height))
    return CameraCalibration(tuple(float(v) for v in info.k), tuple(float(v) for v in info.p),
                             int(info.width), int(info.height), roi, int(info.binning_x),
                             int(info.binning_y))


def check_camera_info_message(info: CameraInfo) -> None:
    """Raise CameraInfoError (with the reason) for a CameraInfo no image can use."""
    check_camera_info(info.k, info.p, int(info.binning_x), int(info.binning_y))


def camera_info_intrinsics(info: CameraInfo) -> Intrinsics:
    """Intrinsics of a CameraInfo at its own size: from P (as image_geometry), else from K."""
    return Intrinsics.from_projection(projection_in_use(info.k, info.p).reshape(-1), info.width,
                                      info.height)


def depth_camera_info(info: CameraInfo, width: int, height: int,
                      header: Optional[Header] = None) -> CameraInfo:
    """The CameraInfo of a `width` x `height` image made from `info`'s camera (REP 104).

    K and P are those of the image received (ROI offset, binning, or a resize: camera_model); a K
    or P that cannot be used is filled from the other (no NaN, no zero focal length goes out).
    The result describes its own image: ROI and binning are zero. Raises CameraInfoError.
    """
    calibration = camera_info_calibration(info)
    matrices = [camera_matrix_in_use(info.k, info.p), projection_in_use(info.k, info.p)]
    k, p = (projection_for_image(matrix.reshape(-1), calibration.width, calibration.height,
                                 width, height, calibration.roi, calibration.binning_x,
                                 calibration.binning_y) for matrix in matrices)
    rotation = [float(v) for v in info.r]
    if not any(rotation) or not np.all(np.isfinite(rotation)):
        rotation = IDENTITY_ROTATION
    return CameraInfo(header=header if header is not None else info.header, width=int(width),
                      height=int(height), distortion_model=info.distortion_model,
                      d=[float(v) for v in info.d], k=[float(v) for v in k.reshape(-1)],
                      r=rotation, p=[float(v) for v in p.reshape(-1)])


def camera_info_from_intrinsics(intrinsics: Intrinsics,
                                header: Optional[Header] = None) -> CameraInfo:
    """A CameraInfo (plumb_bob, no distortion, identity R, P = [K | 0]) for pinhole intrinsics."""
    fx, fy, cx, cy = intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy
    return CameraInfo(header=header or Header(), width=int(intrinsics.width),
                      height=int(intrinsics.height),
                      distortion_model='plumb_bob', d=[0.0] * 5, r=IDENTITY_ROTATION,
                      k=[float(v) for v in intrinsics.camera_matrix().reshape(-1)],
                      p=[fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0])


def points_to_cloud(points: np.ndarray, header: Header,
                    rgb: Optional[np.ndarray] = None) -> PointCloud2:
    """Organized points (H, W, 3) [+ RGB uint8 (H, W, 3)] -> PointCloud2, is_dense False."""
    fields, point_step, data = pack_cloud(points, rgb)
    height, width = int(points.shape[0]), int(points.shape[1])
    return PointCloud2(header=header, height=height, width=width, is_bigendian=False,
                       fields=[PointField(name=name, offset=offset, datatype=datatype, count=1)
                               for name, offset, datatype in fields],
                       point_step=point_step, row_step=point_step * width, is_dense=False,
                       data=_as_uint8_array(data))


def cloud_points(data: bytes) -> np.ndarray:
    """A serialized PointCloud2 (a raw subscription's bytes) -> its points (H, W, 3) metres."""
    cloud = deserialize_message(data, PointCloud2)
    fields = [(f.name, f.offset, f.datatype) for f in cloud.fields]
    points = unpack_cloud(bytes(cloud.data), fields, cloud.point_step, cloud.height,
                          cloud.width)  # (H, W) structured
    return np.stack([points['x'], points['y'], points['z']], axis=-1)


def depth_to_cloud(depth: np.ndarray, info: CameraInfo, header: Header,
                   rgb: Optional[np.ndarray] = None) -> PointCloud2:
    """Depth (H, W) metres and its (depth-sized) CameraInfo -> organized PointCloud2."""
    points = depth_to_points(depth, camera_info_intrinsics(info))  # (H, W, 3) metres
    return points_to_cloud(points, header, rgb)


def camera_info_from_dict(data: Mapping[str, Any], header: Optional[Header] = None) -> CameraInfo:
    """A parsed ROS camera_info YAML (camera_calibration_parsers format) -> CameraInfo."""
    rotation = data.get('rectification_matrix', {}).get('data', IDENTITY_ROTATION)
    return CameraInfo(
        header=header or Header(), width=int(data['image_width']),
        height=int(data['image_height']),
        distortion_model=str(data.get('distortion_model', 'plumb_bob')),
        k=[float(v) for v in data['camera_matrix']['data']],
        d=[float(v) for v in data.get('distortion_coefficients', {}).get('data', [])],
        r=[float(v) for v in rotation], p=[float(v) for v in data['projection_matrix']['data']])


def camera_info_from_yaml(path: Union[str, Path], header: Optional[Header] = None) -> CameraInfo:
    """Read a ROS camera_info YAML file into a CameraInfo."""
    with open(path, encoding='utf-8') as stream:
        return camera_info_from_dict(yaml.safe_load(stream), header)


def _bag_field(source: Any, name: str) -> Any:
    """A field of a rosbags message by its ROS 2 name, or its ROS 1 name (CameraInfo's K, P)."""
    for candidate in (name, name.upper()):
        if hasattr(source, candidate):
            return getattr(source, candidate)
    return None


def message_from_bag(source: Any, message_type: type) -> Any:
    """Copy a message deserialized by rosbags (ROS 1 or ROS 2 layout) into an rclpy message.

    Fields are matched by name (ROS 1 upper-case names too); fields the target lacks (ROS 1
    Header.seq) are dropped, missing ones keep their defaults.
    """
    message = message_type()
    for name in message_type.get_fields_and_field_types():
        value = _bag_field(source, name)
        if value is None:
            continue
        current = getattr(message, name)
        if hasattr(type(current), 'get_fields_and_field_types'):
            setattr(message, name, message_from_bag(value, type(current)))
        elif isinstance(value, np.ndarray):
            if name == 'data' and value.dtype == np.uint8:
                setattr(message, name, _as_uint8_array(value))
            else:
                setattr(message, name, [float(v) for v in value.reshape(-1)])
        else:
            setattr(message, name, value)
    return message


def camera_info_from_bag(source: Any) -> CameraInfo:
    """A rosbags CameraInfo (ROS 1 or ROS 2) -> rclpy CameraInfo."""
    return message_from_bag(source, CameraInfo)


def image_from_bag(source: Any, message_type: str,
                   keep_compressed: bool = False) -> Union[Image, CompressedImage]:
    """A rosbags Image or CompressedImage (`message_type` 'sensor_msgs/msg/...') -> the rclpy
    message. A CompressedImage (jpeg/png) is decoded to a bgr8 Image as the node decodes one
    (ImageEncodingError, a ValueError, when it cannot be), unless `keep_compressed`."""
    if message_type != 'sensor_msgs/msg/CompressedImage':
        return message_from_bag(source, Image)
    if keep_compressed:
        return message_from_bag(source, CompressedImage)
    rgb = compressed_to_rgb(source.format, source.data)  # (H, W, 3)
    return rgb_to_image(rgb, message_from_bag(source.header, Header), 'bgr8')


def image_to_compressed(image: Image, codec: str = 'jpeg', jpeg_quality: int = 95
                        ) -> CompressedImage:
    """An Image -> CompressedImage as image_transport's compressed plugin writes it (the pixels
    in BGR order, format `bgr8; <codec> compressed bgr8`), with the same header."""
    bgr = np.ascontiguousarray(image_to_rgb(image)[..., ::-1])  # (H, W, 3)
    options = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if codec == 'jpeg' else []
    ok, data = cv2.imencode('.jpg' if codec == 'jpeg' else '.png', bgr, options)
    if not ok:
        raise ValueError(f'OpenCV cannot encode a {image.width}x{image.height} frame as {codec}')
    return CompressedImage(header=image.header, format=f'bgr8; {codec} compressed bgr8',
                           data=_as_uint8_array(data.tobytes()))
