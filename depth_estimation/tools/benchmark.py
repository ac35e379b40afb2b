"""`depth-estimation benchmark`: latency, throughput, memory and FLOP efficiency per backend.

Each backend spec (`name[:option,...]`, listed in docs/benchmark.md) runs the same model on
`--frames` camera frames through the full `infer` path: p50/p90/p99 latency of the call and of each
stage (`DepthBackend.last_timings`), frames/s with one frame in flight, peak resident memory (the
kernel's high-water mark, reset per backend) and peak CUDA memory. FLOPs are counted from the ONNX
graph (MatMul, Gemm, Conv, ConvTranspose; 1 multiply-accumulate = 2 FLOPs) and divided by the
median inference time, against a GEMM ceiling measured in the same run with the same threads.
Writes `<output>.json` and `<output>.md` (with the machine described) and prints the markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from depth_estimation.inference.base import Timings
from depth_estimation.sizes import size_argument

DEFAULT_BACKENDS = ('onnxruntime', 'torch')
PERCENTILES = (50, 90, 99)
MIN_CPU_FPS = 25.0  # 640 x 480 frames end to end with ONNX Runtime on the robot's CPU


@dataclass
class BackendSpec:
    """A parsed `name:options` backend spec."""

    text: str
    backend: str
    options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> BackendSpec:
        name, _, rest = text.partition(':')
        if name not in ('onnxruntime', 'torch', 'tensorrt', 'litert'):
            raise ValueError(f'unknown backend {name!r} in {text!r}; expected onnxruntime, '
                             'torch, tensorrt or litert')
        options = {}
        for item in filter(None, rest.split(',')):
            key, _, value = item.partition('=')
            options[key.strip()] = value.strip()
        known = {'onnxruntime': {'threads', 'opt', 'fp16', 'nobinding', 'device', 'profile',
                                 'nospin', 'confidence', 'model'},
                 'torch': {'threads', 'fp16', 'bf16', 'compile', 'device'},
                 'tensorrt': {'engine', 'graph', 'device'},
                 'litert': {'threads', 'model'}}[name]
        unknown = set(options) - known
        if unknown:
            raise ValueError(f'{text!r}: unknown options {sorted(unknown)}; '
                             f'{name} takes {sorted(known)}')
        return cls(text, name, options)


@dataclass
class StageStats:
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float


@dataclass
class BackendResult:
    spec: str
    description: dict[str, Any]
    frames: int
    total: StageStats
    preprocess: StageStats
    inference: StageStats
    postprocess: StageStats
    throughput_fps: float
    load_seconds: float
    peak_rss_mib: float
    rss_before_mib: float
    peak_cuda_mib: Optional[float] = None
    gflops_per_s: Optional[float] = None
    ceiling_fraction: Optional[float] = None
    pre_post_fraction: float = 0.0  # (pre + post) / inference, medians
    op_profile: Optional[list[dict[str, Any]]] = None
    error: Optional[str] = None


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'benchmark', help='latency, throughput, memory and GFLOP/s of each backend',
        description=__doc__.split('\n\n')[0] + ' See docs/benchmark.md.')
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--preset', default=None,
                        help='a preset with seeded random weights (speed does not depend on the '
                             'values); default zoedepth_small')
    source.add_argument('--model', type=Path,
                        help='one of our checkpoints (.pt: every backend) or an exported .onnx '
                             '(onnxruntime and tensorrt only)')
    parser.add_argument('--backends', nargs='+', default=list(DEFAULT_BACKENDS),
                        help='backend specs (default: onnxruntime torch); see docs/benchmark.md')
    parser.add_argument('--frames', type=int, default=30, help='timed frames per backend')
    parser.add_argument('--warmup', type=int, default=3, help='untimed frames first')
    parser.add_argument('--input-size', type=size_argument(), default=(480, 640),
                        help='camera frame HxW fed to infer (default 480x640)')
    parser.add_argument('--network-size', type=size_argument(32), default=None,
                        help='network input HxW (multiples of 32); default: the model\'s own')
    parser.add_argument('--threads', type=int, default=0,
                        help='CPU threads of every backend and of the GEMM ceiling (default: '
                             'all cores)')
    parser.add_argument('--output', type=Path, default=Path('outputs/benchmark/benchmark'),
                        help='writes <output>.json and <output>.md')
    parser.add_argument('--profile-ops', action='store_true',
                        help='also profile ONNX Runtime and report its slowest op types')
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.frames < 1 or args.warmup < 0:
        raise ValueError('--frames must be >= 1 and --warmup >= 0')
    specs = [BackendSpec.parse(text) for text in args.backends]
    threads = args.threads or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix='benchmark_') as directory:
        report = run_benchmark(specs, preset=args.preset, model_path=args.model,
                               frames=args.frames, warmup=args.warmup,
                               frame_size=args.input_size, network_size=args.network_size,
                               threads=threads, workdir=Path(directory),
                               profile_ops=args.profile_ops)
    json_path, markdown_path = write_report(report, args.output)
    print(markdown_path.read_text())
    print(f'wrote {json_path} and {markdown_path}')
    return 0


def run_benchmark(specs: Sequence[BackendSpec], *, preset: Optional[str] = None,
                  model_path: Optional[Path] = None, frames: int = 30, warmup: int = 3,
                  frame_size: tuple[int, int] = (480, 640),
                  network_size: Optional[tuple[int, int]] = None, threads: int = 1,
                  workdir: Path, profile_ops: bool = False,
                  progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Prepare the artifacts once, then measure each backend; returns the report dict."""
    torch_model, onnx_path, model_name = _prepare_model(
        specs, preset, model_path, network_size, workdir, progress)
    flops = onnx_flops(onnx_path)
    torch_flops = torch_model_flops(torch_model) if torch_model is not None else None
    # one ceiling per thread count in use: a 1-thread row is compared with a 1-thread GEMM
    thread_counts = sorted({int(s.options.get('threads') or threads) for s in specs} | {threads})
    ceilings = {n: gemm_ceiling(flops['largest_gemm'], n) for n in thread_counts}
    ceiling = ceilings[threads]
    progress(f'model {model_name}: {flops["gflops"]:.2f} GFLOP per frame (ONNX graph), GEMM '
             f'ceiling ' + ', '.join(f'{c["gflops_per_s"]:.1f} GFLOP/s with {n} threads'
                                     for n, c in ceilings.items()) + f' ({ceiling["library"]})')
    rgb = np.random.default_rng(0).integers(0, 256, (*frame_size, 3), np.uint8)
    results = []
    for spec in specs:
        progress(f'{spec.text}: {warmup} warm-up + {frames} frames')
        try:
            result = measure_backend(spec, rgb, frames=frames, warmup=warmup, threads=threads,
                                     torch_model=torch_model, onnx_path=onnx_path,
                                     profile_ops=profile_ops)
        except (ImportError, ValueError, RuntimeError, FileNotFoundError) as error:
            progress(f'  skipped: {type(error).__name__}: {error}')
            results.append({'spec': spec.text, 'error': f'{type(error).__name__}: {error}'})
            continue
        spec_flops = flops if 'model' not in spec.options or spec.backend != 'onnxruntime' \
            else onnx_flops(Path(spec.options['model']))
        if result.inference.p50_ms > 0 and spec.backend != 'litert':
            result.gflops_per_s = spec_flops['gflops'] / (result.inference.p50_ms / 1e3)
            spec_ceiling = ceilings[int(spec.options.get('threads') or threads)]
            result.ceiling_fraction = result.gflops_per_s / spec_ceiling['gflops_per_s']
        progress(f'  p50 {result.total.p50_ms:.1f} ms (inference {result.inference.p50_ms:.1f}'
                 f' ms), {result.throughput_fps:.2f} frames/s, peak RSS '
                 f'{result.peak_rss_mib:.0f} MiB')
        results.append(asdict(result))
    return {'format': 'depth_estimation.benchmark/1', 'model': model_name,
            'onnx': onnx_path.name, 'frame_size': list(frame_size), 'frames': frames,
            'warmup': warmup, 'threads': threads, 'flops': flops, 'torch_flops': torch_flops,
            'gemm_ceiling': ceiling,
            'gemm_ceiling_by_threads': {str(n): c['gflops_per_s'] for n, c in ceilings.items()},
            'machine': describe_machine(), 'results': results,
            'targets': _targets(results)}


