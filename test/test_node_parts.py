"""The node's plain parts without a graph: parameters, REP 117 ranges, intrinsics, statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from depth_estimation.geometry import depth_to_points, Intrinsics
from depth_estimation.io import depth_to_mm
from depth_estimation.pipeline.intrinsics import decimate, intrinsics_from_parameters
from depth_estimation.pipeline.ranges import apply_depth_range, limit_far
from depth_estimation.pipeline.stats import (FrameStatistics, LatencyWindow, LogThrottle, OK,
                                             RateMeter, WARN)
from depth_estimation.ros.parameters import (LIFECYCLE_PARAMETERS, NodeSettings, PARAMETERS,
                                             runtime_names)


# Parameters -----------------------------------------------------------------------------------

def test_every_parameter_is_declared_once_with_a_description() -> None:
    names = [spec.name for spec in PARAMETERS + LIFECYCLE_PARAMETERS]
    assert len(names) == len(set(names))
    for spec in PARAMETERS + LIFECYCLE_PARAMETERS:
        assert len(spec.description) > 20, spec.name
        if isinstance(spec.default, (int, float)) and not isinstance(spec.default, bool):
            assert spec.range is not None, f'{spec.name} has no range'
            assert spec.range[0] <= spec.default <= spec.range[1]
        if spec.choices is not None:
            assert spec.default in spec.choices


def test_names_the_simulated_camera_job_and_the_demo_pass_are_kept() -> None:
    names = {spec.name for spec in PARAMETERS}
    assert {'model_path', 'backend', 'num_threads', 'publish_points', 'points_rgb',
            'publisher_reliability', 'publisher_depth'} <= names
    assert {'min_depth', 'max_depth', 'points_stride', 'colormap'} <= set(runtime_names())
    assert 'model_path' not in runtime_names()


def test_defaults_are_valid_and_integers_widen_to_floats() -> None:
    settings = NodeSettings.from_values({})
    assert settings.publisher_reliability == 'reliable'
    assert NodeSettings.from_values({'fx': 500}).fx == 500.0


@pytest.mark.parametrize('values, message', [
    ({'backend': 'tensorflow'}, 'backend'),
    ({'publisher_reliability': 'sometimes'}, 'publisher_reliability'),
    ({'points_stride': 0}, 'points_stride'),
    ({'min_depth': 5.0, 'max_depth': 2.0}, 'min_depth'),
    ({'fy': 400.0}, 'fx'),
    ({'fx': 400.0, 'horizontal_fov': 60.0}, 'not both'),
    ({'colormap': 'rainbowish'}, 'colormap'),
    ({'max_depth': float('nan')}, 'max_depth'),
    ({'publish_points': 'yes'}, 'publish_points'),
])
def test_invalid_settings_name_the_parameter(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NodeSettings.from_values(values)


def test_depth_range_falls_back_to_the_model() -> None:
    assert NodeSettings.from_values({}).depth_range(0.001, 10.0) == (0.001, 10.0)
    assert NodeSettings.from_values({'max_depth': 4.0}).depth_range(0.001, 10.0) == (0.001, 4.0)
    with pytest.raises(ValueError, match='empty'):
        NodeSettings.from_values({'min_depth': 20.0}).depth_range(0.001, 10.0)


# Depth products -------------------------------------------------------------------------------

def test_rep117_markers() -> None:
    depth = np.array([[0.2, 1.0, 5.0], [np.nan, -1.0, 0.0]], np.float32)  # (H, W) m
    ranged = apply_depth_range(depth, 0.5, 4.0)
    assert ranged[0, 0] == -np.inf  # too close
    assert ranged[0, 1] == 1.0
    assert ranged[0, 2] == np.inf  # too far
    assert np.isnan(ranged[1]).all()  # invalid
    assert np.isnan(apply_depth_range(depth, 0.5, 4.0, 'nan')[0, [0, 2]]).all()
    assert depth[0, 0] == np.float32(0.2), 'the input is not modified'


def test_millimetres_zero_for_everything_without_a_measurement() -> None:
    depth = np.array([[1.2345, -np.inf, np.inf, np.nan, 70.0, 0.0004]], np.float32)
    np.testing.assert_array_equal(depth_to_mm(depth, saturate=False), [[1234, 0, 0, 0, 0, 0]])
    assert depth_to_mm(depth, saturate=False).dtype == np.uint16


def test_decimated_intrinsics_reproduce_the_kept_pixels() -> None:
    intrinsics = Intrinsics(500.0, 510.0, 319.5, 241.0, 64, 48)
    depth = np.random.default_rng(1).uniform(0.5, 5.0, (48, 64)).astype(np.float32)
    full = depth_to_points(depth, intrinsics)  # (48, 64, 3)
    for stride in (1, 2, 3, 5):
        kept = depth_to_points(depth[::stride, ::stride], decimate(intrinsics, stride))
        np.testing.assert_allclose(kept, full[::stride, ::stride], rtol=1e-6, atol=1e-6)


def test_limit_far_is_nan_beyond() -> None:
    out = limit_far(np.array([[1.0, 3.0, np.inf]], np.float32), 2.0)
    assert out[0, 0] == 1.0 and np.isnan(out[0, 1:]).all()


def test_intrinsics_from_parameters() -> None:
    assert intrinsics_from_parameters(640, 480) is None
    fov = intrinsics_from_parameters(640, 480, horizontal_fov_deg=90.0)
    assert fov.fx == pytest.approx(320.0) and fov.fy == pytest.approx(320.0)
    assert (fov.cx, fov.cy) == (319.5, 239.5)
    # The ray through the left edge (u = -0.5) is 45 degrees off axis.
    assert math.degrees(math.atan((fov.cx + 0.5) / fov.fx)) == pytest.approx(45.0)
    given = intrinsics_from_parameters(640, 480, fx=600.0, cx=300.0, cy=200.0)
    assert (given.fx, given.fy, given.cx, given.cy) == (600.0, 600.0, 300.0, 200.0)


# Statistics -----------------------------------------------------------------------------------

def test_rate_meter_counts_events_in_its_window() -> None:
    meter = RateMeter(window=2.0)
    for index in range(11):
        meter.tick(10.0 + index * 0.1)  # 10 Hz for 1 s
    assert meter.rate(11.0) == pytest.approx(10.0)
    assert meter.rate(20.0) == 0.0


def test_latency_percentiles() -> None:
    window = LatencyWindow(size=100)
    assert math.isnan(window.percentile(50))
    for value in range(1, 201):  # only the last 100 (101..200) stay
        window.add(value / 1000)
    assert len(window) == 100
    assert window.percentile(50) == pytest.approx(0.1505)
    assert window.percentile(99) == pytest.approx(np.percentile(np.arange(101, 201), 99) / 1000)


def test_report_levels() -> None:
    stats = FrameStatistics(window=5.0)
    level, message, _ = stats.report(100.0, active=True)
    assert level == WARN and 'no image' in message
    assert stats.report(100.0, active=False)[:2] == (OK, 'inactive')
    for index in range(20):
        now = 100.0 + index * 0.1
        stats.on_received(now, replaced_pending=index % 2 == 1)
        stats.on_processed(now, latency=0.05, inference=0.04)
    level, message, values = stats.report(102.0, identity={'model': 'tiny'})
    assert (level, message) == (OK, 'running')
    table = dict(values)
    assert table['frames dropped (newer frame won)'] == '10'
    assert table['latency p99 (ms)'] == '50.0'
    assert table['model'] == 'tiny'
    stats.on_skipped(102.0, 'encoding', "unsupported image encoding 'yuv422'")
    level, message, values = stats.report(102.5)
    assert level == WARN and 'encoding x1' in message and 'yuv422' in message
    assert dict(values)['skipped: encoding'] == '1'
    assert stats.report(110.0)[0] == WARN  # no input for a window
    stats.on_received(110.0, False)
    assert stats.report(110.0)[0] == OK  # the skip is older than the window


def test_log_throttle_is_per_key_and_counts_what_it_held() -> None:
    throttle = LogThrottle(period=5.0)
    assert throttle.allow('encoding', 0.0) == 0
    assert throttle.allow('step', 0.1) == 0  # another problem is logged at once
    assert throttle.allow('encoding', 1.0) is None
    assert throttle.allow('encoding', 2.0) is None
    assert throttle.allow('encoding', 5.5) == 2


def test_plain_parts_import_without_ros() -> None:
    """The pipeline (stats, settings, ranges, intrinsics, DepthPipeline) imports without ROS."""
    import subprocess
    import sys

    code = ('import sys\n'
            'class Block:\n'
            '    def find_spec(self, name, path=None, target=None):\n'
            "        if name.split('.')[0] in ('rclpy', 'sensor_msgs', 'std_msgs', "
            "'diagnostic_msgs', 'rcl_interfaces', 'lifecycle_msgs'):\n"
            "            raise ImportError('ROS is blocked: ' + name)\n"
            'sys.meta_path.insert(0, Block())\n'
            'import depth_estimation.pipeline.stats, depth_estimation.pipeline.settings\n'
            'import depth_estimation.pipeline.ranges, depth_estimation.pipeline.intrinsics\n'
            'import depth_estimation.pipeline\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
