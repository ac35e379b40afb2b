"""ONNX Runtime backend (CPU by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from depth_estimation.artifacts import read_metadata
from depth_estimation.inference.base import DepthBackend


class OnnxRuntimeBackend(DepthBackend):
    """Runs an exported `.onnx` with its metadata file beside it."""

    name = 'onnxruntime'

    def __init__(self, model_path: Union[str, Path], num_threads: int = 0,
                 providers: Optional[Sequence[str]] = None) -> None:
        import onnxruntime

        model_path = Path(model_path)
        if not model_path.is_file():
            raise FileNotFoundError(f'ONNX model not found: {model_path}')
        super().__init__(read_metadata(model_path))
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        if num_threads > 0:
            options.intra_op_num_threads = num_threads
        try:
            self.session = onnxruntime.InferenceSession(
                str(model_path), options, providers=list(providers or ['CPUExecutionProvider']))
        except Exception as error:  # onnxruntime raises its own exception types for corrupt files
            raise ValueError(f'cannot load ONNX model {model_path}: {error}') from error
        self._check_io()
        self.model_path = model_path

    def _check_io(self) -> None:
        """Refuse a model whose inputs and outputs do not match its metadata."""
        metadata = self.metadata
        expected_shape = [1, 3, metadata.input_height, metadata.input_width]
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        if inputs.get(metadata.input_name) != expected_shape:
            raise ValueError(
                f'ONNX inputs {inputs} do not match the metadata ({metadata.input_name!r} '
                f'{expected_shape}); the model and its .json do not belong together')
        if metadata.output_name not in outputs:
            raise ValueError(f'ONNX outputs {outputs} lack {metadata.output_name!r}')

    def run_network(self, tensor: np.ndarray) -> np.ndarray:
        return self.session.run([self.metadata.output_name], {self.metadata.input_name: tensor})[0]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), 'providers': ','.join(self.session.get_providers()),
                'artifact': self.model_path.name}

    def close(self) -> None:
        self.session = None
        super().close()
