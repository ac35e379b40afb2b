"""Load official ZoeDepth weights: isl-org/ZoeDepth `.pt` checkpoints and Hugging Face directories.

Our state-dict keys are transformers' ZoeDepth keys (see zoedepth.py). `map_official_state_dict` is
the one explicit mapping from the official keys (for example
`core.core.pretrained.model.blocks.0.attn.qkv.weight`; ../shared/oracle/manifest_*.json) to ours.
It

- strips a leading `module.` and unwraps a top-level `model` key, as the official loader does;
- splits fused tensors: BEiT/SwinV2 `attn.qkv.weight` into query/key/value, `q_bias`/`v_bias` into
  the query and value biases (the key has no bias), the router's `in_proj_weight`/`in_proj_bias`;
- drops buffers our model regenerates after checking that they hold the values we would generate
  (BEiT `relative_position_index`, SwinV2 `attn_mask`, log-binomial `k_idx`/`K_minus_1`) and
  raises if they do not;
- drops the backbone's ImageNet classifier (`fc_norm`, `head`) and SwinV2's final `norm`, which the
  MiDaS forward never uses (listed in `MappedState.dropped`);
- raises `OfficialCheckpointError` for any key no rule covers.

`load_official(path, preset=None)` reads either format and returns a `ZoeDepth` in eval mode;
loading is strict, and every missing key, unexpected key and shape mismatch is listed in the error.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import torch

from depth_estimation.model.config import BackboneConfig, BinConfig, ZoeDepthConfig
from depth_estimation.model.presets import get_preset
from depth_estimation.model.zoedepth import ZoeDepth

PathLike = Union[str, Path]
StateDict = dict[str, torch.Tensor]
Replacement = Union[str, Callable[['re.Match[str]'], str]]

_BEIT = 'core.core.pretrained.model.'  # the timm backbone inside MiDaS inside ZoeDepth
_B = re.escape(_BEIT)
_D = re.escape('core.core.')
# timm's LayerNorm epsilons: BEiT uses 1e-6, SwinV2 nn.LayerNorm's default 1e-5.
_TIMM_LAYER_NORM_EPS = {'beit': 1e-6, 'swinv2': 1e-5}


class OfficialCheckpointError(ValueError):
    """An official checkpoint that does not map exactly onto the chosen model."""


@dataclass
class MappedState:
    """Result of `map_official_state_dict`: our state dict, and what was left out and why."""

    state_dict: StateDict
    dropped: dict[str, str] = field(default_factory=dict)  # official key -> reason


# ---------------------------------------------------------------------------------------------
# Key mapping
# ---------------------------------------------------------------------------------------------

# Renames applied, first match wins, after the fused tensors were split into pseudo keys
# `...attn.{q,k,v}.{weight,bias}` (backbones) and `...self_attn.{q,k,v}.{weight,bias}` (router).
_BEIT_RENAMES: tuple[tuple[str, Replacement], ...] = (
    # BEiT-L (timm 0.6 as patched by MiDaS) -> transformers BeitBackbone
    (_B + r'cls_token$', r'backbone.beit.embeddings.cls_token'),
    (_B + r'patch_embed\.proj\.', r'backbone.beit.embeddings.patch_embeddings.projection.'),
    (_B + r'blocks\.(\d+)\.gamma_(\d)$', r'backbone.beit.layers.\1.lambda_\2'),
    (_B + r'blocks\.(\d+)\.norm1\.', r'backbone.beit.layers.\1.layernorm_before.'),
    (_B + r'blocks\.(\d+)\.norm2\.', r'backbone.beit.layers.\1.layernorm_after.'),
    (_B + r'blocks\.(\d+)\.attn\.([qkv])\.', r'backbone.beit.layers.\1.attention.\2_proj.'),
    (_B + r'blocks\.(\d+)\.attn\.proj\.', r'backbone.beit.layers.\1.attention.o_proj.'),
    (_B + r'blocks\.(\d+)\.attn\.relative_position_bias_table$',
     r'backbone.beit.layers.\1.relative_position_bias.relative_position_bias_table'),
    (_B + r'blocks\.(\d+)\.mlp\.(fc\d)\.', r'backbone.beit.layers.\1.mlp.\2.'),
)
_SWINV2_RENAMES: tuple[tuple[str, Replacement], ...] = (
    # SwinV2 (timm 0.6: downsampling at the end of each stage) -> transformers Swinv2Backbone
    (_B + r'patch_embed\.proj\.', r'backbone.embeddings.patch_embeddings.projection.'),
    (_B + r'patch_embed\.norm\.', r'backbone.embeddings.norm.'),
    (_B + r'layers\.(\d+)\.blocks\.(\d+)\.attn\.logit_scale$',
     r'backbone.encoder.layers.\1.blocks.\2.attention.self.logit_scale'),
    (_B + r'layers\.(\d+)\.blocks\.(\d+)\.attn\.cpb_mlp\.',
     r'backbone.encoder.layers.\1.blocks.\2.attention.self.continuous_position_bias_mlp.'),
    (_B + r'layers\.(\d+)\.blocks\.(\d+)\.attn\.q\.',
     r'backbone.encoder.layers.\1.blocks.\2.attention.self.query.'),
    (_B + r'layers\.(\d+)\.blocks\.(\d+)\.attn\.k\.',
     r'backbone.encoder.layers.\1.blocks.\2.attention.self.key.'),
    (_B + r'layers\.(\d+)\.blocks\.(\d+)\.attn\.v\.',
     r'backbone.encoder.layers.\1.blocks.\2.attention.self.value.'),
    (_B + r'layers\.(\d+)\.blocks\.(\d+)\.attn\.proj\.',
     r'backbone.encoder.layers.\1.blocks.\2.attention.output.dense.'),
    (_B + r'layers\.(\d+)\.blocks\.(\d+)\.norm1\.',
     r'backbone.encoder.layers.\1.blocks.\2.layernorm_before.'),
    (_B + r'layers\.(\d+)\.blocks\.(\d+)\.norm2\.',
     r'backbone.encoder.layers.\1.blocks.\2.layernorm_after.'),
    (_B + r'layers\.(\d+)\.blocks\.(\d+)\.mlp\.fc1\.',
     r'backbone.encoder.layers.\1.blocks.\2.intermediate.dense.'),
    (_B + r'layers\.(\d+)\.blocks\.(\d+)\.mlp\.fc2\.',
     r'backbone.encoder.layers.\1.blocks.\2.output.dense.'),
    (_B + r'layers\.(\d+)\.downsample\.', r'backbone.encoder.layers.\1.downsample.'),
)
_DECODER_RENAMES: tuple[tuple[str, Replacement], ...] = (
    # DPT reassemble (ViT backbones only), neck convolutions, fusion blocks and relative head.
    (_D + r'pretrained\.act_postprocess(\d)\.0\.project\.0\.',
     lambda m: f'neck.reassemble_stage.readout_projects.{int(m[1]) - 1}.0.'),
    (_D + r'pretrained\.act_postprocess(\d)\.3\.',
     lambda m: f'neck.reassemble_stage.layers.{int(m[1]) - 1}.projection.'),
    (_D + r'pretrained\.act_postprocess(\d)\.4\.',
     lambda m: f'neck.reassemble_stage.layers.{int(m[1]) - 1}.resize.'),
    (_D + r'scratch\.layer(\d)_rn\.', lambda m: f'neck.convs.{int(m[1]) - 1}.'),
    # refinenet4 fuses the coarsest map first: transformers' fusion layer 0.
    (_D + r'scratch\.refinenet(\d)\.out_conv\.',
     lambda m: f'neck.fusion_stage.layers.{4 - int(m[1])}.projection.'),
    (_D + r'scratch\.refinenet(\d)\.resConfUnit(\d)\.conv(\d)\.',
     lambda m: (f'neck.fusion_stage.layers.{4 - int(m[1])}.residual_layer{m[2]}'
                f'.convolution{m[3]}.')),
    (_D + r'scratch\.output_conv\.0\.', r'relative_head.conv1.'),
    (_D + r'scratch\.output_conv\.2\.', r'relative_head.conv2.'),
    (_D + r'scratch\.output_conv\.4\.', r'relative_head.conv3.'),
    # Metric head(s). `_net.0` / `_net.2` are the two 1x1 convolutions of each small MLP.
    (r'^conv2\.', r'metric_head.conv2.'),
    (r'^(seed_bin_regressor|seed_bin_regressors\.\w+|seed_projector|projectors\.\d+'
     r'|attractors\.\d+|attractors\.\w+\.\d+)\._net\.0\.', r'metric_head.\1.conv1.'),
    (r'^(seed_bin_regressor|seed_bin_regressors\.\w+|seed_projector|projectors\.\d+'
     r'|attractors\.\d+|attractors\.\w+\.\d+)\._net\.2\.', r'metric_head.\1.conv2.'),
    (r'^(conditional_log_binomial(?:\.\w+)?)\.mlp\.([02])\.', r'metric_head.\1.mlp.\2.'),
    # ZoeD_NK router: torch TransformerEncoder -> transformers' ZoeDepthTransformerEncoderLayer.
    (r'^patch_transformer\.embedding_convPxP\.',
     r'metric_head.patch_transformer.embedding_convPxP.'),
    (r'^patch_transformer\.transformer_encoder\.layers\.(\d+)\.self_attn\.([qkv])\.',
     lambda m: (f'metric_head.patch_transformer.transformer_encoder.{m[1]}.self_attn.'
                f'{dict(q="query", k="key", v="value")[m[2]]}.')),
    (r'^patch_transformer\.transformer_encoder\.layers\.(\d+)\.'
     r'(self_attn\.out_proj|linear1|linear2|norm1|norm2)\.',
     r'metric_head.patch_transformer.transformer_encoder.\1.\2.'),
    (r'^mlp_classifier\.0\.', r'metric_head.mlp_classifier.linear1.'),
    (r'^mlp_classifier\.2\.', r'metric_head.mlp_classifier.linear2.'),
)
_COMPILED = {
    family: tuple((re.compile('^' + pattern.lstrip('^')), replacement)
                  for pattern, replacement in backbone_renames + _DECODER_RENAMES)
    for family, backbone_renames in (('beit', _BEIT_RENAMES), ('swinv2', _SWINV2_RENAMES))}

# Parameters of the official model that its forward never uses.
_UNUSED = re.compile(_B + r'(fc_norm|head|norm)\.')


def unwrap_official_state(checkpoint: Mapping[str, Any]) -> StateDict:
    """The state dict inside an official checkpoint (unwraps `model`, strips `module.`)."""
    state = checkpoint.get('model', checkpoint)
    if not isinstance(state, Mapping):
        raise OfficialCheckpointError('official checkpoint: `model` entry is not a state dict')
    return {(k[len('module.'):] if k.startswith('module.') else k): v for k, v in state.items()}


def map_official_state_dict(checkpoint: Mapping[str, Any]) -> MappedState:
    """Map an official ZoeDepth state dict (N, K, NK; BEiT-L or SwinV2 core) to our keys.

    Raises `OfficialCheckpointError` for keys no rule covers and for regenerated buffers whose
    stored value differs from ours.
    """
    state = unwrap_official_state(checkpoint)
    # timm SwinV2 has `layers.<stage>.blocks`, BEiT `blocks`; both have `patch_embed.proj`.
    family = 'swinv2' if any(k.startswith(_BEIT + 'layers.') for k in state) else 'beit'
    mapped: StateDict = {}
    dropped: dict[str, str] = {}
    unmapped: list[str] = []
    for key, tensor in state.items():
        reason = _check_regenerated_buffer(key, tensor, state)
        if reason is not None:
            dropped[key] = reason
            continue
        if _UNUSED.match(key):
            dropped[key] = 'unused by the MiDaS forward (ImageNet classifier / final norm)'
            continue
        for pseudo_key, part in _split_fused(key, tensor):
            new_key = _rename(pseudo_key, family)
            if new_key is None:
                unmapped.append(key)
                break
            if new_key in mapped:
                raise OfficialCheckpointError(f'two official keys map to {new_key} (one is {key})')
            mapped[new_key] = part
    if unmapped:
        raise OfficialCheckpointError(
            'official checkpoint has keys no mapping rule covers:\n' + _listing(unmapped))
    return MappedState(mapped, dropped)


def _split_fused(key: str, tensor: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Split fused q/k/v tensors into pseudo keys `attn.{q,k,v}.*` / `self_attn.{q,k,v}.*`."""
    for fused, prefix in (('attn.qkv.weight', 'attn.'), ('self_attn.in_proj_weight', 'self_attn.'),
                          ('self_attn.in_proj_bias', 'self_attn.')):
        if key.endswith(fused):
            base = key[:-len(fused)] + prefix
            kind = 'bias' if fused.endswith('bias') else 'weight'
            # (3 * C, ...) -> 3 x (C, ...), in q, k, v order
            query, key_part, value = torch.chunk(tensor, 3, dim=0)
            return [(f'{base}q.{kind}', query), (f'{base}k.{kind}', key_part),
                    (f'{base}v.{kind}', value)]
    if key.endswith('attn.q_bias'):  # the key projection has no bias (timm keeps zeros)
        return [(key[:-len('q_bias')] + 'q.bias', tensor)]
    if key.endswith('attn.v_bias'):
        return [(key[:-len('v_bias')] + 'v.bias', tensor)]
    return [(key, tensor)]


