"""Frozen model configuration, saved in every checkpoint and artifact to rebuild the model.

This module imports no torch, so runtime code (ONNX Runtime, TensorRT) can read a
configuration without it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

CONFIG_FORMAT = 1


@dataclass(frozen=True)
class BackboneConfig:
    """The relative-depth core: a transformers backbone and the stages the DPT neck taps."""

    model_type: str = 'beit'  # 'beit' or 'swinv2' (transformers model types), or 'fastdepth'
    # pretraining size; BEiT's relative-position window is image_size / patch_size
    image_size: int = 384
    patch_size: int = 16
    hidden_size: int = 1024  # BEiT width; SwinV2: embed_dim of the first stage
    num_hidden_layers: int = 24  # BEiT only
    num_attention_heads: int = 16  # BEiT only
    intermediate_size: int = 4096  # BEiT only
    out_indices: tuple[int, ...] = (6, 12, 18, 24)  # stages (1-based) whose outputs feed the neck
    # timm's LayerNorm epsilon. transformers' BEiT default (1e-12) alone moves the official outputs
    # by about 2e-4 relative (../shared/REFERENCE.md).
    layer_norm_eps: float = 1e-6
    # SwinV2 only: blocks and heads per stage, attention window, and the window of its pretraining.
    depths: tuple[int, ...] = ()
    num_heads: tuple[int, ...] = ()
    window_size: int = 0
    pretrained_window_sizes: tuple[int, ...] = ()
    # FastDepth only ('fastdepth', depth_estimation.model.fastdepth): output channels of its 14
    # encoder layers and 5 decoder blocks (the pruned widths of the published model).
    encoder_channels: tuple[int, ...] = ()
    decoder_channels: tuple[int, ...] = ()

    def to_transformers(self) -> Any:
        """Build the transformers backbone configuration (None for FastDepth: not transformers).
        """
        from transformers import BeitConfig, Swinv2Config

        if self.model_type == 'fastdepth':
            return None

        out_features = [f'stage{index}' for index in self.out_indices]
        if self.model_type == 'beit':
            return BeitConfig(
                image_size=self.image_size,
                patch_size=self.patch_size,
                num_hidden_layers=self.num_hidden_layers,
                hidden_size=self.hidden_size,
                intermediate_size=self.intermediate_size,
                num_attention_heads=self.num_attention_heads,
                use_relative_position_bias=True,
                use_absolute_position_embeddings=False,
                use_mask_token=False,
                reshape_hidden_states=False,
                layer_norm_eps=self.layer_norm_eps,
                out_features=out_features,
            )
        if self.model_type == 'swinv2':
            return Swinv2Config(
                image_size=self.image_size,
                patch_size=self.patch_size,
                embed_dim=self.hidden_size,
                depths=list(self.depths),
                num_heads=list(self.num_heads),
                window_size=self.window_size,
                pretrained_window_sizes=list(
                    self.pretrained_window_sizes or (0,) * len(self.depths)),
                layer_norm_eps=self.layer_norm_eps,
                out_features=out_features,
                reshape_hidden_states=True,
            )
        raise ValueError(f'unknown backbone model_type {self.model_type!r}; expected '
                         "'beit', 'swinv2' or 'fastdepth'")


@dataclass(frozen=True)
class BinConfig:
    """One metric head's depth bins. ZoeD_N and ZoeD_K have one, ZoeD_NK one per domain."""

    name: str = 'nyu'
    n_bins: int = 64
    min_depth: float = 1e-3  # metres
    max_depth: float = 10.0  # metres


