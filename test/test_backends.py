"""Inference backends: one suite, run against every backend this machine has.

Each case opens the tiny model (exported ONNX, checkpoint, or TensorRT engine built from the
ONNX) with one backend configuration. Cases whose hardware or library is missing skip with the
reason (no CUDA, CPU-only onnxruntime, no TensorRT). The reference is PyTorch FP32 on the same
weights; each case states its tolerance (FP32 paths 1e-4 relative, reduced precision looser).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from depth_estimation.artifacts import metadata_path
from depth_estimation.inference import open_backend
from depth_estimation.samples import load_samples


def _cuda_reason() -> str:
    try:
        import torch
    except ImportError:
        return 'torch is not installed'
    return '' if torch.cuda.is_available() else 'no CUDA GPU (torch.cuda.is_available() is False)'


def _ort_cuda_reason() -> str:
    import onnxruntime

    if 'CUDAExecutionProvider' not in onnxruntime.get_available_providers():
        return ('this onnxruntime has no CUDAExecutionProvider (CPU build; install '
                'onnxruntime-gpu on a GPU machine)')
    return _cuda_reason()


def _tensorrt_reason() -> str:
    from depth_estimation.inference.tensorrt_common import (TensorRTUnavailableError,
                                                            import_tensorrt)

    try:
        import_tensorrt()
    except TensorRTUnavailableError as error:
        return f'TensorRT unavailable: {error}'
    return _cuda_reason()


@dataclass(frozen=True)
class Case:
    """One backend configuration: how to open it, how close it must be to PyTorch FP32."""

    id: str
    artifact: str  # 'onnx', 'checkpoint', 'model' (in-memory), 'fp32_engine', 'fp16_engine'
    backend: str
    options: tuple[tuple[str, Any], ...] = ()
    rtol: float = 1e-4
    skip_reason: Callable[[], str] = lambda: ''


CASES = [
    Case('onnxruntime-cpu', 'onnx', 'onnxruntime', (('num_threads', 1), ('device', 'cpu'))),
    Case('onnxruntime-cpu-no-iobinding', 'onnx', 'onnxruntime',
         (('device', 'cpu'), ('io_binding', False))),
    Case('onnxruntime-cuda', 'onnx', 'onnxruntime', (('device', 'cuda'),), 1e-3,
         _ort_cuda_reason),
    Case('torch-cpu-fp32', 'checkpoint', 'torch'),
    Case('torch-cpu-bf16', 'model', 'torch', (('precision', 'bf16'),), 2e-2),
    Case('torch-cuda-fp32', 'model', 'torch', (('device', 'cuda'),), 1e-3, _cuda_reason),
    Case('torch-cuda-fp16', 'model', 'torch', (('device', 'cuda'), ('precision', 'fp16')), 2e-2,
         _cuda_reason),
    Case('tensorrt-fp32', 'fp32_engine', 'tensorrt', (), 1e-3, _tensorrt_reason),
    Case('tensorrt-fp16-cuda-graph', 'fp16_engine', 'tensorrt', (('cuda_graph', True),), 5e-2,
         _tensorrt_reason),
]


@pytest.fixture(scope='module')
def sample_rgb() -> np.ndarray:
    return load_samples()[0].rgb


def build_engines(onnx: Path, directory: Path) -> dict[str, Path]:
    """FP32 and FP16 TensorRT engines of `onnx` (built only where TensorRT and a GPU exist)."""
    from depth_estimation.export.tensorrt_build import build_engine

    quiet = {'progress': lambda message: None, 'check': False}
    return {'fp32_engine': build_engine(onnx, directory / 'fp32.engine',
                                        precision='fp32', **quiet).engine_path,
            'fp16_engine': build_engine(onnx, directory / 'fp16.engine',
                                        precision='fp16', typing='weak', **quiet).engine_path}


@pytest.fixture(scope='module')
def engines(tiny_onnx, tmp_path_factory) -> dict[str, Path]:
    """TensorRT engines of the tiny model."""
    return build_engines(tiny_onnx, tmp_path_factory.mktemp('engines'))


def runnable_case(request) -> Case:
    """The case a fixture is parametrized with; skipped where its backend cannot run here."""
    reason = request.param.skip_reason()
    if reason:
        pytest.skip(reason)
    return request.param


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def case(request) -> Case:
    return runnable_case(request)


def case_opener(case, request, engines_fixture: str, onnx: Path, checkpoint: Path,
                model: Any) -> Callable[[], Any]:
    """A function that opens the backend of `case` on its artifact (engines built on demand)."""
    def opener() -> Any:
        if case.artifact in ('fp32_engine', 'fp16_engine'):
            source: Any = request.getfixturevalue(engines_fixture)[case.artifact]
        else:
            source = {'onnx': onnx, 'checkpoint': checkpoint, 'model': model}[case.artifact]
        if case.artifact == 'model':
            from depth_estimation.inference.torch_backend import TorchBackend

            return TorchBackend(source, **dict(case.options))
        return open_backend(source, case.backend, **dict(case.options))
    return opener


@pytest.fixture
def open_case(case, request, tiny_onnx, tiny_checkpoint, tiny_model) -> Callable[[], Any]:
    return case_opener(case, request, 'engines', tiny_onnx, tiny_checkpoint, tiny_model)


@pytest.fixture(scope='module')
def reference_depth(tiny_model, sample_rgb) -> np.ndarray:
    from depth_estimation.inference.torch_backend import TorchBackend

    with TorchBackend(tiny_model) as backend:
        return backend.infer(sample_rgb)


def test_backend_matches_pytorch_fp32(case, open_case, sample_rgb, reference_depth) -> None:
    with open_case() as backend:
        assert backend.name == case.backend
        depth = backend.infer(sample_rgb)
    assert depth.shape == sample_rgb.shape[:2] and depth.dtype == np.float32
    assert np.isfinite(depth).all()
    np.testing.assert_allclose(depth, reference_depth, rtol=case.rtol)


@pytest.mark.parametrize('size', [(480, 640), (17, 33)])
def test_depth_comes_back_at_the_input_size_with_timings(open_case, size) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (*size, 3), np.uint8)
    with open_case() as backend:
        depth = backend.infer(rgb)
        timings = backend.last_timings
    assert depth.shape == size
    assert timings.inference > 0 and timings.preprocess > 0 and timings.postprocess > 0
    assert timings.total == pytest.approx(timings.preprocess + timings.inference
                                          + timings.postprocess)


def test_outputs_are_named_and_not_overwritten_by_the_next_frame(case, open_case,
                                                                 sample_rgb) -> None:
    """Backends reuse their buffers: what a call returned must stay as it was."""
    with open_case() as backend:
        tensor, _ = backend.preprocessor.prepare(sample_rgb)
        first = backend.run_outputs(tensor)
        kept = {name: value.copy() for name, value in first.items()}
        backend.run_outputs(np.ascontiguousarray(tensor[..., ::-1]))  # another input
    assert backend.metadata.output_name in first
    assert first[backend.metadata.output_name].shape == (1, 1, *tensor.shape[2:])
    for name, value in kept.items():
        np.testing.assert_array_equal(first[name], value)


def test_closed_backend_refuses_work(open_case, sample_rgb) -> None:
    backend = open_case()
    backend.close()
    with pytest.raises(RuntimeError, match='closed'):
        backend.infer(sample_rgb)


def test_describe_names_backend_and_model(case, open_case) -> None:
    with open_case() as backend:
        description = backend.describe()
    assert description['backend'] == case.backend and description['model'] == 'tiny'
    assert description['input_size'] == '96x128'


# --- backend-specific behaviour ---------------------------------------------------------------

def test_torch_autocast_keeps_the_metric_head_in_fp32(tiny_model, sample_rgb) -> None:
    import torch

    from depth_estimation.inference.torch_backend import TorchBackend

    seen: dict[str, torch.dtype] = {}

    def record(name: str, pick: Callable[[Any], torch.Tensor]) -> Callable[..., None]:
        def hook(module: Any, args: Any, output: Any) -> None:  # returns None: output kept
            seen.setdefault(name, pick(output).dtype)
        return hook

    with TorchBackend(tiny_model, precision='bf16') as backend:
        model = backend.model
        hooks = [
            next(m for m in model.backbone.inner.modules() if isinstance(m, torch.nn.Linear))
            .register_forward_hook(record('backbone', lambda output: output)),
            model.metric_head.conditional_log_binomial.register_forward_hook(
                record('head', lambda output: output)),
            model.metric_head.seed_bin_regressor.register_forward_hook(
                record('seed', lambda output: output[1]))]
        backend.infer(sample_rgb)
        for hook in hooks:
            hook.remove()
    assert seen == {'backbone': torch.bfloat16, 'head': torch.float32, 'seed': torch.float32}
    assert type(tiny_model.backbone).__name__ != 'AutocastScope', 'the caller\'s model changed'


@pytest.mark.slow
def test_torch_compile_gives_the_eager_depth(tiny_model, sample_rgb, reference_depth) -> None:
    from depth_estimation.inference.torch_backend import TorchBackend

    # 'eager' compiles the graph with dynamo and runs it without code generation: the test
    # proves the wiring in seconds; 'inductor' (compile=True) is what the benchmark measures.
    with TorchBackend(tiny_model, compile='eager') as backend:
        depth = backend.infer(sample_rgb)
        assert backend.describe()['compile'] == 'eager'
    np.testing.assert_allclose(depth, reference_depth, rtol=1e-4)


def test_onnxruntime_profiling_writes_a_trace(tiny_onnx, sample_rgb) -> None:
    with open_backend(tiny_onnx, profile=True, device='cpu') as backend:
        backend.infer(sample_rgb)
        trace = Path(backend.end_profiling())
    events = json.loads(trace.read_text())
    trace.unlink()
    assert any(e.get('cat') == 'Node' for e in events)


def test_onnxruntime_rejects_bad_options(tiny_onnx) -> None:
    with pytest.raises(ValueError, match='graph_optimization'):
        open_backend(tiny_onnx, graph_optimization='max')
    with pytest.raises(ValueError, match='device'):
        open_backend(tiny_onnx, device='tpu')
    if 'no CUDAExecutionProvider' in _ort_cuda_reason():
        with pytest.raises(ValueError, match='onnxruntime-gpu'):
            open_backend(tiny_onnx, device='cuda')


# --- refusals ----------------------------------------------------------------------------------

def test_missing_metadata_is_refused_with_a_hint(tiny_onnx, tmp_path) -> None:
    lonely = tmp_path / 'lonely.onnx'
    shutil.copy(tiny_onnx, lonely)
    with pytest.raises(FileNotFoundError, match='depth-estimation export'):
        open_backend(lonely)


def test_mismatched_metadata_is_refused(tiny_onnx, tmp_path) -> None:
    copy = tmp_path / 'copy.onnx'
    shutil.copy(tiny_onnx, copy)
    data = json.loads(metadata_path(tiny_onnx).read_text())
    data['input_height'] = 192
    metadata_path(copy).write_text(json.dumps(data))
    with pytest.raises(ValueError, match='do not belong together'):
        open_backend(copy)


def test_corrupt_model_is_refused(tiny_onnx, tmp_path) -> None:
    corrupt = tmp_path / 'corrupt.onnx'
    corrupt.write_bytes(tiny_onnx.read_bytes()[:2000])
    shutil.copy(metadata_path(tiny_onnx), metadata_path(corrupt))
    with pytest.raises(ValueError, match='cannot load ONNX model'):
        open_backend(corrupt)


def test_unknown_artifacts_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match='suffix'):
        open_backend(tmp_path / 'model.bin')
    with pytest.raises(ValueError, match='unknown backend'):
        open_backend(tmp_path / 'model.onnx', backend='tpu')
    with pytest.raises(FileNotFoundError):
        open_backend(tmp_path / 'missing.onnx')
    with pytest.raises(FileNotFoundError, match='engine not found'):
        open_backend(tmp_path / 'missing.engine')


# --- confidence (issue 8): a second output, restored like the depth ---------------------------

@pytest.fixture(scope='module')
def confidence_engines(confidence_onnx, tmp_path_factory) -> dict[str, Path]:
    return build_engines(confidence_onnx, tmp_path_factory.mktemp('confidence_engines'))


# Every backend and device; not the CPU bf16 autocast run (about 10 s here, CPUs without bf16
# units emulate it): the confidence comes from the FP32 metric head in every precision, and
# test_torch_autocast_keeps_the_metric_head_in_fp32 shows that the head stays FP32 there.
CONFIDENCE_CASES = [c for c in CASES if c.id != 'torch-cpu-bf16']


@pytest.fixture(params=CONFIDENCE_CASES, ids=[c.id for c in CONFIDENCE_CASES])
def confidence_case(request) -> Case:
    return runnable_case(request)


@pytest.fixture
def open_confidence_case(confidence_case, request, confidence_onnx, tiny_checkpoint,
                         tiny_model) -> Callable[[], Any]:
    """Like `open_case`, with the confidence export for ONNX Runtime and TensorRT."""
    return case_opener(confidence_case, request, 'confidence_engines', confidence_onnx,
                       tiny_checkpoint, tiny_model)


def _reference_outputs(model: Any, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch FP32 depth and confidence at the image size, without any backend code."""
    import torch

    from depth_estimation.model.confidence import DepthWithConfidence
    from depth_estimation.processing import Preprocessor

    config = model.config
    preprocessor = Preprocessor.matching(config)
    tensor, box = preprocessor.prepare(rgb)
    with torch.inference_mode():
        depth, confidence = DepthWithConfidence(model.eval())(torch.from_numpy(tensor))
    return (preprocessor.restore(depth.numpy(), box),
            preprocessor.restore(confidence.numpy(), box))


