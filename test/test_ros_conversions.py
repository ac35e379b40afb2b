"""Message conversions: Image <-> numpy, 32FC1 depth, the depth CameraInfo (resize, ROI, binning,
unusable K or P), organized PointCloud2."""

from __future__ import annotations

import numpy as np
import pytest

import cv2
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, RegionOfInterest  # noqa: I100
from std_msgs.msg import Header

from depth_estimation.geometry import depth_to_points, unpack_cloud
from depth_estimation.pipeline.camera_model import CameraInfoError
from depth_estimation.pipeline.image_decoding import ImageEncodingError
from depth_estimation.ros.conversions import (camera_info_from_yaml, camera_info_intrinsics,
                                              check_camera_info_message, COLOR_ENCODINGS,
                                              depth_camera_info, depth_to_cloud, depth_to_image,
                                              image_to_depth, image_to_rgb, rgb_to_image)
from depth_estimation.samples import load_samples, SAMPLE_DIR

pytestmark = pytest.mark.ros  # needs the sensor_msgs wheels, not a graph


def make_header() -> Header:
    header = Header(frame_id='camera_optical_frame')
    header.stamp.sec, header.stamp.nanosec = 12, 345
    return header


@pytest.fixture(scope='module')
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)  # (H, W, 3)


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8'])
def test_colour_encodings_round_trip(rgb: np.ndarray, encoding: str) -> None:
    msg = rgb_to_image(rgb, make_header(), encoding)
    assert msg.step == 5 * COLOR_ENCODINGS[encoding]
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)


def test_bgr8_bytes_are_blue_first() -> None:
    msg = Image(height=1, width=1, encoding='bgr8', step=3, data=bytes([10, 20, 30]))
    np.testing.assert_array_equal(image_to_rgb(msg), [[[30, 20, 10]]])


def test_mono8_becomes_grey_rgb() -> None:
    msg = Image(height=1, width=2, encoding='mono8', step=2, data=bytes([7, 200]))
    np.testing.assert_array_equal(image_to_rgb(msg), [[[7, 7, 7], [200, 200, 200]]])


def test_row_padding_is_skipped(rgb: np.ndarray) -> None:
    rows = np.concatenate([rgb.reshape(6, 15), np.zeros((6, 1), np.uint8)], axis=1)  # (H, 16)
    msg = Image(height=6, width=5, encoding='rgb8', step=16, data=rows.tobytes())
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)


@pytest.mark.parametrize('kwargs, message', [
    (dict(encoding='16UC1', step=10, data=bytes(60)), 'unsupported image encoding'),
    (dict(encoding='yuv422_yuy2', step=10, data=bytes(60)), 'even width'),
    (dict(encoding='rgb8', step=14, data=bytes(84)), 'shorter than a row'),
    (dict(encoding='rgb8', step=15, data=bytes(89)), 'step \\* rows'),
])
def test_bad_images_raise_value_error(kwargs: dict, message: str) -> None:
    with pytest.raises(ImageEncodingError, match=message):
        image_to_rgb(Image(height=6, width=5, **kwargs))


@pytest.mark.parametrize('encoding', ['rgb8', 'mono8', 'bgr8'])
def test_big_endian_flag_on_8_bit_data_is_read_as_the_same_bytes(rgb: np.ndarray,
                                                                 encoding: str) -> None:
    msg = rgb_to_image(rgb, make_header(), encoding)
    flagged = rgb_to_image(rgb, make_header(), encoding)
    flagged.is_bigendian = True
    np.testing.assert_array_equal(image_to_rgb(flagged), image_to_rgb(msg))


def test_yuyv_message_is_decoded() -> None:
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[...] = (40, 160, 90)
    yuyv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_YUY2)  # (4, 6, 2)
    msg = Image(height=4, width=6, encoding='yuv422_yuy2', step=12, data=yuyv.tobytes())
    assert np.abs(image_to_rgb(msg).astype(int) - rgb).max() <= 2


@pytest.mark.parametrize('suffix, fmt', [('.png', 'bgr8; png compressed bgr8'),
                                         ('.jpg', 'bgr8; jpeg compressed bgr8')])
def test_compressed_message_is_decoded_and_a_truncated_one_refused(
        rgb: np.ndarray, suffix: str, fmt: str) -> None:
    ok, encoded = cv2.imencode(suffix, np.ascontiguousarray(rgb[..., ::-1]))
    assert ok
    decoded = image_to_rgb(CompressedImage(format=fmt, data=encoded.tobytes()))
    assert decoded.shape == rgb.shape
    if suffix == '.png':
        np.testing.assert_array_equal(decoded, rgb)
    with pytest.raises(ImageEncodingError) as error:
        image_to_rgb(CompressedImage(format=fmt, data=encoded.tobytes()[:-20]))
    assert error.value.kind == 'truncated'


def test_depth_image_is_rep118(rgb: np.ndarray) -> None:
    depth = np.array([[1.5, 0.0, -2.0], [np.inf, np.nan, 3.25]], dtype=np.float32)  # (H, W) m
    msg = depth_to_image(depth, make_header())
    assert (msg.encoding, msg.height, msg.width, msg.step) == ('32FC1', 2, 3, 12)
    assert msg.is_bigendian is False and msg.header.frame_id == 'camera_optical_frame'
    back = image_to_depth(msg)
    np.testing.assert_array_equal(back, [[1.5, np.nan, np.nan], [np.nan, np.nan, 3.25]])
    assert not np.any(back == 0)


