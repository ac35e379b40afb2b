"""ONNX -> serialized TensorRT engine, with the TensorRT 10 API only, and its metadata file.

Precision has one option (`precision`) and one switch for how it is applied (`typing`):

- strongly typed network (`typing='strong'`, TensorRT's recommended mode since weak typing was
  deprecated in 10.12): every tensor keeps the type the ONNX gives it. FP32 comes from the FP32
  export, FP16 with an FP32 metric head from the `_fp16.onnx` variant (`export --fp16`), whose
  casts already say which layers run in FP32.
- weakly typed network with precision flags (`typing='weak'`): the FP32 ONNX with the FP16 (and
  INT8) builder flags; the metric head and the overflow-prone layers are pinned to FP32 with
  per-layer precision and OBEY_PRECISION_CONSTRAINTS. INT8 needs this mode (implicit
  quantization with an entropy calibrator fed from an image folder).
- `typing='auto'` picks strong whenever the ONNX already has the requested precision, else weak.
The mode that ran is printed and written into the metadata.

Everything TensorRT-specific is imported inside functions: this module imports without TensorRT,
and mypy checks it against `tensorrt-stubs` (test/test_static_typing.py).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, Union

import numpy as np

from depth_estimation.artifacts import (ArtifactMetadata, file_sha256, metadata_path,
                                        read_metadata)
from depth_estimation.export.fp16 import DEFAULT_FP16_SCOPES, FP32_OP_TYPES
from depth_estimation.inference.tensorrt_common import (cuda_call, dims_tuple, gpu_identity,
                                                        import_cudart, import_tensorrt)

if TYPE_CHECKING:
    import tensorrt as trt

PathLike = Union[str, Path]
PRECISIONS = ('fp32', 'fp16', 'int8')
TYPINGS = ('auto', 'strong', 'weak')
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp')
DEFAULT_WORKSPACE_MIB = 2048
# Engine against ONNX Runtime FP32 on the same inputs, max relative error per pixel: FP32 engines
# differ only by kernel choice (TF32 is off unless flagged); FP16 with an FP32 head is ZoeDepth's
# FP16 error budget; INT8 is reported, not limited.
CHECK_TOLERANCE = {'fp32': 1e-3, 'fp16': 5e-2, 'int8': float('inf')}


class EngineBuildError(RuntimeError):
    """TensorRT could not parse the ONNX or build the engine; the message lists why."""


@dataclass
class BuildResult:
    engine_path: Path
    metadata_path: Path
    precision: str
    typing: str  # 'strongly typed' or 'weakly typed (precision flags)'
    seconds: float
    check: dict[str, Any] = field(default_factory=dict)


def resolve_typing(precision: str, typing: str, onnx_precision: str) -> tuple[bool, str]:
    """(strongly typed?, why) for a requested precision on an ONNX of `onnx_precision`.

    Pure logic, tested without TensorRT. `onnx_precision` is the metadata's 'fp32' or
    'fp16-fp32head'.
    """
    if precision not in PRECISIONS:
        raise ValueError(f'precision {precision!r} is not one of {PRECISIONS}')
    if typing not in TYPINGS:
        raise ValueError(f'typing {typing!r} is not one of {TYPINGS}')
    onnx_is = 'fp16' if onnx_precision.startswith('fp16') else 'fp32'
    if precision == 'int8':
        if onnx_is == 'fp16':
            raise ValueError('build INT8 engines from the FP32 export (the calibrator measures '
                             'FP32 activations), not from the _fp16.onnx')
        if typing == 'strong':
            raise ValueError('INT8 with a strongly typed network needs Q/DQ nodes in the ONNX; '
                             'our exports have none: use --typing weak (calibration) or auto')
        return False, 'INT8 calibration needs a weakly typed network with precision flags'
    if precision == onnx_is:
        if typing == 'weak' and precision == 'fp16':
            raise ValueError('this ONNX is already FP16; precision flags apply to the FP32 '
                             'export: pass the FP32 .onnx with --typing weak, or use --typing '
                             'strong')
        if typing == 'weak':
            return False, 'requested: precision flags (FP32 needs none)'
        return True, f'the ONNX is {onnx_precision}: its types are the engine\'s'
    if precision == 'fp16' and onnx_is == 'fp32':
        if typing == 'strong':
            raise ValueError('a strongly typed FP16 engine takes its precision from the ONNX: '
                             'export with --fp16 and build from the _fp16.onnx, or use '
                             '--typing weak (precision flags)')
        return False, 'the ONNX is FP32: FP16 comes from precision flags, head pinned to FP32'
    raise ValueError(f'cannot build an {precision} engine from an {onnx_precision} ONNX; build '
                     'from the FP32 export')


def keep_layer_fp32(layer_name: str, fp16_scopes: Sequence[str] = DEFAULT_FP16_SCOPES) -> bool:
    """Whether a layer (named after its ONNX node, `/scope/.../OpType_3`) is pinned to FP32.

    Same rule as the FP16 ONNX variant: outside the FP16 scopes (the metric head) or an
    overflow-prone op type.
    """
    if not layer_name.startswith(tuple(fp16_scopes)):
        return True
    op_type = layer_name.rsplit('/', 1)[-1].split('_', 1)[0]
    return op_type in FP32_OP_TYPES


def find_images(folder: PathLike, limit: int) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f'calibration image folder not found: {folder}')
    images = sorted(p for p in folder.rglob('*') if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise ValueError(f'no images ({", ".join(IMAGE_SUFFIXES)}) in {folder}: INT8 '
                         'calibration needs typical frames of the deployment')
    if len(images) > limit:  # spread over the folder (sequences: not only the first seconds)
        images = [images[int(i)] for i in np.linspace(0, len(images) - 1, limit)]
    return images


def build_engine(onnx_path: PathLike, engine_path: PathLike, *, precision: str = 'fp16',
                 typing: str = 'auto', workspace_mib: int = DEFAULT_WORKSPACE_MIB,
                 timing_cache: Optional[PathLike] = None,
                 calibration_images: Optional[PathLike] = None, calibration_count: int = 200,
                 calibration_cache: Optional[PathLike] = None,
                 fp16_scopes: Sequence[str] = DEFAULT_FP16_SCOPES, device: int = 0,
                 check: bool = True, check_tolerance: Optional[float] = None,
                 progress: Callable[[str], None] = print) -> BuildResult:
    """Build `engine_path` from `onnx_path` (with its `.onnx.json`); write `<engine>.json`.

    The ONNX is checked against TensorRT's operator table first. With `check`, the engine is then
    run against ONNX Runtime on the same inputs; beyond `check_tolerance` (default per precision,
    `CHECK_TOLERANCE`) the engine is removed and `EngineBuildError` raised.
    """
    from depth_estimation.export.tensorrt_ops import require_tensorrt_support

    start = time.perf_counter()
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    onnx_metadata, onnx_precision, strong, why = _resolve_request(
        onnx_path, precision, typing, calibration_images, calibration_cache)
    typing_used = 'strongly typed' if strong else 'weakly typed (precision flags)'
    support = require_tensorrt_support(onnx_path)
    import_tensorrt()  # a clear error when TensorRT is missing or only its stubs are installed
    import tensorrt as trt
    gpu = gpu_identity(device)
    progress(f'[1/4] TensorRT {trt.__version__} on {gpu["name"]} (compute capability '
             f'{gpu["compute_capability"]}); {precision}, {typing_used}: {why}')

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    progress(f'[2/4] parsing {onnx_path.name} ({sum(support.op_counts.values())} nodes)')
    network, parser = _parse_network(builder, logger, onnx_path, strong)  # parser: owns weights
    input_shape = _check_network_io(network, onnx_metadata)

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    monitor = _progress_monitor(progress)  # referenced until the build ends
    config.progress_monitor = monitor
    cache = _load_timing_cache(config, timing_cache, progress)
    calibrator = None
    pinned = 0
    if not strong and precision in ('fp16', 'int8'):
        calibrator, pinned = _set_precision_flags(
            config, network, onnx_metadata, precision, fp16_scopes, calibration_images,
            calibration_count, calibration_cache, progress)

    progress(f'[3/4] building (workspace {workspace_mib} MiB); this takes minutes')
    _build_and_write(builder, network, config, calibrator, engine_path)
    _save_timing_cache(config, timing_cache, cache, progress)

    tensorrt_block = {
        'version': trt.__version__, 'gpu': gpu, 'input_shape': input_shape,
        'precision': precision, 'typing': typing_used, 'typing_reason': why,
        'onnx': {'file': onnx_path.name, 'sha256': file_sha256(onnx_path),
                 'precision': onnx_precision},
        'workspace_mib': workspace_mib, 'layers_pinned_fp32': pinned,
        'fp16_scopes': list(fp16_scopes), 'engine_sha256': file_sha256(engine_path),
        'operator_table': support.tensorrt_version,
    }
    if precision == 'int8':
        tensorrt_block['calibration'] = {
            'images': str(calibration_images) if calibration_images else None,
            'count': calibration_count, 'algorithm': 'entropy (IInt8EntropyCalibrator2)'}
    data = _engine_metadata(onnx_metadata, tensorrt_block)
    metadata_file = metadata_path(engine_path)
    _write_engine_metadata(metadata_file, data)
    result = BuildResult(engine_path, metadata_file, precision, typing_used,
                         time.perf_counter() - start)
    if check:
        progress('[4/4] checking the engine against ONNX Runtime (FP32 ONNX)')
        tolerance = CHECK_TOLERANCE[precision] if check_tolerance is None else check_tolerance
        result.check = check_engine(engine_path, onnx_path, tolerance, device, progress)
        data['extra']['check'] = result.check
        _write_engine_metadata(metadata_file, data)
    progress(f'wrote {engine_path} and {metadata_file.name} ({typing_used}, {precision}) in '
             f'{result.seconds:.0f} s')
    return result


def _resolve_request(onnx_path: Path, precision: str, typing: str,
                     calibration_images: Optional[PathLike],
                     calibration_cache: Optional[PathLike]
                     ) -> tuple[ArtifactMetadata, str, bool, str]:
    """The ONNX's metadata and precision, and (strongly typed?, why) for the requested build."""
    if not onnx_path.is_file():
        raise FileNotFoundError(f'ONNX model not found: {onnx_path}')
    onnx_metadata = read_metadata(onnx_path)
    onnx_precision = str(onnx_metadata.extra.get('precision', 'fp32'))
    strong, why = resolve_typing(precision, typing, onnx_precision)
    if precision == 'int8' and calibration_images is None and not (
            calibration_cache and Path(calibration_cache).is_file()):
        raise ValueError('INT8 needs --calibration-images (a folder of typical frames) or an '
                         'existing --calibration-cache')
    return onnx_metadata, onnx_precision, strong, why


