"""ONNX export with a static input size, checked against PyTorch with ONNX Runtime.

The TorchScript exporter is used (`dynamo=False`, opset 17): torch 2.13's dynamo exporter fails to
decompose
transformers' BEiT attention (a `view` on a transposed SDPA output), and it cannot write opset 17.

Outputs: `depth` (1, 1, H, W) metres, and with `DepthWithConfidence` (`export --confidence`) also
`confidence` (1, 1, H, W) float32 in [0, 1]. Every output is checked against PyTorch; the metadata
lists them under `extra.outputs` (with the confidence method), so runtimes can tell what they got.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch

from depth_estimation.artifacts import ArtifactMetadata, library_versions, write_metadata
from depth_estimation.export.optimize import simplify_onnx
from depth_estimation.model.confidence import DepthWithConfidence
from depth_estimation.model.confidence import OUTPUT_NAMES as CONFIDENCE_OUTPUT_NAMES
from depth_estimation.processing import Preprocessor

INPUT_NAME = 'image'
OUTPUT_NAME = 'depth'
CONFIDENCE_NAME = 'confidence'
DEFAULT_OPSET = 17
DEFAULT_TOLERANCE = 1e-4  # max relative error of ONNX Runtime against PyTorch, per pixel
# The FP16 variant against FP32 PyTorch, per pixel, checked with ONNX Runtime on the CPU. Measured
# 1.5e-4 on the tiny preset (docs/tensorrt.md); the limit leaves room for real weights.
FP16_TOLERANCE = 1e-2
TENSORRT_CHECKS = ('off', 'warn', 'error')
PathLike = Union[str, Path]


class ExportParityError(RuntimeError):
    """The exported graph does not reproduce PyTorch within the tolerance."""


@dataclass
class ParityCheck:
    """ONNX Runtime against PyTorch on one input."""

    name: str
    max_abs_error: float
    # max over pixels of |onnx - torch| / |torch| for the depth; for the confidence, which lies in
    # [0, 1], the error relative to that full scale (= the absolute error): near-zero confidences
    # would make a per-pixel ratio meaningless
    max_rel_error: float
    output: str = OUTPUT_NAME


@dataclass
class ExportResult:
    onnx_path: Path
    metadata_path: Path
    checks: list[ParityCheck] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def max_rel_error(self) -> float:
        return max((c.max_rel_error for c in self.checks), default=float('nan'))


# Constant folding (onnxslim, ONNX Runtime's ConstantFolding) turns each BEiT block's
# relative-position bias into a (heads, N + 1, N + 1) float32 tensor, and needs several times that
# while it works: ZoeD_K's 24 x 48 patch grid gives 2 GB of bias, and ONNX Runtime then took more
# than 16 GB to open the file (1.9 GB with ConstantFolding off). Above this limit the bias stays a
# computed subgraph (a gather per block and frame, small next to BEiT-L itself).
FOLDING_LIMIT_BYTES = 1 << 30


def folded_bias_bytes(config: Any) -> int:
    """Bytes that folding the relative-position bias of every backbone block would produce."""
    backbone = config.backbone
    if backbone.model_type != 'beit':
        return 0
    tokens = ((config.input_height // backbone.patch_size)
              * (config.input_width // backbone.patch_size) + 1)
    return backbone.num_hidden_layers * backbone.num_attention_heads * tokens * tokens * 4


def onnxruntime_disabled_optimizers(config: Any) -> list[str]:
    """ONNX Runtime optimizers an exported model of `config` must be opened without."""
    return ['ConstantFolding'] if folded_bias_bytes(config) > FOLDING_LIMIT_BYTES else []


class FlipAveragedOutputs(torch.nn.Module):
    """`FlipAveraged` for a model with several outputs (depth and confidence): each output is the
    mean of the image's and of its mirror's (mirrored back), from one batch of 2."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.config = model.config
        self.output_names = output_names_of(model)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        batch = torch.cat([image, torch.flip(image, dims=[3])], dim=0)  # (2B, 3, H, W)
        outputs = self.model(batch)
        if isinstance(outputs, torch.Tensor):
            outputs = (outputs,)
        averaged = []
        for value in outputs:  # (2B, 1, H, W) each
            direct, mirrored = value.chunk(2, dim=0)
            averaged.append((direct + torch.flip(mirrored, dims=[3])) / 2)
        return tuple(averaged)


