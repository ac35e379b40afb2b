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
    from depth_estimation.cli import main

    output = tmp_path / 'cli16' / 'tiny.onnx'
    assert main(['export', '--preset', 'tiny', '--random-weights', '--input-size', '64x96',
                 '--no-simplify', '--fp16', '--tensorrt-check', 'error', '-o', str(output)]) == 0
    printed = capsys.readouterr().out
    assert 'TensorRT 10.' in printed and 'supported' in printed
    half = read_metadata(output.with_name('tiny_fp16.onnx'))
    assert half.input_size == (64, 96) and half.extra['precision'] == 'fp16-fp32head'
    assert half.extra['tensorrt_support']['ok']
    assert 'simplified' not in read_metadata(output).extra
