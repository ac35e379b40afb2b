"""ONNX export: static shapes, names, metadata, and ONNX Runtime parity with PyTorch."""

from __future__ import annotations

import json

import onnx
import pytest

from conftest import SHARED_DATA, require_shared
from depth_estimation.artifacts import metadata_path, read_metadata
from depth_estimation.export.onnx_export import (DEFAULT_TOLERANCE, ExportParityError,
                                                 _check_inputs, compare_with_onnxruntime,
                                                 export_onnx)
from depth_estimation.samples import load_samples, read_rgb

pytestmark = pytest.mark.export


def test_graph_has_static_named_io_and_opset(tiny_onnx) -> None:
    graph = onnx.load(str(tiny_onnx))
    opset = max(o.version for o in graph.opset_import if o.domain in ('', 'ai.onnx'))
    assert opset >= 17
    (graph_input,) = graph.graph.input
    (graph_output,) = graph.graph.output
    dims = [d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert graph_input.name == 'image' and dims == [1, 3, 96, 128]
    assert graph_output.name == 'depth'


def test_metadata_describes_the_artifact(tiny_onnx, tiny_model) -> None:
    metadata = read_metadata(tiny_onnx)
    config = tiny_model.config
    assert metadata.input_size == config.input_size
    assert (metadata.mean, metadata.std) == (config.mean, config.std)
    assert (metadata.min_depth, metadata.max_depth) == (config.min_depth, config.max_depth)
    assert metadata.config_hash == config.config_hash()
    assert set(metadata.versions) >= {'torch', 'transformers', 'onnx', 'onnxruntime', 'numpy'}
    assert metadata.extra['opset'] == 17
    stored = json.loads(metadata_path(tiny_onnx).read_text())
    assert stored['model_config'] == config.to_dict()


def test_onnxruntime_matches_pytorch_on_random_and_sample_images(tiny_onnx, tiny_model) -> None:
    images = [(s.name, s.rgb) for s in load_samples()]
    assert images, 'the package must ship sample frames'
    checks = compare_with_onnxruntime(tiny_model, tiny_onnx,
                                      _check_inputs(tiny_model.config, images, random_count=3))
    assert len(checks) == 3 + len(images)
    for check in checks:
        assert check.max_rel_error <= DEFAULT_TOLERANCE, check


def test_onnxruntime_matches_pytorch_on_real_rgbd_frames(tiny_onnx, tiny_model) -> None:
    frames = sorted(require_shared(SHARED_DATA / 'sevenscenes_redkitchen' / 'frames')
                    .glob('*.color.jpg'))[:3]
    frames += [require_shared(SHARED_DATA / 'metric3d_demo' / 'kitti_demo' / 'rgb' / name)
               for name in ('0000000005.png',)]
    images = [(path.name, read_rgb(path)) for path in frames]
    for check in compare_with_onnxruntime(tiny_model, tiny_onnx,
                                          _check_inputs(tiny_model.config, images, 0)):
        assert check.max_rel_error <= DEFAULT_TOLERANCE, check


def test_failed_parity_removes_the_artifact(tiny_model, tmp_path) -> None:
    output = tmp_path / 'strict.onnx'
    with pytest.raises(ExportParityError, match='was removed'):
        export_onnx(tiny_model, output, random_checks=1, tolerance=0.0,
                    progress=lambda message: None)
    assert not output.exists() and not metadata_path(output).exists()


def test_export_command_refuses_an_untrained_preset_without_the_flag(tmp_path, capsys) -> None:
    from depth_estimation.cli import main

    assert main(['export', '--preset', 'tiny', '-o', str(tmp_path / 'x.onnx')]) == 2
    assert '--random-weights' in capsys.readouterr().err
    assert not (tmp_path / 'x.onnx').exists()


def test_export_command_writes_model_and_metadata(tmp_path, capsys) -> None:
    from depth_estimation.cli import main

    output = tmp_path / 'cli' / 'tiny.onnx'
    assert main(['export', '--preset', 'tiny', '--random-weights', '--seed', '3',
                 '--input-size', '64x96', '-o', str(output)]) == 0
    metadata = read_metadata(output)
    assert metadata.input_size == (64, 96)
    assert metadata.source == {'preset': 'tiny', 'weights': 'random (seed 3), untrained'}
    assert 'max relative error' in capsys.readouterr().out
    assert metadata.extra['parity']['checks'][0]['max_rel_error'] <= DEFAULT_TOLERANCE