def _rename(key: str, family: str) -> Optional[str]:
    """Our key for an official (pseudo) key of a `family` backbone; None if no rule matches."""
    for pattern, replacement in _COMPILED[family]:
        match = pattern.match(key)
        if match is None:
            continue
        head = replacement(match) if callable(replacement) else match.expand(replacement)
        return head + key[match.end():]
    return None


def _check_regenerated_buffer(key: str, tensor: torch.Tensor,
                              state: Mapping[str, torch.Tensor]) -> Optional[str]:
    """Compare a persistent official buffer with what our model computes; None if not a buffer."""
    expected: Optional[torch.Tensor] = None
    if key.endswith('attn.relative_position_index'):
        from transformers.models.beit.modeling_beit import BeitRelativePositionBias

        window = math.isqrt(tensor.shape[0] - 1)  # (1 + W*W, 1 + W*W)
        expected = BeitRelativePositionBias.generate_relative_position_index((window, window))
    elif key.endswith('.attn_mask'):
        expected = _swin_attention_mask(tuple(tensor.shape))
    elif key.endswith('log_binomial_transform.k_idx'):
        expected = torch.arange(tensor.shape[1]).view(1, -1, 1, 1)
    elif key.endswith('log_binomial_transform.K_minus_1'):
        k_idx = state.get(key[:-len('K_minus_1')] + 'k_idx')
        n_classes = k_idx.shape[1] if k_idx is not None else 0
        expected = torch.tensor([n_classes - 1.0]).view(1, 1, 1, 1)
    else:
        return None
    if tuple(tensor.shape) != tuple(expected.shape) or not torch.equal(
            tensor.to(expected.dtype), expected):
        raise OfficialCheckpointError(
            f'{key}: stored buffer {tuple(tensor.shape)} differs from the one our model generates '
            f'{tuple(expected.shape)}; the checkpoint is not from the official architecture')
    return 'buffer regenerated by our model (checked equal)'


