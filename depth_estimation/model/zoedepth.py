"""ZoeDepth: relative-depth backbone + DPT neck + metric bins head, on transformers' modules.

The backbone, neck, relative head and the metric head's layers are transformers' own modules
(`ZoeDepthForDepthEstimation`), so their state-dict keys are the Hugging Face ones. Our code is
the forward of the metric head, which returns the bin centres and bin probabilities beside the
depth (transformers returns only the depth) and routes ZoeD_NK without a Python branch on a
tensor value, so the model exports to ONNX.

With `backbone.model_type == 'fastdepth'` the relative-depth core is the pretrained FastDepth
(depth_estimation.model.fastdepth) instead of transformers' backbone, neck and relative head, and
the metric head is `MetricBinsHead`: the same transformers layers, sized per feature level.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

from depth_estimation.model.config import BinConfig, ZoeDepthConfig


@dataclass
class ZoeDepthOutput:
    """Everything the model computes; `depth` is what `forward` returns."""

    depth: torch.Tensor  # (B, 1, H, W) metres
    bin_centers: torch.Tensor  # (B, n_bins, H, W) metres
    probs: torch.Tensor  # (B, n_bins, H, W), sums to 1 over bins
    relative_depth: torch.Tensor  # (B, H, W) the backbone's relative (inverse) depth
    domain_logits: Optional[torch.Tensor] = None  # (B, n_heads) ZoeD_NK only


def channel_softmax(logits: torch.Tensor, dim: int) -> torch.Tensor:
    """softmax(logits, dim) written as max / exp / sum.

    Same values as `torch.softmax` (to float rounding), but it exports to ONNX as element-wise ops
    and reductions: ONNX Runtime's Softmax over the channel axis of the (B, n_bins, H, W)
    log-binomial logits took a third of the small model's CPU time (139 -> 98 ms measured).
    """
    exponentials = torch.exp(logits - logits.amax(dim=dim, keepdim=True))
    return exponentials / exponentials.sum(dim=dim, keepdim=True)


def _mode_aware_position_index(backbone: nn.Module) -> None:
    """Give BEiT's relative-position index a cache per inference mode.

    transformers caches that index process-wide (an lru_cache on a staticmethod). Built first
    under `torch.inference_mode` (a backend, an export check, Lightning's validation), the cached
    tensor then breaks any later training step in the process ("Inference tensors cannot be saved
    for backward"). Each block gets its own cache keyed by the mode as well as the window.
    """
    from transformers.models.beit.modeling_beit import BeitRelativePositionBias

    generate = getattr(BeitRelativePositionBias.generate_relative_position_index, '__wrapped__',
                       BeitRelativePositionBias.generate_relative_position_index)
    cache: dict[tuple[tuple[int, ...], bool], torch.Tensor] = {}

    def cached(window_size: tuple[int, int]) -> torch.Tensor:
        key = (tuple(int(size) for size in window_size), torch.is_inference_mode_enabled())
        if key not in cache:
            cache[key] = generate(window_size)
        return cache[key]

    for module in backbone.modules():
        if isinstance(module, BeitRelativePositionBias):
            module.generate_relative_position_index = cached


@dataclass
class CoreFeatures:
    """What the relative-depth core hands the metric head (`ZoeDepth.features`)."""

    bottleneck: torch.Tensor  # (B, C, H/32, W/32) seeds the bins
    fused: list[torch.Tensor]  # decoder maps for the attractors, coarse to fine
    out_conv: torch.Tensor  # (B, C, h, w) last decoder features: the log-binomial's input
    relative_depth: torch.Tensor  # (B, H, W) the core's own (relative or metric) depth
    # (H, W) the metric depth is upsampled to; None: it stays at the log-binomial's resolution
    output_size: Optional[tuple[int, int]] = None

    def float(self) -> CoreFeatures:
        """The same features in FP32 (for the metric head under mixed precision)."""
        return CoreFeatures(self.bottleneck.float(), [f.float() for f in self.fused],
                            self.out_conv.float(), self.relative_depth.float(), self.output_size)


class MetricBinsHead(nn.Module):
    """ZoeDepth's metric bins head for a core whose maps differ in width (transformers' layers).

    The same parts and names as transformers' `ZoeDepthMetricDepthEstimationHead` (so one forward
    runs both), built with per-level input channels: `conv2` maps the core's bottleneck
    (`bottleneck_channels`) to `bottleneck_features`; one projector per attractor level, each
    reading its own map width (`level_channels`); the conditional log-binomial reads the core's
    last features (`last_channels`) plus its depth. The hidden width of the projectors is the bin
    embedding width and that of the seed regressor the bottleneck width (transformers: 128, 256).
    """

    def __init__(self, config: ZoeDepthConfig, bottleneck_channels: int,
                 level_channels: tuple[int, ...], last_channels: int) -> None:
        super().__init__()
        from transformers.models.zoedepth import modeling_zoedepth as layers

        if len(level_channels) != len(config.n_attractors):
            raise ValueError(f'{len(config.n_attractors)} attractors for '
                             f'{len(level_channels)} feature levels')
        hf_config = config.to_transformers()
        bins = config.bins[0]
        embedding = config.bin_embedding_dim
        self.conv2 = nn.Conv2d(bottleneck_channels, config.bottleneck_features, 1)
        self.seed_bin_regressor = layers.ZoeDepthSeedBinRegressor(
            hf_config, n_bins=bins.n_bins, mlp_dim=config.bottleneck_features,
            min_depth=bins.min_depth, max_depth=bins.max_depth)
        self.seed_projector = layers.ZoeDepthProjector(config.bottleneck_features, embedding,
                                                       mlp_dim=embedding)
        self.projectors = nn.ModuleList(
            layers.ZoeDepthProjector(channels, embedding, mlp_dim=embedding)
            for channels in level_channels)
        attractor = (layers.ZoeDepthAttractorLayer if config.bin_centers_type == 'normed'
                     else layers.ZoeDepthAttractorLayerUnnormed)
        self.attractors = nn.ModuleList(
            attractor(hf_config, n_bins=bins.n_bins, n_attractors=count,
                      min_depth=bins.min_depth, max_depth=bins.max_depth)
            for count in config.n_attractors)
        self.conditional_log_binomial = layers.ZoeDepthConditionalLogBinomialSoftmax(
            hf_config, last_channels + 1, embedding, n_classes=bins.n_bins)


class ZoeDepth(nn.Module):
    """Metric depth model: normalised image (B, 3, H, W) -> depth in metres (B, 1, H, W).

    H and W must be multiples of `patch_size` (16 for BEiT, 32 for FastDepth). The network input
    size and normalisation the model was trained for are in `config` (`input_size`, `mean`,
    `std`). The two stages are public: `features` (the relative-depth core) and `metric_depth`
    (the metric bins head, optionally in FP32 under autocast); `forward_outputs` chains them.
    """

    def __init__(self, config: ZoeDepthConfig) -> None:
        super().__init__()
        self.config = config
        self.head_names = [b.name for b in config.bins]
        if config.backbone.model_type == 'fastdepth':
            self._build_fastdepth(config)
        else:
            from transformers import ZoeDepthForDepthEstimation

            hf_model = ZoeDepthForDepthEstimation(config.to_transformers())
            self.backbone = hf_model.backbone
            _mode_aware_position_index(self.backbone)
            self.neck = hf_model.neck
            self.relative_head = hf_model.relative_head
            self.metric_head = hf_model.metric_head
            self.patch_size = config.backbone.patch_size
        for module in self.metric_head.modules():
            if type(module).__name__ == 'LogBinomialSoftmax':
                module.act = channel_softmax

    def _build_fastdepth(self, config: ZoeDepthConfig) -> None:
        from depth_estimation.model.fastdepth import FastDepth, INPUT_MULTIPLE

        if len(self.head_names) != 1:
            raise ValueError('the FastDepth core supports one metric head')
        backbone = config.backbone
        self.core = FastDepth(backbone.encoder_channels, backbone.decoder_channels)
        levels = len(config.n_attractors)  # the coarsest decoder inputs: H/16, H/8, ...
        self.metric_head = MetricBinsHead(config, backbone.encoder_channels[-1],
                                          tuple(backbone.decoder_channels[:levels]),
                                          backbone.decoder_channels[-1])
        self.patch_size = INPUT_MULTIPLE

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.forward_outputs(image).depth

    def forward_outputs(self, image: torch.Tensor) -> ZoeDepthOutput:
        return self.metric_depth(self.features(image))

    def features(self, image: torch.Tensor) -> CoreFeatures:
        """The relative-depth core: bottleneck, decoder maps, last features and relative depth."""
        _, _, height, width = image.shape
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(
                f'input {height}x{width} is not a multiple of the patch size {self.patch_size}')
        if hasattr(self, 'core'):
            core = self.core.forward_features(image)
            levels = len(self.config.n_attractors)
            return CoreFeatures(core.bottleneck, core.decoder_inputs[:levels], core.decoder[-1],
                                core.depth[:, 0], (height, width))
        hidden_states = self.backbone(image).feature_maps
        # fused: 4 maps, coarse to fine, the last at H/2; bottleneck: the coarsest neck map (H/32)
        fused, bottleneck = self.neck(list(hidden_states), height // self.patch_size,
                                      width // self.patch_size)
        # relative_depth: (B, H, W); out_conv: (B, num_relative_features, H, W)
        relative_depth, out_conv = self.relative_head(fused)
        return CoreFeatures(bottleneck, list(fused), out_conv, relative_depth)

    def metric_depth(self, features: CoreFeatures, fp32: bool = False) -> ZoeDepthOutput:
        """The metric bins head on the core's features.

        fp32: run it in FP32 with autocast off (under mixed precision FP16 overflows there,
        isl-org/ZoeDepth#56); in FP32 training this changes nothing.
        """
        context = (torch.autocast(device_type=features.out_conv.device.type, enabled=False)
                   if fp32 else contextlib.nullcontext())
        with context:
            if fp32:
                features = features.float()
            if len(self.head_names) != 1:
                return self._forward_routed(features.bottleneck, features.fused,
                                            features.out_conv, features.relative_depth)
            head = self.metric_head
            depth, centers, probs = _metric_head_forward(
                head, self.config.bin_centers_type, self.config.bins[0], head.seed_bin_regressor,
                head.attractors, head.conditional_log_binomial, features.bottleneck,
                features.fused, features.out_conv, features.relative_depth)
            if features.output_size is not None and depth.shape[-2:] != features.output_size:
                depth = F.interpolate(depth, size=features.output_size, mode='bilinear',
                                      align_corners=False)  # (B, 1, H, W)
        return ZoeDepthOutput(depth, centers, probs, features.relative_depth)

    def _forward_routed(self, bottleneck: torch.Tensor, fused: list[torch.Tensor],
                        out_conv: torch.Tensor, relative_depth: torch.Tensor) -> ZoeDepthOutput:
        """ZoeD_NK: a patch transformer votes for one head for the whole batch."""
        head = self.metric_head
        x = head.conv2(bottleneck)
        embedding = head.patch_transformer(x)[:, 0, :]  # (B, E) class token
        domain_logits = head.mlp_classifier(embedding)  # (B, n_heads)
        vote = torch.softmax(domain_logits.sum(dim=0, keepdim=True), dim=-1)  # (1, n_heads)
        route = torch.argmax(vote, dim=-1)  # (1,)

        def run(index: int) -> tuple[torch.Tensor, ...]:
            name = self.head_names[index]
            return _metric_head_forward(
                head, self.config.bin_centers_type, self.config.bins[index],
                head.seed_bin_regressors[name], head.attractors[name],
                head.conditional_log_binomial[name], bottleneck, fused, out_conv, None)

        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            # Exported graphs cannot branch on a value: run every head and select the voted one.
            results = [run(i) for i in range(len(self.head_names))]
            selected = []
            for outputs in zip(*results):
                stacked = torch.stack(outputs)  # (n_heads, B, C, H, W)
                selected.append(stacked.index_select(0, route).squeeze(0))
            depth, centers, probs = selected
        else:
            depth, centers, probs = run(int(route.item()))
        return ZoeDepthOutput(depth, centers, probs, relative_depth, domain_logits)


def _metric_head_forward(head: nn.Module, bin_centers_type: str, bins: BinConfig,
                         seed_bin_regressor: nn.Module,
                         attractors: nn.ModuleList, conditional_log_binomial: nn.Module,
                         bottleneck: torch.Tensor, fused: list[torch.Tensor],
                         out_conv: torch.Tensor,
                         relative_depth: Optional[torch.Tensor]
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The metric bins head of ZoeDepth (same computation as the official `ZoeDepth.forward`).

    Seed bin centres from the bottleneck are refined by four attractor layers, one per fused
    decoder map (coarse to fine). A per-pixel log-binomial distribution over the final bins gives
    depth = sum_i p_i * c_i. ZoeD_N conditions that distribution on the relative depth too.
    Returns depth (B, 1, H, W), bin centres (B, n_bins, H, W) and probabilities (B, n_bins, H, W).
    """
    x = head.conv2(bottleneck)  # (B, 256, H/32, W/32)
    _, seed_centers = seed_bin_regressor(x)  # (B, n_bins, H/32, W/32)
    if bin_centers_type == 'normed':
        previous_bins = (seed_centers - bins.min_depth) / (bins.max_depth - bins.min_depth)
    else:
        previous_bins = seed_centers
    previous_embedding = head.seed_projector(x)  # (B, E, H/32, W/32)
    for projector, attractor, feature in zip(head.projectors, attractors, fused):
        embedding = projector(feature)  # (B, E, h, w)
        previous_bins, centers = attractor(embedding, previous_bins, previous_embedding,
                                           interpolate=True)
        previous_embedding = embedding

    last = out_conv  # (B, C, H, W)
    if relative_depth is not None:
        relative = F.interpolate(relative_depth.unsqueeze(1), size=last.shape[2:], mode='bilinear',
                                 align_corners=True)
        last = torch.cat([last, relative], dim=1)  # (B, C + 1, H, W)
    embedding = F.interpolate(previous_embedding, last.shape[-2:], mode='bilinear',
                              align_corners=True)
    probs = conditional_log_binomial(last, embedding)  # (B, n_bins, H, W)
    centers = F.interpolate(centers, probs.shape[-2:], mode='bilinear', align_corners=True)
    depth = torch.sum(probs * centers, dim=1, keepdim=True)  # (B, 1, H, W)
    return depth, centers, probs


def build_model(config: ZoeDepthConfig) -> ZoeDepth:
    """A ZoeDepth model with freshly initialised weights, in eval mode."""
    return ZoeDepth(config).eval()