def _prepare_model(specs: Sequence[BackendSpec], preset: Optional[str],
                   model_path: Optional[Path], network_size: Optional[tuple[int, int]],
                   workdir: Path, progress: Callable[[str], None]) -> tuple[Any, Path, str]:
    """(torch model or None, ONNX path, model name): one model for every backend."""
    needs_torch = any(s.backend == 'torch' for s in specs)
    needs_fp16 = any(s.backend == 'onnxruntime' and 'fp16' in s.options for s in specs)
    if model_path is not None and model_path.suffix.lower() == '.onnx':
        if needs_torch:
            raise ValueError('torch backends need the PyTorch model: pass --model '
                             'checkpoint.pt or --preset, not an .onnx')
        if network_size is not None:
            raise ValueError('--network-size cannot change an exported .onnx')
        from depth_estimation.artifacts import read_metadata

        return None, model_path, read_metadata(model_path).model_name
    from depth_estimation.export.onnx_export import export_fp16_variant, export_onnx

    if model_path is not None:
        from depth_estimation.model.checkpoint import load_checkpoint

        model = load_checkpoint(model_path)
    else:
        from depth_estimation.model import get_preset
        from depth_estimation.model.init import randomize_weights
        from depth_estimation.model.zoedepth import build_model

        model = randomize_weights(build_model(get_preset(preset or 'zoedepth_small')), 0)
    if network_size is not None:
        model.config = model.config.replace(input_height=network_size[0],
                                            input_width=network_size[1])
    onnx_path = workdir / f'{model.config.name}.onnx'
    progress(f'exporting {model.config.name} ({model.config.input_height}x'
             f'{model.config.input_width}) to ONNX for the benchmark')
    export_onnx(model, onnx_path, random_checks=1, simplify=True, progress=lambda m: None)
    if needs_fp16:
        export_fp16_variant(model, onnx_path, random_checks=1, tensorrt_check='off',
                            progress=lambda m: None)
    return model, onnx_path, model.config.name


