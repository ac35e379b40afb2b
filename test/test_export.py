"""ONNX export: static shapes, names, metadata, and ONNX Runtime parity with PyTorch."""

from __future__ import annotations

import json

import numpy as np
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
    from depth_estimation.tools.cli import main

    assert main(['export', '--preset', 'tiny', '-o', str(tmp_path / 'x.onnx')]) == 2
    assert '--random-weights' in capsys.readouterr().err
    assert not (tmp_path / 'x.onnx').exists()


def test_export_command_writes_model_and_metadata(tmp_path, capsys) -> None:
    from depth_estimation.tools.cli import main

    output = tmp_path / 'cli' / 'tiny.onnx'
    assert main(['export', '--preset', 'tiny', '--random-weights', '--seed', '3',
                 '--input-size', '64x96', '-o', str(output)]) == 0
    metadata = read_metadata(output)
    assert metadata.input_size == (64, 96)
    assert metadata.source == {'preset': 'tiny', 'weights': 'random (seed 3), untrained'}
    assert 'max relative error' in capsys.readouterr().out
    assert metadata.extra['parity']['checks'][0]['max_rel_error'] <= DEFAULT_TOLERANCE


# --- hardening: simplification, TensorRT operator check, FP16 variant -------------------------

@pytest.fixture(scope='module')
def simplified_onnx(tiny_onnx, tmp_path_factory):
    """The tiny export, simplified in place (as `export` does by default), with its metadata."""
    import shutil

    from depth_estimation.export.optimize import simplify_onnx

    path = tmp_path_factory.mktemp('simplified') / 'tiny.onnx'
    shutil.copy(tiny_onnx, path)
    shutil.copy(metadata_path(tiny_onnx), metadata_path(path))
    report = simplify_onnx(path, path)
    return path, report


@pytest.fixture(scope='module')
def fp16_variant(simplified_onnx, tiny_model):
    from depth_estimation.export.onnx_export import export_fp16_variant

    path, _ = simplified_onnx
    images = [(s.name, s.rgb) for s in load_samples()]
    return export_fp16_variant(tiny_model, path, check_images=images, random_checks=2,
                               progress=lambda message: None)


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type
             for v in [*graph.input, *graph.value_info, *graph.output]}
    types.update({i.name: i.data_type for i in graph.initializer})
    return types


def test_simplified_graph_is_smaller_and_still_matches_pytorch(simplified_onnx, tiny_onnx,
                                                               tiny_model) -> None:
    path, report = simplified_onnx
    original, simplified = onnx.load(str(tiny_onnx)), onnx.load(str(path))
    assert report.nodes_before == len(original.graph.node)
    assert report.nodes_after == len(simplified.graph.node) < len(original.graph.node) / 2
    # static shapes: the shape arithmetic of the trace is folded away
    assert not {'Shape', 'ConstantOfShape'} & {n.op_type for n in simplified.graph.node}
    assert [i.name for i in simplified.graph.input] == ['image']
    assert [o.name for o in simplified.graph.output] == ['depth']
    checks = compare_with_onnxruntime(tiny_model, path, _check_inputs(tiny_model.config, [], 2))
    assert max(c.max_rel_error for c in checks) <= DEFAULT_TOLERANCE


def test_every_exported_operator_is_in_the_tensorrt_table(tiny_onnx, simplified_onnx,
                                                          fp16_variant) -> None:
    from depth_estimation.export.tensorrt_ops import check_tensorrt_support, load_operator_table

    table = load_operator_table()
    assert table.tensorrt_version.startswith('10.')
    for path in (tiny_onnx, simplified_onnx[0], fp16_variant.onnx_path):
        report = check_tensorrt_support(path)
        assert report.ok, report.problems
        assert set(report.op_counts) <= set(table.supported)
        assert {'Conv', 'LayerNormalization', 'Resize'} <= set(report.op_counts)


def test_tensorrt_check_names_each_unsupported_node(tmp_path) -> None:
    from onnx import TensorProto, helper

    from depth_estimation.export.tensorrt_ops import (TensorRTSupportError,
                                                      check_tensorrt_support,
                                                      require_tensorrt_support)

    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 3, 4, 4])
    y = helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 3, 8, 8])
    scales = helper.make_tensor('scales', TensorProto.FLOAT, [4], [1, 1, 2, 2])
    nodes = [
        helper.make_node('Resize', ['x', '', 'scales'], ['r'], name='upsample', mode='cubic',
                         antialias=1),
        helper.make_node('Unique', ['r'], ['u'], name='unique'),
        helper.make_node('MyPlugin', ['r'], ['y'], name='plugin', domain='com.example'),
    ]
    graph = helper.make_graph(nodes, 'bad', [x], [y], [scales])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 19),
                                                    helper.make_opsetid('com.example', 1)])
    report = check_tensorrt_support(model)
    problems = '\n'.join(report.problems)
    assert not report.ok and len(report.problems) == 4, problems
    assert "upsample (Resize): Resize mode 'cubic'" in problems
    assert 'upsample (Resize): Resize antialias' in problems
    assert 'unique (Unique): not supported' in problems
    assert "plugin (MyPlugin): custom domain 'com.example'" in problems
    model.opset_import[0].version = 25
    assert any('opset 25' in p for p in check_tensorrt_support(model).problems)
    with pytest.raises(TensorRTSupportError, match='5 problems'):
        require_tensorrt_support(model)


