"""Pinhole camera geometry in numpy: intrinsics, depth back-projection and PointCloud2 packing.

Optical frame (REP 103): x right, y down, z forward; depth is z in metres (REP 118). Integer pixel
coordinates are pixel centres, as in CameraInfo, OpenCV and image_geometry: resizing a W-wide
image to W' maps x to (x + 0.5) * W' / W - 0.5 (as cv2.resize does), so fx' = fx * W' / W and
cx' = (cx + 0.5) * W' / W - 0.5 (likewise fy, cy with the heights).
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Optional, Sequence

import numpy as np

POINT_FIELD_FLOAT32 = 7  # sensor_msgs/PointField datatype


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of an image of `width` x `height` pixels (focal lengths in pixels)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        if not (np.isfinite(self.fx) and np.isfinite(self.fy) and self.fx > 0 and self.fy > 0):
            raise ValueError(f'focal lengths must be finite and positive, got fx={self.fx}, '
                             f'fy={self.fy}')
        if not (np.isfinite(self.cx) and np.isfinite(self.cy)):
            raise ValueError(f'principal point must be finite, got cx={self.cx}, cy={self.cy}')
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f'image size must be positive, got {self.width}x{self.height}')

    @classmethod
    def from_projection(cls, projection: Sequence[float], width: int, height: int) -> Intrinsics:
        """Intrinsics from a row-major 3x4 projection matrix P (12 numbers), as CameraInfo.p."""
        return cls._from_matrix(projection, 'projection matrix', 4, width, height)

    @classmethod
    def from_k(cls, camera_matrix: Sequence[float], width: int, height: int) -> Intrinsics:
        """Intrinsics from a 3x3 camera matrix K given row-major (9 numbers), as CameraInfo.k."""
        return cls._from_matrix(camera_matrix, 'camera matrix', 3, width, height)

    @classmethod
    def _from_matrix(cls, numbers: Sequence[float], name: str, columns: int, width: int,
                     height: int) -> Intrinsics:
        values = np.asarray(numbers, dtype=np.float64).reshape(-1)
        if values.size != 3 * columns:
            raise ValueError(f'a {name} has {3 * columns} elements, got {values.size}')
        rows = values.reshape(3, columns)
        return cls(fx=float(rows[0, 0]), fy=float(rows[1, 1]), cx=float(rows[0, 2]),
                   cy=float(rows[1, 2]), width=int(width), height=int(height))

    @classmethod
    def from_fov(cls, horizontal_fov_deg: float, width: int, height: int) -> Intrinsics:
        """Pinhole intrinsics from a horizontal field of view: square pixels, principal point at
        the image centre ((W - 1) / 2, (H - 1) / 2 in the pixel-centre convention)."""
        if not 0.0 < horizontal_fov_deg < 180.0:
            raise ValueError(f'horizontal field of view must be in (0, 180) degrees, got '
                             f'{horizontal_fov_deg}')
        focal = (width / 2.0) / math.tan(math.radians(horizontal_fov_deg) / 2.0)
        return cls(fx=focal, fy=focal, cx=(width - 1) / 2.0, cy=(height - 1) / 2.0,
                   width=int(width), height=int(height))

    def scaled(self, width: int, height: int) -> Intrinsics:
        """The same camera seen at another image size (pixel-centre convention of the module)."""
        if (int(width), int(height)) == (self.width, self.height):
            return self  # exactly, not through a round trip of the principal point
        scale_x = width / self.width
        scale_y = height / self.height
        return Intrinsics(fx=self.fx * scale_x, fy=self.fy * scale_y,
                          cx=(self.cx + 0.5) * scale_x - 0.5, cy=(self.cy + 0.5) * scale_y - 0.5,
                          width=int(width), height=int(height))

    def camera_matrix(self) -> np.ndarray:
        """K as a float64 (3, 3) array."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


def scale_projection(projection: Sequence[float], scale_x: float,
                     scale_y: float) -> list[float]:
    """Scale a row-major 3x4 P (or 3x3 K, 9 numbers) to an image resized by (scale_x, scale_y).

    Row 0 (fx, skew, cx, fx * Tx) and row 1 (fy, cy, fy * Ty) change; row 2 stays. Principal points
    follow the pixel-centre convention of the module: c' = (c + 0.5) * scale - 0.5.
    """
    values = np.asarray(projection, dtype=np.float64).reshape(-1)
    columns = {9: 3, 12: 4}.get(values.size)
    if columns is None:
        raise ValueError(f'expected 9 (K) or 12 (P) elements, got {values.size}')
    matrix = values.reshape(3, columns).copy()  # (3, 3) or (3, 4)
    # In homogeneous form the half-pixel shift is u' = s * u + 0.5 * (s - 1) with u = row0 / row2.
    shift = np.array([0.5 * (scale_x - 1.0), 0.5 * (scale_y - 1.0)])
    matrix[0] *= scale_x
    matrix[1] *= scale_y
    matrix[:2] += shift[:, np.newaxis] * matrix[2][np.newaxis, :]
    return [float(v) for v in matrix.reshape(-1)]