def open_spec(spec: BackendSpec, threads: int, torch_model: Any, onnx_path: Path,
              profile: bool = False) -> Any:
    """Open the backend a spec names."""
    options = spec.options
    spec_threads = int(options.get('threads') or threads)
    if spec.backend == 'onnxruntime':
        from depth_estimation.export.onnx_export import fp16_path
        from depth_estimation.inference.onnxruntime_backend import OnnxRuntimeBackend

        path = Path(options.get('model') or onnx_path)
        path = fp16_path(path) if 'fp16' in options else path
        return OnnxRuntimeBackend(path, num_threads=spec_threads,
                                  device=options.get('device') or 'auto',
                                  io_binding='nobinding' not in options,
                                  graph_optimization=options.get('opt') or 'all',
                                  profile=profile or 'profile' in options,
                                  spinning='nospin' not in options)
    if spec.backend == 'torch':
        from depth_estimation.inference.torch_backend import TorchBackend

        precision = 'fp16' if 'fp16' in options else 'bf16' if 'bf16' in options else 'fp32'
        compile_setting = (options['compile'] or True) if 'compile' in options else False
        return TorchBackend(torch_model, device=options.get('device') or 'cpu',
                            num_threads=spec_threads, precision=precision,
                            compile=compile_setting)
    if spec.backend == 'litert':
        return LiteRTRunner(Path(options.get('model') or ''), spec_threads)
    from depth_estimation.inference.tensorrt_backend import TensorRTBackend

    if not options.get('engine'):
        raise ValueError('tensorrt needs engine=<path> (build it with depth-estimation '
                         'build-engine)')
    return TensorRTBackend(options['engine'], device=int(options.get('device') or 0),
                           cuda_graph='graph' in options)


