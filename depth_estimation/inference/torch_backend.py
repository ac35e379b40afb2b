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
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch

from depth_estimation.artifacts import ArtifactMetadata
from depth_estimation.inference.base import DepthBackend, Timings

PROTOCOLS = ('letterbox', 'official')
PRECISIONS = ('fp32', 'fp16', 'bf16')
AUTOCAST_SCOPES = ('backbone', 'neck')  # submodules run in reduced precision; the rest FP32


class TorchBackend(DepthBackend):
    name = 'torch'

    def __init__(self, model: Union[str, Path, Any], device: str = 'cpu', num_threads: int = 0,
                 protocol: str = 'letterbox', pad_input: bool = True, flip: bool = False,
                 keep_aspect_ratio: bool = True, precision: str = 'fp32',
                 compile: Union[bool, str] = False) -> None:
        import torch

        from depth_estimation.model.checkpoint import load_checkpoint

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
        self.compiled = compile
        if compile:
            self.model = torch.compile(self.model, **(
                {'backend': compile} if isinstance(compile, str) else {}))
        self.protocol = protocol
        self.pad_input = pad_input and protocol == 'official'
        self.flip = flip
        self.keep_aspect_ratio = keep_aspect_ratio
        super().__init__(ArtifactMetadata.from_model_config(model.config))

    def run_outputs(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        return {self.metadata.output_name: self.run_network(tensor)}

    def run_network(self, tensor: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            batch = torch.from_numpy(tensor).to(self.device)  # (1, 3, h, w)
            if self.flip:
                batch = torch.cat([batch, torch.flip(batch, dims=[3])])  # (2, 3, h, w)
            depth = self.model(batch)  # (B, 1, h, w)
            if self.flip:
                depth = (depth[:1] + torch.flip(depth[1:], dims=[3])) / 2
        return depth.float().cpu().numpy()

    def infer(self, rgb: np.ndarray) -> np.ndarray:
        if self.protocol == 'letterbox':
            return super().infer(rgb)
        import torch

        from depth_estimation.model.protocol import infer_official

        if self._closed:
            raise RuntimeError(f'{self.name} backend is closed')
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f'expected RGB uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}')
        start = time.perf_counter()
        image = torch.from_numpy(rgb).to(self.device).permute(2, 0, 1)[None].float() / 255.0
        prepared = time.perf_counter()
        with torch.inference_mode():
            depth = infer_official(self.model, image, pad_input=self.pad_input, flip=self.flip,
                                   keep_aspect_ratio=self.keep_aspect_ratio)  # (1, 1, H, W)
        inferred = time.perf_counter()
        result = depth[0, 0].float().cpu().numpy()
        self.last_timings = Timings(prepared - start, inferred - prepared,
                                    time.perf_counter() - inferred)
        return result

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), 'device': str(self.device), 'artifact': self.source,
                'protocol': self.protocol, 'pad_input': self.pad_input, 'flip': self.flip,
                'precision': self.precision, 'compile': self.compiled}

    def close(self) -> None:
        self.model = None
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
