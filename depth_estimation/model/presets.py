"""Named model presets: small factories returning a `ZoeDepthConfig` (no weights, no torch)."""

from __future__ import annotations

from typing import Callable

from depth_estimation.model.config import BackboneConfig, BinConfig, ZoeDepthConfig

PRESETS: dict[str, Callable[[], ZoeDepthConfig]] = {}


def register(factory: Callable[[], ZoeDepthConfig]) -> Callable[[], ZoeDepthConfig]:
    PRESETS[factory.__name__] = factory
    return factory


def get_preset(name: str) -> ZoeDepthConfig:
    try:
        return PRESETS[name]()
    except KeyError:
        raise KeyError(f'unknown preset {name!r}; available: {", ".join(sorted(PRESETS))}') from None


@register
def zoedepth_n() -> ZoeDepthConfig:
    """Official ZoeD_N: BEiT-L-384 core, NYU v2 head (1e-3 to 10 m), 384 x 512 input."""
    return ZoeDepthConfig(name='zoedepth_n')


@register
def tiny() -> ZoeDepthConfig:
    """A few-thousand-parameter model with every part of ZoeD_N, for tests (exports in seconds)."""
    return ZoeDepthConfig(
        name='tiny',
        backbone=BackboneConfig(image_size=64, patch_size=16, hidden_size=32, num_hidden_layers=4,
                                num_attention_heads=2, intermediate_size=64, out_indices=(1, 2, 3, 4)),
        neck_hidden_sizes=(16, 32, 64, 64),
        fusion_hidden_size=32,
        num_relative_features=8,
        bottleneck_features=32,
        bins=(BinConfig(name='nyu', n_bins=16, min_depth=1e-3, max_depth=10.0),),
        bin_embedding_dim=16,
        input_height=96,
        input_width=128,
    )