def measure_backend(spec: BackendSpec, rgb: np.ndarray, *, frames: int, warmup: int,
                    threads: int, torch_model: Any, onnx_path: Path,
                    profile_ops: bool = False) -> BackendResult:
    """Open, warm up and time one backend; memory high-water marks around it."""
    rss_before = _proc_status_mib('VmRSS') or float('nan')
    reset_peak_rss()
    cuda = _CudaMemory()
    start = time.perf_counter()
    backend = open_spec(spec, threads, torch_model, onnx_path)
    load_seconds = time.perf_counter() - start
    with backend:
        confidence = 'confidence' in spec.options
        if confidence and not backend.has_confidence:
            raise ValueError(f'{spec.text}: the model has no confidence output')
        for _ in range(warmup):
            backend.infer_outputs(rgb, confidence=confidence)
        totals, timings = [], []
        for _ in range(frames):
            begin = time.perf_counter()
            backend.infer_outputs(rgb, confidence=confidence)
            totals.append(time.perf_counter() - begin)
            timings.append(backend.last_timings)
        description = backend.describe()
    pre, inference, post = ([getattr(t, stage) for t in timings]
                            for stage in ('preprocess', 'inference', 'postprocess'))
    result = BackendResult(
        spec=spec.text, description=description, frames=frames, total=stage_stats(totals),
        preprocess=stage_stats(pre), inference=stage_stats(inference),
        postprocess=stage_stats(post), throughput_fps=frames / sum(totals),
        load_seconds=load_seconds, peak_rss_mib=peak_rss_mib(), rss_before_mib=rss_before,
        peak_cuda_mib=cuda.peak_mib())
    inference_median = statistics.median(inference)
    result.pre_post_fraction = (statistics.median(pre) + statistics.median(post)) / \
        inference_median if inference_median > 0 else float('nan')
    if profile_ops and spec.backend == 'onnxruntime':
        result.op_profile = profile_onnxruntime(spec, threads, onnx_path, rgb, frames=5)
    return result


