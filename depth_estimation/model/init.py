"""Seeded random weights for untrained models (tests, demos, export smoke checks).

transformers initialises many layers to zero, which makes an untrained ZoeDepth output a constant
depth: useless for checking that an export or a runtime preserves the picture. These weights follow
the
scheme of the oracle's `fill_state.py` in spirit: LeCun-scale uniform matrices, norm scales near 1,
small biases, so every block matters and the depth varies across the image.
"""

from __future__ import annotations

import math

import torch
from torch import nn


@torch.no_grad()
def randomize_weights(model: nn.Module, seed: int = 0) -> nn.Module:
    """Fill every parameter in place from a seeded generator; buffers are left alone."""
    generator = torch.Generator().manual_seed(seed)
    for name, parameter in model.named_parameters():
        mean, std = 0.0, 0.02
        if name.endswith('relative_position_bias_table'):
            std = 0.1
        elif name.endswith(('lambda_1', 'lambda_2')):  # BEiT layer scale
            mean = 0.1
        elif name.endswith('logit_scale'):  # SwinV2 attention temperature (log)
            mean, std = math.log(10.0), 0.1
        elif parameter.ndim == 1 and name.endswith('weight'):  # norm scales
            mean, std = 1.0, 0.1
        elif parameter.ndim >= 2 and not name.endswith(('cls_token', 'mask_token')):
            std = 1.0 / math.sqrt(parameter[0].numel())
        half_width = std * math.sqrt(3.0)  # uniform with this standard deviation
        values = torch.rand(parameter.shape, generator=generator, dtype=torch.float64)
        parameter.copy_((mean + half_width * (2.0 * values - 1.0)).to(parameter.dtype))
    return model
