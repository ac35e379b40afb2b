"""What the TensorRT builder and the TensorRT backend share: imports, CUDA calls, engine metadata.

CUDA goes through cuda-python (`cuda.bindings.runtime`, NVIDIA's official bindings, the ones
TensorRT 10's own Python samples use): binary wheels on PyPI for x86-64 and aarch64 (no compiler
or CUDA toolkit at install time, unlike pycuda), the runtime API's primary context, which TensorRT,
PyTorch and ONNX Runtime share in one process (pycuda's `autoinit` creates a context of its own),
and every call returns its error code, which `cuda_call` turns into an exception that names the
call. Without a GPU driver the import still works and the first call fails with a clear message.

The engine's metadata is the artifact metadata of its ONNX (`depth_estimation.artifacts`, input
size and preprocessing) plus `extra['tensorrt']`, what the engine is tied to: TensorRT version,
GPU name and compute capability, input shape, precision, sha256 of the ONNX. `engine_problems`
compares it with the machine; the runtime refuses a mismatched engine with `rebuild_command`.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any, Mapping, Optional, Sequence, Union

from depth_estimation.artifacts import ArtifactMetadata

PathLike = Union[str, Path]
ENGINE_SUFFIXES = ('.engine', '.plan', '.trt')


class TensorRTUnavailableError(ImportError):
    """TensorRT or CUDA cannot be used on this machine; the message says what is missing."""


class CudaError(RuntimeError):
    """A CUDA runtime call failed; the message names the call and CUDA's error."""


class EngineMismatchError(ValueError):
    """The engine was built for another GPU, TensorRT version or input; rebuild it."""


def import_tensorrt() -> ModuleType:
    """The real `tensorrt` module, or `TensorRTUnavailableError` saying how to get it.

    `pip install tensorrt-stubs` creates a `tensorrt` directory holding only `.pyi` files, which
    Python imports as an empty namespace package: that is detected and reported as "stubs only".
    """
    try:
        import tensorrt
    except ImportError as error:
        raise TensorRTUnavailableError(
            f'TensorRT is not installed ({error}). On an NVIDIA machine install the TensorRT 10 '
            'Python package matching your CUDA (pip install tensorrt-cu12, or JetPack\'s '
            'python3-libnvinfer on Jetson).') from error
    if not hasattr(tensorrt, 'Runtime'):
        raise TensorRTUnavailableError(
            'the `tensorrt` module here is only the type stubs (tensorrt-stubs), not TensorRT: '
            'install the TensorRT 10 Python package on an NVIDIA machine to build or run '
            'engines.')
    return tensorrt


def import_cudart() -> ModuleType:
    """cuda-python's runtime module (`cuda.bindings.runtime`, or `cuda.cudart` before 12.6)."""
    try:
        from cuda.bindings import runtime
        return runtime
    except ImportError:
        pass
    try:
        from cuda import cudart  # cuda-python < 12.6
        return cudart
    except ImportError as error:
        raise TensorRTUnavailableError(
            'cuda-python is not installed: pip install cuda-python (the major version of your '
            'CUDA, e.g. 12.x for TensorRT 10 cu12 builds)') from error


