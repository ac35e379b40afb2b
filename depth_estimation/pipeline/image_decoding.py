"""Camera image payloads -> RGB uint8: the raw encodings and compressed formats drivers publish.

Message-level but graph-free: the functions take the fields of a `sensor_msgs/Image` (encoding,
data, height, width, step, is_bigendian) or a `sensor_msgs/CompressedImage` (format, data) as plain
values, so they need neither rclpy nor the message packages. Colour conversion, YUV unpacking and
demosaicing are OpenCV's.

Names follow ROS `sensor_msgs/image_encodings.hpp`: `yuv422` (newer name `uyvy`) is UYVY
(U0 Y0 V0 Y1) and `yuv422_yuy2` (`yuyv`) is YUYV (Y0 U0 Y1 V0, the default of usb_cam and
v4l2_camera); `nv12` / `nv21` are
4:2:0 with a full-size Y plane followed by interleaved UV (VU) at half size, so `height` is the
image height and the data holds 3/2 * height rows of `step` bytes. A Bayer name gives the colours
of the top-left 2x2 cell in ROS order (`bayer_rggb8`: R G on row 0, G B on row 1). Generic `8UC3`
is read as bgr8 and `8UC1` as mono8, as cv_bridge does. 16-bit encodings keep their top 8 bits
(value / 256, cv_bridge's scaling) and honour `is_bigendian`; for 8-bit encodings the flag has no
meaning and is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import cv2
import numpy as np

from depth_estimation.pipeline.frame import SkippedFrame

ImageBytes = Union[bytes, bytearray, memoryview, np.ndarray]


class ImageEncodingError(SkippedFrame):
    """An image payload that cannot be read; `kind` names the problem (for counters, log keys)."""


@dataclass(frozen=True)
class _Layout:
    """How an encoding's bytes are laid out and turned into RGB."""

    channels: int  # interleaved samples per pixel in the data (2 for 4:2:2, 1 for a 4:2:0 plane)
    itemsize: int  # bytes per sample
    conversion: Optional[int]  # cv2.COLOR_* code to RGB; None for data that already is RGB
    subsampling: str = ''  # '422': even width needed; '420': even width and height, 3/2 rows


_LAYOUTS = {
    'rgb8': _Layout(3, 1, None),
    'bgr8': _Layout(3, 1, cv2.COLOR_BGR2RGB),
    'rgba8': _Layout(4, 1, cv2.COLOR_RGBA2RGB),
    'bgra8': _Layout(4, 1, cv2.COLOR_BGRA2RGB),
    'mono8': _Layout(1, 1, cv2.COLOR_GRAY2RGB),
    '8UC1': _Layout(1, 1, cv2.COLOR_GRAY2RGB),
    '8UC3': _Layout(3, 1, cv2.COLOR_BGR2RGB),
    '8UC4': _Layout(4, 1, cv2.COLOR_BGRA2RGB),
    'yuv422_yuy2': _Layout(2, 1, cv2.COLOR_YUV2RGB_YUY2, '422'),
    'yuv422': _Layout(2, 1, cv2.COLOR_YUV2RGB_UYVY, '422'),
    'yuyv': _Layout(2, 1, cv2.COLOR_YUV2RGB_YUY2, '422'),
    'uyvy': _Layout(2, 1, cv2.COLOR_YUV2RGB_UYVY, '422'),
    'nv12': _Layout(1, 1, cv2.COLOR_YUV2RGB_NV12, '420'),
    'nv21': _Layout(1, 1, cv2.COLOR_YUV2RGB_NV21, '420'),
    # OpenCV 5 spells the top-left cell as ROS does (COLOR_BayerRGGB2RGB is the older BayerBG).
    'bayer_rggb8': _Layout(1, 1, cv2.COLOR_BayerRGGB2RGB_EA),
    'bayer_bggr8': _Layout(1, 1, cv2.COLOR_BayerBGGR2RGB_EA),
    'bayer_gbrg8': _Layout(1, 1, cv2.COLOR_BayerGBRG2RGB_EA),
    'bayer_grbg8': _Layout(1, 1, cv2.COLOR_BayerGRBG2RGB_EA),
    'rgb16': _Layout(3, 2, None),
    'bgr16': _Layout(3, 2, cv2.COLOR_BGR2RGB),
    'rgba16': _Layout(4, 2, cv2.COLOR_RGBA2RGB),
    'bgra16': _Layout(4, 2, cv2.COLOR_BGRA2RGB),
    'mono16': _Layout(1, 2, cv2.COLOR_GRAY2RGB),
}
SUPPORTED_ENCODINGS = tuple(_LAYOUTS)
FLOAT_ENCODINGS = ('32FC1', '32FC2', '32FC3', '32FC4', '64FC1', '64FC2', '64FC3', '64FC4')
_DEPTH_LIKE = ('16UC1',) + FLOAT_ENCODINGS