def _swin_attention_mask(shape: tuple[int, ...]) -> torch.Tensor:
    """transformers' shifted-window mask for a stored (n_windows, N, N) timm mask."""
    from transformers.models.swinv2.modeling_swinv2 import Swinv2Layer

    n_windows, tokens = shape[0], shape[1]
    window = math.isqrt(tokens)
    side = window * math.isqrt(n_windows)  # square feature map
    layer = SimpleNamespace(window_size=window, shift_size=window // 2)
    return Swinv2Layer.get_attn_mask(layer, side, side, torch.float32)


# ---------------------------------------------------------------------------------------------
# Strict loading
# ---------------------------------------------------------------------------------------------

def load_mapped_state(model: ZoeDepth, state_dict: Mapping[str, torch.Tensor],
                      assign: bool = False) -> None:
    """Strict `load_state_dict` listing every missing key, unexpected key and bad shape."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = sorted(
        f'{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)}'
        for k in set(expected) & set(state_dict)
        if tuple(state_dict[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or mismatched:
        parts = [f'checkpoint does not match model {model.config.name!r}:']
        for title, items in (('missing keys', missing), ('unexpected keys', unexpected),
                             ('shape mismatches', mismatched)):
            if items:
                parts.append(f'{title} ({len(items)}):\n{_listing(items)}')
        raise OfficialCheckpointError('\n'.join(parts))
    model.load_state_dict(dict(state_dict), strict=True, assign=assign)


def _listing(items: list[str], limit: int = 20) -> str:
    lines = [f'  {item}' for item in items[:limit]]
    if len(items) > limit:
        lines.append(f'  ... and {len(items) - limit} more')
    return '\n'.join(lines)


# ---------------------------------------------------------------------------------------------
# Official .pt checkpoints
# ---------------------------------------------------------------------------------------------

def infer_official_preset(checkpoint: Mapping[str, Any]) -> str:
    """Preset name for an official state dict, from its keys and shapes.

    ZoeD_K is recognised by its normed attractors (2 channels per attractor) and mapped to
    `zoedepth_k` (80 m, as trained); pass `zoedepth_k_hub` explicitly for torch.hub's 10 m.
    """
    state = unwrap_official_state(checkpoint)
    if 'patch_transformer.embedding_convPxP.weight' in state:
        return 'zoedepth_nk'
    swin_qkv = state.get(_BEIT + 'layers.0.blocks.0.attn.qkv.weight')
    if swin_qkv is not None:
        width = swin_qkv.shape[1]
        names = {128: 'zoedepth_n_swinv2_b', 96: 'zoedepth_n_swinv2_t'}
        if width not in names:
            raise OfficialCheckpointError(f'unknown SwinV2 width {width}; pass a preset')
        return names[width]
    attractor = state.get('attractors.0._net.2.weight')
    if attractor is None:
        raise OfficialCheckpointError(
            'not an official ZoeDepth state dict (no attractors.0._net.2.weight); pass a preset')
    # softplus (ZoeD_N): 16 output channels; normed (ZoeD_K): 2 x 16
    return 'zoedepth_k' if attractor.shape[0] == 32 else 'zoedepth_n'


def read_official_checkpoint(path: PathLike) -> StateDict:
    """Read an official `.pt` / `.pth` file (weights only) and unwrap its state dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'official checkpoint not found: {path}')
    try:
        data = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # corrupt file, or pickled objects beyond tensors
        raise OfficialCheckpointError(f'cannot read {path} as a weights-only torch file: {error}')
    if not isinstance(data, Mapping):
        raise OfficialCheckpointError(f'{path} does not hold a state dict')
    return unwrap_official_state(data)


