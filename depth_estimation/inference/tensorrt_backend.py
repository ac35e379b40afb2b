"""TensorRT backend: a serialized engine run through the TensorRT 10 name-based API.

One engine, one execution context, one CUDA stream. Every I/O tensor is found by name
(`num_io_tensors`, `get_tensor_name`, `get_tensor_mode`), gets a pinned host buffer and a device
buffer allocated once at open, and its device address is given to the context once
(`set_tensor_address`); a frame is copy-in, `execute_async_v3`, copy-out, one synchronize. With
`cuda_graph=True` those three steps are captured once into a CUDA graph and each frame is a single
graph launch (less CPU launch overhead; the addresses never change, so the graph stays valid).

Before anything is deserialized the engine's metadata (`<engine>.json`, written by
`depth-estimation build-engine`) is compared with this machine: TensorRT version, GPU and
compute capability, input shape, and the engine file's sha256 (a truncated or corrupt file is
refused with a clear message instead of a crash inside TensorRT). The message says how to
rebuild. CUDA calls go through cuda-python (`tensorrt_common`, which says why not pycuda).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

import numpy as np

from depth_estimation.artifacts import file_sha256, metadata_path, read_metadata
from depth_estimation.inference.base import DepthBackend
from depth_estimation.inference.tensorrt_common import (EngineMismatchError, cuda_call,
                                                        dims_tuple, engine_problems, gpu_identity,
                                                        import_cudart, import_tensorrt,
                                                        rebuild_command, tensorrt_info)

if TYPE_CHECKING:
    import tensorrt as trt

PathLike = Union[str, Path]


@dataclass
class IOBuffer:
    """One engine I/O tensor: pinned host array (a view on `host_pointer`) and device memory."""

    name: str
    is_input: bool
    shape: tuple[int, ...]
    dtype: np.dtype
    host: np.ndarray
    host_pointer: int
    device_pointer: int

    @property
    def nbytes(self) -> int:
        return int(self.host.nbytes)


class TensorRTBackend(DepthBackend):
    """Runs `<model>.engine` with its `<model>.engine.json` beside it on CUDA device `device`."""

    name = 'tensorrt'

    def __init__(self, engine_path: PathLike, device: int = 0, cuda_graph: bool = False,
                 expected_input_size: Optional[Sequence[int]] = None,
                 num_threads: int = 0) -> None:  # num_threads: accepted like every backend
        engine_path = Path(engine_path)
        if not engine_path.is_file():
            raise FileNotFoundError(f'TensorRT engine not found: {engine_path}')
        if not metadata_path(engine_path).is_file():
            raise FileNotFoundError(
                f'no metadata beside {engine_path}: expected {metadata_path(engine_path)}. Build '
                'the engine with `depth-estimation build-engine`, which writes it.')
        metadata = read_metadata(engine_path)
        info = tensorrt_info(metadata)
        import_tensorrt()  # a clear error when TensorRT is missing or only its stubs exist
        import tensorrt as trt

        self._cudart = cudart = import_cudart()
        self.engine_path = engine_path
        self.device = device
        self._buffers: dict[str, IOBuffer] = {}
        self._stream: Any = None
        self._graph: Any = None
        self._graph_exec: Any = None
        self._context: Optional[trt.IExecutionContext] = None
        self._engine: Optional[trt.ICudaEngine] = None
        super().__init__(metadata)
        self._closed = True  # until everything below succeeded

        cuda_call(cudart.cudaSetDevice(device), f'cudaSetDevice({device})')
        problems = engine_problems(metadata, trt.__version__, gpu_identity(device),
                                   expected_input_size)
        recorded = info.get('engine_sha256')
        if recorded and file_sha256(engine_path) != recorded:
            problems.append('the engine file does not match the sha256 in its metadata '
                            '(truncated, corrupt or replaced)')
        if problems:
            raise EngineMismatchError(
                f'{engine_path} cannot run here: ' + '; '.join(problems) + '. TensorRT engines '
                'are tied to the GPU and TensorRT version they were built with: rebuild it on '
                f'this machine with `{rebuild_command(metadata, engine_path)}`')

        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        engine = self._runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if engine is None:
            raise ValueError(f'cannot load TensorRT engine {engine_path}: TensorRT could not '
                             'deserialize it (corrupt file, or built by another TensorRT). '
                             f'Rebuild it: `{rebuild_command(metadata, engine_path)}`')
        self._engine = engine
        context = engine.create_execution_context()
        if context is None:
            raise RuntimeError(f'TensorRT could not create an execution context for '
                               f'{engine_path} (out of GPU memory?)')
        self._context = context
        try:
            self._stream = cuda_call(cudart.cudaStreamCreate(), 'cudaStreamCreate')
            self._allocate(engine, context)
            self._closed = False
            self.cuda_graph = False
            if cuda_graph:
                self.cuda_graph = self._capture_graph()
        except BaseException:
            self.close()
            raise

    def _allocate(self, engine: trt.ICudaEngine, context: trt.IExecutionContext) -> None:
        """Pinned host + device buffer per I/O tensor, by name; addresses set once."""
        import tensorrt as trt
        cudart = self._cudart
        metadata = self.metadata
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            shape = dims_tuple(engine.get_tensor_shape(name))
            if is_input and any(d < 0 for d in shape):  # dynamic engine: pin the metadata size
                if not context.set_input_shape(
                        name, (1, 3, metadata.input_height, metadata.input_width)):
                    raise ValueError(f'engine input {name!r} does not accept the metadata size')
                shape = dims_tuple(context.get_tensor_shape(name))
            elif not is_input:
                shape = dims_tuple(context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise ValueError(f'engine tensor {name!r} has no static shape ({shape})')
            nbytes = int(np.prod(shape)) * dtype.itemsize
            host_pointer = int(cuda_call(cudart.cudaMallocHost(nbytes), 'cudaMallocHost'))
            raw = (ctypes.c_byte * nbytes).from_address(host_pointer)
            host = np.frombuffer(raw, dtype=dtype).reshape(shape)
            buffer = IOBuffer(name, is_input, shape, dtype, host, host_pointer, 0)
            self._buffers[name] = buffer  # registered before cudaMalloc: close() frees it
            buffer.device_pointer = int(cuda_call(cudart.cudaMalloc(nbytes), 'cudaMalloc'))
            if not context.set_tensor_address(name, buffer.device_pointer):
                raise RuntimeError(f'TensorRT refused the address of tensor {name!r}')
        expected = (1, 3, metadata.input_height, metadata.input_width)
        image = self._buffers.get(metadata.input_name)
        if image is None or not image.is_input or image.shape != expected:
            inputs = {b.name: b.shape for b in self._buffers.values() if b.is_input}
            raise EngineMismatchError(f'engine inputs {inputs} do not match the metadata '
                                      f'({metadata.input_name!r} {expected})')
        output = self._buffers.get(metadata.output_name)
        if output is None or output.is_input:
            outputs = [b.name for b in self._buffers.values() if not b.is_input]
            raise EngineMismatchError(f'engine outputs {outputs} lack '
                                      f'{metadata.output_name!r}')

    @property
    def output_names(self) -> tuple[str, ...]:
        """The engine's outputs by name, the depth first (a `confidence` output when exported)."""
        depth = self.metadata.output_name
        return (depth, *(b.name for b in self._buffers.values()
                         if not b.is_input and b.name != depth))

    def _enqueue(self) -> None:
        """Copy in, run, copy out: all asynchronous on the one stream."""
        cudart = self._cudart
        for buffer in self._buffers.values():
            if buffer.is_input:
                cuda_call(cudart.cudaMemcpyAsync(
                    buffer.device_pointer, buffer.host_pointer, buffer.nbytes,
                    cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, self._stream),
                    f'cudaMemcpyAsync ({buffer.name} to the GPU)')
        assert self._context is not None
        if not self._context.execute_async_v3(int(self._stream)):
            raise RuntimeError('TensorRT execute_async_v3 failed (see the TensorRT log)')
        for buffer in self._buffers.values():
            if not buffer.is_input:
                cuda_call(cudart.cudaMemcpyAsync(
                    buffer.host_pointer, buffer.device_pointer, buffer.nbytes,
                    cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, self._stream),
                    f'cudaMemcpyAsync ({buffer.name} from the GPU)')

    def _capture_graph(self) -> bool:
        """Capture `_enqueue` into a CUDA graph; False (and plain launches) if that fails."""
        cudart = self._cudart
        self._enqueue()  # TensorRT sets up its resources on the first enqueue, outside capture
        cuda_call(cudart.cudaStreamSynchronize(self._stream), 'cudaStreamSynchronize')
        mode = cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        cuda_call(cudart.cudaStreamBeginCapture(self._stream, mode), 'cudaStreamBeginCapture')
        try:
            self._enqueue()
        finally:
            result = cudart.cudaStreamEndCapture(self._stream)
        try:
            self._graph = cuda_call(result, 'cudaStreamEndCapture')
            self._graph_exec = cuda_call(cudart.cudaGraphInstantiate(self._graph, 0),
                                         'cudaGraphInstantiate')
        except RuntimeError as error:
            print(f'tensorrt backend: CUDA graph capture failed, running without it ({error})')
            self._graph = self._graph_exec = None
            return False
        return True

    def run_outputs(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        image = self._buffers[self.metadata.input_name]
        if tensor.shape != image.shape:
            raise ValueError(f'input {tensor.shape} is not the engine input {image.shape}')
        np.copyto(image.host, tensor, casting='same_kind')
        cudart = self._cudart
        if self._graph_exec is not None:
            cuda_call(cudart.cudaGraphLaunch(self._graph_exec, self._stream), 'cudaGraphLaunch')
        else:
            self._enqueue()
        cuda_call(cudart.cudaStreamSynchronize(self._stream), 'cudaStreamSynchronize')
        return {b.name: b.host.astype(np.float32, copy=True)
                for b in self._buffers.values() if not b.is_input}

    def describe(self) -> dict[str, Any]:
        info = self.metadata.extra.get('tensorrt', {})
        return {**super().describe(), 'artifact': self.engine_path.name,
                'precision': info.get('precision'), 'typing': info.get('typing'),
                'tensorrt': info.get('version'), 'cuda_graph': getattr(self, 'cuda_graph', False)}

    def close(self) -> None:
        """Free graph, buffers and stream (idempotent; also after a failed open)."""
        cudart = getattr(self, '_cudart', None)
        if cudart is not None:
            if self._graph_exec is not None:
                cudart.cudaGraphExecDestroy(self._graph_exec)
            if self._graph is not None:
                cudart.cudaGraphDestroy(self._graph)
            for buffer in self._buffers.values():
                if buffer.device_pointer:
                    cudart.cudaFree(buffer.device_pointer)
                if buffer.host_pointer:
                    cudart.cudaFreeHost(buffer.host_pointer)
            if self._stream is not None:
                cudart.cudaStreamDestroy(self._stream)
        self._graph_exec = self._graph = self._stream = None
        self._buffers = {}
        self._context = None
        self._engine = None
        super().close()