class LiteRTRunner:
    """A FastDepth-style TFLite file (uint8 RGB in, quantised metres out) in ai-edge-litert, with
    the interface the benchmark times: `infer_outputs`, `last_timings`, `describe`, `close`.

    Pre: the frame resized to the file's input (INTER_AREA); inference: one `invoke`; post: the
    output dequantised and resized back to the frame (bilinear), as a node would use it.
    """

    has_confidence = False

    def __init__(self, path: Path, threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter  # ImportError: the row is skipped

        if not path.is_file():
            raise FileNotFoundError(f'TFLite file not found: {path} (litert:model=PATH)')
        self.path, self.threads = path, threads
        self.interpreter = Interpreter(str(path), num_threads=threads)
        self.interpreter.allocate_tensors()
        self.source = self.interpreter.get_input_details()[0]
        self.target = self.interpreter.get_output_details()[0]
        self.last_timings = Timings()

    def infer_outputs(self, rgb: np.ndarray, confidence: bool = False) -> np.ndarray:
        import cv2

        start = time.perf_counter()
        height, width = self.source['shape'][1:3]
        small = cv2.resize(rgb, (int(width), int(height)), interpolation=cv2.INTER_AREA)
        prepared = time.perf_counter()
        self.interpreter.set_tensor(self.source['index'], small[np.newaxis])
        self.interpreter.invoke()
        quantised = self.interpreter.get_tensor(self.target['index'])[0, :, :, 0]  # (h, w)
        inferred = time.perf_counter()
        scale, zero_point = self.target['quantization']
        metres = (quantised.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)
        depth = cv2.resize(metres, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
        self.last_timings = Timings(prepared - start, inferred - prepared,
                                    time.perf_counter() - inferred)
        return depth  # (H, W) metres

    def describe(self) -> dict[str, Any]:
        return {'backend': 'litert', 'model': self.path.name, 'threads': self.threads,
                'input_size': 'x'.join(str(v) for v in self.source['shape'][1:3]),
                'input_dtype': str(np.dtype(self.source['dtype']))}

    def close(self) -> None:
        self.interpreter = None

    def __enter__(self) -> LiteRTRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def stage_stats(seconds: Sequence[float]) -> StageStats:
    values = np.asarray(seconds, dtype=np.float64) * 1e3
    p50, p90, p99 = (float(np.percentile(values, q)) for q in PERCENTILES)
    return StageStats(p50, p90, p99, float(values.mean()))


def profile_onnxruntime(spec: BackendSpec, threads: int, onnx_path: Path, rgb: np.ndarray,
                        frames: int) -> list[dict[str, Any]]:
    """ONNX Runtime's own profiler: share of node time per op type, slowest first."""
    backend = open_spec(spec, threads, None, onnx_path, profile=True)
    with backend:
        for _ in range(frames):
            backend.infer(rgb)
        trace = backend.end_profiling()
    events = json.loads(Path(trace).read_text())
    Path(trace).unlink(missing_ok=True)
    per_op: dict[str, float] = {}
    for event in events:
        if event.get('cat') == 'Node' and event.get('name', '').endswith('_kernel_time'):
            op = event.get('args', {}).get('op_name', '?')
            per_op[op] = per_op.get(op, 0.0) + float(event.get('dur', 0))
    total = sum(per_op.values()) or 1.0
    ranked = sorted(per_op.items(), key=lambda item: -item[1])
    return [{'op': op, 'share': us / total, 'ms_per_frame': us / 1e3 / frames}
            for op, us in ranked[:12]]


def onnx_flops(onnx_path: Path) -> dict[str, Any]:
    """FLOPs of one forward pass from the graph: 2 x multiply-accumulates of MatMul, Gemm, Conv,
    ConvTranspose (shapes by ONNX shape inference), and the largest one as an (M, K, N) GEMM."""
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(str(onnx_path)), data_prop=True)
    graph = model.graph
    shapes: dict[str, list[int]] = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = [d.dim_value for d in dims]
    for initializer in graph.initializer:
        shapes[initializer.name] = list(initializer.dims)
    counted_ops = ('MatMul', 'Gemm', 'Conv', 'ConvTranspose')
    unknown = {name for node in graph.node if node.op_type in counted_ops
               for name in (*node.input[:2], node.output[0])
               if not shapes.get(name) or 0 in shapes[name]}
    if unknown:  # shapes computed at run time (the unsimplified trace): ask ONNX Runtime
        shapes.update(_runtime_shapes(model, sorted(unknown)))
    total = 0
    per_op: dict[str, int] = {}
    largest = (0, (1, 1, 1))
    for node in graph.node:
        if node.op_type not in counted_ops:
            continue
        a = shapes.get(node.input[0], [])
        b = shapes.get(node.input[1], [])
        out = shapes.get(node.output[0], [])
        if not a or not b or not out or 0 in a + b + out:
            raise ValueError(f'cannot count FLOPs of {node.name}: unknown shapes')
        attributes = {x.name: onnx.helper.get_attribute_value(x) for x in node.attribute}
        if node.op_type == 'MatMul':
            k = a[-1]
            n = out[-1]
            m = int(np.prod(out)) // n
        elif node.op_type == 'Gemm':
            k = a[0] if attributes.get('transA', 0) else a[-1]
            m, n = out[0], out[1]
        elif node.op_type == 'Conv':
            group = int(attributes.get('group', 1))
            n = out[1] // group
            k = b[1] * int(np.prod(b[2:]))  # Cin / group x kernel
            m = int(np.prod(out)) // n  # (N x H x W) x group
        else:  # ConvTranspose: every input element scatters Cout / group x kernel products
            group = int(attributes.get('group', 1))
            k = b[1] * int(np.prod(b[2:]))
            n = 1
            m = int(np.prod(a))
        macs = m * k * n
        total += macs
        per_op[node.op_type] = per_op.get(node.op_type, 0) + 2 * macs
        if macs > largest[0] and node.op_type != 'ConvTranspose':
            largest = (macs, (m, k, n))
    return {'gflops': 2 * total / 1e9, 'flops_by_op': per_op,
            'largest_gemm': list(largest[1]),
            'counted': 'MatMul, Gemm, Conv, ConvTranspose; 1 MAC = 2 FLOPs'}


def _runtime_shapes(model: Any, names: Sequence[str]) -> dict[str, list[int]]:
    """Shapes of intermediate tensors from one ONNX Runtime run on zeros."""
    import onnx
    import onnxruntime

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.output[:]
    probe.graph.output.extend(onnx.ValueInfoProto(name=name) for name in names)
    session = onnxruntime.InferenceSession(probe.SerializeToString(),
                                           providers=['CPUExecutionProvider'])
    feeds = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32)
             for i in session.get_inputs()}
    return {name: list(value.shape) for name, value in zip(names, session.run(names, feeds))}