def output_names_of(model: torch.nn.Module) -> tuple[str, ...]:
    """Graph output names for `model`: its `output_names`, ('depth', 'confidence') for a
    `DepthWithConfidence`, else ('depth',)."""
    names = getattr(model, 'output_names', None)
    if names:
        return tuple(names)
    if isinstance(model, DepthWithConfidence):
        return tuple(CONFIDENCE_OUTPUT_NAMES)
    return (OUTPUT_NAME,)


def _confidence_wrapper(model: torch.nn.Module) -> Optional[DepthWithConfidence]:
    """The `DepthWithConfidence` inside `model` (itself or wrapped by flip averaging), if any."""
    while model is not None:
        if isinstance(model, DepthWithConfidence):
            return model
        model = getattr(model, 'model', None)
    return None


def outputs_metadata(model: torch.nn.Module, config: Any) -> dict[str, Any]:
    """`extra.outputs` of the metadata: each graph output with its shape, unit and meaning."""
    shape = [1, 1, config.input_height, config.input_width]
    outputs: dict[str, Any] = {}
    for name in output_names_of(model):
        if name == OUTPUT_NAME:
            outputs[name] = {'shape': shape, 'dtype': 'float32', 'unit': 'm',
                             'meaning': 'metric depth along the optical axis'}
        elif name == CONFIDENCE_NAME:
            wrapper = _confidence_wrapper(model)
            outputs[name] = {
                'shape': shape, 'dtype': 'float32', 'unit': '1', 'range': [0.0, 1.0],
                'method': wrapper.method if wrapper else None,
                'tolerance': wrapper.tolerance if wrapper else None,
                'meaning': 'per-pixel confidence from the metric-bin distribution '
                           '(depth_estimation.model.confidence); 1 = the bins agree'}
        else:
            outputs[name] = {'shape': shape, 'dtype': 'float32'}
    return outputs


def export_onnx(model: torch.nn.Module, output: PathLike, *,
                source: Optional[dict[str, Any]] = None,
                check_images: Sequence[tuple[str, np.ndarray]] = (), random_checks: int = 2,
                tolerance: float = DEFAULT_TOLERANCE, opset: int = DEFAULT_OPSET,
                extra_metadata: Optional[dict[str, Any]] = None,
                progress: Callable[[str], None] = print, simplify: bool = False,
                tensorrt_check: str = 'off') -> ExportResult:
    """Export `model` at its config's input size; verify with ONNX Runtime; write the metadata
    beside it.

    `model` returns the depth, or a tuple named by `output_names_of` (a `DepthWithConfidence`
    gives `depth` and `confidence`); every output is checked. `check_images` are (name, RGB uint8
    image) pairs, preprocessed exactly as the runtime does. On
    a parity failure the `.onnx` is deleted and `ExportParityError` raised: no unchecked artifact
    remains. `simplify` folds constants and removes dead nodes with onnxslim (static shapes: the
    BEiT relative-position tables become constants) before the parity check, so the check covers
    the file that ships. `tensorrt_check` ('off', 'warn', 'error') checks every operator against
    TensorRT's ONNX parser table (`tensorrt_ops`); 'error' removes the file on a problem.
    """
    if tensorrt_check not in TENSORRT_CHECKS:
        raise ValueError(f'tensorrt_check {tensorrt_check!r} is not one of {TENSORRT_CHECKS}')
    start = time.perf_counter()
    config = model.config
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().float()

    progress(f'[1/3] exporting {config.name} at {config.input_height}x{config.input_width} '
             f'(opset {opset}) to {output}')
    _trace_to_onnx(model, output, opset)
    extra, disabled_optimizers = _optimize_exported(output, config, simplify, tensorrt_check,
                                                    progress)

    progress(f'[2/3] checking ONNX Runtime against PyTorch ({random_checks} random, '
             f'{len(check_images)} real images)')
    inputs = _check_inputs(config, check_images, random_checks)
    checks = _check_parity(model, output, inputs, disabled_optimizers, tolerance, progress)

    progress('[3/3] writing metadata')
    metadata = ArtifactMetadata.from_model_config(
        config, input_name=INPUT_NAME, output_name=OUTPUT_NAME, source=dict(source or {}),
        versions=library_versions('torch', 'transformers', 'onnx', 'onnxruntime', 'numpy'),
        extra={**(extra_metadata or {}), **extra, 'outputs': outputs_metadata(model, config),
               'format': 'onnx', 'opset': opset,
               'exporter': 'torch.onnx (TorchScript)', 'precision': 'fp32',
               'parity': {'tolerance_rel': tolerance,
                          'checks': [vars(c) for c in checks]}})
    metadata_file = write_metadata(output, metadata)
    return ExportResult(output, metadata_file, checks, time.perf_counter() - start)