def load_official_state_dict(checkpoint: Mapping[str, Any],
                             preset: Optional[str] = None) -> ZoeDepth:
    """Build the preset's model and load an official state dict into it strictly (eval mode)."""
    config = get_preset(preset or infer_official_preset(checkpoint))
    mapped = map_official_state_dict(checkpoint)
    model = ZoeDepth(config)
    load_mapped_state(model, mapped.state_dict)
    return model.eval()


# ---------------------------------------------------------------------------------------------
# Hugging Face directories (Intel/zoedepth-nyu, -kitti, -nyu-kitti)
# ---------------------------------------------------------------------------------------------

def config_from_hf(hf_config: Mapping[str, Any], name: str = 'hf',
                   preprocessor: Optional[Mapping[str, Any]] = None,
                   match_official: bool = True) -> ZoeDepthConfig:
    """Our `ZoeDepthConfig` from a Hugging Face ZoeDepth `config.json` (as a dict).

    With `match_official` the backbone's LayerNorm epsilon is timm's (BEiT 1e-6, SwinV2 1e-5),
    which is what the official model that produced these weights uses; transformers' BEiT default
    1e-12 moves the depth by about 2e-4 relative (../shared/REFERENCE.md).
    """
    _require_hf_defaults(hf_config)
    backbone = _backbone_from_hf(dict(hf_config.get('backbone_config') or {}),
                                 match_official)
    bins = _bins_from_hf(hf_config.get('bin_configurations') or [{}])
    bin_centers_type = hf_config.get('bin_centers_type', 'softplus')
    height, width = _hf_input_size(preprocessor, bin_centers_type)
    defaults = ZoeDepthConfig()
    return ZoeDepthConfig(
        name=name,
        backbone=backbone,
        neck_hidden_sizes=tuple(hf_config.get('neck_hidden_sizes', defaults.neck_hidden_sizes)),
        reassemble_factors=tuple(
            hf_config.get('reassemble_factors', defaults.reassemble_factors)),
        fusion_hidden_size=hf_config.get('fusion_hidden_size', defaults.fusion_hidden_size),
        num_relative_features=hf_config.get('num_relative_features',
                                            defaults.num_relative_features),
        bottleneck_features=hf_config.get('bottleneck_features', defaults.bottleneck_features),
        bins=tuple(bins),
        bin_centers_type=bin_centers_type,
        bin_embedding_dim=hf_config.get('bin_embedding_dim', defaults.bin_embedding_dim),
        n_attractors=tuple(hf_config.get('num_attractors', defaults.n_attractors)),
        attractor_alpha=hf_config.get('attractor_alpha', defaults.attractor_alpha),
        attractor_gamma=hf_config.get('attractor_gamma', defaults.attractor_gamma),
        attractor_kind=hf_config.get('attractor_kind', defaults.attractor_kind),
        min_temp=hf_config.get('min_temp', defaults.min_temp),
        max_temp=hf_config.get('max_temp', defaults.max_temp),
        patch_transformer_layers=(hf_config.get('num_patch_transformer_layers')
                                  or defaults.patch_transformer_layers),
        patch_transformer_hidden_size=(hf_config.get('patch_transformer_hidden_size')
                                       or defaults.patch_transformer_hidden_size),
        patch_transformer_intermediate_size=(
            hf_config.get('patch_transformer_intermediate_size')
            or defaults.patch_transformer_intermediate_size),
        patch_transformer_heads=(hf_config.get('patch_transformer_num_attention_heads')
                                 or defaults.patch_transformer_heads),
        input_height=height,
        input_width=width,
    )


