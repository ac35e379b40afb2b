"""PyTorch backend: runs one of our checkpoints (or an in-memory model) eagerly.

Two protocols:
- 'letterbox' (default): the same pre/post-processing as the ONNX Runtime and TensorRT backends, so
all
  backends give the same depth for the same model.
- 'official': ZoeDepth's own `infer()`: resize inside the model to the nearest multiple of 32
keeping the
  aspect ratio, reflect padding and horizontal-flip averaging (the paper's numbers use this; two
  forward
  passes). `pad_input` and `flip` switch its parts; `flip` also works with 'letterbox'.

Precision: `precision='fp16'` or `'bf16'` runs the backbone and the neck under `torch.autocast`
(CUDA, and the CPU for bf16/fp16) and casts the neck's outputs back to float32, so the relative
head and the metric head (bins, attractors, log-binomial) stay FP32, as in the FP16 ONNX variant
(../shared/REFERENCE.md: ZoeDepth's head loses accuracy in FP16). An in-memory model is copied
first, never changed. `compile=True` (or a backend name such as 'inductor') wraps the model in
`torch.compile`; the first frame then takes the compilation time.

Confidence: a ZoeDepth model (anything with `forward_outputs`) always has a `confidence` output
here, computed from its bin centres and probabilities by `model.confidence.DepthWithConfidence`
(method `confidence_method`), in FP32 beside the metric head. It goes through the same protocol as
the depth: letterbox restore, or the official resize, padding crop and flip averaging (depth and
confidence stacked as two channels, so each sees exactly the same operations).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch

from depth_estimation.artifacts import ArtifactMetadata
from depth_estimation.inference.base import CONFIDENCE_NAME, DepthBackend, DepthResult, Timings

PROTOCOLS = ('letterbox', 'official')
PRECISIONS = ('fp32', 'fp16', 'bf16')
AUTOCAST_SCOPES = ('backbone', 'neck')  # submodules run in reduced precision; the rest FP32


class TorchBackend(DepthBackend):
    name = 'torch'

    def __init__(self, model: Union[str, Path, Any], device: str = 'cpu', num_threads: int = 0,
                 protocol: str = 'letterbox', pad_input: bool = True, flip: bool = False,
                 keep_aspect_ratio: bool = True, precision: str = 'fp32',
                 compile: Union[bool, str] = False,
                 confidence_method: Optional[str] = None) -> None:
        import torch

        from depth_estimation.model.checkpoint import load_checkpoint
        from depth_estimation.model.confidence import DEFAULT_METHOD, DepthWithConfidence

        if protocol not in PROTOCOLS:
            raise ValueError(f'unknown protocol {protocol!r}; expected one of {PROTOCOLS}')
        if precision not in PRECISIONS:
            raise ValueError(f'unknown precision {precision!r}; expected one of {PRECISIONS}')
        if num_threads > 0:
            torch.set_num_threads(num_threads)
        self.source = str(model) if isinstance(model, (str, Path)) else 'in-memory model'
        if isinstance(model, (str, Path)):
            model = load_checkpoint(model)
        elif precision != 'fp32':
            import copy

            model = copy.deepcopy(model)  # the autocast scopes replace submodules
        self.device = torch.device(device)
        self.precision = precision
        if precision != 'fp32':
            dtype = torch.float16 if precision == 'fp16' else torch.bfloat16
            for name in AUTOCAST_SCOPES:
                setattr(model, name, AutocastScope(getattr(model, name), self.device.type, dtype))
        self.model = model.eval().to(device)
        self.confidence_method = confidence_method or DEFAULT_METHOD
        # (depth, confidence) from the same forward pass; None for a model without bins
        self._with_confidence: Optional[torch.nn.Module] = (
            DepthWithConfidence(self.model, self.confidence_method).eval()
            if hasattr(self.model, 'forward_outputs') else None)
        self.compiled = compile
        if compile:
            options = {'backend': compile} if isinstance(compile, str) else {}
            self.model = torch.compile(self.model, **options)
            if self._with_confidence is not None:  # compiled on its first use only
                self._with_confidence = torch.compile(self._with_confidence, **options)
        self.protocol = protocol
        self.pad_input = pad_input and protocol == 'official'
        self.flip = flip
        self.keep_aspect_ratio = keep_aspect_ratio
        super().__init__(ArtifactMetadata.from_model_config(model.config))

    @property
    def output_names(self) -> tuple[str, ...]:
        if self._with_confidence is None:
            return (self.metadata.output_name,)
        return (self.metadata.output_name, CONFIDENCE_NAME)

    def run_outputs(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        if self._with_confidence is None:
            return {self.metadata.output_name: self.run_network(tensor)}
        depth, confidence = self._run(self._with_confidence, tensor)
        return {self.metadata.output_name: depth, CONFIDENCE_NAME: confidence}

    def run_network(self, tensor: np.ndarray) -> np.ndarray:
        return self._run(self.model, tensor)[0]

    def _run(self, module: Any, tensor: np.ndarray) -> tuple[np.ndarray, ...]:
        """Each (1, 1, h, w) output of `module`, flip-averaged when `flip` is on."""
        import torch

        with torch.inference_mode():
            batch = torch.from_numpy(tensor).to(self.device)  # (1, 3, h, w)
            if self.flip:
                batch = torch.cat([batch, torch.flip(batch, dims=[3])])  # (2, 3, h, w)
            outputs = module(batch)  # (B, 1, h, w) or a tuple of them
            if isinstance(outputs, torch.Tensor):
                outputs = (outputs,)
            if self.flip:
                outputs = tuple((o[:1] + torch.flip(o[1:], dims=[3])) / 2 for o in outputs)
        return tuple(o.float().cpu().numpy() for o in outputs)

    def infer_outputs(self, rgb: np.ndarray, confidence: bool = True) -> DepthResult:
        if self.protocol == 'letterbox':
            return super().infer_outputs(rgb, confidence)
        import torch

        from depth_estimation.model.protocol import infer_official

        if self._closed:
            raise RuntimeError(f'{self.name} backend is closed')
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f'expected RGB uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}')
        with_confidence = confidence and self._with_confidence is not None
        module = StackedOutputs(self._with_confidence) if with_confidence else self.model
        start = time.perf_counter()
        image = torch.from_numpy(rgb).to(self.device).permute(2, 0, 1)[None].float() / 255.0
        prepared = time.perf_counter()
        with torch.inference_mode():
            stacked = infer_official(module, image, pad_input=self.pad_input, flip=self.flip,
                                     keep_aspect_ratio=self.keep_aspect_ratio)  # (1, C, H, W)
        inferred = time.perf_counter()
        depth = stacked[0, 0].float().cpu().numpy()
        result = DepthResult(depth)
        if with_confidence:  # bicubic resizing may overshoot [0, 1] by a little
            result.confidence = stacked[0, 1].float().clamp(0.0, 1.0).cpu().numpy()
        self.last_timings = Timings(prepared - start, inferred - prepared,
                                    time.perf_counter() - inferred)
        return result

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), 'device': str(self.device), 'artifact': self.source,
                'protocol': self.protocol, 'pad_input': self.pad_input, 'flip': self.flip,
                'precision': self.precision, 'compile': self.compiled,
                **({'confidence_method': self.confidence_method}
                   if self._with_confidence is not None else {})}

    def close(self) -> None:
        self.model = None
        self._with_confidence = None
        super().close()


def _to_float32(value: Any) -> Any:
    """Floating tensors in `value` (tensor, list, tuple, transformers ModelOutput) as float32."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if hasattr(value, 'keys'):  # transformers' ModelOutput: an ordered-dict dataclass
        for key in list(value.keys()):
            value[key] = _to_float32(value[key])
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_to_float32(v) for v in value)
    return value


class StackedOutputs(torch.nn.Module):
    """(depth, confidence) -> one (B, 2, H, W) tensor, for code written for a depth-only model.

    `infer_official` resizes, crops and flip-averages whatever the model returns channel by
    channel, so stacking runs the confidence through exactly the operations of the depth.
    """

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.config = inner.config

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.inner(image), dim=1)  # (B, 2, H, W): depth, confidence


class AutocastScope(torch.nn.Module):
    """Runs `inner` under `torch.autocast` and returns its floating outputs as float32."""

    def __init__(self, inner: torch.nn.Module, device_type: str, dtype: torch.dtype) -> None:
        super().__init__()
        self.inner = inner
        self.device_type = device_type
        self.dtype = dtype

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with torch.autocast(device_type=self.device_type, dtype=self.dtype):
            return _to_float32(self.inner(*args, **kwargs))
