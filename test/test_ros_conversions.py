"""Message conversions: Image <-> numpy, 32FC1 depth, CameraInfo scaling, organized PointCloud2."""

from __future__ import annotations

import numpy as np
import pytest

from sensor_msgs.msg import CameraInfo, Image  # noqa: I100
from std_msgs.msg import Header

from depth_estimation.geometry import depth_to_points, unpack_cloud
from depth_estimation.ros.conversions import (camera_info_from_yaml, camera_info_intrinsics,
                                              COLOR_ENCODINGS, depth_to_cloud, depth_to_image,
                                              image_to_depth, image_to_rgb, rgb_to_image,
                                              scale_camera_info)
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
    (dict(encoding='yuv422', step=10, data=bytes(60)), 'unsupported image encoding'),
    (dict(encoding='rgb8', step=14, data=bytes(84)), 'shorter than a row'),
    (dict(encoding='rgb8', step=15, data=bytes(89)), 'step \\* height'),
])
def test_bad_images_raise_value_error(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        image_to_rgb(Image(height=6, width=5, **kwargs))


def test_depth_image_is_rep118(rgb: np.ndarray) -> None:
    depth = np.array([[1.5, 0.0, -2.0], [np.inf, np.nan, 3.25]], dtype=np.float32)  # (H, W) m
    msg = depth_to_image(depth, make_header())
    assert (msg.encoding, msg.height, msg.width, msg.step) == ('32FC1', 2, 3, 12)
    assert msg.is_bigendian is False and msg.header.frame_id == 'camera_optical_frame'
    back = image_to_depth(msg)
    np.testing.assert_array_equal(back, [[1.5, np.nan, np.nan], [np.nan, np.nan, 3.25]])
    assert not np.any(back == 0)


def test_camera_info_scaled_with_header() -> None:
    info = camera_info_from_yaml(SAMPLE_DIR / 'tum_color.yaml')
    header = make_header()
    scaled = scale_camera_info(info, 320, 240, header)
    assert scaled.header.frame_id == header.frame_id and scaled.header.stamp == header.stamp
    assert (scaled.width, scaled.height) == (320, 240)
    np.testing.assert_allclose(scaled.p, [262.5, 0, 159.5, 0, 0, 262.5, 119.5, 0, 0, 0, 1, 0])
    np.testing.assert_allclose(scaled.k, [262.5, 0, 159.5, 0, 262.5, 119.5, 0, 0, 1])
    np.testing.assert_allclose(scaled.d, info.d)
    same = scale_camera_info(info, 640, 480, header)
    np.testing.assert_allclose(same.p, info.p)


def test_zero_projection_is_filled_from_k() -> None:
    info = CameraInfo(width=640, height=480, k=[600.0, 0, 320, 0, 610.0, 240, 0, 0, 1])
    scaled = scale_camera_info(info, 640, 480, make_header())
    np.testing.assert_allclose(scaled.p, [600, 0, 320, 0, 0, 610, 240, 0, 0, 0, 1, 0])
    assert camera_info_intrinsics(info).fy == 610.0


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
