"""TensorRT build and runtime: the logic everywhere, the real engine where TensorRT and a GPU are.

What needs no GPU is tested here on every machine: which typing mode a request resolves to,
which layers stay FP32, the engine metadata checks and their rebuild hints, the refusals before
TensorRT is touched (missing or foreign metadata, no TensorRT, no CUDA driver, unsupported
operators, INT8 without images). The build-and-run tests need TensorRT 10 and a GPU and skip with
the reason otherwise; the backend-agnostic suite (test_backends.py) runs the engines too.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from depth_estimation.artifacts import ArtifactMetadata, metadata_path, read_metadata
from depth_estimation.export.tensorrt_build import (build_engine, find_images, keep_layer_fp32,
                                                    resolve_typing)
from depth_estimation.inference.tensorrt_common import (EngineMismatchError,
                                                        TensorRTUnavailableError, engine_problems,
                                                        import_tensorrt, rebuild_command)


def _tensorrt_missing() -> str:
    try:
        import_tensorrt()
    except TensorRTUnavailableError as error:
        return str(error)
    return ''


def _gpu_missing() -> str:
    from depth_estimation.inference.tensorrt_common import CudaError, gpu_identity

    try:
        gpu_identity(0)
    except (CudaError, TensorRTUnavailableError) as error:
        return str(error)
    return ''


needs_tensorrt = pytest.mark.skipif(bool(_tensorrt_missing() or _gpu_missing()),
                                    reason=f'needs TensorRT 10 and a CUDA GPU: '
                                           f'{_tensorrt_missing() or _gpu_missing()}')


def engine_metadata(tiny_onnx: Path, **tensorrt: object) -> ArtifactMetadata:
    data = read_metadata(tiny_onnx).to_dict()
    block = {'version': '10.13.3.9', 'gpu': {'name': 'NVIDIA Orin', 'compute_capability': '8.7'},
             'input_shape': [1, 3, 96, 128], 'precision': 'fp16',
             'onnx': {'file': 'tiny_fp16.onnx'}}
    block.update(tensorrt)
    data['extra'] = {'format': 'tensorrt', 'tensorrt': block}
    return ArtifactMetadata.from_dict(data)


@pytest.mark.parametrize('precision, typing, onnx_precision, strong', [
    ('fp32', 'auto', 'fp32', True),
    ('fp32', 'weak', 'fp32', False),
    ('fp16', 'auto', 'fp32', False),
    ('fp16', 'weak', 'fp32', False),
    ('fp16', 'auto', 'fp16-fp32head', True),
    ('fp16', 'strong', 'fp16-fp32head', True),
    ('int8', 'auto', 'fp32', False),
    ('int8', 'weak', 'fp32', False),
])
def test_typing_mode_follows_the_onnx_precision(precision, typing, onnx_precision,
                                                strong) -> None:
    resolved, why = resolve_typing(precision, typing, onnx_precision)
    assert resolved is strong and why


@pytest.mark.parametrize('precision, typing, onnx_precision, message', [
    ('fp16', 'strong', 'fp32', 'export with --fp16'),
    ('int8', 'strong', 'fp32', 'Q/DQ'),
    ('fp16', 'weak', 'fp16-fp32head', 'already FP16'),
    ('int8', 'auto', 'fp16-fp32head', 'from the FP32 export'),
    ('fp8', 'auto', 'fp32', 'precision'),
    ('fp16', 'loose', 'fp32', 'typing'),
])
def test_impossible_typing_requests_say_what_to_do(precision, typing, onnx_precision,
                                                   message) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_typing(precision, typing, onnx_precision)


@pytest.mark.parametrize('layer, fp32', [
    ('/backbone/beit/layers.0/attention/q_proj/MatMul', False),
    ('/neck/fusion_stage/layers.0/projection/Conv', False),
    ('/backbone/beit/layers.0/layernorm_before/LayerNormalization', True),
    ('/backbone/beit/layers.1/attention/Softmax_2', True),
    ('/neck/reassemble_stage/Pow_1', True),
    ('/conditional_log_binomial/mlp/mlp.0/Conv', True),
    ('/attractors.0/conv1/Conv', True),
    ('/relative_head/conv1/Conv', True),
    ('/Resize_3', True),
])
def test_metric_head_and_risky_layers_stay_fp32(layer, fp32) -> None:
    assert keep_layer_fp32(layer) is fp32


def test_matching_engine_metadata_has_no_problems(tiny_onnx) -> None:
    metadata = engine_metadata(tiny_onnx)
    gpu = {'name': 'NVIDIA Orin', 'compute_capability': '8.7'}
    assert engine_problems(metadata, '10.13.3.9', gpu, (96, 128)) == []


def test_mismatched_engines_are_named_with_both_sides(tiny_onnx) -> None:
    metadata = engine_metadata(tiny_onnx, input_shape=[1, 3, 192, 256])
    problems = engine_problems(metadata, '10.16.0.72',
                               {'name': 'NVIDIA GeForce RTX 4070', 'compute_capability': '8.9'},
                               (384, 512))
    text = '\n'.join(problems)
    assert len(problems) == 4, text
    assert 'TensorRT 10.13.3.9' in text and 'TensorRT 10.16.0.72' in text
    assert 'NVIDIA Orin (compute capability 8.7)' in text and 'RTX 4070 (8.9)' in text
    assert '[1, 3, 192, 256]' in text and 'expected 384x512' in text
    hint = rebuild_command(metadata, 'models/tiny.engine')
    assert hint == ('depth-estimation build-engine tiny_fp16.onnx -o models/tiny.engine '
                    '--precision fp16')


def test_onnx_metadata_is_not_engine_metadata(tiny_onnx) -> None:
    with pytest.raises(ValueError, match='build-engine'):
        engine_problems(read_metadata(tiny_onnx), '10.13', {})


def test_stub_only_tensorrt_is_reported_as_unavailable() -> None:
    if not _tensorrt_missing():
        pytest.skip('real TensorRT is installed here')
    with pytest.raises(TensorRTUnavailableError, match='TensorRT'):
        import_tensorrt()


def test_no_cuda_driver_gives_a_clear_error() -> None:
    from depth_estimation.inference.tensorrt_common import CudaError, gpu_identity

    if not _gpu_missing():
        pytest.skip('this machine has a CUDA GPU')
    with pytest.raises((CudaError, TensorRTUnavailableError),
                       match='no usable NVIDIA GPU|cuda-python'):
        gpu_identity(0)


def test_backend_refuses_engines_without_engine_metadata(tiny_onnx, tmp_path) -> None:
    from depth_estimation.inference import open_backend

    engine = tmp_path / 'model.engine'
    engine.write_bytes(b'not an engine')
    with pytest.raises(FileNotFoundError, match='build-engine'):
        open_backend(engine)
    shutil.copy(metadata_path(tiny_onnx), metadata_path(engine))  # an ONNX's metadata
    with pytest.raises(ValueError, match='belongs to no TensorRT engine'):
        open_backend(engine)


def test_backend_without_tensorrt_says_so(tiny_onnx, tmp_path) -> None:
    from depth_estimation.inference import open_backend

    if not _tensorrt_missing():
        pytest.skip('real TensorRT is installed here')
    engine = tmp_path / 'model.engine'
    engine.write_bytes(b'not an engine')
    metadata_path(engine).write_text(json.dumps(engine_metadata(tiny_onnx).to_dict()))
    with pytest.raises(TensorRTUnavailableError, match='TensorRT'):
        open_backend(engine)


def test_build_checks_everything_it_can_before_tensorrt(tiny_onnx, tmp_path) -> None:
    from depth_estimation.export.tensorrt_ops import TensorRTSupportError

    with pytest.raises(FileNotFoundError):
        build_engine(tmp_path / 'missing.onnx', tmp_path / 'x.engine')
    with pytest.raises(ValueError, match='calibration-images'):
        build_engine(tiny_onnx, tmp_path / 'x.engine', precision='int8')
    with pytest.raises(ValueError, match='export with --fp16'):
        build_engine(tiny_onnx, tmp_path / 'x.engine', precision='fp16', typing='strong')
    # an operator TensorRT's parser lacks is reported before TensorRT is needed
    import onnx

    bad = tmp_path / 'bad.onnx'
    model = onnx.load(str(tiny_onnx))
    model.graph.node[-1].op_type = 'Unique'
    onnx.save(model, str(bad))
    shutil.copy(metadata_path(tiny_onnx), metadata_path(bad))
    with pytest.raises(TensorRTSupportError, match='Unique'):
        build_engine(bad, tmp_path / 'x.engine')
    if _tensorrt_missing():
        with pytest.raises(TensorRTUnavailableError):
            build_engine(tiny_onnx, tmp_path / 'x.engine', precision='fp32')
    assert not (tmp_path / 'x.engine').exists()


def test_build_engine_command_without_tensorrt_fails_cleanly(tiny_onnx, tmp_path,
                                                             capsys) -> None:
    from depth_estimation.tools.cli import main

    if not _tensorrt_missing():
        pytest.skip('real TensorRT is installed here')
    assert main(['build-engine', str(tiny_onnx), '-o', str(tmp_path / 'x.engine')]) == 2
    assert 'TensorRT' in capsys.readouterr().err


def test_calibration_images_are_spread_over_the_folder(tmp_path) -> None:
    for index in range(10):
        (tmp_path / 'seq' / f'{index:03d}.png').parent.mkdir(exist_ok=True)
        (tmp_path / 'seq' / f'{index:03d}.png').write_bytes(b'')
    (tmp_path / 'seq' / 'notes.txt').write_text('not an image')
    assert [p.name for p in find_images(tmp_path, 3)] == ['000.png', '004.png', '009.png']
    assert len(find_images(tmp_path, 100)) == 10
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='no images'):
        find_images(tmp_path / 'empty', 3)
    with pytest.raises(FileNotFoundError):
        find_images(tmp_path / 'absent', 3)


# --- real TensorRT (GPU machines) ------------------------------------------------------------

@needs_tensorrt
def test_fp32_and_fp16_engines_build_run_and_match_onnxruntime(tiny_onnx, tmp_path) -> None:
    from depth_estimation.inference import open_backend

    cache = tmp_path / 'timing.cache'
    fp32 = build_engine(tiny_onnx, tmp_path / 'tiny_fp32.engine', precision='fp32',
                        timing_cache=cache, progress=lambda message: None)
    assert fp32.typing == 'strongly typed' and cache.stat().st_size > 0
    fp16 = build_engine(tiny_onnx, tmp_path / 'tiny_fp16.engine', precision='fp16',
                        timing_cache=cache, progress=lambda message: None)
    assert fp16.typing == 'weakly typed (precision flags)'
    for result, tolerance in ((fp32, 1e-3), (fp16, 5e-2)):
        info = read_metadata(result.engine_path).extra['tensorrt']
        assert info['input_shape'] == [1, 3, 96, 128] and info['onnx']['sha256']
        assert max(c['max_rel_error'] for c in result.check['checks']) <= tolerance
    rgb = np.random.default_rng(0).integers(0, 256, (480, 640, 3), np.uint8)
    with open_backend(fp16.engine_path) as plain, \
            open_backend(fp16.engine_path, cuda_graph=True) as graphed:
        np.testing.assert_array_equal(plain.infer(rgb), graphed.infer(rgb))
        assert graphed.describe()['cuda_graph'] is True


@needs_tensorrt
def test_corrupt_or_foreign_engines_are_refused_with_a_rebuild_hint(tiny_onnx,
                                                                    tmp_path) -> None:
    from depth_estimation.inference import open_backend

    engine = build_engine(tiny_onnx, tmp_path / 'tiny.engine', precision='fp32', check=False,
                          progress=lambda message: None).engine_path
    data = json.loads(metadata_path(engine).read_text())
    truncated = tmp_path / 'truncated.engine'
    truncated.write_bytes(engine.read_bytes()[:1000])
    metadata_path(truncated).write_text(json.dumps(data))
    with pytest.raises(EngineMismatchError, match='sha256.*build-engine'):
        open_backend(truncated)
    foreign = tmp_path / 'foreign.engine'
    shutil.copy(engine, foreign)
    data['extra']['tensorrt']['gpu'] = {'name': 'NVIDIA Orin', 'compute_capability': '8.7'}
    metadata_path(foreign).write_text(json.dumps(data))
    with pytest.raises(EngineMismatchError, match='NVIDIA Orin.*rebuild'):
        open_backend(foreign)
    with pytest.raises(EngineMismatchError, match='expected 192x256'):
        open_backend(engine, expected_input_size=(192, 256))