def torch_model_flops(model: Any) -> Optional[float]:
    """GFLOPs of one forward pass by torch.utils.flop_counter (a cross-check of the ONNX count)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    config = model.config
    image = torch.zeros(1, 3, config.input_height, config.input_width)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model.eval()(image)
    return float(counter.get_total_flops()) / 1e9


def gemm_ceiling(shape: Sequence[int], threads: int, repeats: int = 5) -> dict[str, Any]:
    """Best GFLOP/s of a square float32 matrix product as large as the model's largest GEMM.

    The model's layers are often skinny (few output channels), which no BLAS runs at peak; a
    square product with the same multiply-accumulates (side clamped to 256..2048) measures what
    the cores can do at that size: the ceiling. torch.matmul with `threads` threads when torch
    is installed (the thread count can be set in process), else numpy's BLAS.
    """
    macs = float(np.prod([max(1, int(v)) for v in shape]))
    side = int(min(2048, max(256, round(macs ** (1 / 3)))))
    a, b = np.random.default_rng(0).standard_normal((2, side, side), dtype=np.float32)
    try:
        import torch
    except ImportError:
        torch = None
    run, library = (lambda: a @ b), f'numpy {np.__version__} matmul'
    if torch is not None:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        run, library = (lambda: torch.matmul(ta, tb)), f'torch {torch.__version__} matmul'
    # enough repetitions per sample for ~50 ms, so timer resolution does not matter
    run()
    begin = time.perf_counter()
    run()
    once = max(time.perf_counter() - begin, 1e-6)
    inner = max(1, int(0.05 / once))
    best = float('inf')
    for _ in range(repeats):
        begin = time.perf_counter()
        for _ in range(inner):
            run()
        best = min(best, (time.perf_counter() - begin) / inner)
    if torch is not None:
        torch.set_num_threads(previous)
    return {'shape_mkn': [side] * 3, 'model_largest_mkn': [int(v) for v in shape],
            'gflops_per_s': 2.0 * side ** 3 / best / 1e9, 'library': library, 'threads': threads}


def _proc_status_mib(key: str) -> Optional[float]:
    """A memory line of /proc/self/status (VmRSS, VmHWM) in MiB; None where there is none."""
    try:
        for line in Path('/proc/self/status').read_text().splitlines():
            if line.startswith(f'{key}:'):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        Path('/proc/self/clear_refs').write_text('5')
        return True
    except OSError:
        return False


def peak_rss_mib() -> float:
    """Peak resident memory since the last reset (VmHWM), else since the process started."""
    scale = 1 / 1024 if sys.platform != 'darwin' else 1 / 1024 / 1024
    return _proc_status_mib('VmHWM') or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


class _CudaMemory:
    """Peak CUDA memory of a backend: torch's allocator statistics when torch sees a GPU."""

    def __init__(self) -> None:
        self.torch: Any = None
        try:
            import torch
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
                self.torch = torch
                self.start_free = torch.cuda.mem_get_info()[0]
        except ImportError:
            pass

    def peak_mib(self) -> Optional[float]:
        if self.torch is None:
            return None
        allocated = self.torch.cuda.max_memory_allocated() / 2**20
        used_outside_torch = (self.start_free - self.torch.cuda.mem_get_info()[0]) / 2**20
        return max(allocated, used_outside_torch)


