"""pipeline.anchoring: robust per-frame scale, sparse inputs, smoothing; hand-computed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from depth_estimation.geometry import Intrinsics
from depth_estimation.pipeline.anchoring import (OPTICAL_FROM_FORWARD, ScaleFit, ScaleSmoother,
                                                 apply_scale, fit_scale, fit_scale_to_sparse,
                                                 project_points, sample_pairs,
                                                 scan_to_sparse_depth, zone_depths)

METHODS = ('ransac', 'trimmed', 'median')


@pytest.mark.parametrize('method', METHODS)
def test_exact_ratio_gives_the_scale(method):
    predicted = np.linspace(0.5, 5.0, 20)
    fit = fit_scale(predicted, 2.0 * predicted, method)
    assert fit.ok and fit.reason == ''
    assert fit.scale == pytest.approx(2.0)
    assert (fit.samples, fit.inliers) == (20, 20)
    assert fit.spread == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize('method', ('ransac', 'trimmed'))
def test_outliers_are_rejected(method):
    # 22 inliers at a true scale of 1.5 with log noise evenly spread over [-0.03, 0.03]
    # (median 0), then 8 outliers 3x too far
    predicted = np.linspace(1.0, 4.0, 30)
    log_noise = np.concatenate([np.linspace(-0.03, 0.03, 22), np.zeros(8)])
    measured = 1.5 * predicted * np.exp(log_noise)
    measured[22:] *= 3.0
    fit = fit_scale(predicted, measured, method)
    assert fit.ok
    assert fit.scale == pytest.approx(1.5, rel=1e-9)
    assert fit.inliers == 22
    # the plain median of all 30 is pulled up: the mean of the 15th and 16th inlier noise values,
    # (-0.03 + 0.06 * 14 / 21 - 0.03 + 0.06 * 15 / 21) / 2 = 0.0114286 in log
    median = fit_scale(predicted, measured, 'median')
    assert math.log(median.scale / 1.5) == pytest.approx(0.0114286, rel=1e-4)


def test_ransac_survives_a_third_of_scattered_outliers():
    predicted = np.full(60, 2.0)
    measured = np.full(60, 2.0 * 0.8)
    measured[:20] = np.geomspace(0.3, 9.0, 20)  # a third: scattered over 30x
    fit = fit_scale(predicted, measured, 'ransac')
    assert fit.ok and fit.scale == pytest.approx(0.8, rel=1e-9)
    assert fit.inliers >= 40


def test_too_few_samples_or_no_consensus_is_refused():
    fit = fit_scale(np.ones(5), np.ones(5) * 2.0, min_samples=8)
    assert not fit.ok and fit.scale == 1.0 and fit.samples == 5
    assert 'fewer than 8' in fit.reason
    # NaN, zeros and negative samples are not samples
    predicted = np.array([1.0, np.nan, 0.0, 2.0, -1.0, np.inf] + [1.0] * 6)
    fit = fit_scale(predicted, np.ones(12), min_samples=8)
    assert fit.samples == 8 and fit.inliers == 7  # the pair (2, 1) is a factor 2 off
    assert not fit.ok and 'inliers' in fit.reason
    # log ratios 0.5 apart: no two agree within 0.1, so no scale is trusted
    spread_out = np.exp(0.5 * np.arange(20))
    fit = fit_scale(np.ones(20), spread_out, 'ransac', min_samples=2)
    assert not fit.ok and fit.inliers == 1 and fit.scale == 1.0
    assert fit.inlier_fraction == pytest.approx(0.05)
    with pytest.raises(ValueError, match='unknown scale method'):
        fit_scale(np.ones(10), np.ones(10), 'mean')
    with pytest.raises(ValueError, match='predicted but'):
        fit_scale(np.ones(10), np.ones(9))


def test_zone_depths_are_block_medians():
    depth = np.zeros((16, 16))
    for i in range(8):
        for j in range(8):
            depth[2 * i:2 * i + 2, 2 * j:2 * j + 2] = 1.0 + i + 0.1 * j
    depth[0, 0] = 100.0  # one odd pixel of four: the median of (100, 1, 1, 1) is 1
    depth[14:16, 14] = np.nan  # zone (7, 7) keeps 2 of 4 pixels: still >= 50 % valid
    depth[0:2, 14:16] = 0.0  # zone (0, 7) has none
    zones = zone_depths(depth, (8, 8))
    assert zones.shape == (8, 8)
    assert zones[0, 0] == pytest.approx(1.0)
    assert zones[3, 5] == pytest.approx(4.5)
    assert zones[7, 7] == pytest.approx(8.7)
    assert np.isnan(zones[0, 7])
    with pytest.raises(ValueError, match='zones'):
        zone_depths(np.ones((4, 4)), (8, 8))


def test_pairs_from_a_zone_image_and_from_a_full_size_image():
    predicted = np.ones((16, 16))
    sparse_zones = np.array([[2.0, np.nan], [2.0, 0.0]])
    pred_values, measured = sample_pairs(predicted, sparse_zones)
    np.testing.assert_array_equal(pred_values, [1.0, 1.0])
    np.testing.assert_array_equal(measured, [2.0, 2.0])
    sparse = np.full((16, 16), np.nan)
    sparse[3, 4] = 3.0
    sparse[10, 1] = 0.5
    pred_values, measured = sample_pairs(predicted, sparse)
    np.testing.assert_array_equal(measured, [3.0, 0.5])
    with pytest.raises(ValueError, match='larger than the prediction'):
        sample_pairs(np.ones((4, 4)), np.ones((8, 8)))
    # 8 x 8 zones over a prediction that is everywhere half the truth: scale 2 from 64 zones
    truth = np.linspace(1.0, 3.0, 64 * 48).reshape(48, 64)
    fit = fit_scale_to_sparse(truth / 2.0, zone_depths(truth, (8, 8)))
    assert fit.ok and fit.samples == 64 and fit.scale == pytest.approx(2.0, rel=1e-6)


def test_project_points_keeps_the_nearest_and_drops_what_is_not_seen():
    camera = Intrinsics(100.0, 100.0, 10.0, 10.0, 21, 21)
    points = np.array([
        [0.1, -0.2, 2.0],  # u = 100 * 0.05 + 10 = 15, v = 100 * -0.1 + 10 = 0
        [0.2, -0.4, 4.0],  # the same pixel, further away: hidden
        [0.0, 0.0, -1.0],  # behind the camera
        [5.0, 0.0, 1.0],  # outside the image (u = 510)
        [np.nan, 0.0, 1.0],
    ])
    sparse = project_points(points, camera)
    assert sparse.dtype == np.float32 and sparse.shape == (21, 21)
    assert sparse[0, 15] == pytest.approx(2.0)
    assert np.isfinite(sparse).sum() == 1


def test_laser_scan_projected_into_the_camera():
    camera = Intrinsics(100.0, 100.0, 50.0, 20.0, 101, 41)
    theta = math.atan(0.25)
    ranges = np.array([3.0, np.inf, 2.0, np.nan])
    # beams at 0, theta, 2 theta (unused: +Inf), ... built so beam 2 is at angle theta
    angle_min, increment = -theta, theta
    # beam 0 at -theta (right of the axis), beam 2 at +theta (left)
    camera_from_scan = OPTICAL_FROM_FORWARD.copy()
    camera_from_scan[1, 3] = 0.1  # the scanner 10 cm below the camera (optical y points down)
    sparse = scan_to_sparse_depth(ranges, angle_min, increment, camera_from_scan, camera)
    assert np.isfinite(sparse).sum() == 2
    # beam 2 (left, +theta): x = -2 sin(theta), z = 2 cos(theta); u = 50 - 100 * tan(theta) = 25
    z_left = 2.0 * math.cos(theta)
    v_left = round(20 + 100 * 0.1 / z_left)
    assert sparse[v_left, 25] == pytest.approx(z_left, rel=1e-6)
    z_right = 3.0 * math.cos(theta)
    assert sparse[round(20 + 100 * 0.1 / z_right), 75] == pytest.approx(z_right, rel=1e-6)
    with pytest.raises(ValueError, match='4 x 4'):
        scan_to_sparse_depth(ranges, 0.0, 0.1, np.eye(3), camera)


def _fit(scale: float, ok: bool = True) -> ScaleFit:
    return ScaleFit(scale, ok, 64, 64 if ok else 0, 0.0)


def test_smoother_is_an_ema_in_log_space():
    smoother = ScaleSmoother(alpha=0.3, jump_threshold=0.25, jump_frames=2)
    assert smoother.scale is None
    assert smoother.update(_fit(1.0)) == pytest.approx(1.0)
    # log(1.1) = 0.0953 < 0.25: move 30 % of the way in log space: 1.1 ** 0.3
    assert smoother.update(_fit(1.1)) == pytest.approx(1.029006, rel=1e-6)
    # a refused fit changes nothing
    assert smoother.update(_fit(5.0, ok=False)) == pytest.approx(1.029006, rel=1e-6)
    assert smoother.frames_since_fit == 1


def test_smoother_ignores_one_outlier_frame_and_follows_a_real_jump():
    smoother = ScaleSmoother(alpha=0.3, jump_threshold=0.25, jump_frames=2)
    smoother.update(_fit(1.0))
    assert smoother.update(_fit(3.0)) == pytest.approx(1.0)  # one frame far away: held back
    assert smoother.update(_fit(1.0)) == pytest.approx(1.0)  # ... and forgotten
    assert smoother.update(_fit(2.0)) == pytest.approx(1.0)
    assert smoother.update(_fit(2.0)) == pytest.approx(2.0)  # second agreeing frame: reset
    assert smoother.resets == 1
    immediate = ScaleSmoother(jump_frames=1)
    immediate.update(_fit(1.0))
    assert immediate.update(_fit(2.0)) == pytest.approx(2.0)
    with pytest.raises(ValueError, match='alpha'):
        ScaleSmoother(alpha=0.0)


def test_apply_scale_keeps_invalid_pixels():
    depth = np.array([[1.0, np.nan], [np.inf, 2.0]], np.float32)
    scaled = apply_scale(depth, 1.5)
    assert scaled.dtype == np.float32
    np.testing.assert_array_equal(scaled, [[1.5, np.nan], [np.inf, 3.0]])
    assert apply_scale(depth, None) is depth
    with pytest.raises(ValueError, match='finite and positive'):
        apply_scale(depth, -1.0)
