"""Our checkpoint format: the frozen config beside the weights; the model is rebuilt from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

import torch

from depth_estimation.model.config import ZoeDepthConfig
from depth_estimation.model.zoedepth import ZoeDepth

CHECKPOINT_FORMAT = 'depth_estimation.checkpoint/1'
PathLike = Union[str, Path]


def save_checkpoint(path: PathLike, model: ZoeDepth,
                    extra: Optional[dict[str, Any]] = None) -> Path:
    """Write {format, config, state_dict, extra} with torch.save; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({
        'format': CHECKPOINT_FORMAT,
        'config': model.config.to_dict(),
        'state_dict': model.state_dict(),
        'extra': dict(extra or {}),
    }, path)
    return path


def read_checkpoint(path: PathLike) -> dict[str, Any]:
    """Load a checkpoint dict safely (weights_only) and check its format."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'checkpoint not found: {path}')
    try:
        data = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # corrupt, truncated or not a torch file
        raise ValueError(f'cannot read checkpoint {path}: {error}') from error
    if not isinstance(data, dict) or data.get('format') != CHECKPOINT_FORMAT:
        raise ValueError(
            f'{path} is not a depth_estimation checkpoint (format {CHECKPOINT_FORMAT}); official '
            'ZoeDepth or Hugging Face weights must be converted first')
    return data


def load_checkpoint(path: PathLike) -> ZoeDepth:
    """Rebuild the model from a checkpoint's config and load its weights strictly, in eval mode."""
    data = read_checkpoint(path)
    model = ZoeDepth(ZoeDepthConfig.from_dict(data['config']))
    model.load_state_dict(data['state_dict'], strict=True)
    return model.eval()
