"""`depth-estimation convert`: official ZoeDepth weights (.pt or HF directory) -> ours."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: 'argparse._SubParsersAction[argparse.ArgumentParser]') -> None:
    """Add the `convert` subcommand."""
    parser = subparsers.add_parser(
        'convert',
        help='convert official ZoeDepth weights to a depth_estimation checkpoint',
        description='Convert an isl-org/ZoeDepth checkpoint (.pt, e.g. ZoeD_M12_N.pt) or a '
                    'Hugging Face ZoeDepth directory (config.json + model.safetensors, e.g. '
                    'Intel/zoedepth-nyu) into our checkpoint format. Loading is strict.')
    parser.add_argument('source', type=Path,
                        help='official .pt/.pth file or Hugging Face directory')
    parser.add_argument('output', type=Path, help='checkpoint to write (.pt)')
    parser.add_argument(
        '--preset', default=None,
        help='architecture of a .pt file when it cannot be inferred, or to choose between '
             'zoedepth_k (80 m, as trained; the default for ZoeD_K) and zoedepth_k_hub '
             "(torch.hub's 10 m). Not allowed for Hugging Face directories.")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Load, convert and save; prints what was written."""
    from depth_estimation.artifacts import file_sha256
    from depth_estimation.model.checkpoint import save_checkpoint
    from depth_estimation.model.official import load_official

    source: Path = args.source
    model = load_official(source, preset=args.preset)
    extra = {'source': str(source),
             'source_format': 'huggingface' if source.is_dir() else 'official'}
    if source.is_file():
        extra['source_sha256'] = file_sha256(source)
    path = save_checkpoint(args.output, model, extra=extra)
    print(f'wrote {path} (preset {model.config.name}, config {model.config.config_hash()[:12]})')
    return 0