def _trace_to_onnx(model: torch.nn.Module, output: Path, opset: int) -> None:
    """Trace `model` at its config's input size into `output` and check the graph."""
    config = model.config
    example = torch.zeros(1, 3, config.input_height, config.input_width)  # (1, 3, H, W)
    # Without no_grad the tracer keeps autograd state for every activation: ZoeD_K at 384x768
    # then needs more than 24 GB (measured 10.6 GB peak with it).
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter('ignore')  # TracerWarnings from transformers' shape checks
        torch.onnx.export(model, (example,), str(output), input_names=[INPUT_NAME],
                          output_names=list(output_names_of(model)), opset_version=opset,
                          dynamo=False, do_constant_folding=True)
    import onnx

    onnx.checker.check_model(str(output), full_check=True)


def _optimize_exported(output: Path, config: Any, simplify: bool, tensorrt_check: str,
                       progress: Callable[[str], None]) -> tuple[dict[str, Any], list[str]]:
    """Simplify `output` in place where folding stays small, and check it against TensorRT.

    Returns the metadata entries this adds and the ONNX Runtime optimizers to disable.
    """
    extra: dict[str, Any] = {}
    disabled_optimizers = onnxruntime_disabled_optimizers(config)
    if disabled_optimizers:
        extra['onnxruntime'] = {'disabled_optimizers': disabled_optimizers}
        if simplify:
            progress(f'      not simplified: folding would add '
                     f'{folded_bias_bytes(config) / 2**30:.1f} GiB of relative-position bias')
            simplify = False
    if simplify:
        report = simplify_onnx(output, output)
        progress(f'      simplified with {report.tool} {report.version}: {report.nodes_before} -> '
                 f'{report.nodes_after} nodes in {report.seconds:.1f} s')
        extra['simplified'] = vars(report)
    if tensorrt_check != 'off':
        extra['tensorrt_support'] = _tensorrt_check(output, tensorrt_check, progress)
    return extra, disabled_optimizers


def _check_parity(model: torch.nn.Module, output: Path, inputs: Sequence[tuple[str, np.ndarray]],
                  disabled_optimizers: Sequence[str], tolerance: float,
                  progress: Callable[[str], None]) -> list[ParityCheck]:
    """Compare `output` with PyTorch on `inputs`; beyond `tolerance` remove it and raise."""
    checks = compare_with_onnxruntime(model, output, inputs, disabled_optimizers)
    for check in checks:
        if check.output == OUTPUT_NAME:
            progress(f'      {check.name}: max abs {check.max_abs_error:.3g} m, '
                     f'max rel {check.max_rel_error:.3g}')
        else:
            progress(f'      {check.name} ({check.output}): max abs {check.max_abs_error:.3g}')
    worst = max((c.max_rel_error for c in checks), default=0.0)
    if not worst <= tolerance:  # NaN fails too
        output.unlink(missing_ok=True)
        raise ExportParityError(
            f'ONNX Runtime differs from PyTorch by {worst:.3g} relative '
            f'(tolerance {tolerance:g}); '
            f'{output} was removed')
    return checks


