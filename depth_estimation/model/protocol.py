"""The official ZoeDepth inference protocol around our export-shaped model.

The official model takes RGB in [0, 1], resizes it inside `forward` and normalises it; its
`infer()` adds
reflect padding and horizontal-flip averaging (the paper's numbers use both). Our
`ZoeDepth.forward` takes
the normalised network input instead, so deployments can do the resize outside the graph. This
module
reproduces the official behaviour on top of it, for evaluation and for users who want the paper
protocol:

- `official_network_size`: MiDaS `Resize.get_size`, method "minimal", multiple of 32.
- `prepare_official`: bilinear resize (align_corners=True) to that size, then (x - mean) / std.
- `infer_official`: optional reflect padding, prediction, bicubic resize back, crop, flip
averaging.
- `FlipAveraged`: an exportable wrapper that runs the image and its mirror as one batch of 2.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def _constrain_to_multiple(value: float, multiple: int) -> int:
    """MiDaS `constrain_to_multiple_of` without bounds: round half to even, as numpy does."""
    return int(round(value / multiple) * multiple)


def official_network_size(height: int, width: int, network_size: tuple[int, int],
                          keep_aspect_ratio: bool = True,
                          multiple_of: int = 32) -> tuple[int, int]:
    """(H, W) the official model resizes an (height, width) image to before its backbone.

    With `keep_aspect_ratio` (the hub models' infer mode) both sides are scaled by whichever of the
    two
    factors is closer to 1; then each side is rounded to a multiple of 32.
    """
    scale_height = network_size[0] / height
    scale_width = network_size[1] / width
    if keep_aspect_ratio:
        if abs(1 - scale_width) < abs(1 - scale_height):
            scale_height = scale_width
        else:
            scale_width = scale_height
    return (_constrain_to_multiple(scale_height * height, multiple_of),
            _constrain_to_multiple(scale_width * width, multiple_of))


def prepare_official(image: torch.Tensor, network_size: tuple[int, int], mean: tuple[float, ...],
                     std: tuple[float, ...], keep_aspect_ratio: bool = True) -> torch.Tensor:
    """RGB in [0, 1] (B, 3, H, W) -> normalised network input (B, 3, h, w), as `MidasCore.prep`."""
    height, width = official_network_size(image.shape[2], image.shape[3], network_size,
                                          keep_aspect_ratio)
    if (height, width) != tuple(image.shape[2:]):
        image = F.interpolate(image, (height, width), mode='bilinear', align_corners=True)
    mean_tensor = torch.tensor(mean, dtype=image.dtype, device=image.device).view(1, -1, 1, 1)
    std_tensor = torch.tensor(std, dtype=image.dtype, device=image.device).view(1, -1, 1, 1)
    return (image - mean_tensor) / std_tensor


def official_padding(height: int, width: int, factor: int = 3) -> tuple[int, int]:
    """Reflect padding on each side: int(sqrt(H / 2) * 3) rows, int(sqrt(W / 2) * 3) columns."""
    return int(math.sqrt(height / 2) * factor), int(math.sqrt(width / 2) * factor)


@torch.no_grad()
def infer_official(model: nn.Module, image: torch.Tensor, pad_input: bool = True,
                   flip: bool = True, keep_aspect_ratio: bool = True) -> torch.Tensor:
    """The official `ZoeDepth.infer(x)`: RGB in [0, 1] (B, 3, H, W) -> depth (B, 1, H, W) metres.

    `model` is our `ZoeDepth`; its config supplies the network size and normalisation. Defaults are
    the official ones (padding and flip averaging on: two forward passes).
    """
    config = model.config

    def predict(batch: torch.Tensor) -> torch.Tensor:
        height, width = batch.shape[2:]
        pad_rows = pad_columns = 0
        if pad_input:
            pad_rows, pad_columns = official_padding(height, width)
            batch = F.pad(batch, [pad_columns, pad_columns, pad_rows, pad_rows], mode='reflect')
        network_input = prepare_official(batch, config.input_size, config.mean, config.std,
                                         keep_aspect_ratio)
        depth = model(network_input)  # (B, 1, h, w) at the network size
        if depth.shape[-2:] != batch.shape[-2:]:
            depth = F.interpolate(depth, size=batch.shape[-2:], mode='bicubic',
                                  align_corners=False)
        return depth[:, :, pad_rows:pad_rows + height, pad_columns:pad_columns + width]

    depth = predict(image)
    if flip:
        depth = (depth + torch.flip(predict(torch.flip(image, dims=[3])), dims=[3])) / 2
    return depth


class FlipAveraged(nn.Module):
    """Exportable flip averaging: (1, 3, H, W) -> the mean of the depth of the image and of its
    mirror.

    Both views run as one batch of 2, which a GPU executes almost as fast as one image.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.config = model.config

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        batch = torch.cat([image, torch.flip(image, dims=[3])], dim=0)  # (2B, 3, H, W)
        depth = self.model(batch)  # (2B, 1, H, W)
        direct, mirrored = depth.chunk(2, dim=0)
        return (direct + torch.flip(mirrored, dims=[3])) / 2
