"""Intrinsics, back-projection and PointCloud2 packing against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from depth_estimation.geometry import (cloud_dtype, depth_to_points, Intrinsics, pack_cloud,
                                       pack_rgb, scale_projection, unpack_cloud, unpack_rgb)

P = [500.0, 0.0, 319.5, 0.0, 0.0, 400.0, 239.5, 0.0, 0.0, 0.0, 1.0, 0.0]
K = [500.0, 0.0, 319.5, 0.0, 400.0, 239.5, 0.0, 0.0, 1.0]


def test_from_projection_and_from_k_agree() -> None:
    from_p = Intrinsics.from_projection(P, 640, 480)
    assert from_p == Intrinsics(500.0, 400.0, 319.5, 239.5, 640, 480)
    assert Intrinsics.from_k(K, 640, 480) == from_p
    with pytest.raises(ValueError):
        Intrinsics.from_projection(P[:9], 640, 480)
    with pytest.raises(ValueError, match='focal'):
        Intrinsics.from_projection([0.0] * 12, 640, 480)


def test_pixel_maps_to_hand_computed_point() -> None:
    intrinsics = Intrinsics(fx=500.0, fy=400.0, cx=2.0, cy=1.0, width=5, height=4)
    depth = np.full((4, 5), 2.0, dtype=np.float32)  # (H, W) metres
    depth[3, 4] = 4.0
    points = depth_to_points(depth, intrinsics)
    assert points.shape == (4, 5, 3) and points.dtype == np.float32
    # u = 4, v = 3, z = 4: ((4 - 2) * 4 / 500, (3 - 1) * 4 / 400, 4)
    np.testing.assert_allclose(points[3, 4], [0.016, 0.02, 4.0], rtol=1e-6)
    # u = 0, v = 0, z = 2: ((0 - 2) * 2 / 500, (0 - 1) * 2 / 400, 2)
    np.testing.assert_allclose(points[0, 0], [-0.008, -0.005, 2.0], rtol=1e-6)
    np.testing.assert_array_equal(points[1, 2], [0.0, 0.0, 2.0])  # the principal point


def test_invalid_depth_gives_nan_points() -> None:
    intrinsics = Intrinsics(100.0, 100.0, 1.0, 0.5, 3, 2)
    depth = np.array([[np.nan, np.inf, -np.inf], [0.0, -1.0, 1.5]], dtype=np.float32)
    points = depth_to_points(depth, intrinsics)
    assert np.isnan(points[:, :, :].reshape(-1, 3)[:5]).all()
    assert np.isfinite(points[1, 2]).all()
    np.testing.assert_allclose(points[1, 2], [1.5 * 1.0 / 100.0, 1.5 * 0.5 / 100.0, 1.5])


def test_depth_size_must_match_intrinsics() -> None:
    with pytest.raises(ValueError, match='scale them first'):
        depth_to_points(np.ones((4, 4), np.float32), Intrinsics(1.0, 1.0, 0.0, 0.0, 5, 4))


def test_scaling_follows_the_pixel_centre_convention() -> None:
    intrinsics = Intrinsics.from_projection(P, 640, 480)
    half = intrinsics.scaled(320, 240)
    # centres: x' = (x + 0.5) * s - 0.5; the image centre 319.5 of 640 maps to 159.5 of 320.
    assert half == Intrinsics(250.0, 200.0, 159.5, 119.5, 320, 240)
    assert half.scaled(640, 480) == intrinsics
    # a point at pixel edge 0 (x = -0.5) stays at the edge; the far edge maps to the far edge.
    quarter = Intrinsics(100.0, 100.0, -0.5, 479.5, 640, 480).scaled(160, 120)
    assert (quarter.cx, quarter.cy) == (-0.5, 119.5)
    np.testing.assert_allclose(scale_projection(P, 0.5, 0.5),
                               [250.0, 0.0, 159.5, 0.0, 0.0, 200.0, 119.5, 0.0, 0, 0, 1, 0])
    np.testing.assert_allclose(scale_projection(K, 0.5, 0.5),
                               [250.0, 0.0, 159.5, 0.0, 200.0, 119.5, 0, 0, 1])


def test_scaled_projection_preserves_rays() -> None:
    intrinsics = Intrinsics(525.0, 520.0, 319.5, 239.5, 640, 480)
    small = intrinsics.scaled(128, 96)
    # the ray through continuous point x of the big image is the one through (x + .5) s - .5
    x_big, y_big = 100.25, 300.75
    x_small = (x_big + 0.5) * 128 / 640 - 0.5
    y_small = (y_big + 0.5) * 96 / 480 - 0.5
    np.testing.assert_allclose((x_small - small.cx) / small.fx,
                               (x_big - intrinsics.cx) / intrinsics.fx, rtol=1e-12)
    np.testing.assert_allclose((y_small - small.cy) / small.fy,
                               (y_big - intrinsics.cy) / intrinsics.fy, rtol=1e-12)


def test_rgb_packing_is_the_ros_bit_layout() -> None:
    rgb = np.array([[[255, 0, 0], [0, 128, 1], [1, 2, 3]]], dtype=np.uint8)  # (1, 3, 3)
    packed = pack_rgb(rgb)
    assert packed.dtype == np.float32 and packed.shape == (1, 3)
    np.testing.assert_array_equal(packed.view(np.uint32), [[0xFF0000, 0x008001, 0x010203]])
    np.testing.assert_array_equal(unpack_rgb(packed), rgb)


def test_pack_cloud_layout_and_bytes() -> None:
    points = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)  # (H, W, 3)
    points[1, 2] = np.nan
    fields, point_step, data = pack_cloud(points)
    assert fields == [('x', 0, 7), ('y', 4, 7), ('z', 8, 7)]
    assert point_step == 12 and len(data) == 2 * 3 * 12
    np.testing.assert_array_equal(np.frombuffer(data, '<f4').reshape(2, 3, 3), points)

    rgb = np.full((2, 3, 3), 7, dtype=np.uint8)
    fields, point_step, data = pack_cloud(points, rgb)
    assert fields[-1] == ('rgb', 12, 7) and point_step == 16 and len(data) == 2 * 3 * 16
    cloud = unpack_cloud(data, fields, point_step, 2, 3)  # (H, W) structured
    np.testing.assert_array_equal(cloud['z'], points[..., 2])
    np.testing.assert_array_equal(unpack_rgb(cloud['rgb']), rgb)
    assert cloud_dtype(True).itemsize == 16
    with pytest.raises(ValueError):
        pack_cloud(points, rgb[:1])