@dataclass(frozen=True)
class ZoeDepthConfig:
    """Everything needed to rebuild a ZoeDepth model and to feed it.

    Defaults are the official ZoeD_N (../shared/oracle/manifest_ZoeD_N.json).
    """

    name: str = 'zoedepth_n'
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    # DPT neck: [256, 512, 1024, 1024] as in the official BEiT-L model (transformers' default
    # differs).
    neck_hidden_sizes: tuple[int, ...] = (256, 512, 1024, 1024)
    reassemble_factors: tuple[float, ...] = (4, 2, 1, 0.5)
    fusion_hidden_size: int = 256
    num_relative_features: int = 32  # channels of the relative head's last features ('out_conv')
    bottleneck_features: int = 256
    # Metric bins head.
    bins: tuple[BinConfig, ...] = (BinConfig(),)
    bin_centers_type: str = 'softplus'  # 'softplus' (unbounded centres) or 'normed' (ZoeD_K)
    # 'absolute': bin centres in metres (ZoeDepth). 'core_depth': the bins module works in factors
    # of the core's own metric depth (FastDepth), centres in metres = factor x core depth.
    bin_reference: str = 'absolute'
    bin_embedding_dim: int = 128
    n_attractors: tuple[int, ...] = (16, 8, 4, 1)
    attractor_alpha: int = 1000
    attractor_gamma: int = 2
    attractor_kind: str = 'mean'
    attractor_type: str = 'inv'
    min_temp: float = 0.0212
    max_temp: float = 50.0
    # NK router (patch transformer over the bottleneck); used only with several bin configurations.
    patch_transformer_layers: int = 4
    patch_transformer_hidden_size: int = 128
    patch_transformer_intermediate_size: int = 1024
    patch_transformer_heads: int = 4
    # Network input: static size (H, W) of exported artifacts and the normalisation
    # (x - mean) / std
    # applied to RGB in [0, 1].
    input_height: int = 384
    input_width: int = 512
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    # True: frames are letterboxed into the input (aspect ratio kept, padding); False: resized to
    # it whatever their aspect ratio, as the model was trained (depth_estimation.processing).
    keep_aspect_ratio: bool = True

    @property
    def min_depth(self) -> float:
        return min(b.min_depth for b in self.bins)

    @property
    def max_depth(self) -> float:
        return max(b.max_depth for b in self.bins)

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the network input."""
        return (self.input_height, self.input_width)

    def replace(self, **changes: Any) -> ZoeDepthConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data['format'] = CONFIG_FORMAT
        return json.loads(json.dumps(data))  # tuples -> lists: the JSON form, saved everywhere

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ZoeDepthConfig:
        data = dict(data)
        version = data.pop('format', CONFIG_FORMAT)
        if version != CONFIG_FORMAT:
            raise ValueError(
                f'model config format {version} is not supported (expected {CONFIG_FORMAT})')
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f'unknown model config keys: {unknown}')
        data['backbone'] = _tuples(BackboneConfig, data.get('backbone', {}))
        data['bins'] = tuple(_tuples(BinConfig, b) for b in data.get('bins', [{}]))
        return _tuples(cls, data)

    def config_hash(self) -> str:
        """sha256 of the canonical JSON form; identifies a model architecture in every artifact."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(',', ':'))
        return hashlib.sha256(text.encode()).hexdigest()

    def to_transformers(self) -> Any:
        """Build the configuration of transformers' ZoeDepthForDepthEstimation."""
        from transformers import ZoeDepthConfig as HFZoeDepthConfig

        multi_head = len(self.bins) > 1
        return HFZoeDepthConfig(
            backbone_config=self.backbone.to_transformers(),
            neck_hidden_sizes=list(self.neck_hidden_sizes),
            reassemble_factors=list(self.reassemble_factors),
            fusion_hidden_size=self.fusion_hidden_size,
            num_relative_features=self.num_relative_features,
            bottleneck_features=self.bottleneck_features,
            num_attractors=list(self.n_attractors),
            bin_embedding_dim=self.bin_embedding_dim,
            attractor_alpha=self.attractor_alpha,
            attractor_gamma=self.attractor_gamma,
            attractor_kind=self.attractor_kind,
            min_temp=self.min_temp,
            max_temp=self.max_temp,
            bin_centers_type=self.bin_centers_type,
            bin_configurations=[dataclasses.asdict(b) for b in self.bins],
            num_patch_transformer_layers=self.patch_transformer_layers if multi_head else None,
            patch_transformer_hidden_size=(
                self.patch_transformer_hidden_size if multi_head else None),
            patch_transformer_intermediate_size=(
                self.patch_transformer_intermediate_size if multi_head else None),
            patch_transformer_num_attention_heads=(
                self.patch_transformer_heads if multi_head else None),
        )


def _tuples(cls: type, data: Mapping[str, Any]) -> Any:
    """Build a frozen dataclass from JSON data, turning lists back into tuples."""
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**values)