def test_confidence_matches_pytorch_and_is_aligned(confidence_case, open_confidence_case,
                                                   tiny_model) -> None:
    """Same map as PyTorch after the same letterbox restore: a 100 x 300 image fills only 43 of
    the 96 network rows, and the confidence must be cropped and resized exactly like the depth."""
    import cv2

    size = (100, 300)
    rgb = cv2.resize(load_samples()[0].rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    expected_depth, expected_confidence = _reference_outputs(tiny_model, rgb)
    with open_confidence_case() as backend:
        assert backend.has_confidence and backend.output_names == ('depth', 'confidence')
        result = backend.infer_outputs(rgb)
        depth_only = backend.infer(rgb)
        assert backend.infer_outputs(rgb, confidence=False).confidence is None
    assert result.confidence is not None
    assert result.confidence.shape == size and result.confidence.dtype == np.float32
    assert np.all((result.confidence >= 0) & (result.confidence <= 1))
    np.testing.assert_allclose(result.depth, expected_depth, rtol=confidence_case.rtol)
    np.testing.assert_allclose(result.confidence, expected_confidence, rtol=0,
                               atol=confidence_case.rtol)
    np.testing.assert_allclose(depth_only, result.depth, rtol=1e-6)


def test_a_depth_only_model_has_no_confidence(tiny_onnx, sample_rgb) -> None:
    with open_backend(tiny_onnx, device='cpu') as backend:
        assert not backend.has_confidence and backend.output_names == ('depth',)
        result = backend.infer_outputs(sample_rgb)
    assert result.confidence is None and result.depth.shape == sample_rgb.shape[:2]


def test_torch_official_protocol_treats_confidence_like_depth(tiny_model, sample_rgb) -> None:
    """Official protocol (resize inside, reflect padding, flip averaging): the confidence must see
    exactly the depth's resize, crop and averaging."""
    import torch

    from depth_estimation.inference.torch_backend import TorchBackend
    from depth_estimation.model.confidence import DepthWithConfidence
    from depth_estimation.model.protocol import infer_official

    class ConfidenceOnly(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.inner = DepthWithConfidence(model)
            self.config = model.config

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return self.inner(image)[1]

    rgb = sample_rgb[:400, :300]  # another aspect ratio: a real resize and real padding
    with TorchBackend(tiny_model, protocol='official', flip=True) as backend:
        result = backend.infer_outputs(rgb)
        depth_only = backend.infer(rgb)
    image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0
    expected = infer_official(ConfidenceOnly(tiny_model.eval()), image, flip=True)[0, 0].numpy()
    np.testing.assert_array_equal(result.depth, depth_only)
    np.testing.assert_allclose(result.confidence, np.clip(expected, 0, 1), atol=1e-6)
