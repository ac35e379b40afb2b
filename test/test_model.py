"""The model: config round trip, shapes, equality with transformers' forward, checkpoints."""

from __future__ import annotations

import pytest
import torch

from depth_estimation.model import PRESETS, ZoeDepthConfig, get_preset


def test_config_round_trip_and_hash() -> None:
    for name in PRESETS:
        config = get_preset(name)
        assert ZoeDepthConfig.from_dict(config.to_dict()) == config
        assert config.config_hash() == ZoeDepthConfig.from_dict(config.to_dict()).config_hash()
    config = get_preset('tiny')
    assert config.replace(input_height=128).config_hash() != config.config_hash()


def test_config_rejects_unknown_keys_and_formats() -> None:
    data = get_preset('tiny').to_dict()
    with pytest.raises(ValueError, match='unknown model config keys'):
        ZoeDepthConfig.from_dict({**data, 'n_bins_typo': 3})
    with pytest.raises(ValueError, match='format'):
        ZoeDepthConfig.from_dict({**data, 'format': 99})


def test_zoedepth_n_preset_is_the_official_configuration() -> None:
    config = get_preset('zoedepth_n')
    assert config.backbone.model_type == 'beit' and config.backbone.layer_norm_eps == 1e-6
    assert config.neck_hidden_sizes == (256, 512, 1024, 1024)
    assert (config.bins[0].n_bins, config.bin_embedding_dim, config.n_attractors) == (
        64, 128, (16, 8, 4, 1))
    assert (config.attractor_alpha, config.attractor_gamma, config.attractor_kind,
            config.attractor_type, config.bin_centers_type) == (1000, 2, 'mean', 'inv', 'softplus')
    assert (config.min_depth, config.max_depth, config.input_size) == (1e-3, 10.0, (384, 512))


def test_forward_shapes_and_bin_mixture(tiny_model) -> None:
    image = torch.rand(2, 3, 96, 128) * 2 - 1  # (B, 3, H, W) normalised
    with torch.inference_mode():
        outputs = tiny_model.forward_outputs(image)
        depth = tiny_model(image)
    n_bins = tiny_model.config.bins[0].n_bins
    assert depth.shape == (2, 1, 96, 128)
    assert outputs.probs.shape == outputs.bin_centers.shape == (2, n_bins, 96, 128)
    assert outputs.relative_depth.shape == (2, 96, 128)
    torch.testing.assert_close(outputs.probs.sum(dim=1), torch.ones(2, 96, 128))
    torch.testing.assert_close(depth, (outputs.probs * outputs.bin_centers).sum(1, keepdim=True))
    assert torch.isfinite(depth).all() and (depth > 0).all()
    assert depth.std() > 1e-3, 'seeded random weights must give a depth that varies'


def test_forward_equals_transformers_implementation(tiny_model) -> None:
    from transformers import ZoeDepthForDepthEstimation

    reference = ZoeDepthForDepthEstimation(tiny_model.config.to_transformers()).eval()
    reference.load_state_dict(tiny_model.state_dict(), strict=True)
    image = torch.rand(1, 3, 96, 128) * 2 - 1
    with torch.inference_mode():
        expected = reference(image).predicted_depth.unsqueeze(1)
        # only our max/exp/sum softmax differs from transformers' torch.softmax: float rounding
        torch.testing.assert_close(tiny_model(image), expected, rtol=1e-6, atol=0)


def test_input_must_be_a_multiple_of_the_patch_size(tiny_model) -> None:
    with pytest.raises(ValueError, match='multiple of the patch size'):
        tiny_model(torch.zeros(1, 3, 100, 128))


def test_checkpoint_round_trip(tiny_model, tiny_checkpoint, tmp_path) -> None:
    from depth_estimation.model.checkpoint import load_checkpoint

    loaded = load_checkpoint(tiny_checkpoint)
    assert loaded.config == tiny_model.config
    image = torch.rand(1, 3, 96, 128)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(image), tiny_model(image), rtol=0, atol=0)

    foreign = tmp_path / 'foreign.pt'
    torch.save({'model': tiny_model.state_dict()}, foreign)
    with pytest.raises(ValueError, match='not a depth_estimation checkpoint'):
        load_checkpoint(foreign)
    corrupt = tmp_path / 'corrupt.pt'
    corrupt.write_bytes(tiny_checkpoint.read_bytes()[:1000])
    with pytest.raises(ValueError, match='cannot read checkpoint'):
        load_checkpoint(corrupt)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / 'missing.pt')


