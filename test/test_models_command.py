"""One place decides the default model: `depth-estimation models` lists the shipped ones, `models
--default` prints the default's path, and predict, evaluate, the node's settings and the demo all
resolve the same file."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

import pytest

from depth_estimation import artifacts
from depth_estimation.artifacts import default_model_path, read_metadata, shipped_models
from depth_estimation.pipeline.settings import PipelineSettings
from depth_estimation.tools.cli import build_parser
from depth_estimation.tools.demo.model import prepare_model

CLI = Path(sys.executable).parent / 'depth-estimation'


def run_cli(*arguments: str) -> subprocess.CompletedProcess:
    if not CLI.exists():
        pytest.skip(f'{CLI} is absent: install the package (pip install -e .)')
    return subprocess.run([str(CLI), *arguments], capture_output=True, text=True, timeout=120)


def test_models_default_prints_a_path_onnx_runtime_opens() -> None:
    import onnxruntime

    result = run_cli('models', '--default')
    assert result.returncode == 0, result.stderr
    printed = Path(result.stdout.strip())
    assert result.stdout.count('\n') == 1 and printed == default_model_path()
    session = onnxruntime.InferenceSession(str(printed), providers=['CPUExecutionProvider'])
    metadata = read_metadata(printed)
    image = session.get_inputs()[0]
    assert image.name == metadata.input_name
    assert image.shape[-2:] == [metadata.input_height, metadata.input_width]


def test_models_lists_every_shipped_model_and_marks_the_default() -> None:
    result = run_cli('models')
    assert result.returncode == 0, result.stderr
    models = shipped_models()
    assert default_model_path() in models
    for path in models:
        metadata = read_metadata(path)
        assert str(path) in result.stdout and metadata.model_name in result.stdout
        licence = metadata.source.get('licence')
        assert licence is None or licence in result.stdout
    default_line = next(line for line in result.stdout.splitlines() if '(default)' in line)
    assert default_line.split()[0] == default_model_path().stem


def test_predict_evaluate_node_and_demo_resolve_the_same_default(tmp_path: Path) -> None:
    default = default_model_path()
    parser = build_parser()
    assert parser.parse_args(['predict', 'image.png']).model == default
    assert parser.parse_args(['evaluate', '--dataset', 'folder']).model == default
    assert PipelineSettings.from_values({}).model_path == str(default)
    assert PipelineSettings.from_values({'model_path': 'other.onnx'}).model_path == 'other.onnx'
    assert prepare_model(None, tmp_path).path == default


def test_a_default_that_is_not_installed_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setattr(artifacts, 'DEFAULT_MODEL', 'absent/model.onnx')
    with pytest.raises(FileNotFoundError, match='absent/model.onnx.*shipped models: '):
        default_model_path()
    assert default_model_path(missing_ok=True) is None
    assert PipelineSettings.from_values({}).model_path == ''  # the node: 'model_path is required'
    with pytest.raises(SystemExit):  # --model becomes required
        build_parser().parse_args(['predict', 'image.png'])
