"""Every script under benchmarks/ runs: each on a tiny model for a few frames, to completion.

The figures they print are not checked (they measure this machine); what is checked is that each
script finishes, exits 0 and writes what it says it writes. The refinement scripts read
../shared/data and skip without it.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, require_shared, SHARED_DATA

BENCHMARKS = REPO_ROOT / 'benchmarks'
SEVENSCENES = SHARED_DATA / 'sevenscenes_redkitchen'


def run_script(name: str, *arguments: str, environment: dict[str, str] | None = None,
               timeout: float = 240) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(BENCHMARKS / name), *arguments], cwd=REPO_ROOT,
                            env=environment, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_every_benchmark_script_has_a_smoke_test() -> None:
    text = Path(__file__).read_text()
    untested = [path.name for path in BENCHMARKS.glob('*.py')
                if path.name != 'refinement_data.py' and f"'{path.name}'" not in text]
    assert not untested, f'benchmark scripts without a smoke test: {untested}'


@pytest.mark.slow
@pytest.mark.export
def test_small_backbones_measures_a_preset() -> None:
    result = run_script('small_backbones.py', '--preset', 'tiny', '--repeats', '2')
    assert '| tiny |' in result.stdout


@pytest.mark.ros
@pytest.mark.slow
def test_soak_runs_the_node_to_the_end(tiny_onnx: Path, tmp_path: Path) -> None:
    from ros_graph import ros_environment

    result = run_script('soak.py', '--frames', '12', '--closed-loop', '--model', str(tiny_onnx),
                        '--timeout', '10', '--output', str(tmp_path),
                        environment=ros_environment())
    figures = json.loads((tmp_path / 'soak.json').read_text())
    # Closed loop: each frame waits for its answer, so nearly all are answered (best-effort
    # transport may lose one now and then).
    assert figures['frames_sent'] == 12 and figures['frames_answered'] >= 6
    assert 'rss_growth_after_warm_up' in figures and (tmp_path / 'soak.png').is_file()
    assert 'node RSS MB' in result.stdout


@pytest.fixture
def refinement_environment(tiny_checkpoint: Path, tmp_path: Path) -> dict[str, str]:
    """The refinement scripts on the tiny test model, every 8th frame, writing to tmp_path."""
    require_shared(SEVENSCENES)
    return {**os.environ, 'REFINEMENT_MODEL': str(tiny_checkpoint), 'REFINEMENT_QUICK': '1',
            'REFINEMENT_OUTPUT': str(tmp_path)}


@pytest.mark.slow
@pytest.mark.parametrize('script, written', [
    ('confidence.py', 'confidence.json'), ('anchoring.py', 'anchoring.json'),
    ('focal.py', 'focal.json'), ('temporal.py', 'temporal.json')])
def test_refinement_script_runs(script: str, written: str, refinement_environment: dict[str, str],
                                tmp_path: Path) -> None:
    run_script(script, environment=refinement_environment)
    assert json.loads((tmp_path / written).read_text())['model']['preset'] == 'tiny'


@pytest.mark.slow
def test_refinement_runs_the_laser_scan_part(refinement_environment: dict[str, str],
                                             tmp_path: Path) -> None:
    result = run_script('refinement.py', '--only', 'laserscan', environment=refinement_environment)
    assert 'laserscan' in result.stdout and any(tmp_path.iterdir())


@pytest.mark.slow
def test_real_accuracy_scores_every_model_on_one_frame_a_source(confidence_onnx: Path,
                                                                tmp_path: Path) -> None:
    require_shared(SHARED_DATA / 'tum_rgbd')
    result = run_script('real_accuracy.py', '--model', str(confidence_onnx),
                        '--sim-model', str(confidence_onnx), '--max-frames', '1',
                        '--threads', '1', '--output', str(tmp_path))
    report = json.loads((tmp_path / 'real_accuracy.json').read_text())
    expected = {'fastdepth_int8', 'fastdepth_float', 'zoedepth_fastdepth', 'zoedepth_small_sim'}
    if importlib.util.find_spec('ai_edge_litert') is None:  # a test dependency: its row skips
        expected.discard('fastdepth_int8')
    assert set(report['skipped']) == {'fastdepth_int8'} - expected
    assert set(report['sources']) >= {'tum_fr2_desk', 'tum_fr1_desk', 'nyu_test'}
    for source in report['sources'].values():
        assert source['frames'] == 1
        assert set(source['models']) == expected
        scores = source['models']['zoedepth_fastdepth']
        assert 0 < scores['abs_rel'] and 0 <= scores['a1'] <= 1
        assert -1 <= scores['confidence_spearman'] <= 1
    assert '| nyu_test | 1 | fastdepth_float |' in result.stdout
    assert all(Path(path).is_file() for path in report['plots'])


@pytest.mark.slow
def test_train_refinement_model_takes_two_steps(tmp_path: Path) -> None:
    require_shared(SEVENSCENES)
    output = tmp_path / 'model.pt'
    run_script('train_refinement_model.py', '--steps', '2', '--batch-size', '2', '--threads', '1',
               '--output', str(output),
               environment={**os.environ, 'REFINEMENT_OUTPUT': str(tmp_path)})
    assert output.is_file() and (tmp_path / 'train_log.json').is_file()