def _parse_network(builder: trt.Builder, logger: trt.ILogger, onnx_path: Path,
                   strong: bool) -> tuple[trt.INetworkDefinition, trt.OnnxParser]:
    """The network TensorRT's ONNX parser makes of `onnx_path`; its errors, listed, on failure.

    The parser is returned too: it owns the network's weights, so it must outlive the build.
    """
    import tensorrt as trt

    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strong else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = []
        for index in range(parser.num_errors):
            error = parser.get_error(index)
            errors.append(f'{error.node_name() or "?"} ({error.node_operator() or "?"}): '
                          f'{error.desc()}')
        raise EngineBuildError(f'TensorRT could not parse {onnx_path}:\n  ' + '\n  '.join(errors))
    return network, parser


def _set_precision_flags(config: trt.IBuilderConfig, network: trt.INetworkDefinition,
                         metadata: ArtifactMetadata, precision: str,
                         fp16_scopes: Sequence[str], calibration_images: Optional[PathLike],
                         calibration_count: int, calibration_cache: Optional[PathLike],
                         progress: Callable[[str], None]) -> tuple[Any, int]:
    """Weak typing: the FP16 (and INT8, with its calibrator) flags, the FP32 layers pinned.

    Returns the calibrator (None without INT8; freed by the caller) and the pinned layer count.
    """
    import tensorrt as trt

    if not hasattr(trt.BuilderFlag, 'FP16'):
        raise EngineBuildError(f'TensorRT {trt.__version__} has no precision flags (weak '
                               'typing was removed): export with --fp16 and use --typing '
                               'strong')
    calibrator = None
    config.set_flag(trt.BuilderFlag.FP16)
    if precision == 'int8':
        config.set_flag(trt.BuilderFlag.INT8)
        calibrator = _make_calibrator(metadata, calibration_images,
                                      calibration_count, calibration_cache, progress)
        config.int8_calibrator = calibrator
    pinned = _pin_fp32_layers(network, fp16_scopes)
    config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    progress(f'      {pinned} layers pinned to FP32 (metric head, overflow-prone ops)')
    return calibrator, pinned


