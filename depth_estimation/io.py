"""File formats for depth results: 16-bit millimetre PNG, PLY point clouds, camera files."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional, Union

import cv2
import numpy as np
import yaml

from depth_estimation.geometry import Intrinsics, valid_depth_mask

PathLike = Union[str, Path]
MAX_DEPTH_MM = 65535  # the largest 16-bit value: depth at or above 65.535 m saturates here

PLY_VERTEX_DTYPE = np.dtype([('x', '<f4'), ('y', '<f4'), ('z', '<f4'),
                             ('red', 'u1'), ('green', 'u1'), ('blue', 'u1')])
_PLY_TYPES = {'char': 'i1', 'int8': 'i1', 'uchar': 'u1', 'uint8': 'u1', 'short': 'i2',
              'int16': 'i2', 'ushort': 'u2', 'uint16': 'u2', 'int': 'i4', 'int32': 'i4',
              'uint': 'u4', 'uint32': 'u4', 'float': 'f4', 'float32': 'f4', 'double': 'f8',
              'float64': 'f8'}


def depth_to_mm(depth: np.ndarray, saturate: bool = True) -> np.ndarray:
    """Float depth (H, W) metres -> uint16 (H, W) millimetres, rounded to the nearest millimetre.

    Invalid depth (non-finite or <= 0) becomes 0. With `saturate` (files), valid depth below
    0.5 mm becomes 1 so that 0 keeps meaning invalid, and depth at or above 65.535 m saturates at
    65535; without (the REP 118 raw topic), both become 0 as well.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f'expected depth of shape (H, W), got {depth.shape}')
    valid = valid_depth_mask(depth)  # (H, W)
    millimetres = np.rint(np.where(valid, depth, 0).astype(np.float32) * np.float32(1000.0))
    if saturate:
        millimetres = np.clip(millimetres, 1, MAX_DEPTH_MM)  # (H, W) float32
    else:
        valid &= (millimetres > 0) & (millimetres <= MAX_DEPTH_MM)
    return np.where(valid, millimetres, 0).astype(np.uint16)


def write_depth_png_mm(path: PathLike, depth: np.ndarray) -> Path:
    """Write float depth (H, W) metres as a 16-bit PNG in millimetres (see `depth_to_mm`)."""
    path = Path(path)
    if not cv2.imwrite(str(path), depth_to_mm(depth)):
        raise OSError(f'cannot write {path}')
    return path