def test_fp16_variant_keeps_the_metric_head_and_risky_ops_in_fp32(fp16_variant) -> None:
    from onnx import TensorProto

    from depth_estimation.export.fp16 import DEFAULT_FP16_SCOPES, FP32_OP_TYPES

    model = onnx.load(str(fp16_variant.onnx_path))
    types = _elem_types(model)
    fp16_compute = [n for n in model.graph.node if n.op_type in ('Conv', 'MatMul', 'Gemm')
                    and types.get(n.output[0]) == TensorProto.FLOAT16]
    assert fp16_compute and all(n.name.startswith(DEFAULT_FP16_SCOPES) for n in fp16_compute)
    for node in model.graph.node:
        outside = not node.name.startswith(DEFAULT_FP16_SCOPES)
        if node.op_type == 'Cast' or not (outside or node.op_type in FP32_OP_TYPES):
            continue
        for name in [*node.input, *node.output]:
            assert types.get(name) != TensorProto.FLOAT16, f'{node.name} touches FP16 {name}'
    # the float32 interface is unchanged
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT


def test_fp16_variant_matches_pytorch_within_its_tolerance(fp16_variant, tiny_model) -> None:
    from depth_estimation.export.onnx_export import FP16_TOLERANCE

    metadata = read_metadata(fp16_variant.onnx_path)
    assert fp16_variant.onnx_path.name == 'tiny_fp16.onnx'
    assert metadata.extra['precision'] == 'fp16-fp32head'
    assert metadata.extra['fp32_source']['file'] == 'tiny.onnx'
    assert len(fp16_variant.checks) == 2 + len(load_samples())
    assert 0 < fp16_variant.max_rel_error <= FP16_TOLERANCE  # rounding shows, within limits
    # the recorded parity is what a fresh run measures
    again = compare_with_onnxruntime(tiny_model, fp16_variant.onnx_path,
                                     _check_inputs(tiny_model.config, [], 2))
    assert [c.max_rel_error for c in again] == pytest.approx(
        [c['max_rel_error'] for c in metadata.extra['parity']['checks'][:2]])


def test_failed_fp16_parity_removes_the_variant(simplified_onnx, tiny_model, tmp_path) -> None:
    from depth_estimation.export.onnx_export import export_fp16_variant

    output = tmp_path / 'strict_fp16.onnx'
    with pytest.raises(ExportParityError, match='was removed'):
        export_fp16_variant(tiny_model, simplified_onnx[0], output, random_checks=1,
                            tolerance=1e-9, progress=lambda message: None)
    assert not output.exists() and not metadata_path(output).exists()


def test_export_command_writes_the_fp16_variant(tmp_path, capsys) -> None:
    from depth_estimation.tools.cli import main

    output = tmp_path / 'cli16' / 'tiny.onnx'
    assert main(['export', '--preset', 'tiny', '--random-weights', '--input-size', '64x96',
                 '--no-simplify', '--fp16', '--tensorrt-check', 'error', '-o', str(output)]) == 0
    printed = capsys.readouterr().out
    assert 'TensorRT 10.' in printed and 'supported' in printed
    half = read_metadata(output.with_name('tiny_fp16.onnx'))
    assert half.input_size == (64, 96) and half.extra['precision'] == 'fp16-fp32head'
    assert half.extra['tensorrt_support']['ok']
    assert 'simplified' not in read_metadata(output).extra


# --- confidence output (issue 8) ----------------------------------------------------------------

@pytest.fixture(scope='module')
def confidence_export(tiny_model, tmp_path_factory):
    from depth_estimation.model.confidence import DepthWithConfidence

    output = tmp_path_factory.mktemp('confidence') / 'tiny_confidence.onnx'
    images = [(s.name, s.rgb) for s in load_samples()]
    result = export_onnx(DepthWithConfidence(tiny_model), output, check_images=images,
                         random_checks=1, progress=lambda message: None)
    return result


