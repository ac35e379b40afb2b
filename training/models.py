"""Where the model to train comes from: a preset, one of our checkpoints, official ZoeDepth
weights, optionally with MiDaS relative-depth weights for the core (how ZoeDepth starts training).

`ModelSource` is a small typed factory so that a LightningCLI YAML can say `preset: zoedepth_n`;
the LightningModule receives the plain `ZoeDepth` it builds (or one built in Python).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional, Union

import torch

from depth_estimation.model import get_preset
from depth_estimation.model.zoedepth import ZoeDepth

PathLike = Union[str, Path]


@dataclasses.dataclass
class ModelSource:
    """Exactly one of `preset`, `checkpoint`, `official_weights` says what to build.

    Attributes:
        preset: a preset name (depth_estimation.model.presets), freshly initialised.
        checkpoint: one of our checkpoints (depth-estimation convert / a previous training).
        official_weights: an official ZoeDepth .pt or Hugging Face directory (fine-tuning).
        midas_weights: MiDaS v3.1 weights (e.g. dpt_beit_large_384.pt, dpt_swin2_base_384.pt)
            loaded into the core (backbone, neck, relative head) of a preset; the metric head
            stays freshly initialised. This is how ZoeDepth trains ZoeD_N from scratch.
        init: 'transformers' (the library's initialisation) or 'random' (the seeded LeCun-scale
            weights of depth_estimation.model.init, whose untrained output varies across the
            image) for a preset.
        seed: seed of the initialisation.
    """

    preset: Optional[str] = None
    checkpoint: Optional[str] = None
    official_weights: Optional[str] = None
    midas_weights: Optional[str] = None
    init: str = 'transformers'
    seed: int = 0

    def build(self) -> ZoeDepth:
        chosen = [name for name in ('preset', 'checkpoint', 'official_weights')
                  if getattr(self, name)]
        if len(chosen) != 1:
            raise ValueError('give exactly one of preset, checkpoint, official_weights; got '
                             f'{chosen or "none"}')
        if self.midas_weights and not self.preset:
            raise ValueError('midas_weights initialise the core of a preset; use it with preset')
        if self.init not in ('transformers', 'random'):
            raise ValueError(f"init must be 'transformers' or 'random', got {self.init!r}")
        if self.checkpoint:
            from depth_estimation.model.checkpoint import load_checkpoint

            return load_checkpoint(self.checkpoint)
        if self.official_weights:
            from depth_estimation.model.official import load_official

            return load_official(self.official_weights)
        torch.manual_seed(self.seed)
        model = ZoeDepth(get_preset(self.preset))
        if self.init == 'random':
            from depth_estimation.model.init import randomize_weights

            randomize_weights(model, seed=self.seed)
        if self.midas_weights:
            load_midas_weights(model, self.midas_weights)
        return model


def load_midas_weights(model: ZoeDepth, path: PathLike) -> list[str]:
    """Load a MiDaS v3.1 checkpoint into the core of `model`; returns the keys left as they were.

    MiDaS stores `pretrained.*` (backbone and reassemble layers) and `scratch.*` (DPT decoder and
    relative head): exactly the official ZoeDepth keys without their `core.core.` prefix, so the
    strict official key mapping applies. Only metric-head keys may be missing; anything else
    (a wrong backbone, a missing decoder key, a shape mismatch) is an error.
    """
    from depth_estimation.model.official import (map_official_state_dict,
                                                 OfficialCheckpointError,
                                                 read_official_checkpoint)

    state = read_official_checkpoint(path)
    prefixed = {key if key.startswith('core.core.') else f'core.core.{key}': value
                for key, value in state.items()}
    mapped = map_official_state_dict(prefixed).state_dict
    expected = model.state_dict()
    missing = sorted(set(expected) - set(mapped))
    unexpected = sorted(set(mapped) - set(expected))
    wrong_shape = sorted(key for key in set(mapped) & set(expected)
                         if tuple(mapped[key].shape) != tuple(expected[key].shape))
    outside_head = [key for key in missing if not key.startswith('metric_head.')]
    if outside_head or unexpected or wrong_shape:
        raise OfficialCheckpointError(
            f'{path}: MiDaS weights do not match the core of {model.config.name!r}: '
            f'missing {outside_head[:10]}, unexpected {unexpected[:10]}, '
            f'shape mismatches {wrong_shape[:10]}')
    model.load_state_dict(mapped, strict=False)
    return missing
