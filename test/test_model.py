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
