"""ONNX export with a static input size, checked against PyTorch with ONNX Runtime.

The TorchScript exporter is used (`dynamo=False`, opset 17): torch 2.13's dynamo exporter fails to
decompose
transformers' BEiT attention (a `view` on a transposed SDPA output), and it cannot write opset 17.
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
from depth_estimation.processing import Preprocessor

INPUT_NAME = 'image'
OUTPUT_NAME = 'depth'
DEFAULT_OPSET = 17
DEFAULT_TOLERANCE = 1e-4  # max relative error of ONNX Runtime against PyTorch, per pixel
PathLike = Union[str, Path]


class ExportParityError(RuntimeError):
    """The exported graph does not reproduce PyTorch within the tolerance."""


@dataclass
class ParityCheck:
    """ONNX Runtime against PyTorch on one input."""

    name: str
    max_abs_error: float
    max_rel_error: float  # max over pixels of |onnx - torch| / |torch|


@dataclass
class ExportResult:
    onnx_path: Path
    metadata_path: Path
    checks: list[ParityCheck] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def max_rel_error(self) -> float:
        return max((c.max_rel_error for c in self.checks), default=float('nan'))


def export_onnx(model: torch.nn.Module, output: PathLike, *,
                source: Optional[dict[str, Any]] = None,
                check_images: Sequence[tuple[str, np.ndarray]] = (), random_checks: int = 2,
                tolerance: float = DEFAULT_TOLERANCE, opset: int = DEFAULT_OPSET,
                extra_metadata: Optional[dict[str, Any]] = None,
                progress: Callable[[str], None] = print) -> ExportResult:
    """Export `model` at its config's input size; verify with ONNX Runtime; write the metadata
    beside it.

    `check_images` are (name, RGB uint8 image) pairs, preprocessed exactly as the runtime does. On
    a
    parity failure the `.onnx` is deleted and `ExportParityError` raised: no unchecked artifact
    remains.
    """
    start = time.perf_counter()
    config = model.config
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().float()
    example = torch.zeros(1, 3, config.input_height, config.input_width)  # (1, 3, H, W)

    progress(f'[1/3] exporting {config.name} at {config.input_height}x{config.input_width} '
             f'(opset {opset}) to {output}')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # TracerWarnings from transformers' shape checks
        torch.onnx.export(model, (example,), str(output), input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME], opset_version=opset, dynamo=False,
                          do_constant_folding=True)
    import onnx

    onnx.checker.check_model(str(output), full_check=True)

    progress(f'[2/3] checking ONNX Runtime against PyTorch ({random_checks} random, '
             f'{len(check_images)} real images)')
    inputs = _check_inputs(config, check_images, random_checks)
    checks = compare_with_onnxruntime(model, output, inputs)
    for check in checks:
        progress(f'      {check.name}: max abs {check.max_abs_error:.3g} m, '
                 f'max rel {check.max_rel_error:.3g}')
    worst = max((c.max_rel_error for c in checks), default=0.0)
    if worst > tolerance:
        output.unlink(missing_ok=True)
        raise ExportParityError(
            f'ONNX Runtime differs from PyTorch by {worst:.3g} relative '
            f'(tolerance {tolerance:g}); '
            f'{output} was removed')

    progress('[3/3] writing metadata')
    metadata = ArtifactMetadata.from_model_config(
        config, input_name=INPUT_NAME, output_name=OUTPUT_NAME, source=dict(source or {}),
        versions=library_versions('torch', 'transformers', 'onnx', 'onnxruntime', 'numpy'),
        extra={**(extra_metadata or {}), 'format': 'onnx', 'opset': opset,
               'exporter': 'torch.onnx (TorchScript)', 'precision': 'fp32',
               'parity': {'tolerance_rel': tolerance,
                          'checks': [vars(c) for c in checks]}})
    metadata_file = write_metadata(output, metadata)
    return ExportResult(output, metadata_file, checks, time.perf_counter() - start)


def _check_inputs(config: Any, images: Sequence[tuple[str, np.ndarray]],
                  random_count: int) -> list[tuple[str, np.ndarray]]:
    """Network inputs for the parity check: seeded random images and the given real ones."""
    preprocessor = Preprocessor(config.input_size, config.mean, config.std)
    generator = np.random.default_rng(0)
    inputs = []
    for index in range(random_count):
        rgb = generator.integers(0, 256, (config.input_height, config.input_width, 3), np.uint8)
        inputs.append((f'random{index}', preprocessor.prepare(rgb)[0]))
    for name, rgb in images:
        inputs.append((name, preprocessor.prepare(rgb)[0]))
    return inputs


def compare_with_onnxruntime(model: torch.nn.Module, onnx_path: PathLike,
                             inputs: Sequence[tuple[str, np.ndarray]]) -> list[ParityCheck]:
    """Run each (name, (1, 3, H, W) float32) input through PyTorch and ONNX Runtime and compare."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), providers=['CPUExecutionProvider'])
    input_name = session.get_inputs()[0].name
    checks = []
    for name, tensor in inputs:
        with torch.inference_mode():
            expected = model(torch.from_numpy(tensor)).numpy()
        actual = session.run(None, {input_name: tensor})[0]
        if actual.shape != expected.shape:
            raise ExportParityError(
                f'{name}: ONNX output {actual.shape} != PyTorch {expected.shape}')
        error = np.abs(actual.astype(np.float64) - expected)
        scale = np.maximum(np.abs(expected.astype(np.float64)), 1e-12)
        checks.append(ParityCheck(name, float(error.max()), float((error / scale).max())))
    return checks
