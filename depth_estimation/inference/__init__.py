"""Inference backends behind one interface (`DepthBackend`): numpy in, numpy out, no ROS.

Heavy libraries (onnxruntime, torch, tensorrt) are imported only when their backend is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

from depth_estimation.inference.base import CONFIDENCE_NAME, DepthBackend, DepthResult, Timings

BACKENDS = ('auto', 'onnxruntime', 'torch', 'tensorrt')
_BY_SUFFIX = {'.onnx': 'onnxruntime', '.pt': 'torch', '.pth': 'torch', '.ckpt': 'torch',
              '.engine': 'tensorrt', '.plan': 'tensorrt', '.trt': 'tensorrt'}


def open_backend(model_path: Union[str, Path], backend: str = 'auto',
                 **options: Any) -> DepthBackend:
    """Open `model_path` with the named backend; 'auto' picks it from the file suffix.

    Options: `num_threads` (all), `providers`, `device`, `io_binding`, `graph_optimization`
    (onnxruntime), `device`, `precision`, `compile` (torch), `device`, `cuda_graph`,
    `expected_input_size` (tensorrt).
    """
    model_path = Path(model_path)
    if backend == 'auto':
        backend = _BY_SUFFIX.get(model_path.suffix.lower(), '')
        if not backend:
            raise ValueError(f'cannot tell the backend of {model_path.name!r} from its suffix; '
                             f'expected one of {sorted(_BY_SUFFIX)} or an explicit backend')
    if backend == 'onnxruntime':
        from depth_estimation.inference.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(model_path, **options)
    if backend == 'torch':
        from depth_estimation.inference.torch_backend import TorchBackend

        return TorchBackend(model_path, **options)
    if backend == 'tensorrt':
        from depth_estimation.inference.tensorrt_backend import TensorRTBackend

        return TensorRTBackend(model_path, **options)
    raise ValueError(f'unknown backend {backend!r}; expected one of {BACKENDS}')


__all__ = ['BACKENDS', 'CONFIDENCE_NAME', 'DepthBackend', 'DepthResult', 'Timings', 'open_backend']
