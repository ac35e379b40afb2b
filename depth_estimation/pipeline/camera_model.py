"""Which intrinsics a camera_info gives, and what they are for the image actually received.

Plain numbers in, plain numbers out (no messages, no rclpy): the ROS adapter passes the fields of a
`sensor_msgs/CameraInfo`.

REP 104: `width` x `height`, K and P describe the full-resolution calibrated frame. A driver that
sends a region of interest (`roi`, in full-resolution pixels; all zeros = the full frame) and/or
binned pixels (`binning_x`, `binning_y`; 0 or 1 = none) sends an image of
(roi.width / binning_x) x (roi.height / binning_y) pixels whose intrinsics are the full frame's
with the principal point moved by the ROI offset (the focal length stays) and then divided by the
binning. Only an image whose size matches neither that nor the calibrated size is taken to be a
resize (of the ROI window), with K and P scaled.

Binning and resizing keep pixel centres: c' = (c + 0.5) / binning - 0.5, as
`depth_estimation.geometry.scale_projection` does (image_geometry divides c by the binning, which
differs by (binning - 1) / (2 binning) pixel, a quarter pixel for 2x2 binning).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from depth_estimation.geometry import Intrinsics, scale_projection
from depth_estimation.pipeline.frame import SkippedFrame

SIZE_TOLERANCE = 0.01  # relative difference of the x and y scales still taken as one resize


class CameraInfoError(SkippedFrame):
    """A camera_info that cannot give intrinsics (for this image); the message says why.

    `kind` is 'camera_info' for matrices, binning or an ROI that cannot be used, and
    'camera_info_size' for an image of another aspect ratio than the camera_info describes.
    """

    def __init__(self, message: str, kind: str = 'camera_info') -> None:
        super().__init__(kind, message)


@dataclass(frozen=True)
class RegionOfInterest:
    """sensor_msgs/RegionOfInterest in full-resolution pixels; width or height 0: to the edge."""

    x_offset: int = 0
    y_offset: int = 0
    width: int = 0
    height: int = 0


def projection_in_use(camera_matrix: Sequence[float], projection: Sequence[float]) -> np.ndarray:
    """The 3x4 projection the intrinsics come from: P when its 12 values are finite and its focal
    lengths positive, else [K | 0] when K's 9 values are finite, its focal lengths positive and
    K[2, 2] = 1; else CameraInfoError with the reason (what image_geometry reads, with the checks
    that keep NaN and zero focal lengths out of the depth and the point cloud)."""
    p_values = np.asarray(projection, dtype=np.float64).reshape(-1)
    k_values = np.asarray(camera_matrix, dtype=np.float64).reshape(-1)
    p_problem = _matrix_problem('P', p_values, 12, (0, 5), 10)
    if not p_problem:
        return p_values.reshape(3, 4).copy()
    k_problem = _matrix_problem('K', k_values, 9, (0, 4), 8)
    if not k_problem:
        matrix = np.zeros((3, 4))
        matrix[:, :3] = k_values.reshape(3, 3)
        return matrix
    raise CameraInfoError(f'camera_info has no usable intrinsics: {p_problem}; {k_problem}')


def camera_matrix_in_use(camera_matrix: Sequence[float],
                         projection: Sequence[float]) -> np.ndarray:
    """The 3x3 K to publish: K when usable (as projection_in_use checks it), else the left 3x3 of
    the usable P (the rectified camera), so no NaN or zero focal length is passed on."""
    k_values = np.asarray(camera_matrix, dtype=np.float64).reshape(-1)
    if not _matrix_problem('K', k_values, 9, (0, 4), 8):
        return k_values.reshape(3, 3).copy()
    return projection_in_use(camera_matrix, projection)[:, :3].copy()


def check_camera_info(camera_matrix: Sequence[float], projection: Sequence[float],
                      binning_x: int = 0, binning_y: int = 0) -> None:
    """Raise CameraInfoError when a camera_info cannot describe any image: no usable K or P, or
    a negative binning (what does not depend on the image received)."""
    projection_in_use(camera_matrix, projection)
    if binning_x < 0 or binning_y < 0:
        raise CameraInfoError(f'binning must be 0 or positive, got {binning_x}x{binning_y}')


def _matrix_problem(name: str, values: np.ndarray, size: int, focal_indices: tuple[int, int],
                    one_index: int) -> str:
    """Why a row-major K or P cannot be used ('' when it can)."""
    if values.size != size:
        return f'{name} has {values.size} values, expected {size}'
    if not values.any():
        return f'{name} is all zeros (an uncalibrated camera?)'
    if not np.all(np.isfinite(values)):
        return f'{name} has non-finite values'
    focal_x, focal_y = values[focal_indices[0]], values[focal_indices[1]]
    if not (focal_x > 0 and focal_y > 0):
        return f'{name} focal lengths fx={focal_x:g}, fy={focal_y:g} are not positive'
    if values[one_index] != 1.0:
        return f'{name} is not normalised ({name}[2, 2] = {values[one_index]:g}, expected 1)'
    return ''


def projection_for_image(matrix: Sequence[float], calibration_width: int,
                         calibration_height: int, image_width: int, image_height: int,
                         roi: RegionOfInterest = RegionOfInterest(), binning_x: int = 0,
                         binning_y: int = 0) -> np.ndarray:
    """A full-frame K (9 values) or P (12) -> the same matrix for the image received, (3, 3) or
    (3, 4): ROI offset, then binning, then a resize only when the image size matches neither the
    ROI/binned size nor the calibrated size. A calibrated size of 0 (unknown) is the image's.

    Raises CameraInfoError for an ROI outside the calibrated frame, a negative binning, or
    (kind 'camera_info_size') an image of another aspect ratio than the ROI / binned window.
    """
    values = np.asarray(matrix, dtype=np.float64).reshape(-1)
    columns = {9: 3, 12: 4}.get(values.size)
    if columns is None:
        raise CameraInfoError(f'expected 9 (K) or 12 (P) values, got {values.size}')
    full_width = int(calibration_width) or int(image_width)
    full_height = int(calibration_height) or int(image_height)
    image_size = (int(image_width), int(image_height))
    full_frame = values.reshape(3, columns).copy()
    if binning_x < 0 or binning_y < 0:
        raise CameraInfoError(f'binning must be 0 or positive, got {binning_x}x{binning_y}')
    binning_x, binning_y = max(int(binning_x), 1), max(int(binning_y), 1)
    try:
        window = _window(roi, full_width, full_height)
    except CameraInfoError:
        if image_size == (full_width, full_height):
            return full_frame  # the full frame arrived: the ROI fields do not describe it
        raise
    window_size = (max(window.width // binning_x, 1), max(window.height // binning_y, 1))
    if image_size != window_size and image_size == (full_width, full_height):
        return full_frame
    shifted = full_frame
    # u' = u - x_offset in homogeneous form: row0 -= x_offset * row2 (keeps fx * Tx in P).
    shifted[0] -= window.x_offset * shifted[2]
    shifted[1] -= window.y_offset * shifted[2]
    binned = scale_projection(shifted, 1.0 / binning_x, 1.0 / binning_y)
    if image_size != window_size:  # a resize of the ROI window
        _check_aspect(window_size, image_size, (full_width, full_height))
        binned = scale_projection(binned, image_size[0] / window_size[0],
                                  image_size[1] / window_size[1])
    return np.asarray(binned).reshape(3, columns)


def _check_aspect(window_size: tuple[int, int], image_size: tuple[int, int],
                  full_size: tuple[int, int]) -> None:
    """A resize scales both axes alike; another aspect ratio is another camera mode (a crop)."""
    scale_x, scale_y = image_size[0] / window_size[0], image_size[1] / window_size[1]
    if abs(scale_x - scale_y) > SIZE_TOLERANCE * max(scale_x, scale_y):
        window = '' if window_size == full_size else (
            f' (ROI / binning: {window_size[0]}x{window_size[1]})')
        raise CameraInfoError(
            f'camera_info is {full_size[0]}x{full_size[1]}{window} but the image is '
            f'{image_size[0]}x{image_size[1]} (another aspect ratio: another camera mode or the '
            'wrong camera_info topic)', 'camera_info_size')


def _window(roi: RegionOfInterest, full_width: int, full_height: int) -> RegionOfInterest:
    """The ROI with zero width / height filled to the frame edge, checked against the frame."""
    width = int(roi.width) or full_width - int(roi.x_offset)
    height = int(roi.height) or full_height - int(roi.y_offset)
    if (roi.x_offset < 0 or roi.y_offset < 0 or width <= 0 or height <= 0
            or roi.x_offset + width > full_width or roi.y_offset + height > full_height):
        raise CameraInfoError(f'ROI x_offset={roi.x_offset} y_offset={roi.y_offset} '
                              f'{roi.width}x{roi.height} does not fit the calibrated '
                              f'{full_width}x{full_height} frame')
    return RegionOfInterest(int(roi.x_offset), int(roi.y_offset), width, height)


def intrinsics_for_image(camera_matrix: Sequence[float], projection: Sequence[float],
                         calibration_width: int, calibration_height: int, image_width: int,
                         image_height: int, roi: RegionOfInterest = RegionOfInterest(),
                         binning_x: int = 0, binning_y: int = 0) -> Intrinsics:
    """Pinhole intrinsics of the image received, from a camera_info's K, P, size, ROI and binning
    (P when usable, else K; see projection_in_use). Raises CameraInfoError, never gives NaN."""
    matrix = projection_for_image(projection_in_use(camera_matrix, projection),
                                  calibration_width, calibration_height, image_width,
                                  image_height, roi, binning_x, binning_y)  # (3, 4)
    try:
        return Intrinsics.from_projection(matrix.reshape(-1), image_width, image_height)
    except ValueError as error:
        raise CameraInfoError(f'camera_info gives unusable intrinsics: {error}') from error