def _build_and_write(builder: trt.Builder, network: trt.INetworkDefinition,
                     config: trt.IBuilderConfig, calibrator: Any, engine_path: Path) -> None:
    """Build the serialized engine (freeing the calibrator's buffer after) into `engine_path`."""
    try:
        serialized = builder.build_serialized_network(network, config)
    finally:
        if calibrator is not None:
            calibrator.free()
    if serialized is None:
        raise EngineBuildError('TensorRT failed to build the engine; its log above says why '
                               '(a larger --workspace-mib helps when tactics were skipped)')
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    engine_path.write_bytes(bytes(memoryview(serialized)))


def _save_timing_cache(config: trt.IBuilderConfig, path: Optional[PathLike],
                       cache: Optional[trt.ITimingCache], progress: Callable[[str], None]) -> None:
    """Write the build's timing cache back to `path` (when one was loaded from there)."""
    if path is not None and cache is not None:
        Path(path).write_bytes(bytes(memoryview(config.get_timing_cache().serialize())))
        progress(f'      timing cache saved to {path}')


def _engine_metadata(onnx_metadata: ArtifactMetadata,
                     tensorrt_block: dict[str, Any]) -> dict[str, Any]:
    """The engine's metadata (as a dict): the ONNX's, with the `tensorrt` block in `extra`."""
    data = onnx_metadata.to_dict()
    data['extra'] = {'format': 'tensorrt', 'tensorrt': tensorrt_block,
                     'protocol': onnx_metadata.extra.get('protocol', {}),
                     **{k: onnx_metadata.extra[k] for k in ('outputs', 'training_camera')
                        if k in onnx_metadata.extra},
                     'onnx_extra': {k: onnx_metadata.extra.get(k)
                                    for k in ('opset', 'precision', 'exporter')}}
    return data