def test_confidence_is_a_second_named_output_checked_against_pytorch(confidence_export, tiny_onnx,
                                                                     tiny_model) -> None:
    import onnxruntime

    path = confidence_export.onnx_path
    graph = onnx.load(str(path)).graph
    assert [o.name for o in graph.output] == ['depth', 'confidence']
    for graph_output in graph.output:
        assert graph_output.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        assert [d.dim_value for d in graph_output.type.tensor_type.shape.dim] == [1, 1, 96, 128]
    # every input is checked for both outputs, and the confidence within the tolerance
    by_output = {}
    for check in confidence_export.checks:
        by_output.setdefault(check.output, []).append(check)
    assert len(by_output['depth']) == len(by_output['confidence']) == 1 + len(load_samples())
    assert all(c.max_rel_error <= DEFAULT_TOLERANCE for c in confidence_export.checks)
    metadata = read_metadata(path)
    assert metadata.output_name == 'depth'
    outputs = metadata.extra['outputs']
    assert set(outputs) == {'depth', 'confidence'}
    assert outputs['confidence']['method'] == 'spread' and outputs['confidence']['range'] == [0, 1]
    assert {c['output'] for c in metadata.extra['parity']['checks']} == {'depth', 'confidence'}
    # the second output leaves the depth as it was: same values as the depth-only export
    tensor = _check_inputs(tiny_model.config, [], 1)[0][1]
    with_confidence = onnxruntime.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    depth_only = onnxruntime.InferenceSession(str(tiny_onnx), providers=['CPUExecutionProvider'])
    depth, confidence = with_confidence.run(None, {'image': tensor})
    assert 0 <= confidence.min() and confidence.max() <= 1
    expected_depth = depth_only.run(None, {'image': tensor})[0]
    np.testing.assert_allclose(depth, expected_depth, rtol=1e-5)


def test_a_wrong_confidence_output_fails_the_parity_check(confidence_export, tiny_model) -> None:
    """The check really compares the confidence: a model whose confidence differs is caught."""
    import torch

    from depth_estimation.model.confidence import DepthWithConfidence

    class OtherConfidence(DepthWithConfidence):
        def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            depth, confidence = super().forward(image)
            return depth, confidence * 0.99

    checks = compare_with_onnxruntime(OtherConfidence(tiny_model), confidence_export.onnx_path,
                                      _check_inputs(tiny_model.config, [], 1))
    errors = {c.output: c.max_rel_error for c in checks}
    assert errors['depth'] <= DEFAULT_TOLERANCE < errors['confidence']


def test_export_command_confidence_flip_fp16_and_training_camera(tmp_path, capsys) -> None:
    """`export --confidence --flip-average --fp16`: both outputs averaged over the two views in
    the graph, as the PyTorch backend averages them, and the FP16 variant keeps both outputs."""
    import cv2

    from depth_estimation.tools.cli import main
    from depth_estimation.inference import open_backend
    from depth_estimation.inference.torch_backend import TorchBackend
    from depth_estimation.model import get_preset
    from depth_estimation.model.init import randomize_weights
    from depth_estimation.model.zoedepth import build_model

    output = tmp_path / 'cli_confidence' / 'tiny.onnx'
    assert main(['export', '--preset', 'tiny', '--random-weights', '--input-size', '64x96',
                 '--confidence', '--confidence-method', 'log_spread', '--flip-average',
                 '--no-simplify', '--fp16', '--tensorrt-check', 'off',
                 '--training-camera', '500,510,320,240', '-o', str(output)]) == 0
    assert 'outputs depth, confidence' in capsys.readouterr().out
    metadata = read_metadata(output)
    assert metadata.extra['outputs']['confidence']['method'] == 'log_spread'
    assert metadata.extra['protocol'] == {'flip_average': True}
    assert metadata.extra['training_camera'] == {'name': 'custom', 'fx': 500.0, 'fy': 510.0,
                                                 'width': 320, 'height': 240}
    half = output.with_name('tiny_fp16.onnx')
    assert [o.name for o in onnx.load(str(half)).graph.output] == ['depth', 'confidence']
    assert {c['output'] for c in read_metadata(half).extra['parity']['checks']} == {
        'depth', 'confidence'}

    model = randomize_weights(build_model(get_preset('tiny')), 0)  # the command's default seed
    model.config = model.config.replace(input_height=64, input_width=96)
    rgb = cv2.resize(load_samples()[0].rgb, (200, 120), interpolation=cv2.INTER_AREA)
    with open_backend(output) as exported, TorchBackend(
            model, flip=True, confidence_method='log_spread') as reference:
        actual, expected = exported.infer_outputs(rgb), reference.infer_outputs(rgb)
    np.testing.assert_allclose(actual.depth, expected.depth, rtol=DEFAULT_TOLERANCE)
    np.testing.assert_allclose(actual.confidence, expected.confidence, atol=DEFAULT_TOLERANCE)


@pytest.mark.parametrize('arguments, message', [
    (['--confidence-method', 'spread'], 'needs --confidence'),
    (['--confidence', '--confidence-method', 'guess'], 'unknown confidence method'),
    (['--training-camera', 'pinhole'], 'unknown training camera'),
    (['--training-camera', '500,500,640'], 'FX,FY,WIDTH,HEIGHT'),
])
def test_export_command_refuses_bad_confidence_options(tmp_path, capsys, arguments,
                                                       message) -> None:
    from depth_estimation.tools.cli import main

    output = tmp_path / 'refused.onnx'
    assert main(['export', '--preset', 'tiny', '--random-weights', '-o', str(output),
                 *arguments]) == 2
    assert message in capsys.readouterr().err
    assert not output.exists()