def test_training_step_after_inference_mode(tiny_model) -> None:
    """transformers caches BEiT's position index process-wide; one built under inference_mode must
    not break a later backward pass (Lightning validates in inference mode between steps)."""
    image = torch.rand(2, 3, *tiny_model.config.input_size)
    with torch.inference_mode():
        tiny_model.eval()(image)
    model = tiny_model.train()
    model(image).mean().backward()
    assert all(p.grad is not None for p in model.backbone.parameters() if p.requires_grad)
    model.zero_grad(set_to_none=True)
    model.eval()


def test_public_stages_chain_to_the_forward(tiny_model) -> None:
    """features() then metric_depth() is forward_outputs(); fp32 changes nothing in FP32."""
    image = torch.rand(1, 3, 96, 128) * 2 - 1
    with torch.inference_mode():
        features = tiny_model.features(image)
        staged = tiny_model.metric_depth(features)
        in_fp32 = tiny_model.metric_depth(features, fp32=True)
        expected = tiny_model.forward_outputs(image)
    assert len(features.fused) == 4 and features.output_size is None
    for output in (staged, in_fp32):
        assert torch.equal(output.depth, expected.depth)
        assert torch.equal(output.probs, expected.probs)


def test_fastdepth_core_feeds_the_metric_head() -> None:
    from depth_estimation.model import get_preset
    from depth_estimation.model.zoedepth import build_model

    config = get_preset('zoedepth_fastdepth')
    assert ZoeDepthConfig.from_dict(config.to_dict()) == config
    torch.manual_seed(0)
    model = build_model(config.replace(input_height=64, input_width=96))
    head = model.metric_head
    # one projector per decoder level (H/16, H/8, H/4, H/2), each reading its own width
    assert [p.conv1.in_channels for p in head.projectors] == [200, 256, 120, 56]
    assert head.conv2.in_channels == 512  # the encoder bottleneck
    assert head.conditional_log_binomial.mlp[0].in_channels == 16 + 1 + config.bin_embedding_dim
    image = torch.rand(2, 3, 64, 96)
    with torch.inference_mode():
        features = model.features(image)
        outputs = model.forward_outputs(image)
        core = model.core.forward_features(image)
    assert [tuple(f.shape[-2:]) for f in features.fused] == [(4, 6), (8, 12), (16, 24), (32, 48)]
    assert tuple(features.bottleneck.shape) == (2, 512, 2, 3)
    assert torch.equal(features.relative_depth, core.depth[:, 0])
    assert outputs.depth.shape == (2, 1, 64, 96)  # upsampled from the head's H/2
    assert outputs.probs.shape == outputs.bin_centers.shape == (2, 32, 32, 48)
    torch.testing.assert_close(outputs.probs.sum(dim=1), torch.ones(2, 32, 48))
    head_depth = (outputs.probs * outputs.bin_centers).sum(1, keepdim=True)
    upsampled = torch.nn.functional.interpolate(head_depth, size=(64, 96), mode='bilinear',
                                                align_corners=False)
    torch.testing.assert_close(outputs.depth, upsampled)
    with pytest.raises(ValueError, match='multiple of the patch size 32'):
        model(torch.zeros(1, 3, 48, 96))
    with pytest.raises(ValueError, match='3 attractors for 4 feature levels'):
        from depth_estimation.model.zoedepth import MetricBinsHead

        MetricBinsHead(config.replace(n_attractors=(8, 4, 1)), 512, (200, 256, 120, 56), 16)


def test_core_depth_bins_are_factors_of_the_core_depth() -> None:
    """bin_reference 'core_depth': centres in metres = factors x FastDepth's depth (floored at
    0.1 m) at the head's resolution; a DPT core (relative depth) cannot take it."""
    from torch.nn import functional as F

    from depth_estimation.model import get_preset
    from depth_estimation.model.zoedepth import build_model, CORE_DEPTH_FLOOR

    config = get_preset('zoedepth_fastdepth').replace(input_height=64, input_width=96)
    assert config.bin_reference == 'core_depth'
    torch.manual_seed(0)
    model = build_model(config)
    image = torch.rand(1, 3, 64, 96)
    with torch.inference_mode():
        features = model.features(image)
        outputs = model.metric_depth(features)
        absolute = build_model(config.replace(bin_reference='absolute'))
        absolute.load_state_dict(model.state_dict())
        factors = absolute.metric_depth(features)
    reference = F.interpolate(features.relative_depth.unsqueeze(1), size=(32, 48),
                              mode='bilinear', align_corners=False).clamp_min(CORE_DEPTH_FLOOR)
    torch.testing.assert_close(outputs.bin_centers, factors.bin_centers * reference)
    torch.testing.assert_close(outputs.probs, factors.probs)
    with pytest.raises(ValueError, match="'core_depth' needs a core with metric depth"):
        build_model(get_preset('tiny').replace(bin_reference='core_depth'))