def _write_engine_metadata(metadata_file: Path, data: dict[str, Any]) -> None:
    """Validate `data` as `ArtifactMetadata` and write it as sorted, indented JSON."""
    metadata = ArtifactMetadata.from_dict(data)
    metadata_file.write_text(json.dumps(metadata.to_dict(), indent=2, sort_keys=True) + '\n')


def check_engine(engine_path: Path, onnx_path: Path, tolerance: float, device: int,
                 progress: Callable[[str], None]) -> dict[str, Any]:
    """Engine against ONNX Runtime on seeded random and the shipped sample frames."""
    from depth_estimation.inference.onnxruntime_backend import OnnxRuntimeBackend
    from depth_estimation.inference.tensorrt_backend import TensorRTBackend
    from depth_estimation.samples import load_samples

    reference_path = onnx_path
    fp32_source = read_metadata(onnx_path).extra.get('fp32_source')
    if fp32_source and (onnx_path.parent / fp32_source['file']).is_file():
        reference_path = onnx_path.parent / fp32_source['file']  # the FP32 model, not FP16
    frames = [(s.name, s.rgb) for s in load_samples()]
    frames.append(('random', np.random.default_rng(0).integers(0, 256, (480, 640, 3),
                                                               np.uint8)))
    worst = 0.0
    checks = []
    with TensorRTBackend(engine_path, device=device) as engine, \
            OnnxRuntimeBackend(reference_path, device='cpu') as reference:  # exact FP32
        for name, rgb in frames:
            expected_outputs = reference.infer_outputs(rgb)
            actual_outputs = engine.infer_outputs(rgb)
            expected = expected_outputs.depth.astype(np.float64)
            actual = actual_outputs.depth.astype(np.float64)
            error = np.abs(actual - expected) / np.maximum(np.abs(expected), 1e-12)
            check: dict[str, Any] = {'name': name, 'max_rel_error': float(error.max()),
                                     'median_rel_error': float(np.median(error))}
            worst = max(worst, float(error.max()))
            note = ''
            if expected_outputs.confidence is not None and \
                    actual_outputs.confidence is not None:
                # confidence lies in [0, 1]: its error is absolute (a fraction of the range)
                confidence_error = float(np.abs(actual_outputs.confidence.astype(np.float64)
                                                - expected_outputs.confidence).max())
                check['confidence_max_abs_error'] = confidence_error
                worst = max(worst, confidence_error)
                note = f', confidence max abs {confidence_error:.3g}'
            checks.append(check)
            progress(f'      {name}: max rel {error.max():.3g}, median '
                     f'{np.median(error):.3g}{note}')
    if not worst <= tolerance:
        engine_path.unlink(missing_ok=True)
        metadata_path(engine_path).unlink(missing_ok=True)
        raise EngineBuildError(
            f'the engine differs from ONNX Runtime by {worst:.3g} relative (tolerance '
            f'{tolerance:g}); {engine_path} was removed. Pass --check-tolerance to accept it or '
            '--no-check to skip the check')
    return {'reference': reference_path.name, 'tolerance_rel': tolerance, 'checks': checks}