def test_depth_camera_info_scaled_with_header() -> None:
    info = camera_info_from_yaml(SAMPLE_DIR / 'tum_color.yaml')
    header = make_header()
    scaled = depth_camera_info(info, 320, 240, header)
    assert scaled.header.frame_id == header.frame_id and scaled.header.stamp == header.stamp
    assert (scaled.width, scaled.height) == (320, 240)
    np.testing.assert_allclose(scaled.p, [262.5, 0, 159.5, 0, 0, 262.5, 119.5, 0, 0, 0, 1, 0])
    np.testing.assert_allclose(scaled.k, [262.5, 0, 159.5, 0, 262.5, 119.5, 0, 0, 1])
    np.testing.assert_allclose(scaled.d, info.d)
    same = depth_camera_info(info, 640, 480, header)
    np.testing.assert_allclose(same.p, info.p)


def test_zero_projection_is_filled_from_k() -> None:
    info = CameraInfo(width=640, height=480, k=[600.0, 0, 320, 0, 610.0, 240, 0, 0, 1])
    scaled = depth_camera_info(info, 640, 480, make_header())
    np.testing.assert_allclose(scaled.p, [600, 0, 320, 0, 0, 610, 240, 0, 0, 0, 1, 0])
    assert camera_info_intrinsics(info).fy == 610.0


def d435_info(**fields) -> CameraInfo:
    """A 640x480 calibration (fx 613.2, cx 319.9), as a RealSense D435 colour camera_info."""
    return CameraInfo(width=640, height=480, k=[613.2, 0, 319.9, 0, 613.4, 239.1, 0, 0, 1],
                      p=[613.2, 0, 319.9, 0, 0, 613.4, 239.1, 0, 0, 0, 1, 0], **fields)


def test_roi_shifts_the_principal_point_and_the_result_has_no_roi() -> None:
    info = d435_info(roi=RegionOfInterest(x_offset=100, y_offset=50, width=320, height=240,
                                          do_rectify=True))
    cropped = depth_camera_info(info, 320, 240, make_header())
    for matrix in (cropped.k, cropped.p):
        assert matrix[0] == pytest.approx(613.2) and matrix[2] == pytest.approx(219.9)
    assert cropped.p[6] == pytest.approx(189.1)
    roi = cropped.roi
    assert (roi.x_offset, roi.y_offset, roi.width, roi.height, roi.do_rectify) == (0, 0, 0, 0,
                                                                                   False)
    assert (cropped.binning_x, cropped.binning_y) == (0, 0)


def test_binning_divides_and_the_result_has_no_binning() -> None:
    binned = depth_camera_info(d435_info(binning_x=2, binning_y=2), 320, 240, make_header())
    assert binned.p[0] == pytest.approx(306.6)
    assert binned.p[2] == pytest.approx((319.9 + 0.5) / 2 - 0.5)
    assert (binned.binning_x, binned.binning_y) == (0, 0)


def test_unusable_p_or_k_is_filled_from_the_other() -> None:
    nan_p = d435_info()
    nan_p.p = [613.2, 0, float('nan'), 0, 0, 613.4, 239.1, 0, 0, 0, 1, 0]
    check_camera_info_message(nan_p)
    out = depth_camera_info(nan_p, 640, 480, make_header())
    np.testing.assert_allclose(out.p, [613.2, 0, 319.9, 0, 0, 613.4, 239.1, 0, 0, 0, 1, 0])
    assert camera_info_intrinsics(nan_p).cx == pytest.approx(319.9)
    nan_k = d435_info()
    nan_k.k = [float('nan')] * 9
    check_camera_info_message(nan_k)
    out = depth_camera_info(nan_k, 640, 480, make_header())
    assert np.all(np.isfinite(out.k)) and np.all(np.isfinite(out.p))
    np.testing.assert_allclose(out.k, [613.2, 0, 319.9, 0, 613.4, 239.1, 0, 0, 1])


@pytest.mark.parametrize('fields, reason', [
    (dict(k=[0.0] * 9, p=[0.0] * 12), 'all zeros'),
    (dict(k=[float('inf')] * 9, p=[float('nan')] * 12), 'non-finite'),
    (dict(k=[613.2, 0, 319.9, 0, 613.4, 239.1, 0, 0, 0], p=[0.0] * 12), 'not normalised'),
])
def test_unusable_camera_info_is_refused_with_its_reason(fields: dict, reason: str) -> None:
    info = d435_info()
    for name, value in fields.items():
        setattr(info, name, value)
    with pytest.raises(CameraInfoError, match=reason) as error:
        check_camera_info_message(info)
    assert error.value.kind == 'camera_info'


def test_cloud_is_organized_and_matches_depth_to_points() -> None:
    sample = load_samples()[0]
    info = camera_info_from_yaml(SAMPLE_DIR / f'{sample.name}.yaml')
    height, width = sample.rgb.shape[:2]
    depth = np.linspace(0.5, 5.0, height * width, dtype=np.float32).reshape(height, width)
    depth[0, :10] = np.nan
    cloud = depth_to_cloud(depth, info, make_header(), sample.rgb)
    assert (cloud.height, cloud.width, cloud.is_dense) == (height, width, False)
    assert (cloud.point_step, cloud.row_step) == (16, 16 * width)
    assert cloud.header.frame_id == 'camera_optical_frame'
    fields = [(f.name, f.offset, f.datatype) for f in cloud.fields]
    assert all(f.count == 1 for f in cloud.fields)
    points = unpack_cloud(bytes(cloud.data), fields, cloud.point_step, height, width)
    expected = depth_to_points(depth, camera_info_intrinsics(info))  # (H, W, 3)
    np.testing.assert_array_equal(points['x'], expected[..., 0])
    np.testing.assert_array_equal(points['z'], expected[..., 2])
    assert np.isnan(points['y'][0, :10]).all()