def describe_machine() -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python and the inference libraries' versions."""
    from depth_estimation.artifacts import library_versions

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory_gib = os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30
    except (ValueError, OSError, AttributeError):
        memory_gib = float('nan')
    machine = {'cpu': cpu, 'cores': os.cpu_count(),
               'usable_cores': len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity')
               else os.cpu_count(),
               'memory_gib': round(memory_gib, 1), 'os': platform.platform(),
               'python': platform.python_version(),
               'versions': library_versions('torch', 'onnxruntime', 'onnxruntime-gpu', 'numpy',
                                            'tensorrt', 'opencv-python-headless')}
    threading = {name: os.environ[name] for name in (
        'OMP_NUM_THREADS', 'OMP_WAIT_POLICY', 'KMP_BLOCKTIME', 'MKL_NUM_THREADS',
        'OPENBLAS_NUM_THREADS') if name in os.environ}
    if threading:  # these change CPU timings a lot (OpenMP spin-waiting), so they are recorded
        machine['environment'] = threading
    try:
        machine['load_average'] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    try:
        import torch
        if torch.cuda.is_available():
            machine['gpu'] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return machine


def _targets(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The CPU targets: ONNX Runtime against PyTorch, pre + post against inference, and
    frames/s of every CPU ONNX Runtime row."""
    by_spec = {r['spec']: r for r in results if not r.get('error')}
    targets: dict[str, Any] = {}
    if 'onnxruntime' in by_spec and 'torch' in by_spec:
        ratio = by_spec['torch']['inference']['p50_ms'] / \
            by_spec['onnxruntime']['inference']['p50_ms']
        targets['onnxruntime_speedup_over_torch'] = {'value': ratio, 'target': 2.0,
                                                     'met': ratio >= 2.0}
    for spec, result in by_spec.items():
        fraction = result['pre_post_fraction']
        targets[f'pre_post_fraction[{_label(spec)}]'] = {'value': fraction, 'target': 0.10,
                                                         'met': fraction <= 0.10}
        if spec.startswith('onnxruntime') and 'CUDA' not in result['description']['providers']:
            fps = result['throughput_fps']
            targets[f'frames_per_s_at_least[{_label(spec)}]'] = {
                'value': fps, 'target': MIN_CPU_FPS, 'met': fps >= MIN_CPU_FPS}
    return targets


def write_report(report: dict[str, Any], output: Path) -> tuple[Path, Path]:
    output.parent.mkdir(parents=True, exist_ok=True)
    json_path = output.with_name(output.name + '.json')
    markdown_path = output.with_name(output.name + '.md')
    json_path.write_text(json.dumps(report, indent=2, default=float) + '\n')
    markdown_path.write_text(to_markdown(report))
    return json_path, markdown_path


def _label(spec: str) -> str:
    """A spec as a table row names it: `model=` paths shortened to the file name."""
    return re.sub(r'model=[^,]*/', 'model=', spec)


def _number(value: Optional[float], factor: float = 1.0, unit: str = '', digits: int = 1) -> str:
    return '-' if value is None else f'{factor * value:.{digits}f}{unit}'


def to_markdown(report: dict[str, Any]) -> str:
    machine = report['machine']
    versions = ', '.join(f'{k} {v}' for k, v in machine['versions'].items())
    lines = [
        f'## Benchmark: {report["model"]}, {report["frame_size"][0]}x{report["frame_size"][1]} '
        f'frames, {report["frames"]} frames after {report["warmup"]} warm-up, '
        f'{report["threads"]} threads',
        '',
        f'Machine: {machine["cpu"]}, {machine["cores"]} cores ({machine["usable_cores"]} usable),'
        f' {machine["memory_gib"]} GiB, {machine["os"]}, Python {machine["python"]}'
        + (f', GPU {machine["gpu"]}' if machine.get('gpu') else '')
        + (f'; load average at the end {machine["load_average"]}'
           if machine.get('load_average') else '')
        + (f'; environment {machine["environment"]}' if machine.get('environment') else '')
        + '.',
        f'Versions: {versions}.',
        '',
        f'Model: {report["flops"]["gflops"]:.2f} GFLOP per frame from the ONNX graph '
        f'({report["flops"]["counted"]})'
        + (f'; torch.utils.flop_counter: {report["torch_flops"]:.2f} GFLOP'
           if report.get('torch_flops') is not None else '')
        + f'. GEMM ceiling: {report["gemm_ceiling"]["gflops_per_s"]:.1f} GFLOP/s '
        f'({report["gemm_ceiling"]["library"]}, (M, K, N) = '
        f'{tuple(report["gemm_ceiling"]["shape_mkn"])}, {report["gemm_ceiling"]["threads"]} '
        'threads)' + ''.join(f'; {value:.1f} GFLOP/s with {n} threads' for n, value in
                             report.get('gemm_ceiling_by_threads', {}).items()
                             if int(n) != report['gemm_ceiling']['threads'])
        + '. "of GEMM ceiling" uses the ceiling at the row\'s own thread count.',
        '',
        '| backend | p50 ms | p90 ms | p99 ms | frames/s | pre p50 ms | inference p50 ms | '
        'post p50 ms | (pre+post)/inference | GFLOP/s | of GEMM ceiling | peak RSS MiB '
        '(before opening) | peak CUDA MiB |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ]
    for result in report['results']:
        if result.get('error'):
            lines.append(f'| {_label(result["spec"])} | not run: {result["error"]} |' + ' |' * 11)
            continue
        lines.append(
            f'| {_label(result["spec"])} | {result["total"]["p50_ms"]:.1f} | '
            f'{result["total"]["p90_ms"]:.1f} | {result["total"]["p99_ms"]:.1f} | '
            f'{result["throughput_fps"]:.2f} | {result["preprocess"]["p50_ms"]:.2f} | '
            f'{result["inference"]["p50_ms"]:.1f} | {result["postprocess"]["p50_ms"]:.2f} | '
            f'{100 * result["pre_post_fraction"]:.1f} % | {_number(result["gflops_per_s"])} | '
            f'{_number(result["ceiling_fraction"], 100, " %", 0)} | {result["peak_rss_mib"]:.0f} '
            f'({result["rss_before_mib"]:.0f}) | {_number(result["peak_cuda_mib"], digits=0)} |')
    if report['targets']:
        lines += ['', '| target | measured | limit | met |', '|---|---|---|---|']
        for name, target in report['targets'].items():
            lines.append(f'| {name} | {target["value"]:.3g} | {target["target"]:g} | '
                         f'{"yes" if target["met"] else "no"} |')
    for result in report['results']:
        if result.get('op_profile'):
            lines += ['', f'ONNX Runtime op profile of `{result["spec"]}` (share of node time):',
                      '', '| op | share | ms per frame |', '|---|---|---|']
            lines += [f'| {p["op"]} | {100 * p["share"]:.1f} % | {p["ms_per_frame"]:.2f} |'
                      for p in result['op_profile']]
    return '\n'.join(lines) + '\n'
