"""Named model presets: small factories returning a `ZoeDepthConfig` (no weights, no torch).

The official variants follow ../shared/oracle/README.md (manifests and infer configs of
isl-org/ZoeDepth): ZoeD_N, ZoeD_K, ZoeD_NK and ZoeD_N on the MiDaS SwinV2 backbones.
"""

from __future__ import annotations

from typing import Callable

from depth_estimation.model.config import BackboneConfig, BinConfig, ZoeDepthConfig

PRESETS: dict[str, Callable[[], ZoeDepthConfig]] = {}


def register(factory: Callable[[], ZoeDepthConfig]) -> Callable[[], ZoeDepthConfig]:
    """Register a preset factory under its function name."""
    PRESETS[factory.__name__] = factory
    return factory


def get_preset(name: str) -> ZoeDepthConfig:
    """The configuration of the preset called `name`."""
    try:
        return PRESETS[name]()
    except KeyError:
        available = ', '.join(sorted(PRESETS))
        raise KeyError(f'unknown preset {name!r}; available: {available}') from None


@register
def zoedepth_n() -> ZoeDepthConfig:
    """Official ZoeD_N: BEiT-L-384 core, NYU v2 head (1e-3 to 10 m), 384 x 512 input."""
    return ZoeDepthConfig(name='zoedepth_n')


@register
def zoedepth_k() -> ZoeDepthConfig:
    """Official ZoeD_K as trained and evaluated on KITTI: normed bins, 1e-3 to 80 m, 384 x 768.

    80 m is what ZoeD_M12_K.pt was trained with and what the official evaluate.py uses for KITTI.
    torch.hub's ZoeD_K silently clips at 10 m instead (oracle quirk (d), isl-org/ZoeDepth#28):
    that behaviour is `zoedepth_k_hub`.
    """
    return ZoeDepthConfig(
        name='zoedepth_k',
        bins=(BinConfig(name='kitti', n_bins=64, min_depth=1e-3, max_depth=80.0),),
        bin_centers_type='normed',
        input_height=384,
        input_width=768,
    )


@register
def zoedepth_k_hub() -> ZoeDepthConfig:
    """ZoeD_K as torch.hub builds it: max depth 10 m (the constructor default; quirk (d))."""
    return zoedepth_k().replace(
        name='zoedepth_k_hub',
        bins=(BinConfig(name='kitti', n_bins=64, min_depth=1e-3, max_depth=10.0),))


@register
def zoedepth_nk() -> ZoeDepthConfig:
    """Official ZoeD_NK: a head per domain (NYU 10 m, KITTI 80 m) and a patch-transformer router.
    """
    return ZoeDepthConfig(
        name='zoedepth_nk',
        bins=(BinConfig(name='nyu', n_bins=64, min_depth=1e-3, max_depth=10.0),
              BinConfig(name='kitti', n_bins=64, min_depth=1e-3, max_depth=80.0)),
    )


@register
def zoedepth_n_swinv2_b() -> ZoeDepthConfig:
    """ZoeD_N on MiDaS DPT_SwinV2_B_384 (timm swinv2_base_window12to24_192to384): 384 x 384 only.

    timm's SwinV2 uses nn.LayerNorm's epsilon (1e-5). MiDaS' swin hooks fix the token grid, so the
    official model only runs on a square 384 x 384 network input.
    """
    return ZoeDepthConfig(
        name='zoedepth_n_swinv2_b',
        backbone=BackboneConfig(model_type='swinv2', image_size=384, patch_size=4, hidden_size=128,
                                out_indices=(1, 2, 3, 4), layer_norm_eps=1e-5,
                                depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32), window_size=24,
                                pretrained_window_sizes=(12, 12, 12, 6)),
        neck_hidden_sizes=(128, 256, 512, 1024),
        input_height=384,
        input_width=384,
    )


@register
def zoedepth_n_swinv2_t() -> ZoeDepthConfig:
    """ZoeD_N on MiDaS DPT_SwinV2_T_256 (timm swinv2_tiny_window16_256): 256 x 256 only."""
    return ZoeDepthConfig(
        name='zoedepth_n_swinv2_t',
        backbone=BackboneConfig(model_type='swinv2', image_size=256, patch_size=4, hidden_size=96,
                                out_indices=(1, 2, 3, 4), layer_norm_eps=1e-5,
                                depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=16,
                                pretrained_window_sizes=(0, 0, 0, 0)),
        neck_hidden_sizes=(96, 192, 384, 768),
        input_height=256,
        input_width=256,
    )


