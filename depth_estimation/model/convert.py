"""`depth-estimation convert`: official ZoeDepth weights (.pt or HF directory) or the FastDepth
TFLite file -> our checkpoint format."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: 'argparse._SubParsersAction[argparse.ArgumentParser]') -> None:
    """Add the `convert` subcommand."""
    parser = subparsers.add_parser(
        'convert',
        help='convert official ZoeDepth or FastDepth weights to a depth_estimation checkpoint',
        description='Convert an isl-org/ZoeDepth checkpoint (.pt, e.g. ZoeD_M12_N.pt), a '
                    'Hugging Face ZoeDepth directory (config.json + model.safetensors, e.g. '
                    'Intel/zoedepth-nyu) or the FastDepth TFLite file (fast_depth_224.tflite: '
                    'the core of the zoedepth_fastdepth preset, its metric head freshly '
                    'initialised) into our checkpoint format. Loading is strict.')
    parser.add_argument('source', type=Path,
                        help='official .pt/.pth file or Hugging Face directory')
    parser.add_argument('output', type=Path, help='checkpoint to write (.pt)')
    parser.add_argument(
        '--preset', default=None,
        help='architecture of a .pt file when it cannot be inferred, or to choose between '
             'zoedepth_k (80 m, as trained; the default for ZoeD_K) and zoedepth_k_hub '
             "(torch.hub's 10 m); for a .tflite file, a preset with a FastDepth core "
             '(default zoedepth_fastdepth). Not allowed for Hugging Face directories.')
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Load, convert and save; prints what was written."""
    from depth_estimation.artifacts import file_sha256
    from depth_estimation.model.checkpoint import save_checkpoint
    from depth_estimation.model.official import load_official

    source: Path = args.source
    if source.suffix == '.tflite':
        from depth_estimation.model.fastdepth import CITATION, LICENCE, zoedepth_from_tflite

        model = zoedepth_from_tflite(source, preset=args.preset or 'zoedepth_fastdepth')
        extra = {'source': str(source), 'source_format': 'tflite',
                 'core': 'FastDepth (NYU Depth v2)', 'core_licence': LICENCE,
                 'core_citation': CITATION, 'metric_head': 'initialised, untrained'}
    else:
        model = load_official(source, preset=args.preset)
        extra = {'source': str(source),
                 'source_format': 'huggingface' if source.is_dir() else 'official'}
    if source.is_file():
        extra['source_sha256'] = file_sha256(source)
    path = save_checkpoint(args.output, model, extra=extra)
    print(f'wrote {path} (preset {model.config.name}, config {model.config.config_hash()[:12]})')
    return 0
