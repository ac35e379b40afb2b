"""`depth-estimation benchmark`: it runs, measures what it says, and writes JSON + markdown.

Speed itself is never asserted (the benchmark prints figures; CI machines are noisy): these
tests check the bookkeeping on the tiny model with a few frames.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from depth_estimation.tools.benchmark import (BackendSpec, measure_backend, onnx_flops,
                                              stage_stats, to_markdown, torch_model_flops)


def test_backend_specs_parse_and_reject_unknown_options() -> None:
    spec = BackendSpec.parse('onnxruntime:threads=1,opt=basic,nobinding')
    assert (spec.backend, spec.options) == ('onnxruntime',
                                            {'threads': '1', 'opt': 'basic', 'nobinding': ''})
    assert BackendSpec.parse('torch:bf16').options == {'bf16': ''}
    with pytest.raises(ValueError, match='unknown backend'):
        BackendSpec.parse('tflite')
    litert = BackendSpec.parse('litert:model=a.tflite,threads=2')
    assert litert.options == {'model': 'a.tflite', 'threads': '2'}
    with pytest.raises(ValueError, match='unknown options'):
        BackendSpec.parse('litert:fp16')
    with pytest.raises(ValueError, match='unknown options'):
        BackendSpec.parse('torch:opt=basic')


def test_percentiles_are_those_of_the_samples() -> None:
    stats = stage_stats([i / 1000 for i in range(1, 101)])  # 1 .. 100 ms
    assert stats.p50_ms == pytest.approx(50.5)
    assert stats.p90_ms == pytest.approx(90.1)
    assert stats.p99_ms == pytest.approx(99.01)
    assert stats.mean_ms == pytest.approx(50.5)


def test_onnx_flop_count_agrees_with_torch_flop_counter(tiny_onnx, tiny_model) -> None:
    counted = onnx_flops(tiny_onnx)
    from_torch = torch_model_flops(tiny_model)
    assert counted['gflops'] == pytest.approx(from_torch, rel=0.05)
    assert set(counted['flops_by_op']) >= {'Conv', 'MatMul'}
    m, k, n = counted['largest_gemm']
    assert m * k * n > 0


def test_benchmark_command_writes_json_and_markdown(tiny_onnx, tmp_path, capsys) -> None:
    from depth_estimation.tools.cli import main

    output = tmp_path / 'report' / 'tiny'
    assert main(['benchmark', '--model', str(tiny_onnx), '--frames', '3', '--warmup', '1',
                 '--threads', '1', '--input-size', '120x160', '--profile-ops',
                 '--backends', 'onnxruntime', 'onnxruntime:opt=basic,nobinding',
                 '--output', str(output)]) == 0
    report = json.loads(output.with_name('tiny.json').read_text())
    markdown = output.with_name('tiny.md').read_text()
    assert markdown in capsys.readouterr().out
    assert report['model'] == 'tiny' and report['frame_size'] == [120, 160]
    assert report['machine']['cores'] >= 1 and report['machine']['cpu']
    assert report['gemm_ceiling']['gflops_per_s'] > 0
    for result in report['results']:
        assert result['frames'] == 3
        total, inference = result['total'], result['inference']
        assert 0 < inference['p50_ms'] <= total['p50_ms'] <= total['p90_ms'] <= total['p99_ms']
        assert result['peak_rss_mib'] > 0 and result['gflops_per_s'] > 0
        assert result['description']['threads'] == 1
    first, second = report['results']
    assert first['description']['io_binding'] and not second['description']['io_binding']
    assert second['description']['graph_optimization'] == 'basic'
    assert {p['op'] for p in first['op_profile']} & {'Conv', 'FusedConv'}
    assert '| onnxruntime | ' in markdown and 'GEMM ceiling' in markdown
    assert 'pre_post_fraction[onnxruntime]' in markdown


def test_torch_row_and_the_speed_targets(tiny_model, tiny_onnx) -> None:
    from depth_estimation.tools.benchmark import _targets, describe_machine, gemm_ceiling

    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8)
    results = []
    for text in ('onnxruntime', 'torch'):
        result = measure_backend(BackendSpec.parse(text), rgb, frames=2, warmup=1, threads=1,
                                 torch_model=tiny_model, onnx_path=tiny_onnx)
        result.gflops_per_s, result.ceiling_fraction = 1.0, 0.1
        results.append(vars(result) | {k: vars(getattr(result, k)) for k in
                                       ('total', 'preprocess', 'inference', 'postprocess')})
    targets = _targets(results)
    speedup = targets['onnxruntime_speedup_over_torch']
    assert speedup['value'] == pytest.approx(results[1]['inference']['p50_ms']
                                             / results[0]['inference']['p50_ms'])
    assert speedup['met'] is (speedup['value'] >= 2.0)
    report = {'model': 'tiny', 'frame_size': [48, 64], 'frames': 2, 'warmup': 1, 'threads': 1,
              'flops': onnx_flops(tiny_onnx), 'torch_flops': None,
              'gemm_ceiling': gemm_ceiling([64, 64, 64], 1), 'machine': describe_machine(),
              'results': results, 'targets': targets}
    markdown = to_markdown(report)
    assert '| torch | ' in markdown and 'onnxruntime_speedup_over_torch' in markdown


def test_torch_backends_need_the_pytorch_model(tiny_onnx, tmp_path) -> None:
    from depth_estimation.tools.cli import main

    assert main(['benchmark', '--model', str(tiny_onnx), '--backends', 'torch',
                 '--output', str(tmp_path / 'x')]) == 2


def test_one_run_times_other_models_and_the_litert_file(tiny_onnx, confidence_onnx,
                                                        tmp_path) -> None:
    """One invocation: the model, another ONNX with its confidence as the node asks for it, a
    confidence request the model cannot answer (a row that says why), and FastDepth's TFLite file
    in LiteRT (its row says why when ai-edge-litert or ../shared is absent)."""
    from conftest import SHARED_DIR
    from depth_estimation.tools.cli import main

    tflite = SHARED_DIR / 'weights' / 'fastdepth' / 'fast_depth_224.tflite'
    output = tmp_path / 'compare'
    assert main(['benchmark', '--model', str(tiny_onnx), '--frames', '2', '--warmup', '1',
                 '--threads', '1', '--input-size', '120x160', '--output', str(output),
                 '--backends', 'onnxruntime', f'onnxruntime:model={confidence_onnx},confidence',
                 'onnxruntime:confidence', f'litert:model={tflite}']) == 0
    report = json.loads(output.with_name('compare.json').read_text())
    markdown = output.with_name('compare.md').read_text()
    plain, other, refused, litert = report['results']
    assert plain['description']['outputs'] == 'depth'
    assert other['description']['outputs'] == 'depth,confidence'
    assert other['description']['artifact'] == confidence_onnx.name
    assert 'no confidence output' in refused['error']
    if importlib.util.find_spec('ai_edge_litert') is not None and tflite.is_file():
        assert litert['description']['input_size'] == '224x224'
        assert 0 < litert['inference']['p50_ms'] <= litert['total']['p50_ms']
        assert litert['gflops_per_s'] is None
    else:
        assert 'ai_edge_litert' in litert['error'] or 'not found' in litert['error']
    assert f'| litert:model={tflite.name} |' in markdown
    assert 'frames_per_s_at_least[onnxruntime]' in report['targets']
    assert report['targets']['frames_per_s_at_least[onnxruntime]']['target'] == 25.0
