"""`depth-estimation export`: a checkpoint, or an explicitly untrained preset, to ONNX."""

from __future__ import annotations

import argparse
from pathlib import Path

from depth_estimation.sizes import size_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'export', help='export a model to ONNX with its metadata, checked against PyTorch',
        description='Export to ONNX (static input size, opset 17), fold constants, check the '
                    'operators against TensorRT\'s ONNX parser, and verify ONNX Runtime against '
                    'PyTorch on random and real images. Writes <output> and <output>.json '
                    '(and the FP16 variant with --fp16).')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--checkpoint', type=Path, help='one of our checkpoints (.pt)')
    source.add_argument('--preset', help='a preset name; needs --random-weights (untrained)')
    parser.add_argument('--random-weights', action='store_true',
                        help='allow exporting a preset with seeded random (untrained) weights')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random weights')
    parser.add_argument('--output', '-o', type=Path, required=True, help='the .onnx file to write')
    parser.add_argument('--input-size', type=size_argument(32),
                        help="network input HxW (multiples of 32), default: the model's own, "
                             'e.g. 384x512')
    parser.add_argument('--check-image', type=Path, action='append', default=[],
                        help='real image for the parity check (repeatable); '
                        'default: the shipped samples')
    parser.add_argument('--flip-average', action='store_true',
                        help='bake horizontal-flip averaging into the graph (a batch of 2 inside: '
                             'the official protocol, about 2x the compute)')
    parser.add_argument('--confidence', action='store_true',
                        help='add a second output, confidence (float32 in [0, 1], the shape of '
                             'the depth), computed from the metric-bin distribution; the node '
                             'publishes it on depth/confidence')
    parser.add_argument('--confidence-method', default=None,
                        help='how the confidence is computed from the bins (with --confidence): '
                             'spread (default), log_spread, mass, entropy or max_prob; see '
                             'depth_estimation/model/confidence.py')
    parser.add_argument('--training-camera', default=None,
                        help='record the camera the model was trained with, for the node\'s '
                             'focal_compensation: nyu, kitti, sevenscenes, or FX,FY,WIDTH,HEIGHT '
                             '(pixels at that image size)')
    parser.add_argument('--tolerance', type=float, default=None,
                        help='max relative error allowed against PyTorch (default 1e-4)')
    parser.add_argument('--no-simplify', dest='simplify', action='store_false',
                        help='keep the exporter\'s graph (default: fold constants with onnxslim)')
    parser.add_argument('--tensorrt-check', choices=('error', 'warn', 'off'), default='warn',
                        help='check every operator against TensorRT\'s ONNX parser table '
                             '(default: warn; error removes the file on a problem)')
    parser.add_argument('--fp16', action='store_true',
                        help='also write <output stem>_fp16.onnx: backbone and neck in FP16, '
                             'metric head and overflow-prone ops in FP32, float32 input/output')
    parser.add_argument('--fp16-scope', action='append', default=[],
                        help='node-name prefix computed in FP16 (repeatable; default /backbone/ '
                             'and /neck/)')
    parser.add_argument('--fp16-tolerance', type=float, default=None,
                        help='max relative error of the FP16 variant against FP32 PyTorch '
                             '(default 1e-2)')
    parser.set_defaults(handler=run)


def parse_training_camera(text: str) -> dict:
    """`nyu` or `518.9,519.5,640,480` -> the metadata's training camera (focal.TrainingCamera)."""
    from dataclasses import asdict

    from depth_estimation.pipeline.focal import training_camera

    parts = text.split(',')
    if len(parts) == 1:
        return asdict(training_camera(text.strip()))
    if len(parts) != 4:
        raise ValueError(f'training camera {text!r} is neither a known name nor '
                         'FX,FY,WIDTH,HEIGHT')
    try:
        fx, fy, width, height = (float(v) for v in parts)
    except ValueError:
        raise ValueError(f'training camera {text!r}: FX,FY,WIDTH,HEIGHT must be numbers') from None
    if width != int(width) or height != int(height):
        raise ValueError(f'training camera {text!r}: WIDTH and HEIGHT are whole pixels')
    return asdict(training_camera({'name': 'custom', 'fx': fx, 'fy': fy, 'width': int(width),
                                   'height': int(height)}))


def run(args: argparse.Namespace) -> int:
    from depth_estimation.export.onnx_export import (DEFAULT_TOLERANCE, FP16_TOLERANCE,
                                                     export_fp16_variant, export_onnx,
                                                     output_names_of)
    from depth_estimation.artifacts import file_sha256
    from depth_estimation.model.checkpoint import load_checkpoint
    from depth_estimation.samples import Sample, load_samples, read_rgb

    if args.checkpoint is not None:
        model = load_checkpoint(args.checkpoint)
        source = {'checkpoint': str(args.checkpoint), 'sha256': file_sha256(args.checkpoint)}
    else:
        if not args.random_weights:
            raise ValueError('a preset has no trained weights: pass --random-weights to export it '
                             'untrained, or --checkpoint')
        from depth_estimation.model import get_preset
        from depth_estimation.model.init import randomize_weights
        from depth_estimation.model.zoedepth import build_model

        model = randomize_weights(build_model(get_preset(args.preset)), args.seed)
        source = {'preset': args.preset, 'weights': f'random (seed {args.seed}), untrained'}
    if args.input_size:
        height, width = args.input_size
        model.config = model.config.replace(input_height=height, input_width=width)
    if args.confidence_method is not None and not args.confidence:
        raise ValueError('--confidence-method needs --confidence')
    extra_metadata: dict = {}
    if args.training_camera:
        extra_metadata['training_camera'] = parse_training_camera(args.training_camera)
    protocol = {'flip_average': bool(args.flip_average)}
    if args.confidence:
        from depth_estimation.model.confidence import DEFAULT_METHOD, DepthWithConfidence

        model = DepthWithConfidence(model, args.confidence_method or DEFAULT_METHOD)
    if args.flip_average and args.confidence:
        from depth_estimation.export.onnx_export import FlipAveragedOutputs

        model = FlipAveragedOutputs(model)  # both outputs averaged over the two views
    elif args.flip_average:
        from depth_estimation.model.protocol import FlipAveraged

        model = FlipAveraged(model)
    extra_metadata['protocol'] = protocol
    if args.check_image:
        images = [Sample(p.stem, read_rgb(p), None) for p in args.check_image]
    else:
        images = load_samples()
    result = export_onnx(model, args.output, source=source,
                         check_images=[(s.name, s.rgb) for s in images],
                         tolerance=args.tolerance or DEFAULT_TOLERANCE,
                         extra_metadata=extra_metadata, simplify=args.simplify,
                         tensorrt_check=args.tensorrt_check)
    outputs = ', '.join(output_names_of(model))
    print(f'wrote {result.onnx_path} and {result.metadata_path.name} in {result.seconds:.1f} s '
          f'(outputs {outputs}; max relative error against PyTorch '
          f'{result.max_rel_error:.2e})')
    if args.fp16:
        half = export_fp16_variant(model, result.onnx_path, fp16_scopes=args.fp16_scope,
                                   check_images=[(s.name, s.rgb) for s in images],
                                   tolerance=args.fp16_tolerance or FP16_TOLERANCE,
                                   tensorrt_check=args.tensorrt_check)
        print(f'wrote {half.onnx_path} and {half.metadata_path.name} (FP16 with an FP32 metric '
              f'head; max relative error against PyTorch FP32 {half.max_rel_error:.2e})')
    return 0