def _check_inputs(config: Any, images: Sequence[tuple[str, np.ndarray]],
                  random_count: int) -> list[tuple[str, np.ndarray]]:
    """Network inputs for the parity check: seeded random images and the given real ones."""
    preprocessor = Preprocessor.matching(config)
    generator = np.random.default_rng(0)
    inputs = []
    for index in range(random_count):
        rgb = generator.integers(0, 256, (config.input_height, config.input_width, 3), np.uint8)
        inputs.append((f'random{index}', preprocessor.prepare(rgb)[0]))
    for name, rgb in images:
        inputs.append((name, preprocessor.prepare(rgb)[0]))
    return inputs


def compare_with_onnxruntime(model: torch.nn.Module, onnx_path: PathLike,
                             inputs: Sequence[tuple[str, np.ndarray]],
                             disabled_optimizers: Sequence[str] = ()) -> list[ParityCheck]:
    """Run each (name, (1, 3, H, W) float32) input through PyTorch and ONNX Runtime and compare.

    A model returning one tensor is compared with the graph's `depth`; a model returning a tuple
    (depth, confidence) with the graph outputs of the same names, one `ParityCheck` per output.
    """
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), providers=['CPUExecutionProvider'],
                                           disabled_optimizers=list(disabled_optimizers))
    input_name = session.get_inputs()[0].name
    session_names = [o.name for o in session.get_outputs()]
    checks = []
    for name, tensor in inputs:
        with torch.inference_mode():
            expected_outputs = model(torch.from_numpy(tensor))
        if isinstance(expected_outputs, torch.Tensor):
            names = [OUTPUT_NAME if OUTPUT_NAME in session_names else session_names[0]]
            expected_outputs = (expected_outputs,)
        else:
            names = list(output_names_of(model))
            missing = sorted(set(names) - set(session_names))
            if missing:
                raise ExportParityError(f'the ONNX graph lacks the outputs {missing}; it has '
                                        f'{session_names}')
        actual_outputs = session.run(names, {input_name: tensor})
        for output_name, expected_tensor, actual in zip(names, expected_outputs,
                                                        actual_outputs):
            expected = expected_tensor.numpy()
            if actual.shape != expected.shape:
                raise ExportParityError(f'{name}: ONNX output {output_name} {actual.shape} != '
                                        f'PyTorch {expected.shape}')
            error = np.abs(actual.astype(np.float64) - expected)
            if output_name == CONFIDENCE_NAME:  # bounded in [0, 1]: relative to the full scale
                scale = np.ones_like(error)
            else:
                scale = np.maximum(np.abs(expected.astype(np.float64)), 1e-12)
            checks.append(ParityCheck(name, float(error.max()), float((error / scale).max()),
                                      output_name))
    return checks


def _tensorrt_check(output: Path, mode: str, progress: Callable[[str], None]) -> dict[str, Any]:
    """Check `output` against TensorRT's operator table; 'error' removes the file on a problem."""
    from depth_estimation.export.tensorrt_ops import TensorRTSupportError, check_tensorrt_support

    report = check_tensorrt_support(output)
    if report.ok:
        progress(f'      TensorRT {report.tensorrt_version} ONNX parser: all '
                 f'{sum(report.op_counts.values())} nodes ({len(report.op_counts)} op types) '
                 'supported')
    else:
        listed = '\n        '.join(report.problems)
        message = (f'TensorRT {report.tensorrt_version} ONNX parser would reject '
                   f'{len(report.problems)} nodes:\n        {listed}')
        if mode == 'error':
            output.unlink(missing_ok=True)
            raise TensorRTSupportError(f'{message}\n{output} was removed')
        progress(f'      warning: {message}')
    return report.to_dict()


