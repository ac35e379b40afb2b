"""ONNX Runtime backend: CPU with configurable threads, the CUDA execution provider when present.

I/O binding (default on): the input and every output are ONNX Runtime values allocated once on
the execution device and bound by name; a frame is one in-place copy of the input and
`run_with_iobinding`. On the CPU this saves the per-call output allocation; with CUDA it keeps
the buffers on the GPU between frames (only the input goes up and the outputs come down).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from depth_estimation.artifacts import read_metadata
from depth_estimation.inference.base import DepthBackend

GRAPH_OPTIMIZATIONS = ('all', 'extended', 'basic', 'disable')
DEVICES = ('auto', 'cpu', 'cuda')


def default_providers(device: str = 'auto') -> list[str]:
    """CUDA first when this onnxruntime build has it (onnxruntime-gpu) and `device` allows."""
    import onnxruntime

    if device not in DEVICES:
        raise ValueError(f'device {device!r} is not one of {DEVICES}')
    available = onnxruntime.get_available_providers()
    if device != 'cpu' and 'CUDAExecutionProvider' in available:
        return ['CUDAExecutionProvider', 'CPUExecutionProvider']
    if device == 'cuda':
        raise ValueError('device cuda: this onnxruntime has no CUDAExecutionProvider '
                         f'(available: {available}); install onnxruntime-gpu')
    return ['CPUExecutionProvider']


class OnnxRuntimeBackend(DepthBackend):
    """Runs an exported `.onnx` with its metadata file beside it."""

    name = 'onnxruntime'

    def __init__(self, model_path: Union[str, Path], num_threads: int = 0,
                 providers: Optional[Sequence[str]] = None, device: str = 'auto',
                 io_binding: bool = True, graph_optimization: str = 'all',
                 inter_op_threads: int = 0, profile: bool = False,
                 spinning: bool = False) -> None:
        import onnxruntime

        model_path = Path(model_path)
        if not model_path.is_file():
            raise FileNotFoundError(f'ONNX model not found: {model_path}')
        if graph_optimization not in GRAPH_OPTIMIZATIONS:
            raise ValueError(f'graph_optimization {graph_optimization!r} is not one of '
                             f'{GRAPH_OPTIMIZATIONS}')
        super().__init__(read_metadata(model_path))
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = {
            'all': onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL,
            'extended': onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            'basic': onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            'disable': onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL}[graph_optimization]
        if num_threads > 0:
            options.intra_op_num_threads = num_threads
        if inter_op_threads > 0:
            options.inter_op_num_threads = inter_op_threads
        options.enable_profiling = profile
        # Idle worker threads sleep instead of spinning by default: with the small default model,
        # spinning doubled the end-to-end time on 2 cores (docs/benchmark.md).
        if not spinning:
            options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        try:
            # The exporter records optimizers the model must be opened without (ZoeD_K: folding
            # its relative-position bias takes more memory than most machines have).
            disabled = self.metadata.extra.get('onnxruntime', {}).get('disabled_optimizers', [])
            self.session = onnxruntime.InferenceSession(
                str(model_path), options, providers=list(providers or default_providers(device)),
                disabled_optimizers=list(disabled))
        except Exception as error:  # onnxruntime raises its own exception types for corrupt files
            raise ValueError(f'cannot load ONNX model {model_path}: {error}') from error
        self._check_io()
        names = [o.name for o in self.session.get_outputs()]
        # the depth first, then the others (e.g. 'confidence') in the graph's order
        self._output_names = (self.metadata.output_name,
                              *(n for n in names if n != self.metadata.output_name))
        self.model_path = model_path
        self.num_threads = num_threads
        self.graph_optimization = graph_optimization
        self.spinning = spinning
        self.on_cuda = self.session.get_providers()[0] == 'CUDAExecutionProvider'
        self._binding: Any = None
        self._outputs: dict[str, Any] = {}
        if io_binding:
            self._bind()

    @property
    def output_names(self) -> tuple[str, ...]:
        return self._output_names

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

    def _bind(self) -> None:
        """Allocate the input and (static-shape) outputs once on the device and bind them."""
        import onnxruntime

        device = 'cuda' if self.on_cuda else 'cpu'
        binding = self.session.io_binding()
        shape = [1, 3, self.metadata.input_height, self.metadata.input_width]
        self._input = onnxruntime.OrtValue.ortvalue_from_shape_and_type(
            shape, np.float32, device, 0)
        binding.bind_ortvalue_input(self.metadata.input_name, self._input)
        for output in self.session.get_outputs():
            if all(isinstance(d, int) and d > 0 for d in output.shape):
                value = onnxruntime.OrtValue.ortvalue_from_shape_and_type(
                    output.shape, _numpy_type(output.type), device, 0)
                binding.bind_ortvalue_output(output.name, value)
                self._outputs[output.name] = value
            else:  # dynamic output shape: ONNX Runtime allocates it on each run
                binding.bind_output(output.name, device)
        self._binding = binding

    def run_outputs(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        if self._binding is None:
            names = [o.name for o in self.session.get_outputs()]
            return dict(zip(names, self.session.run(names, {self.metadata.input_name: tensor})))
        if tensor.shape != tuple(self._input.shape()):
            raise ValueError(f'input {tensor.shape} is not the model input {self._input.shape()}')
        self._input.update_inplace(np.ascontiguousarray(tensor, dtype=np.float32))
        self.session.run_with_iobinding(self._binding)
        if len(self._outputs) == len(self.session.get_outputs()):
            values = self._outputs
        else:
            values = dict(zip([o.name for o in self.session.get_outputs()],
                              self._binding.get_outputs()))
        # copy: the bound buffers are overwritten by the next frame
        return {name: np.array(value.numpy(), copy=True) for name, value in values.items()}

    def end_profiling(self) -> Optional[str]:
        """Stop ONNX Runtime's profiler (profile=True) and return its JSON trace file."""
        return self.session.end_profiling() if self.session is not None else None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), 'providers': ','.join(self.session.get_providers()),
                'artifact': self.model_path.name, 'io_binding': self._binding is not None,
                'threads': self.num_threads, 'graph_optimization': self.graph_optimization,
                'spinning': self.spinning}

    def close(self) -> None:
        self._binding = None
        self._outputs = {}
        self.session = None
        super().close()


def _numpy_type(onnx_type: str) -> type:
    """'tensor(float)' -> np.float32 (the output types our models have)."""
    types = {'tensor(float)': np.float32, 'tensor(float16)': np.float16,
             'tensor(double)': np.float64, 'tensor(int64)': np.int64, 'tensor(int32)': np.int32,
             'tensor(bool)': np.bool_, 'tensor(uint8)': np.uint8}
    if onnx_type not in types:
        raise ValueError(f'unsupported output type {onnx_type}')
    return types[onnx_type]