def valid_depth_mask(depth: np.ndarray) -> np.ndarray:
    """True where a float depth is usable: finite and > 0 (REP 117 -Inf/+Inf/NaN and 0 are not)."""
    with np.errstate(invalid='ignore'):
        return np.isfinite(depth) & (depth > 0)


def depth_to_points(depth: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """Back-project float depth (H, W) metres to organized points (H, W, 3) float32, optical frame.

    Pixel (u, v) with depth z maps to ((u - cx) z / fx, (v - cy) z / fy, z); invalid depth
    (non-finite or <= 0) gives NaN in all three coordinates.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f'expected depth of shape (H, W), got {depth.shape}')
    height, width = depth.shape
    if (width, height) != (intrinsics.width, intrinsics.height):
        raise ValueError(f'depth is {width}x{height} but the intrinsics are for '
                         f'{intrinsics.width}x{intrinsics.height}; scale them first')
    z = depth.astype(np.float32, copy=False)  # (H, W) metres
    valid = valid_depth_mask(z)  # (H, W) bool
    z = np.where(valid, z, np.float32(np.nan))  # (H, W) metres, NaN where invalid
    x_over_z = ((np.arange(width, dtype=np.float32) - np.float32(intrinsics.cx))
                / np.float32(intrinsics.fx))  # (W,) tan of the horizontal ray angle
    y_over_z = ((np.arange(height, dtype=np.float32) - np.float32(intrinsics.cy))
                / np.float32(intrinsics.fy))  # (H,)
    points = np.empty((height, width, 3), dtype=np.float32)  # (H, W, 3) metres
    np.multiply(z, x_over_z[np.newaxis, :], out=points[..., 0])
    np.multiply(z, y_over_z[:, np.newaxis], out=points[..., 1])
    points[..., 2] = z
    return points


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 (..., 3) -> float32 (...) holding 0x00RRGGBB bit for bit (the ROS `rgb` field)."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.shape[-1] != 3:
        raise ValueError(f'expected uint8 RGB of shape (..., 3), got {rgb.dtype} {rgb.shape}')
    channels = rgb.astype(np.uint32)  # (..., 3)
    packed = (channels[..., 0] << 16) | (channels[..., 1] << 8) | channels[..., 2]  # (...) uint32
    return packed.view(np.float32)


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """Inverse of `pack_rgb`: float32 (...) -> RGB uint8 (..., 3)."""
    bits = np.ascontiguousarray(packed, dtype=np.float32).view(np.uint32)  # (...)
    return np.stack([(bits >> 16) & 0xFF, (bits >> 8) & 0xFF, bits & 0xFF],
                    axis=-1).astype(np.uint8)


def cloud_dtype(with_rgb: bool) -> np.dtype:
    """Structured dtype of one point: x, y, z float32 (12 bytes) plus rgb float32 (16 bytes)."""
    names = ['x', 'y', 'z'] + (['rgb'] if with_rgb else [])
    return np.dtype({'names': names, 'formats': [np.float32] * len(names),
                     'offsets': [4 * i for i in range(len(names))], 'itemsize': 4 * len(names)})


def pack_cloud(points: np.ndarray, rgb: Optional[np.ndarray] = None
               ) -> tuple[list[tuple[str, int, int]], int, bytes]:
    """Organized points (H, W, 3) float32 [+ RGB uint8 (H, W, 3)] -> PointCloud2 layout and data.

    Returns (fields as (name, byte offset, PointField datatype), point_step in bytes, little-endian
    data of H * W points in row-major order). Row step is W * point_step.
    """
    points = np.asarray(points)
    if points.ndim != 3 or points.shape[2] != 3:
        raise ValueError(f'expected points of shape (H, W, 3), got {points.shape}')
    if rgb is not None and np.asarray(rgb).shape != points.shape:
        raise ValueError(f'rgb shape {np.asarray(rgb).shape} does not match points {points.shape}')
    dtype = cloud_dtype(rgb is not None).newbyteorder('<')
    cloud = np.empty(points.shape[:2], dtype=dtype)  # (H, W) structured
    for axis, name in enumerate('xyz'):
        cloud[name] = points[..., axis]
    if rgb is not None:
        cloud['rgb'] = pack_rgb(rgb)
    fields = [(name, dtype.fields[name][1], POINT_FIELD_FLOAT32) for name in dtype.names]
    return fields, dtype.itemsize, cloud.tobytes()


def unpack_cloud(data: bytes, fields: Sequence[tuple[str, int, int]], point_step: int,
                 height: int, width: int) -> np.ndarray:
    """Inverse of `pack_cloud` for float32 fields: bytes -> structured array (height, width)."""
    names = [name for name, _, _ in fields]
    dtype = np.dtype({'names': names, 'formats': ['<f4'] * len(names),
                      'offsets': [offset for _, offset, _ in fields], 'itemsize': point_step})
    return np.frombuffer(data, dtype=dtype, count=height * width).reshape(height, width)
