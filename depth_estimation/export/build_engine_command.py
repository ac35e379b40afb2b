"""`depth-estimation build-engine`: an exported ONNX to a TensorRT engine on this GPU."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'build-engine', help='build a TensorRT engine from an exported ONNX (NVIDIA GPU)',
        description='Build a serialized TensorRT 10 engine from a model exported with '
                    '`depth-estimation export` (its .onnx.json is read) and write '
                    '<engine>.json beside it: TensorRT version, GPU, input shape, precision, '
                    'hash of the ONNX, preprocessing. The engine runs only with the same '
                    'TensorRT on the same GPU model. See docs/tensorrt.md.')
    parser.add_argument('onnx', type=Path, help='the .onnx (for --typing strong FP16: the '
                                                '_fp16.onnx written by export --fp16)')
    parser.add_argument('--output', '-o', type=Path, default=None,
                        help='engine file (default: <onnx stem>_<precision>.engine)')
    parser.add_argument('--precision', choices=('fp32', 'fp16', 'int8'), default='fp16',
                        help='fp16 keeps the metric head in FP32 (default fp16)')
    parser.add_argument('--typing', choices=('auto', 'strong', 'weak'), default='auto',
                        help='strong: precision from the ONNX types (TensorRT\'s recommended '
                             'mode); weak: precision flags on the FP32 ONNX (needed for INT8); '
                             'auto: strong when the ONNX already has the precision. The mode '
                             'that ran is printed and stored.')
    parser.add_argument('--workspace-mib', type=int, default=2048,
                        help='builder workspace limit in MiB (default 2048)')
    parser.add_argument('--timing-cache', type=Path, default=None,
                        help='timing cache file: loaded if it exists, saved after the build')
    parser.add_argument('--calibration-images', type=Path, default=None,
                        help='INT8: folder of typical frames (png/jpg, searched recursively)')
    parser.add_argument('--calibration-count', type=int, default=200,
                        help='INT8: at most this many images, spread over the folder')
    parser.add_argument('--calibration-cache', type=Path, default=None,
                        help='INT8: calibration cache file, read if present, written after')
    parser.add_argument('--device', type=int, default=0, help='CUDA device index')
    parser.add_argument('--no-check', dest='check', action='store_false',
                        help='skip running the engine against ONNX Runtime after the build')
    parser.add_argument('--check-tolerance', type=float, default=None,
                        help='max relative error against ONNX Runtime FP32 (default: 1e-3 '
                             'fp32, 5e-2 fp16, none for int8)')
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from depth_estimation.export.tensorrt_build import EngineBuildError, build_engine
    from depth_estimation.export.tensorrt_ops import TensorRTSupportError
    from depth_estimation.inference.tensorrt_common import CudaError, TensorRTUnavailableError

    output = args.output or args.onnx.with_name(f'{args.onnx.stem}_{args.precision}.engine')
    try:
        build_engine(args.onnx, output, precision=args.precision, typing=args.typing,
                     workspace_mib=args.workspace_mib, timing_cache=args.timing_cache,
                     calibration_images=args.calibration_images,
                     calibration_count=args.calibration_count,
                     calibration_cache=args.calibration_cache, device=args.device,
                     check=args.check, check_tolerance=args.check_tolerance)
    except (TensorRTUnavailableError, CudaError, EngineBuildError, TensorRTSupportError) as error:
        print(f'depth-estimation build-engine: error: {error}', file=sys.stderr)
        return 2
    return 0
