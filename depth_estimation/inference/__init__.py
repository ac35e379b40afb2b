"""Inference backends behind one interface (`DepthBackend`): numpy in, numpy out, no ROS.

Heavy libraries (onnxruntime, torch) are imported only when their backend is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

from depth_estimation.inference.base import DepthBackend, Timings

BACKENDS = ('auto', 'onnxruntime', 'torch')
_BY_SUFFIX = {'.onnx': 'onnxruntime', '.pt': 'torch', '.pth': 'torch', '.ckpt': 'torch'}


def open_backend(model_path: Union[str, Path], backend: str = 'auto',
                 **options: Any) -> DepthBackend:
    """Open `model_path` with the named backend; 'auto' picks it from the file suffix.

    Options: `num_threads` (both), `providers` (onnxruntime), `device` (torch).
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
    raise ValueError(f'unknown backend {backend!r}; expected one of {BACKENDS}')


__all__ = ['BACKENDS', 'DepthBackend', 'Timings', 'open_backend']
