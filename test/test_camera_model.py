"""Intrinsics from camera_info matrices, and for ROI / binned / resized images (REP 104)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from depth_estimation.pipeline.camera_model import (CameraInfoError, intrinsics_for_image,
                                                    projection_for_image, projection_in_use,
                                                    RegionOfInterest)

# A 640x480 calibration (fx 613.2, cx 319.9) as in a RealSense colour camera_info.
K = [613.2, 0.0, 319.9, 0.0, 613.4, 239.1, 0.0, 0.0, 1.0]
P = [613.2, 0.0, 319.9, 0.0, 0.0, 613.4, 239.1, 0.0, 0.0, 0.0, 1.0, 0.0]
ZEROS_P = [0.0] * 12


def project(matrix: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Pixel (u, v) of a 3D point through a 3x4 projection."""
    homogeneous = np.asarray(matrix).reshape(3, 4) @ np.append(point, 1.0)  # (3,)
    return homogeneous[:2] / homogeneous[2]


def test_roi_image_keeps_the_focal_length_and_moves_the_principal_point() -> None:
    roi = RegionOfInterest(x_offset=100, y_offset=50, width=320, height=240)
    intrinsics = intrinsics_for_image(K, P, 640, 480, 320, 240, roi)
    assert (intrinsics.width, intrinsics.height) == (320, 240)
    assert intrinsics.fx == pytest.approx(613.2) and intrinsics.fy == pytest.approx(613.4)
    assert intrinsics.cx == pytest.approx(219.9) and intrinsics.cy == pytest.approx(189.1)


def test_roi_pixels_are_the_full_frame_pixels_minus_the_offset() -> None:
    stereo_right = list(P)
    stereo_right[3] = -613.2 * 0.05  # fx * Tx of a right camera 5 cm from the left one
    roi = RegionOfInterest(x_offset=100, y_offset=50, width=320, height=240)
    cropped = projection_for_image(stereo_right, 640, 480, 320, 240, roi)  # (3, 4)
    for point in ([0.3, -0.2, 2.0], [-0.1, 0.05, 0.7], [0.0, 0.0, 5.0]):
        full = project(np.reshape(stereo_right, (3, 4)), np.array(point))
        np.testing.assert_allclose(project(cropped, np.array(point)), full - [100, 50],
                                   atol=1e-9)


def test_full_frame_keeps_the_calibration() -> None:
    np.testing.assert_array_equal(projection_for_image(P, 640, 480, 640, 480),
                                  np.reshape(P, (3, 4)))
    full_roi = RegionOfInterest(0, 0, 640, 480)
    np.testing.assert_array_equal(projection_for_image(K, 640, 480, 640, 480, full_roi),
                                  np.reshape(K, (3, 3)))


def test_binning_divides_and_equals_a_resize_of_the_same_factor() -> None:
    binned = intrinsics_for_image(K, P, 640, 480, 320, 240, binning_x=2, binning_y=2)
    resized = intrinsics_for_image(K, P, 640, 480, 320, 240)
    assert binned == resized
    assert binned.fx == pytest.approx(306.6) and binned.fy == pytest.approx(306.7)
    assert binned.cx == pytest.approx((319.9 + 0.5) / 2 - 0.5)  # pixel centres kept


def test_roi_then_binning_and_roi_then_resize() -> None:
    roi = RegionOfInterest(x_offset=100, y_offset=50, width=320, height=240)
    binned = intrinsics_for_image(K, P, 640, 480, 160, 120, roi, binning_x=2, binning_y=2)
    assert binned.fx == pytest.approx(306.6)
    assert binned.cx == pytest.approx((219.9 + 0.5) / 2 - 0.5)
    assert binned.cy == pytest.approx((189.1 + 0.5) / 2 - 0.5)
    # The ROI window (320x240) resized to 80x60: a quarter of the cropped intrinsics.
    resized = intrinsics_for_image(K, P, 640, 480, 80, 60, roi)
    assert resized.fx == pytest.approx(613.2 / 4)
    assert resized.cx == pytest.approx((219.9 + 0.5) / 4 - 0.5)


def test_roi_of_zero_width_and_height_reaches_the_frame_edge() -> None:
    roi = RegionOfInterest(x_offset=40, y_offset=30)  # 600x450 window
    intrinsics = intrinsics_for_image(K, P, 640, 480, 600, 450, roi)
    assert intrinsics.fx == pytest.approx(613.2)
    assert intrinsics.cx == pytest.approx(279.9) and intrinsics.cy == pytest.approx(209.1)


def test_a_full_frame_with_roi_fields_set_is_read_as_the_full_frame() -> None:
    roi = RegionOfInterest(x_offset=100, y_offset=50, width=320, height=240)
    np.testing.assert_array_equal(projection_for_image(P, 640, 480, 640, 480, roi),
                                  np.reshape(P, (3, 4)))


def test_unknown_calibration_size_is_the_image_size() -> None:
    intrinsics = intrinsics_for_image(K, P, 0, 0, 640, 480)
    assert (intrinsics.fx, intrinsics.cx) == (613.2, 319.9)