def _check_network_io(network: trt.INetworkDefinition,
                      metadata: ArtifactMetadata) -> list[int]:
    """The parsed network must have the metadata's input, static, and its output by name."""
    inputs = {network.get_input(i).name: list(dims_tuple(network.get_input(i).shape))
              for i in range(network.num_inputs)}
    outputs = [network.get_output(i).name for i in range(network.num_outputs)]
    expected = [1, 3, metadata.input_height, metadata.input_width]
    if inputs.get(metadata.input_name) != expected:
        raise EngineBuildError(f'network inputs {inputs} do not match the metadata '
                               f'({metadata.input_name!r} {expected}); static shapes only')
    if metadata.output_name not in outputs:
        raise EngineBuildError(f'network outputs {outputs} lack {metadata.output_name!r}')
    return expected


def _pin_fp32_layers(network: trt.INetworkDefinition, fp16_scopes: Sequence[str]) -> int:
    """Weak typing: run the metric head and the overflow-prone layers in FP32."""
    import tensorrt as trt
    risky_types = {trt.LayerType.NORMALIZATION, trt.LayerType.SOFTMAX, trt.LayerType.REDUCE}
    pinned = 0
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        float_outputs = [j for j in range(layer.num_outputs)
                         if layer.get_output(j).dtype in (trt.float32, trt.float16)]
        if not float_outputs:
            continue
        if layer.type in risky_types or keep_layer_fp32(layer.name, fp16_scopes):
            layer.precision = trt.float32
            for j in float_outputs:
                layer.set_output_type(j, trt.float32)
            pinned += 1
    return pinned