def image_to_rgb(encoding: str, data: ImageBytes, height: int, width: int, step: int,
                 is_bigendian: bool = False) -> np.ndarray:
    """The fields of a sensor_msgs/Image -> RGB uint8 (height, width, 3), a new array.

    Raises ImageEncodingError (a SkippedFrame) for an unsupported encoding ('float_image' for a
    float one), an empty image, an odd width (4:2:2) or odd size (4:2:0), a step shorter than a
    row or not a whole number of samples, or data whose length is not step * rows.
    """
    layout = _LAYOUTS.get(encoding)
    if layout is None:
        hint = (' (a depth or float image: is a depth topic remapped to the colour input?)'
                if encoding in _DEPTH_LIKE else '')
        raise ImageEncodingError('float_image' if encoding in FLOAT_ENCODINGS else 'encoding',
                                 f'unsupported image encoding {encoding!r}{hint}; '
                                 f'supported: {", ".join(SUPPORTED_ENCODINGS)}')
    height, width, step = int(height), int(width), int(step)
    if height <= 0 or width <= 0:
        raise ImageEncodingError('empty', f'empty image {width}x{height}')
    _check_subsampling(encoding, layout, height, width)
    samples = _sample_rows(encoding, layout, data, height, width, step, is_bigendian)
    if layout.itemsize == 2:
        samples = (samples >> 8).astype(np.uint8)  # top 8 bits, as cv_bridge scales 16 -> 8 bit
    if layout.conversion is None:  # a view of the message data: copy
        return np.array(samples.reshape(height, width, 3), dtype=np.uint8, copy=True)
    return cv2.cvtColor(samples, layout.conversion).reshape(height, width, 3)  # a new array


def _check_subsampling(encoding: str, layout: _Layout, height: int, width: int) -> None:
    """Chroma-subsampled encodings need an even width (4:2:2) or even width and height (4:2:0)."""
    if layout.subsampling == '422' and width % 2:
        raise ImageEncodingError('odd_size', f'{encoding} (4:2:2) needs an even width, got '
                                 f'{width}x{height}')
    if layout.subsampling == '420' and (width % 2 or height % 2):
        raise ImageEncodingError('odd_size', f'{encoding} (4:2:0) needs an even width and '
                                 f'height, got {width}x{height}')


def _sample_rows(encoding: str, layout: _Layout, data: ImageBytes, height: int, width: int,
                 step: int, is_bigendian: bool) -> np.ndarray:
    """The payload as (rows, width[, channels]) samples without row padding, native byte order."""
    rows = height * 3 // 2 if layout.subsampling == '420' else height
    row_bytes = width * layout.channels * layout.itemsize
    if step < row_bytes:
        raise ImageEncodingError('step', f'step {step} is shorter than a row of {width} '
                                 f'{encoding} pixels ({row_bytes} bytes)')
    if step % layout.itemsize:
        raise ImageEncodingError('step', f'step {step} is not a whole number of '
                                 f'{layout.itemsize}-byte {encoding} samples')
    raw = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else (
        np.ascontiguousarray(data).reshape(-1).view(np.uint8))  # (step * rows,)
    if raw.size != step * rows:
        raise ImageEncodingError('data_length', f'{encoding} data has {raw.size} bytes, expected '
                                 f'step * rows = {step} * {rows} = {step * rows}')
    packed = np.ascontiguousarray(raw.reshape(rows, step)[:, :row_bytes])  # (rows, row_bytes)
    if layout.itemsize == 2:
        packed = packed.view('>u2' if is_bigendian else '<u2').astype(np.uint16)
    shape = (rows, width) if layout.channels == 1 else (rows, width, layout.channels)
    return packed.reshape(shape)


