"""The main job: `depth-estimation demo` plays the shipped real RGB-D sequence (or the simulated
camera) through the node and writes the report end to end; its statistics and arguments are
checked on their own."""

from __future__ import annotations

import json
import math
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest

from depth_estimation.artifacts import default_model_path, read_metadata
from depth_estimation.datasets.base import DatasetError
from depth_estimation.datasets.sequences import DEMO_SEQUENCE, open_sequence
from depth_estimation.tools.demo.report import DemoStatistics, ERROR_BINS
from depth_estimation.tools.demo.sources import Source

CLI = Path(sys.executable).parent / 'depth-estimation'


def test_statistics_metrics_histogram_and_throughput() -> None:
    truth = np.linspace(0.5, 7.0, 48 * 64, dtype=np.float32).reshape(48, 64)  # 1.31x < 10 m
    truth[0, :5] = np.nan  # no ground truth there
    statistics = DemoStatistics((0.1, 10.0))
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
    sequence = Source.parse('sequence')
    assert sequence == Source('sequence', DEMO_SEQUENCE) and sequence.has_ground_truth
    assert sequence.truth_topic is None and sequence.published_here
    assert sequence.default_rate() == open_sequence().metadata['frame_rate']
    for text, error in (('webcam', ValueError), ('topic:', ValueError), ('sim:3', ValueError),
                        ('video:/no/such/file.mp4', FileNotFoundError),
                        ('sequence:no_such_sequence', DatasetError)):
        with pytest.raises(error):
            Source.parse(text)
    result = subprocess.run([str(CLI), 'demo', '--source', 'webcam'], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and 'unknown source' in result.stderr


def run_demo(output: Path, *arguments: str) -> dict:
    """`depth-estimation demo` with the default model, checked; its summary.json."""
    from ros_graph import ros_environment

    if not CLI.exists():
        pytest.skip(f'{CLI} is absent: install the package (pip install -e .)')
    if default_model_path(missing_ok=True) is None:
        pytest.skip('the default model is not installed')
    result = subprocess.run([str(CLI), 'demo', '--output', str(output), '--timeout', '60',
                             *arguments], env=ros_environment(), capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert 'accuracy over' in result.stdout
    summary = json.loads((output / 'summary.json').read_text())
    accuracy = summary['summary']['accuracy']
    assert 0.0 <= accuracy['delta1'] <= 1.0
    assert math.isfinite(accuracy['abs_rel']) and accuracy['rmse_m'] > 0
    assert all(math.isfinite(v) and v > 0 for v in summary['summary']['latency_ms'].values())
    report = (output / 'report.md').read_text()
    for name in ('latency.png', 'error_histogram.png', 'panel.png', 'depth_00.png',
                 'points_00.png'):
        assert (output / name).stat().st_size > 1000, name
        assert f']({name})' in report
    return summary


@pytest.mark.ros
def test_demo_plays_the_real_sequence_and_scores_it_against_the_sensor(tmp_path: Path) -> None:
    """The README's first command, shortened to a few frames: the shipped TUM fr2_desk frames
    through the node, each scored against its own sensor depth (checked again from the MCAP
    recording: its images are the sequence's frames in order)."""
    from depth_estimation.datasets.rosbag import RosbagDataset

    output = tmp_path / 'demo'
    summary = run_demo(output, '--frames', '4')
    metadata = read_metadata(default_model_path())
    results = summary['summary']
    assert results['frames_answered'] >= 4
    assert results['frames_evaluated'] == results['frames_answered']  # paced: none dropped
    assert results['evaluated_range_m'] == [metadata.min_depth, metadata.max_depth]
    assert 'sensor depth' in (output / 'report.md').read_text()
    sequence = open_sequence()
    recorded = RosbagDataset(output / 'recording', color_topic='/image',
                             depth_topic='/depth/image')
    statistics = DemoStatistics((metadata.min_depth, metadata.max_depth))
    indices = []
    for position in range(results['frames_evaluated']):
        pair = recorded[position]  # in stamp order
        indices.append(next(i for i in range(len(sequence))
                            if np.array_equal(sequence[i].image, pair.image)))
        index = indices[-1]
        assert (index - indices[0]) % len(sequence) == position  # played in order
        truth = np.where(sequence[index].depth > 0, sequence[index].depth, np.nan)
        statistics.add(position, 0.0, 0.0, truth, pair.depth)
    accuracy = statistics.summary(1.0)['accuracy']
    for key in ('delta1', 'abs_rel', 'rmse_m'):  # the live figures: frames matched exactly
        assert results['accuracy'][key] == pytest.approx(accuracy[key], rel=1e-5)


@pytest.mark.ros
@pytest.mark.slow
def test_demo_runs_sim_camera_node_and_writes_the_report(tmp_path: Path) -> None:
    """`--source sim`: the simulated camera in its own process, exact ground truth by topic."""
    pytest.importorskip('pybullet', reason='the simulated camera needs pybullet')
    output = tmp_path / 'demo'
    summary = run_demo(output, '--source', 'sim', '--frames', '6', '--frames-per-scene', '3',
                       '--rate', '4', '--record-ground-truth')
    assert summary['summary']['frames_evaluated'] >= 6
    assert summary['recording']['counts']['/ground_truth/depth'] >= 1
    from depth_estimation.datasets.rosbag import RosbagDataset  # the recording is a dataset

    recording = output / 'recording'
    frames = RosbagDataset(recording, color_topic='/image', depth_topic='/ground_truth/depth')
    assert len(frames) >= 1 and frames[0].image.shape == (480, 640, 3)