@dataclass
class Fp16Result:
    """The FP16 variant written beside the FP32 model."""

    onnx_path: Path
    metadata_path: Path
    checks: list[ParityCheck]
    report: dict[str, Any]

    @property
    def max_rel_error(self) -> float:
        return max((c.max_rel_error for c in self.checks), default=float('nan'))


def fp16_path(fp32_path: PathLike) -> Path:
    """Where the FP16 variant of `model.onnx` goes: `model_fp16.onnx`."""
    fp32_path = Path(fp32_path)
    return fp32_path.with_name(f'{fp32_path.stem}_fp16{fp32_path.suffix}')


def export_fp16_variant(model: torch.nn.Module, fp32_onnx: PathLike,
                        output: Optional[PathLike] = None, *,
                        fp16_scopes: Sequence[str] = (),
                        check_images: Sequence[tuple[str, np.ndarray]] = (),
                        random_checks: int = 2, tolerance: float = FP16_TOLERANCE,
                        tensorrt_check: str = 'warn',
                        progress: Callable[[str], None] = print) -> Fp16Result:
    """Write the FP16 variant (FP32 metric head, `fp16.py`) of an exported FP32 model.

    Checked against FP32 PyTorch like the FP32 export; on failure nothing is left behind. Its
    metadata is the FP32 model's with `precision: fp16-fp32head` and what was converted.
    """
    import onnx

    from depth_estimation.artifacts import ArtifactMetadata, read_metadata
    from depth_estimation.export.fp16 import DEFAULT_FP16_SCOPES, convert_to_mixed_fp16
    from depth_estimation.artifacts import file_sha256

    fp32_onnx = Path(fp32_onnx)
    output = Path(output) if output is not None else fp16_path(fp32_onnx)
    metadata = read_metadata(fp32_onnx)
    scopes = list(fp16_scopes or DEFAULT_FP16_SCOPES)
    progress(f'[fp16] converting {fp32_onnx.name}: FP16 in {scopes}, the metric head and the '
             'risky ops in FP32')
    converted, report = convert_to_mixed_fp16(onnx.load(str(fp32_onnx)), scopes)
    onnx.save(converted, str(output))
    progress(f'       {report.nodes_fp16} nodes FP16, {report.nodes_fp32} FP32, '
             f'{report.casts_inserted} casts')
    extra: dict[str, Any] = {}
    if tensorrt_check != 'off':
        extra['tensorrt_support'] = _tensorrt_check(output, tensorrt_check, progress)
    model = model.eval().float()
    inputs = _check_inputs(model.config, check_images, random_checks)
    checks = compare_with_onnxruntime(model, output, inputs,
                                      onnxruntime_disabled_optimizers(model.config))
    worst = max((c.max_rel_error for c in checks), default=0.0)
    progress(f'       FP16 variant against FP32 PyTorch: max rel {worst:.3g} '
             f'(tolerance {tolerance:g})')
    if not worst <= tolerance:  # NaN fails too
        output.unlink(missing_ok=True)
        raise ExportParityError(
            f'the FP16 variant differs from PyTorch by {worst:.3g} relative (tolerance '
            f'{tolerance:g}); {output} was removed')
    data = metadata.to_dict()
    data['extra'] = {**metadata.extra, **extra, 'precision': 'fp16-fp32head',
                     'fp32_source': {'file': fp32_onnx.name, 'sha256': file_sha256(fp32_onnx)},
                     'mixed_precision': vars(report),
                     'parity': {'tolerance_rel': tolerance, 'reference': 'PyTorch FP32',
                                'runtime': 'ONNX Runtime CPU',
                                'checks': [vars(c) for c in checks]}}
    metadata_file = write_metadata(output, ArtifactMetadata.from_dict(data))
    return Fp16Result(output, metadata_file, checks, vars(report))