def read_depth_png_mm(path: PathLike) -> np.ndarray:
    """Read a 16-bit millimetre depth PNG as float32 metres (H, W); 0 (invalid) becomes NaN."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise ValueError(f'cannot read depth image {path}')
    if raw.ndim != 2 or raw.dtype != np.uint16:
        raise ValueError(f'{path} is not a single-channel 16-bit image ({raw.dtype} {raw.shape})')
    depth = raw.astype(np.float32) / np.float32(1000.0)  # (H, W) metres
    depth[raw == 0] = np.nan
    return depth


def write_ply(path: PathLike, points: np.ndarray, colors: Optional[np.ndarray] = None,
              binary: bool = True, comments: tuple[str, ...] = ()) -> int:
    """Write points (N, 3) or (H, W, 3) metres with RGB uint8 colours (default white) as PLY.

    Points with a non-finite coordinate are skipped; ASCII keeps 9 significant digits, so float32
    values read back exactly. Returns the number of points written.
    """
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)  # (N, 3)
    if colors is None:
        colors = np.full(points.shape, 255, dtype=np.uint8)
    colors = np.asarray(colors)
    if colors.dtype != np.uint8 or colors.size != points.size:
        raise ValueError(f'colours must be uint8 with one RGB triple per point, got '
                         f'{colors.dtype} {colors.shape} for {points.shape[0]} points')
    colors = colors.reshape(-1, 3)  # (N, 3)
    keep = np.isfinite(points).all(axis=1)  # (N,)
    points, colors = points[keep], colors[keep]
    count = points.shape[0]
    header = ['ply', f'format {"binary_little_endian" if binary else "ascii"} 1.0']
    header += [f'comment {line}' for text in comments for line in text.splitlines()]
    header += [f'element vertex {count}', 'property float x', 'property float y',
               'property float z', 'property uchar red', 'property uchar green',
               'property uchar blue', 'end_header']
    path = Path(path)
    with open(path, 'wb') as stream:
        stream.write(('\n'.join(header) + '\n').encode('ascii'))
        if binary:
            vertices = np.empty(count, dtype=PLY_VERTEX_DTYPE)  # (N,) packed, 15 bytes each
            for axis, name in enumerate('xyz'):
                vertices[name] = points[:, axis]
            for channel, name in enumerate(('red', 'green', 'blue')):
                vertices[name] = colors[:, channel]
            stream.write(vertices.tobytes())
        elif count:
            values = np.empty((count, 6), dtype=object)  # (N, 6) Python floats and ints
            values[:, :3] = points.astype(np.float64)
            values[:, 3:] = colors.astype(np.int64)
            row = '%.9g %.9g %.9g %d %d %d\n'
            stream.write(((row * count) % tuple(values.reshape(-1))).encode('ascii'))
    return count


def read_ply(path: PathLike) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """PLY vertices (ASCII or binary) -> points (N, 3) float32 and colours (N, 3) uint8 or None."""
    with open(path, 'rb') as stream:
        if stream.readline().strip() != b'ply':
            raise ValueError(f'{path} is not a PLY file')
        fmt, elements = '', []  # elements: [name, count, [(property, numpy type)]]
        while True:
            line = stream.readline()
            if not line:
                raise ValueError(f'{path}: PLY header has no end_header')
            words = line.decode('ascii').split()
            if not words or words[0] in ('comment', 'obj_info'):
                continue
            if words[0] == 'end_header':
                break
            if words[0] == 'format':
                fmt = words[1]
            elif words[0] == 'element':
                elements.append([words[1], int(words[2]), []])
            elif words[0] == 'property':
                if words[1] == 'list':
                    raise ValueError(f'{path}: list properties are not supported')
                elements[-1][2].append((words[2], _PLY_TYPES[words[1]]))
        if not elements or elements[0][0] != 'vertex':
            raise ValueError(f'{path}: the first PLY element is not vertex')
        _, count, properties = elements[0]
        if fmt == 'ascii':
            table = np.zeros((0, len(properties)))  # (N, P)
            if count:
                table = np.loadtxt(stream, dtype=np.float64, max_rows=count, ndmin=2)
            table = table.reshape(count, len(properties))
            columns = {name: table[:, i] for i, (name, _) in enumerate(properties)}
        elif fmt in ('binary_little_endian', 'binary_big_endian'):
            order = '<' if fmt == 'binary_little_endian' else '>'
            dtype = np.dtype([(name, order + kind) for name, kind in properties])
            data = np.frombuffer(stream.read(dtype.itemsize * count), dtype=dtype, count=count)
            columns = {name: data[name] for name, _ in properties}
        else:
            raise ValueError(f'{path}: unknown PLY format {fmt!r}')
    points = np.stack([columns[a] for a in 'xyz'], axis=1).astype(np.float32)  # (N, 3)
    colors = None
    if all(c in columns for c in ('red', 'green', 'blue')):
        colors = np.stack([columns[c] for c in ('red', 'green', 'blue')],
                          axis=1).astype(np.uint8)  # (N, 3)
    return points, colors


def _matrix_data(value: Any) -> Optional[np.ndarray]:
    """Numbers of a matrix given as {rows, cols, data} (ROS YAML) or as a (nested) list."""
    if isinstance(value, Mapping):
        value = value.get('data')
    if value is None:
        return None
    return np.asarray(value, dtype=np.float64).reshape(-1)


def _size(data: Mapping[str, Any], path: PathLike, *keys: tuple[str, str]) -> tuple[int, int]:
    for width_key, height_key in keys:
        if width_key in data and height_key in data:
            return int(data[width_key]), int(data[height_key])
    names = ' or '.join(f'{w}/{h}' for w, h in keys)
    raise ValueError(f'{path}: no image size ({names}) for the calibration')


def intrinsics_from_mapping(data: Mapping[str, Any], path: PathLike = '<camera>') -> Intrinsics:
    """Intrinsics from a parsed camera file; the format is recognised by its keys.

    - ROS camera_info YAML (camera_calibration_parsers): `image_width`, `image_height`,
      `camera_matrix.data` (K, row-major) and `projection_matrix.data` (P, row-major). P is used
      when it has positive focal lengths (as image_geometry does), else K.
    - A CameraInfo message dump (`ros2 topic echo`): `width`, `height`, `k`, `p`, same rule.
    - Open3D `PinholeCameraIntrinsic` JSON (`camera_primesense.json`): `width`, `height`,
      `intrinsic_matrix` = K in column-major order (9 numbers).
    - Simple: `fx`, `fy`, `cx`, `cy`, `width`, `height` (or `image_width`, `image_height`).
    """
    if not isinstance(data, Mapping):
        raise ValueError(f'{path}: expected a mapping of calibration keys, got '
                         f'{type(data).__name__}')
    size_keys = (('image_width', 'image_height'), ('width', 'height'))
    for k_key, p_key in (('camera_matrix', 'projection_matrix'), ('k', 'p')):
        if k_key in data or p_key in data:
            width, height = _size(data, path, *size_keys)
            projection = _matrix_data(data.get(p_key))
            if projection is not None and projection.size == 12 \
                    and projection[0] > 0 and projection[5] > 0:
                return Intrinsics.from_projection(projection, width, height)
            camera_matrix = _matrix_data(data.get(k_key))
            if camera_matrix is None:
                raise ValueError(f'{path}: neither a usable {p_key} nor {k_key}')
            return Intrinsics.from_k(camera_matrix, width, height)
    if 'intrinsic_matrix' in data:
        width, height = _size(data, path, ('width', 'height'))
        column_major = _matrix_data(data['intrinsic_matrix'])
        if column_major.size != 9:
            raise ValueError(f'{path}: intrinsic_matrix has {column_major.size} numbers, not 9')
        return Intrinsics.from_k(column_major.reshape(3, 3).T.reshape(-1), width, height)
    if all(key in data for key in ('fx', 'fy', 'cx', 'cy')):
        width, height = _size(data, path, *reversed(size_keys))
        return Intrinsics(fx=float(data['fx']), fy=float(data['fy']), cx=float(data['cx']),
                          cy=float(data['cy']), width=width, height=height)
    raise ValueError(f'{path}: not a recognised camera file (expected ROS camera_info YAML, '
                     'Open3D intrinsic JSON or fx/fy/cx/cy/width/height)')


def read_intrinsics_file(path: PathLike) -> Intrinsics:
    """Intrinsics at the calibration's size from a JSON or YAML camera file (rectified images)."""
    path = Path(path)
    text = path.read_text()
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ValueError(f'{path}: neither JSON nor YAML ({error})') from None
    return intrinsics_from_mapping(data, path)