def _backbone_from_hf(backbone_data: Mapping[str, Any], match_official: bool) -> BackboneConfig:
    """The `BackboneConfig` of a Hugging Face `backbone_config` (BEiT or SwinV2)."""
    model_type = backbone_data.get('model_type', 'beit')
    out_indices = tuple(backbone_data.get('out_indices') or ())
    if model_type == 'beit':
        backbone = BackboneConfig(
            model_type='beit', image_size=backbone_data.get('image_size', 384),
            patch_size=backbone_data.get('patch_size', 16),
            hidden_size=backbone_data.get('hidden_size', 1024),
            num_hidden_layers=backbone_data.get('num_hidden_layers', 24),
            num_attention_heads=backbone_data.get('num_attention_heads', 16),
            intermediate_size=backbone_data.get('intermediate_size', 4096),
            out_indices=out_indices or (6, 12, 18, 24),
            layer_norm_eps=backbone_data.get('layer_norm_eps', 1e-12))
    elif model_type == 'swinv2':
        backbone = BackboneConfig(
            model_type='swinv2', image_size=backbone_data.get('image_size', 256),
            patch_size=backbone_data.get('patch_size', 4),
            hidden_size=backbone_data.get('embed_dim', 96),
            out_indices=out_indices or (1, 2, 3, 4),
            layer_norm_eps=backbone_data.get('layer_norm_eps', 1e-5),
            depths=tuple(backbone_data.get('depths', (2, 2, 6, 2))),
            num_heads=tuple(backbone_data.get('num_heads', (3, 6, 12, 24))),
            window_size=backbone_data.get('window_size', 8),
            pretrained_window_sizes=tuple(backbone_data.get('pretrained_window_sizes', ())))
    else:
        raise OfficialCheckpointError(f'unsupported Hugging Face backbone {model_type!r}')
    if match_official:
        backbone = _replace(backbone, layer_norm_eps=_TIMM_LAYER_NORM_EPS[model_type])
    return backbone


