"""The main job: `depth-estimation demo` runs the simulated camera, the node and the report end to
end; its statistics and arguments are checked on their own."""

from __future__ import annotations

import json
import math
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest

from depth_estimation.tools.demo.accuracy import DemoStatistics, ERROR_BINS
from depth_estimation.tools.demo.model import shipped_demo_model
from depth_estimation.tools.demo.sources import Source

CLI = Path(sys.executable).parent / 'depth-estimation'


def test_statistics_metrics_histogram_and_throughput() -> None:
    truth = np.linspace(0.5, 7.0, 48 * 64, dtype=np.float32).reshape(48, 64)  # 1.31x < 10 m
    truth[0, :5] = np.nan  # no ground truth there
    statistics = DemoStatistics()
    exact = statistics.add(1, received=0.0, latency=0.2, ground_truth=truth, depth=truth.copy())
    assert exact.metrics['a1'] == 1.0 and exact.metrics['abs_rel'] == 0.0
    assert exact.metrics['rmse'] == 0.0
    scaled = statistics.add(2, received=0.5, latency=0.4, ground_truth=truth,
                            depth=truth * np.float32(1.31))
    assert scaled.metrics['a1'] == 0.0  # every pixel is 31 % off: outside delta < 1.25
    assert scaled.metrics['abs_rel'] == pytest.approx(0.31, rel=1e-5)
    far = np.full_like(truth, np.inf)  # REP 117 "too far" everywhere: counted as 10 m
    clipped = statistics.add(3, received=1.0, latency=0.3, ground_truth=truth, depth=far)
    assert clipped.metrics['rmse'] == pytest.approx(
        math.sqrt(np.nanmean((10.0 - truth[truth < 10.0]) ** 2)), rel=1e-5)
    statistics.add(4, received=1.5, latency=0.3)  # no ground truth: timing only
    assert statistics.answered == 4 and len(statistics.evaluated()) == 3
    assert statistics.throughput() == pytest.approx(3 / 1.5)
    valid = int(np.isfinite(truth).sum())
    counts = statistics.error_counts
    assert counts.sum() == 3 * valid
    zero_bin = np.searchsorted(ERROR_BINS, 0.0, side='right')
    plus_31_bin = np.searchsorted(ERROR_BINS, 0.31, side='right')  # 0.3 to 0.325
    assert counts[zero_bin] >= valid and counts[plus_31_bin] == valid
    means = statistics.mean_metrics()
    assert means['abs_rel'] == pytest.approx(np.mean([0.0, 0.31, clipped.metrics['abs_rel']]))
    summary = statistics.summary(2.0)
    assert summary['frames_answered'] == 4 and summary['frames_evaluated'] == 3
    assert summary['latency_ms']['max'] == pytest.approx(400.0)


def test_sources_parse_and_bad_ones_are_refused() -> None:
    camera = Source.parse('topic:/camera/color/image_raw')
    assert camera.image_topic == '/camera/color/image_raw'
    assert camera.camera_info_topic == '/camera/color/camera_info'
    assert Source.parse('topic:image_raw').camera_info_topic == 'camera_info'
    assert Source.parse('sim').has_ground_truth and not Source.parse('samples').has_ground_truth
    for text, error in (('webcam', ValueError), ('topic:', ValueError), ('sim:3', ValueError),
                        ('video:/no/such/file.mp4', FileNotFoundError)):
        with pytest.raises(error):
            Source.parse(text)
    result = subprocess.run([str(CLI), 'demo', '--source', 'webcam'], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and 'unknown source' in result.stderr


@pytest.mark.ros
@pytest.mark.slow
def test_demo_runs_sim_camera_node_and_writes_the_report(tmp_path: Path, request) -> None:
    """The README's first command, shortened to a few frames (the shipped demo model when the
    repository has it, else the tiny test model instead of exporting one)."""
    pytest.importorskip('pybullet', reason='the simulated camera needs pybullet')
    from ros_graph import ros_environment

    if not CLI.exists():
        pytest.skip(f'{CLI} is absent: install the package (pip install -e .)')
    model = [] if shipped_demo_model() else ['--model', str(request.getfixturevalue('tiny_onnx'))]
    output = tmp_path / 'demo'
    result = subprocess.run([str(CLI), 'demo', '--frames', '6', '--output', str(output),
                             '--frames-per-scene', '3', '--rate', '4', '--timeout', '60',
                             '--record-ground-truth'] + model,
                            env=ros_environment(), capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert 'accuracy over' in result.stdout
    summary = json.loads((output / 'summary.json').read_text())['summary']
    assert summary['frames_answered'] >= 6 and summary['frames_evaluated'] >= 6
    assert summary['throughput_fps'] > 0
    assert all(math.isfinite(v) and v > 0 for v in summary['latency_ms'].values())
    accuracy = summary['accuracy']
    assert 0.0 <= accuracy['delta1'] <= 1.0
    assert math.isfinite(accuracy['abs_rel']) and math.isfinite(accuracy['rmse_m'])
    assert accuracy['rmse_m'] > 0
    report = (output / 'report.md').read_text()
    for name in ('latency.png', 'error_histogram.png', 'panel.png', 'depth_00.png',
                 'points_00.png'):
        assert (output / name).stat().st_size > 1000, name
        assert f']({name})' in report
    recording = output / 'recording'
    assert (recording / 'metadata.yaml').is_file() and list(recording.glob('*.mcap'))
    counts = json.loads((output / 'summary.json').read_text())['recording']['counts']
    assert counts['/depth/image'] >= 1 and counts['/ground_truth/depth'] >= 1
    from depth_estimation.datasets.rosbag import RosbagDataset  # the recording is a dataset

    frames = RosbagDataset(recording, color_topic='/image', depth_topic='/ground_truth/depth')
    assert len(frames) >= 1 and frames[0].image.shape == (480, 640, 3)