def cuda_call(result: Any, what: str) -> Any:
    """Unpack a cuda-python result `(error, *values)`, raising `CudaError` on failure."""
    cudart = import_cudart()
    if isinstance(result, tuple):
        error, values = result[0], result[1:]
    else:
        error, values = result, ()
    if error != cudart.cudaError_t.cudaSuccess:
        name = cudart.cudaGetErrorName(error)[1]
        text = cudart.cudaGetErrorString(error)[1]
        name = name.decode() if isinstance(name, bytes) else str(name)
        text = text.decode() if isinstance(text, bytes) else str(text)
        hint = ''
        if name in ('cudaErrorInsufficientDriver', 'cudaErrorNoDevice'):
            hint = ' (no usable NVIDIA GPU or driver on this machine)'
        raise CudaError(f'{what} failed: {name}: {text}{hint}')
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def gpu_identity(device: int = 0) -> dict[str, str]:
    """Name and compute capability of CUDA device `device`, as stored in engine metadata."""
    cudart = import_cudart()
    count = cuda_call(cudart.cudaGetDeviceCount(), 'cudaGetDeviceCount')
    if device >= count:
        raise CudaError(f'CUDA device {device} does not exist ({count} devices)')
    properties = cuda_call(cudart.cudaGetDeviceProperties(device), 'cudaGetDeviceProperties')
    name = properties.name
    name = name.split(b'\0', 1)[0].decode() if isinstance(name, bytes) else str(name)
    return {'name': name.strip(), 'compute_capability': f'{properties.major}.{properties.minor}'}


def dims_tuple(dims: Any) -> tuple[int, ...]:
    """A TensorRT `Dims` as a tuple of ints (by index: `Dims` has `__len__` and `__getitem__`)."""
    return tuple(int(dims[i]) for i in range(len(dims)))


def tensorrt_info(metadata: ArtifactMetadata) -> dict[str, Any]:
    """The `tensorrt` block of an engine's metadata, or an error if it is not an engine's."""
    info = metadata.extra.get('tensorrt')
    if metadata.extra.get('format') != 'tensorrt' or not isinstance(info, Mapping):
        raise ValueError('this metadata belongs to no TensorRT engine (extra.format is '
                         f'{metadata.extra.get("format")!r}); build the engine with '
                         '`depth-estimation build-engine`, which writes it')
    return dict(info)


def rebuild_command(metadata: ArtifactMetadata, engine_path: PathLike) -> str:
    """The command that rebuilds `engine_path` on this machine from the same ONNX."""
    info = metadata.extra.get('tensorrt', {})
    onnx_name = info.get('onnx', {}).get('file', '<model>.onnx')
    precision = info.get('precision', 'fp16')
    command = f'depth-estimation build-engine {onnx_name} -o {engine_path} --precision {precision}'
    if precision == 'int8':
        command += ' --calibration-images <folder of typical frames>'
    return command


def engine_problems(metadata: ArtifactMetadata, tensorrt_version: str, gpu: Mapping[str, str],
                    expected_input_size: Optional[Sequence[int]] = None) -> list[str]:
    """Why an engine with `metadata` must not run here (empty: it may).

    TensorRT engines are specific to the TensorRT version (any change, as TensorRT's docs say,
    unless built version-compatible) and to the GPU model / compute capability they were built
    on. The input must be what the caller expects (the node's configured network size).
    """
    info = tensorrt_info(metadata)
    problems = []
    built_version = str(info.get('version', ''))
    if built_version != tensorrt_version:
        problems.append(f'built with TensorRT {built_version or "?"}, this machine has '
                        f'TensorRT {tensorrt_version}')
    built_gpu = info.get('gpu', {})
    if built_gpu.get('compute_capability') != gpu.get('compute_capability') or \
            built_gpu.get('name') != gpu.get('name'):
        problems.append(f'built for {built_gpu.get("name", "?")} (compute capability '
                        f'{built_gpu.get("compute_capability", "?")}), this GPU is '
                        f'{gpu.get("name", "?")} ({gpu.get("compute_capability", "?")})')
    shape = list(info.get('input_shape', []))
    metadata_shape = [1, 3, metadata.input_height, metadata.input_width]
    if shape != metadata_shape:
        problems.append(f'engine input shape {shape} does not match its metadata '
                        f'{metadata_shape}')
    if expected_input_size is not None and \
            tuple(expected_input_size) != (metadata.input_height, metadata.input_width):
        problems.append(f'engine input is {metadata.input_height}x{metadata.input_width}, '
                        f'expected {expected_input_size[0]}x{expected_input_size[1]}')
    return problems
