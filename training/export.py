"""Lightning checkpoint (any `checkpoints/*.ckpt` of a run) -> our plain-model checkpoint.

    python -m training.export outputs/training/tiny/checkpoints/step00020.ckpt tiny_step20.pt

The Lightning checkpoint holds the model config (`depth_estimation_model_config`, written by
`DepthEstimationModule.on_save_checkpoint`); the model is rebuilt from it and its `model.*`
weights are loaded strictly. Training-only parts (segmentation head, optimiser) are left behind.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence, Union

import torch

from depth_estimation.model.checkpoint import save_checkpoint
from depth_estimation.model.config import ZoeDepthConfig
from depth_estimation.model.zoedepth import ZoeDepth

PathLike = Union[str, Path]


def plain_model_from_lightning(path: PathLike) -> tuple[ZoeDepth, dict]:
    """The ZoeDepth inside a Lightning checkpoint of DepthEstimationModule, and the checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'Lightning checkpoint not found: {path}')
    # Lightning checkpoints hold plain Python objects besides tensors (loops, callbacks).
    checkpoint = torch.load(path, map_location='cpu', weights_only=False)
    config = checkpoint.get('depth_estimation_model_config')
    if config is None:
        raise ValueError(f'{path} was not written by training.module.DepthEstimationModule '
                         '(no depth_estimation_model_config)')
    model = ZoeDepth(ZoeDepthConfig.from_dict(config))
    state = {key[len('model.'):]: value for key, value in checkpoint['state_dict'].items()
             if key.startswith('model.')}
    model.load_state_dict(state, strict=True)
    return model.eval(), checkpoint


def export_lightning_checkpoint(path: PathLike, output: PathLike) -> Path:
    """Write the plain model of a Lightning checkpoint in our checkpoint format."""
    model, checkpoint = plain_model_from_lightning(path)
    extra = {'trained_by': 'training.module.DepthEstimationModule', 'source': str(path),
             'global_step': int(checkpoint.get('global_step', 0)),
             'epoch': int(checkpoint.get('epoch', 0))}
    return save_checkpoint(output, model, extra)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('checkpoint', type=Path, help='Lightning .ckpt of a training run')
    parser.add_argument('output', type=Path, help='our checkpoint to write (.pt)')
    args = parser.parse_args(argv)
    try:
        path = export_lightning_checkpoint(args.checkpoint, args.output)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f'training.export: error: {error}', file=sys.stderr)
        return 2
    print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