def _bins_from_hf(raw_bins: Sequence[Mapping[str, Any]]) -> list[BinConfig]:
    """The `BinConfig`s of Hugging Face `bin_configurations` (named by their depth range)."""
    bins = []
    for raw in raw_bins:
        max_depth = float(raw.get('max_depth', 10.0))
        default_name = 'nyu' if max_depth <= 10.0 else 'kitti'
        bins.append(BinConfig(name=raw.get('name', default_name),
                              n_bins=int(raw.get('n_bins', 64)),
                              min_depth=float(raw.get('min_depth', 1e-3)), max_depth=max_depth))
    return bins


def _replace(config: BackboneConfig, **changes: Any) -> BackboneConfig:
    import dataclasses

    return dataclasses.replace(config, **changes)


# Settings of transformers' ZoeDepthConfig that our config does not carry: they must keep the
# values our `to_transformers()` leaves at their defaults.
_HF_FIXED = {'readout_type': 'project', 'add_projection': False, 'head_in_index': -1,
             'use_batch_norm_in_fusion_residual': False, 'use_bias_in_fusion_residual': None,
             'hidden_act': 'gelu'}


def _require_hf_defaults(hf_config: Mapping[str, Any]) -> None:
    different = {k: hf_config[k] for k, v in _HF_FIXED.items()
                 if k in hf_config and hf_config[k] != v and not (v is None and hf_config[k])}
    if different:
        raise OfficialCheckpointError(f'unsupported Hugging Face ZoeDepth settings: {different}')