def _load_timing_cache(config: trt.IBuilderConfig, path: Optional[PathLike],
                       progress: Callable[[str], None]) -> Optional[trt.ITimingCache]:
    """Start from a saved timing cache (tactic timings: rebuilds take seconds, not minutes)."""
    if path is None:
        return None
    path = Path(path)
    data = path.read_bytes() if path.is_file() else b''
    cache = config.create_timing_cache(data)
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        raise EngineBuildError(f'timing cache {path} was made on another GPU or TensorRT '
                               'version: delete it or pass another path')
    state = f'loaded, {len(data)} bytes' if data else 'new'
    progress(f'      timing cache {path} ({state})')
    return cache


def _progress_monitor(progress: Callable[[str], None]) -> trt.IProgressMonitor:
    """A `trt.IProgressMonitor` that prints each build phase and its step count."""
    import tensorrt as trt

    class PhasePrinter(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.depth: dict[str, int] = {}
            self.started: dict[str, float] = {}

        def phase_start(self, phase_name: str, parent_phase: Optional[str],
                        num_steps: int) -> None:
            self.depth[phase_name] = self.depth.get(parent_phase or '', -1) + 1
            self.started[phase_name] = time.perf_counter()
            if self.depth[phase_name] <= 1:
                progress(f'      {"  " * self.depth[phase_name]}{phase_name} '
                         f'({num_steps} steps)')

        def step_complete(self, phase_name: str, step: int) -> bool:
            return True  # never cancel

        def phase_finish(self, phase_name: str) -> None:
            if self.depth.get(phase_name, 0) <= 1:
                seconds = time.perf_counter() - self.started.get(phase_name, time.perf_counter())
                progress(f'      {"  " * self.depth.get(phase_name, 0)}{phase_name} done in '
                         f'{seconds:.1f} s')

    return PhasePrinter()


def _make_calibrator(metadata: ArtifactMetadata, folder: Optional[PathLike], count: int,
                     cache: Optional[PathLike], progress: Callable[[str], None]) -> Any:
    """An `IInt8EntropyCalibrator2` that feeds preprocessed frames through one device buffer."""
    import tensorrt as trt

    from depth_estimation.processing import Preprocessor
    from depth_estimation.samples import read_rgb

    if not hasattr(trt, 'IInt8EntropyCalibrator2'):
        raise EngineBuildError(f'TensorRT {trt.__version__} has no implicit INT8 calibration; '
                               'quantize the ONNX with Q/DQ nodes and build strongly typed')
    cudart = import_cudart()
    images = find_images(folder, count) if folder is not None else []
    preprocessor = Preprocessor.matching(metadata)
    nbytes = 4 * 3 * metadata.input_height * metadata.input_width
    cache_path = Path(cache) if cache is not None else None

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.index = 0
            self.device_buffer = int(cuda_call(cudart.cudaMalloc(nbytes), 'cudaMalloc'))

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: list[str]) -> list[int]:
            if self.index >= len(images):
                return []  # no more batches (TensorRT's documented end signal)
            tensor, _ = preprocessor.prepare(read_rgb(images[self.index]))  # (1, 3, h, w)
            tensor = np.ascontiguousarray(tensor, dtype=np.float32)
            cuda_call(cudart.cudaMemcpy(self.device_buffer, tensor.ctypes.data, nbytes,
                                        cudart.cudaMemcpyKind.cudaMemcpyHostToDevice),
                      'cudaMemcpy (calibration batch)')
            self.index += 1
            if self.index % 20 == 0 or self.index == len(images):
                progress(f'      calibration {self.index}/{len(images)} images')
            return [self.device_buffer]

        def read_calibration_cache(self) -> Optional[bytes]:
            if cache_path is not None and cache_path.is_file():
                progress(f'      calibration cache {cache_path} (images not read)')
                return cache_path.read_bytes()
            return None

        def write_calibration_cache(self, cache: Any) -> None:
            if cache_path is not None:
                cache_path.write_bytes(bytes(memoryview(cache)))

        def free(self) -> None:
            if self.device_buffer:
                cuda_call(cudart.cudaFree(self.device_buffer), 'cudaFree')
                self.device_buffer = 0

    progress(f'      INT8 entropy calibration on {len(images)} images from {folder}')
    return EntropyCalibrator()