# Compressed images (image_transport's `compressed` plugin) ------------------------------------

_JPEG_START = b'\xff\xd8\xff'
_JPEG_END = b'\xff\xd9'
_PNG_START = b'\x89PNG\r\n\x1a\n'
_PNG_END = b'IEND\xaeB`\x82'


def compressed_to_rgb(format: str, data: ImageBytes) -> np.ndarray:
    """The fields of a sensor_msgs/CompressedImage (JPEG or PNG) -> RGB uint8 (H, W, 3).

    `format` is image_transport's: `jpeg` / `png` (older publishers: the pixels are BGR), or
    `<encoding>; <jpeg|png> compressed <pixels>` where `<pixels>` says the channel order that was
    compressed (`bgr8`, `rgb8`, `mono8`, `bgr16`, `mono16`, ...). 16-bit PNG keeps its top 8 bits.
    Raises ImageEncodingError for an empty, truncated or corrupt payload, a codec other than
    JPEG / PNG, or a `compressedDepth` payload (a depth topic).
    """
    payload = bytes(memoryview(data).cast('B')) if not isinstance(data, np.ndarray) else (
        np.ascontiguousarray(data).tobytes())
    declared = format.strip().lower()
    if 'compresseddepth' in declared:
        raise ImageEncodingError('compressed_depth', f'format {format!r} is a compressedDepth '
                                 'image (a depth topic), not a camera image')
    if not payload:
        raise ImageEncodingError('empty', f'empty compressed image (format {format!r})')
    _check_complete(payload, format)
    pixels = cv2.imdecode(np.frombuffer(payload, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.size == 0:
        raise ImageEncodingError('corrupt', f'cannot decode the compressed image (format '
                                 f'{format!r}, {len(payload)} bytes)')
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)  # (H, W[, C]) top 8 bits
    if pixels.dtype != np.uint8:
        raise ImageEncodingError('corrupt', f'compressed image decoded to {pixels.dtype}; '
                                 'expected 8- or 16-bit samples')
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    compressed_as_rgb = 'compressed rgb' in declared
    conversions = {1: cv2.COLOR_GRAY2RGB,
                   3: None if compressed_as_rgb else cv2.COLOR_BGR2RGB,
                   4: cv2.COLOR_RGBA2RGB if compressed_as_rgb else cv2.COLOR_BGRA2RGB}
    if channels not in conversions:
        raise ImageEncodingError('corrupt', f'compressed image has {channels} channels')
    conversion = conversions[channels]
    rgb = pixels if conversion is None else cv2.cvtColor(pixels, conversion)  # (H, W, 3)
    return np.array(rgb, dtype=np.uint8, copy=True)


def _check_complete(payload: bytes, format: str) -> None:
    """A JPEG must end with its end-of-image marker and a PNG with its IEND chunk: OpenCV decodes a
    truncated JPEG without an error (the missing rows come back grey)."""
    if payload.startswith(_JPEG_START):
        # Some encoders pad the payload after the marker with zero bytes.
        if not payload.rstrip(b'\x00').endswith(_JPEG_END):
            raise ImageEncodingError('truncated', f'truncated JPEG (no end-of-image marker, '
                                     f'{len(payload)} bytes, format {format!r})')
    elif payload.startswith(_PNG_START):
        if not payload.endswith(_PNG_END):
            raise ImageEncodingError('truncated', f'truncated PNG (no IEND chunk, '
                                     f'{len(payload)} bytes, format {format!r})')
    else:
        raise ImageEncodingError('corrupt', f'compressed data is neither JPEG nor PNG (format '
                                 f'{format!r}, first bytes {payload[:8].hex()}); supported: jpeg, '
                                 'png')