@pytest.mark.parametrize('roi, binning', [
    (RegionOfInterest(x_offset=400, y_offset=0, width=320, height=240), 1),
    (RegionOfInterest(x_offset=-1, y_offset=0, width=320, height=240), 1),
    (RegionOfInterest(x_offset=0, y_offset=0, width=320, height=240), -2),
])
def test_roi_outside_the_frame_or_negative_binning_is_refused(roi: RegionOfInterest,
                                                              binning: int) -> None:
    with pytest.raises(CameraInfoError):
        projection_for_image(P, 640, 480, 320, 240, roi, binning, binning)


def test_p_is_used_when_valid_else_k() -> None:
    other_p = [500.0, 0.0, 300.0, 0.0, 0.0, 500.0, 200.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    np.testing.assert_array_equal(projection_in_use(K, other_p), np.reshape(other_p, (3, 4)))
    from_k = np.zeros((3, 4))
    from_k[:, :3] = np.reshape(K, (3, 3))
    nan_p = list(other_p)
    nan_p[2] = float('nan')
    zero_focal_p = list(other_p)
    zero_focal_p[5] = 0.0
    for unusable_p in (ZEROS_P, nan_p, zero_focal_p, [1.0] * 9):
        np.testing.assert_array_equal(projection_in_use(K, unusable_p), from_k)


@pytest.mark.parametrize('bad_k, reason', [
    ([0.0] * 9, 'K is all zeros'),
    ([0.0, 0.0, 320.0, 0.0, 0.0, 240.0, 0.0, 0.0, 1.0], 'not positive'),
    ([613.2, 0.0, float('nan'), 0.0, 613.4, 239.1, 0.0, 0.0, 1.0], 'non-finite'),
    ([613.2, 0.0, 319.9, 0.0, float('inf'), 239.1, 0.0, 0.0, 1.0], 'non-finite'),
    ([613.2, 0.0, 319.9, 0.0, 613.4, 239.1, 0.0, 0.0, 0.0], 'not normalised'),
    ([613.2, 0.0, 319.9], 'expected 9'),
])
def test_camera_info_without_usable_p_or_k_is_rejected_with_the_reason(bad_k: list[float],
                                                                       reason: str) -> None:
    with pytest.raises(CameraInfoError, match=reason) as error:
        intrinsics_for_image(bad_k, ZEROS_P, 640, 480, 640, 480)
    assert 'P is all zeros' in str(error.value)


def test_p_first_then_k() -> None:
    other_p = [580.0, 0, 300, 0, 0, 590.0, 230, 0, 0, 0, 1, 0]
    assert projection_in_use(K, other_p)[0, 0] == 580.0
    assert projection_in_use(K, ZEROS_P)[1, 1] == pytest.approx(613.4)
    nan_p = list(P)
    nan_p[2] = float('nan')
    assert projection_in_use(K, nan_p)[0, 2] == pytest.approx(319.9)


@pytest.mark.parametrize('image_size, fits', [
    ((640, 480), True), ((320, 240), True), ((1280, 960), True),  # the frame, resized
    ((640, 360), False), ((400, 400), False),  # another camera mode (a crop)
])
def test_a_resize_keeps_the_aspect_ratio_and_another_one_is_refused(image_size, fits) -> None:
    if fits:
        intrinsics = intrinsics_for_image(K, P, 640, 480, *image_size)
        assert intrinsics.fx == pytest.approx(613.2 * image_size[0] / 640)
        return
    with pytest.raises(CameraInfoError, match='another aspect ratio') as error:
        intrinsics_for_image(K, P, 640, 480, *image_size)
    assert error.value.kind == 'camera_info_size'
    assert 'camera_info is 640x480' in str(error.value)


def test_unknown_calibration_size_fits_any_image() -> None:
    assert intrinsics_for_image(K, P, 0, 0, 320, 240).fx == pytest.approx(613.2)


def test_no_corruption_of_k_or_p_gives_nan_intrinsics() -> None:
    generator = np.random.default_rng(0)
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -1.0, 1e-300])
    for _ in range(500):
        camera_matrix, projection = np.array(K), np.array(P)
        for matrix in (camera_matrix, projection):
            indices = generator.choice(matrix.size, size=generator.integers(0, 3), replace=False)
            matrix[indices] = generator.choice(specials, size=indices.size)
        try:
            intrinsics = intrinsics_for_image(camera_matrix, projection, 640, 480, 320, 240)
        except CameraInfoError:
            continue
        values = [intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy]
        assert np.all(np.isfinite(values)) and intrinsics.fx > 0 and intrinsics.fy > 0


def test_camera_model_and_image_encodings_import_neither_rclpy_nor_messages() -> None:
    code = ('import sys, depth_estimation.pipeline.camera_model, '
            'depth_estimation.pipeline.image_decoding; '
            'print(sorted(m for m in sys.modules if m.split(".")[0] in '
            '("rclpy", "sensor_msgs", "torch")))')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == '[]'