@register
def tiny() -> ZoeDepthConfig:
    """A 0.4 M-parameter model with every part of ZoeD_N, for tests (exports in seconds)."""
    return ZoeDepthConfig(
        name='tiny',
        backbone=BackboneConfig(image_size=64, patch_size=16, hidden_size=32, num_hidden_layers=4,
                                num_attention_heads=2, intermediate_size=64,
                                out_indices=(1, 2, 3, 4)),
        neck_hidden_sizes=(16, 32, 64, 64),
        fusion_hidden_size=32,
        num_relative_features=8,
        bottleneck_features=32,
        bins=(BinConfig(name='nyu', n_bins=16, min_depth=1e-3, max_depth=10.0),),
        bin_embedding_dim=16,
        input_height=96,
        input_width=128,
    )


@register
def zoedepth_small() -> ZoeDepthConfig:
    """Small fast preset for CPUs and edge boards: BEiT-T core, 32-channel decoder, 192x256 input.

    Chosen by measured latency (benchmarks/small_backbones.py, README): the full ZoeDepth head
    (64 bins, attractors 16/8/4/1, 128-d bin embedding) is kept; width, decoder and input shrink.
    There are no pretrained weights for it: train it (training/) or use the official presets.
    """
    return ZoeDepthConfig(
        name='zoedepth_small',
        backbone=BackboneConfig(image_size=384, patch_size=16, hidden_size=192,
                                num_hidden_layers=12, num_attention_heads=3,
                                intermediate_size=768, out_indices=(3, 6, 9, 12)),
        neck_hidden_sizes=(32, 64, 128, 192),
        fusion_hidden_size=32,
        bottleneck_features=32,
        input_height=192,
        input_width=256,
    )


# The pruned NYU FastDepth (dwofk/fast-depth; depth_estimation.model.fastdepth): output channels of
# its 14 encoder layers and 5 decoder blocks.
FASTDEPTH_NYU_ENCODER_CHANNELS = (16, 56, 88, 120, 144, 256, 408, 376, 272, 288, 296, 328, 480,
                                  512)
FASTDEPTH_NYU_DECODER_CHANNELS = (200, 256, 120, 56, 16)


@register
def zoedepth_fastdepth() -> ZoeDepthConfig:
    """ZoeDepth's metric bins head on the pretrained FastDepth (NYU v2, MIT), 224 x 224 input.

    The relative-depth core is FastDepth (`depth-estimation convert fast_depth_224.tflite`): the
    seed bin regressor reads its encoder bottleneck (H/32, 512 channels), the attractors its
    decoder maps at H/16, H/8, H/4 and H/2 (coarse to fine), and the conditional log-binomial its
    last decoder features (H/2, 16 channels) with its depth as the relative-depth input; the
    depth is upsampled from H/2 to the input size. The bins are factors of FastDepth's depth
    (`bin_reference='core_depth'`): trained on real rooms at 1-3 m, bins in metres collapsed to
    that range (the NYU frames' median depth 3.3 m came out at 0.55x); as factors the head learns
    a correction of the core and starts from it. The head is sized for CPUs: 32 bins, 32-d bin
    embedding (also the width of the projector and attractor MLPs), 64-channel bottleneck,
    attractors 16/8/4/1 as in ZoeDepth. The input is FastDepth's own geometry: the whole 4:3 frame
    stretched to 224 x 224 (`keep_aspect_ratio=False`), as it was trained on NYU crops; measured
    against a letterboxed 224 x 288, the core's REL drops on 7-Scenes and TUM fr2_desk and rises
    slightly on the NYU frames (docs/training.md). RGB in [0, 1] (mean 0, std 1), as FastDepth's.
    """
    return ZoeDepthConfig(
        name='zoedepth_fastdepth',
        backbone=BackboneConfig(model_type='fastdepth', image_size=224, patch_size=32,
                                hidden_size=FASTDEPTH_NYU_ENCODER_CHANNELS[-1],
                                num_hidden_layers=0, num_attention_heads=0, intermediate_size=0,
                                out_indices=(), layer_norm_eps=0.0,
                                encoder_channels=FASTDEPTH_NYU_ENCODER_CHANNELS,
                                decoder_channels=FASTDEPTH_NYU_DECODER_CHANNELS),
        neck_hidden_sizes=(),
        reassemble_factors=(),
        fusion_hidden_size=FASTDEPTH_NYU_DECODER_CHANNELS[-2],
        num_relative_features=FASTDEPTH_NYU_DECODER_CHANNELS[-1],
        bottleneck_features=64,
        bins=(BinConfig(name='nyu', n_bins=32, min_depth=1e-3, max_depth=10.0),),
        bin_embedding_dim=32,
        bin_reference='core_depth',
        input_height=224,
        input_width=224,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        keep_aspect_ratio=False,
    )