def _hf_input_size(preprocessor: Optional[Mapping[str, Any]],
                   bin_centers_type: str) -> tuple[int, int]:
    """(height, width) of the network input: the preprocessor's size, else the official one."""
    size = (preprocessor or {}).get('size') or {}
    if 'height' in size and 'width' in size:
        return int(size['height']), int(size['width'])
    return (384, 768) if bin_centers_type == 'normed' else (384, 512)


def load_hf_directory(path: PathLike, match_official: bool = True) -> ZoeDepth:
    """Load a Hugging Face ZoeDepth directory (config.json + model.safetensors) strictly.

    Weights go through transformers' own `from_pretrained`, which also renames the keys of older
    transformers versions; our keys are the current transformers keys.
    """
    from transformers import ZoeDepthForDepthEstimation

    path = Path(path)
    config_path = path / 'config.json'
    if not config_path.is_file():
        raise FileNotFoundError(f'no config.json in Hugging Face directory {path}')
    hf_config = json.loads(config_path.read_text())
    if hf_config.get('model_type') != 'zoedepth':
        raise OfficialCheckpointError(
            f'{config_path}: model_type {hf_config.get("model_type")!r}, expected zoedepth')
    preprocessor_path = path / 'preprocessor_config.json'
    preprocessor = (json.loads(preprocessor_path.read_text())
                    if preprocessor_path.is_file() else None)
    config = config_from_hf(hf_config, name=f'hf_{path.name}', preprocessor=preprocessor,
                            match_official=match_official)
    hf_model, info = ZoeDepthForDepthEstimation.from_pretrained(
        path, config=config.to_transformers(), output_loading_info=True)
    problems = {k: v for k, v in info.items() if v and k != 'error_msgs'}
    if problems or info.get('error_msgs'):
        raise OfficialCheckpointError(f'{path}: weights do not match the config: {info}')
    model = ZoeDepth(config)
    load_mapped_state(model, hf_model.state_dict())
    return model.eval()


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------

def load_official(path: PathLike, preset: Optional[str] = None) -> ZoeDepth:
    """Load official weights: a `.pt`/`.pth` file of isl-org/ZoeDepth or a Hugging Face directory.

    `preset` chooses the architecture of a `.pt` file when it cannot be inferred (or to pick
    `zoedepth_k_hub`); a Hugging Face directory carries its own config, so `preset` must be None.
    """
    path = Path(path)
    if path.is_dir():
        if preset is not None:
            raise ValueError('a Hugging Face directory carries its own config; drop --preset')
        return load_hf_directory(path)
    return load_official_state_dict(read_official_checkpoint(path), preset)
