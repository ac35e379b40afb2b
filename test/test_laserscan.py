"""pipeline.laserscan against hand-computed geometry (depthimage_to_laserscan's rules)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from depth_estimation.geometry import Intrinsics
from depth_estimation.pipeline.laserscan import (depth_to_scan, scan_geometry, scan_rows,
                                                 scan_to_points)

# fx = 100, principal point in the middle of a 101-pixel row: the edge rays are at atan(0.5).
CAMERA = Intrinsics(fx=100.0, fy=100.0, cx=50.0, cy=10.0, width=101, height=21)
EDGE_ANGLE = 0.4636476090008061  # atan(0.5), radians
EDGE_RANGE_AT_2M = 2.23606797749979  # 2 * sqrt(1 + 0.5^2)


def test_angles_come_from_the_edge_rays():
    geometry = scan_geometry(CAMERA, range_min=0.45, range_max=10.0)
    assert geometry.angle_max == pytest.approx(EDGE_ANGLE)
    assert geometry.angle_min == pytest.approx(-EDGE_ANGLE)
    assert geometry.angle_increment == pytest.approx(2 * EDGE_ANGLE / 100)
    assert geometry.count == 101
    assert (geometry.range_min, geometry.range_max) == (0.45, 10.0)
    # an off-centre principal point gives asymmetric limits
    off = scan_geometry(Intrinsics(100.0, 100.0, 30.0, 10.0, 101, 21))
    assert off.angle_max == pytest.approx(math.atan(0.3))
    assert off.angle_min == pytest.approx(-math.atan(0.7))


def test_wall_at_two_metres_gives_two_over_cos_theta():
    ranges, geometry = depth_to_scan(np.full((21, 101), 2.0, np.float32), CAMERA)
    assert ranges.dtype == np.float32 and ranges.shape == (101,)
    # column 0 (left edge, +angle) is alone in the last bin; the first bin, [angle_min,
    # angle_min + increment), holds columns 100 and 99 (-atan(0.49) = -0.4556 < -0.4544) and keeps
    # the closer one, column 99: 2 * sqrt(1 + 0.49^2)
    assert ranges[-1] == pytest.approx(EDGE_RANGE_AT_2M, rel=1e-6)
    assert ranges[0] == pytest.approx(2.0 * math.sqrt(1.2401), rel=1e-6)
    assert ranges[50] == pytest.approx(2.0, rel=1e-6)  # the optical axis, bin 50 of 0..100
    finite = np.isfinite(ranges)
    assert finite.mean() > 0.8  # uniform bins over atan-spaced pixels leave a few empty
    assert np.isnan(ranges[~finite]).all()
    # every range matches its bin angle to within one increment of the wall's 2 / cos(theta)
    theta = geometry.angles()[finite]
    expected = 2.0 / np.cos(theta)
    slack = 2.0 * np.abs(np.sin(theta)) / np.cos(theta) ** 2 * geometry.angle_increment
    assert np.all(np.abs(ranges[finite] - expected) <= slack + 1e-6)


def test_scan_height_keeps_the_closest_range_in_the_band():
    depth = np.full((21, 101), 3.0, np.float32)
    depth[:9] = 0.5  # rows above the band: ignored (band = rows 9, 10, 11: centred on cy = 10)
    depth[12:] = 0.5
    depth[9, 45:56] = 1.0  # a closer object in the top row of the band, around the axis
    ranges, _ = depth_to_scan(depth, CAMERA, scan_height=3, range_min=0.45)
    assert ranges[50] == pytest.approx(1.0)
    finite = ranges[np.isfinite(ranges)]
    assert finite.min() >= 1.0 - 1e-6  # nothing from the 0.5 m rows outside the band
    assert ranges[-1] == pytest.approx(3.0 * math.sqrt(1.25), rel=1e-6)
    with pytest.raises(ValueError, match='too large'):
        depth_to_scan(depth, CAMERA, scan_height=23)
    # rows whose centres are nearest cy = 10
    assert scan_rows(CAMERA, 1) == (10, 1)
    assert scan_rows(CAMERA, 3) == (9, 3)
    assert scan_rows(CAMERA, 4) == (9, 4)  # rows 9..12 (centre 10.5): cy lies in the band


def test_left_of_the_principal_point_is_a_positive_angle():
    depth = np.full((21, 101), np.nan, np.float32)
    depth[:, :20] = 2.0  # only the left side sees something
    ranges, geometry = depth_to_scan(depth, CAMERA)
    angles = geometry.angles()
    assert np.isfinite(ranges[angles > 0.2]).any()
    assert not np.isfinite(ranges[angles < 0]).any()


def test_rep117_conventions():
    nan = np.full((21, 101), np.nan, np.float32)
    assert np.isnan(depth_to_scan(nan, CAMERA)[0]).all()
    zero = np.zeros((21, 101), np.float32)  # 0.0 is not a measurement in float depth
    assert np.isnan(depth_to_scan(zero, CAMERA)[0]).all()
    for sign in (1.0, -1.0):
        ranges, _ = depth_to_scan(np.full((21, 101), sign * np.inf, np.float32), CAMERA)
        assert not np.isfinite(ranges).any()
        assert np.all(ranges[~np.isnan(ranges)] == sign * np.inf)
        assert np.isnan(ranges).mean() <= 0.8
    far = np.full((21, 101), 20.0, np.float32)
    far_ranges = depth_to_scan(far, CAMERA)[0]
    assert np.all(far_ranges[~np.isnan(far_ranges)] == np.inf)
    assert np.isnan(depth_to_scan(far, CAMERA, mark_out_of_range=False)[0]).all()
    near = np.full((21, 101), 0.2, np.float32)
    near_ranges = depth_to_scan(near, CAMERA, range_min=0.45)[0]
    assert np.all(near_ranges[~np.isnan(near_ranges)] == -np.inf)
    # a valid range beats too close / too far in the same bin; too close beats too far
    mixed = np.full((21, 101), 20.0, np.float32)
    mixed[10, 50] = 0.2
    assert depth_to_scan(mixed, CAMERA)[0][50] == -np.inf
    mixed = np.full((21, 101), 0.2, np.float32)
    mixed[10, 50] = 4.0
    assert depth_to_scan(mixed, CAMERA, scan_height=1)[0][50] == pytest.approx(4.0)


def test_uint16_millimetres_like_16uc1():
    depth = np.full((21, 101), 2000, np.uint16)
    depth[10, 50] = 0  # invalid in 16UC1
    ranges, _ = depth_to_scan(depth, CAMERA)
    assert np.isnan(ranges[50])
    assert ranges[-1] == pytest.approx(EDGE_RANGE_AT_2M, rel=1e-6)
    with pytest.raises(ValueError, match='float metres or uint16'):
        depth_to_scan(depth.astype(np.int32), CAMERA)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match='scale them first'):
        depth_to_scan(np.ones((20, 101), np.float32), CAMERA)
    with pytest.raises(ValueError, match='range_min'):
        scan_geometry(CAMERA, range_min=5.0, range_max=1.0)


def test_scan_points_are_in_the_scan_frame():
    points = scan_to_points(np.array([2.0, np.nan, 1.0]), angle_min=0.0,
                            angle_increment=math.pi / 2)
    np.testing.assert_allclose(points[0], [2.0, 0.0, 0.0], atol=1e-12)  # straight ahead
    assert np.isnan(points[1]).all()
    np.testing.assert_allclose(points[2], [-1.0, 0.0, 0.0], atol=1e-12)  # angle pi: behind
