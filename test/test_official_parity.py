"""Official ZoeDepth weights: key mapping for every variant, output parity with the official code.

Reference data: ../shared/oracle (manifests of the official state dicts, the seeded filler
`fill_state.py`, and the official ZoeD_N outputs `parity_ZoeD_N.npz`). Tests that need it are
skipped when ../shared is absent.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from conftest import SHARED_DIR
from depth_estimation.model.checkpoint import load_checkpoint
from depth_estimation.model.official import (
    infer_official_preset, load_mapped_state, load_official, load_official_state_dict,
    map_official_state_dict, OfficialCheckpointError)
from depth_estimation.model.presets import get_preset
from depth_estimation.model.protocol import infer_official
from depth_estimation.model.zoedepth import ZoeDepth

ORACLE = SHARED_DIR / 'oracle'
needs_oracle = pytest.mark.skipif(
    not (ORACLE / 'fill_state.py').is_file(),
    reason=f'official reference data {ORACLE} is absent (../shared is not beside this checkout)')

# oracle manifest tag -> our preset
VARIANTS = {
    'ZoeD_N': 'zoedepth_n',
    'ZoeD_K': 'zoedepth_k',
    'ZoeD_NK': 'zoedepth_nk',
    'ZoeD_N_SwinV2_B_384': 'zoedepth_n_swinv2_b',
    'ZoeD_N_SwinV2_T_256': 'zoedepth_n_swinv2_t',
}
MAX_RELATIVE_ERROR = 1e-4


def _fill_state_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location('oracle_fill_state', ORACLE / 'fill_state.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _manifest(tag: str) -> dict[str, Any]:
    return json.loads((ORACLE / f'manifest_{tag}.json').read_text())


def _shape_state(tag: str) -> dict[str, torch.Tensor]:
    """Official state dict of `tag` with the manifest's shapes: real buffers, zero parameters.

    Key mapping does not depend on parameter values (the parity tests check values), and zeros
    avoid seeding 345M parameters per variant.
    """
    manifest = _manifest(tag)
    buffers_only = dict(manifest, state_dict=[e for e in manifest['state_dict']
                                              if e['kind'] == 'buffer'])
    state = _fill_state_module().fill_state(buffers_only, seed=0)
    for entry in manifest['state_dict']:
        if entry['kind'] == 'parameter':
            state[entry['key']] = torch.zeros(entry['shape'])
    return state


def _meta_model(preset: str) -> ZoeDepth:
    """The preset's model without memory (meta device): enough to check keys and shapes."""
    with torch.device('meta'):
        return ZoeDepth(get_preset(preset))


def _max_relative_error(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(np.max(np.abs(ours - reference) / np.maximum(np.abs(reference), 1e-12)))


@pytest.fixture(scope='session')
def parity_input() -> torch.Tensor:
    """The oracle's shared input, RGB in [0, 1): (1, 3, 384, 512)."""
    return torch.from_numpy(np.load(ORACLE / 'parity_input.npz')['x'])


# ---------------------------------------------------------------------------------------------
# Key mapping, every variant
# ---------------------------------------------------------------------------------------------

@needs_oracle
@pytest.mark.parametrize('tag', sorted(VARIANTS))
def test_official_keys_map_strictly(tag: str) -> None:
    """Every official key maps (or is a checked buffer / unused classifier) and loads strictly."""
    state = _shape_state(tag)
    assert infer_official_preset(state) == VARIANTS[tag]
    # Stored as the official trainer does: {'model': ...}, possibly with DataParallel's prefix.
    wrapped = {'model': {f'module.{key}': value for key, value in state.items()}}
    mapped = map_official_state_dict(wrapped)
    model = _meta_model(VARIANTS[tag])
    load_mapped_state(model, mapped.state_dict, assign=True)
    assert set(mapped.state_dict) == set(model.state_dict())
    # Only buffers we regenerate and the unused ImageNet head / final norm are dropped.
    for key in mapped.dropped:
        assert (key.endswith(('relative_position_index', 'attn_mask', 'k_idx', 'K_minus_1'))
                or '.fc_norm.' in key or '.head.' in key or 'pretrained.model.norm.' in key), key


@needs_oracle
def test_qkv_split_order() -> None:
    """The fused BEiT qkv weight splits as query, key, value rows; q_bias/v_bias go to q and v."""
    state = _shape_state('ZoeD_N')
    prefix = 'core.core.pretrained.model.blocks.0.attn.'
    rows = torch.arange(3 * 1024.0)  # row i of the fused (3072, 1024) weight holds the value i
    state[prefix + 'qkv.weight'] = rows.repeat_interleave(1024).view(3072, 1024)
    state[prefix + 'q_bias'] = torch.full((1024,), 1.0)
    state[prefix + 'v_bias'] = torch.full((1024,), 3.0)
    mapped = map_official_state_dict(state).state_dict
    ours = 'backbone.beit.layers.0.attention.'
    assert torch.equal(mapped[ours + 'q_proj.weight'][:, 0], torch.arange(1024.0))
    assert torch.equal(mapped[ours + 'k_proj.weight'][:, 0], torch.arange(1024.0, 2048.0))
    assert torch.equal(mapped[ours + 'v_proj.weight'][:, 0], torch.arange(2048.0, 3072.0))
    assert float(mapped[ours + 'q_proj.bias'][0]) == 1.0
    assert float(mapped[ours + 'v_proj.bias'][0]) == 3.0
    assert ours + 'k_proj.bias' not in mapped


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

@needs_oracle
def test_missing_key_is_listed() -> None:
    state = _shape_state('ZoeD_N')
    del state['conv2.weight']
    with pytest.raises(OfficialCheckpointError, match=r'missing keys \(1\):\n  metric_head.conv2'):
        load_mapped_state(_meta_model('zoedepth_n'), map_official_state_dict(state).state_dict)


@needs_oracle
def test_extra_keys_are_listed() -> None:
    state = _shape_state('ZoeD_N')
    state['attractors.4._net.0.weight'] = torch.zeros(128, 128, 1, 1)  # maps, but no such layer
    with pytest.raises(OfficialCheckpointError,
                       match=r'unexpected keys \(1\):\n  metric_head.attractors.4.conv1.weight'):
        load_mapped_state(_meta_model('zoedepth_n'), map_official_state_dict(state).state_dict)
    state = _shape_state('ZoeD_N')
    state['core.core.scratch.extra.weight'] = torch.zeros(1)  # no mapping rule at all
    with pytest.raises(OfficialCheckpointError, match=r'no mapping rule covers:\n  .*extra'):
        map_official_state_dict(state)


@needs_oracle
def test_wrong_shape_is_listed() -> None:
    state = _shape_state('ZoeD_N')
    state['conv2.weight'] = torch.zeros(256, 128, 1, 1)
    with pytest.raises(OfficialCheckpointError,
                       match=r'shape mismatches \(1\):\n  metric_head.conv2.weight: checkpoint '
                             r'\(256, 128, 1, 1\) vs model \(256, 256, 1, 1\)'):
        load_mapped_state(_meta_model('zoedepth_n'), map_official_state_dict(state).state_dict)


@needs_oracle
def test_wrong_regenerated_buffer_is_an_error() -> None:
    state = _shape_state('ZoeD_N')
    key = 'core.core.pretrained.model.blocks.3.attn.relative_position_index'
    state[key] = state[key].flip(0)
    with pytest.raises(OfficialCheckpointError, match='relative_position_index: stored buffer'):
        map_official_state_dict(state)


# ---------------------------------------------------------------------------------------------
# Output parity with the official code
# ---------------------------------------------------------------------------------------------

@needs_oracle
@pytest.mark.slow
def test_zoedepth_n_matches_official(tmp_path: Path, parity_input: torch.Tensor) -> None:
    """ZoeD_N with the oracle's seeded weights, loaded from a .pt, gives the official outputs."""
    state = _fill_state_module().fill_state(ORACLE / 'manifest_ZoeD_N.json', seed=0)
    path = tmp_path / 'ZoeD_M12_N.pt'
    torch.save({'model': state}, path)  # how the official checkpoints are stored
    del state
    model = load_official(path)
    assert model.config.name == 'zoedepth_n'
    image = (parity_input - 0.5) / 0.5  # official MidasCore.prep; 384 x 512 needs no resize
    with torch.no_grad():
        out = model.forward_outputs(image)
    reference = np.load(ORACLE / 'parity_ZoeD_N.npz')
    errors = {
        'metric_depth': _max_relative_error(out.depth.numpy(), reference['metric_depth']),
        'bin_centers_s4': _max_relative_error(out.bin_centers[:, :, ::4, ::4].numpy(),
                                              reference['bin_centers_s4']),
        'probs_s4': _max_relative_error(out.probs[:, :, ::4, ::4].numpy(),
                                        reference['probs_s4']),
    }
    # The official infer(): reflect padding to 466 x 608, resize inside, bicubic back, crop, and
    # horizontal-flip averaging (two forward passes), from RGB in [0, 1].
    with torch.no_grad():
        protocol_depth = infer_official(model, parity_input)
    errors['infer_pad_flip'] = _max_relative_error(protocol_depth.numpy(),
                                                   reference['infer_pad_flip'])
    assert all(error <= MAX_RELATIVE_ERROR for error in errors.values()), errors


@needs_oracle
@pytest.mark.slow
def test_zoedepth_n_swinv2_t_runs_like_official(parity_input: torch.Tensor) -> None:
    """SwinV2-T: the official output is held back; its range is published (oracle README table).

    The official metric_depth of this variant spans 0.46 to 1.39 m on the resized input.
    """
    state = _fill_state_module().fill_state(ORACLE / 'manifest_ZoeD_N_SwinV2_T_256.json', seed=0)
    model = load_official_state_dict({'model': state})
    # official prep for img_size 256 x 256 without keep-aspect: bilinear, align_corners=True
    image = F.interpolate(parity_input, (256, 256), mode='bilinear', align_corners=True)
    with torch.no_grad():
        depth = model((image - 0.5) / 0.5)  # (1, 1, 256, 256)
    assert depth.shape == (1, 1, 256, 256)
    assert torch.isfinite(depth).all()
    assert round(float(depth.min()), 2) == 0.46
    assert round(float(depth.max()), 2) == 1.39


# ---------------------------------------------------------------------------------------------
# Hugging Face directories and the convert command (no oracle needed)
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def hf_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ZoeDepth saved by transformers' save_pretrained (the published layout)."""
    from transformers import ZoeDepthForDepthEstimation

    torch.manual_seed(0)
    hf_model = ZoeDepthForDepthEstimation(get_preset('tiny').to_transformers()).eval()
    directory = tmp_path_factory.mktemp('hf_tiny')
    hf_model.save_pretrained(directory)
    return directory


def test_hf_directory_loads_exactly(hf_directory: Path) -> None:
    from transformers import ZoeDepthForDepthEstimation

    model = load_official(hf_directory)
    hf_model = ZoeDepthForDepthEstimation.from_pretrained(hf_directory).eval()
    image = torch.rand(1, 3, 96, 128)
    with torch.no_grad():
        # equal up to float rounding: our max/exp/sum softmax replaces torch.softmax
        torch.testing.assert_close(model(image).squeeze(1), hf_model(image).predicted_depth,
                                   rtol=1e-6, atol=0)
    assert model.config.backbone.layer_norm_eps == 1e-6
    with pytest.raises(ValueError, match='carries its own config'):
        load_official(hf_directory, preset='tiny')


def test_convert_command_writes_our_checkpoint(hf_directory: Path, tmp_path: Path) -> None:
    from depth_estimation.model import convert

    parser = argparse.ArgumentParser()
    convert.register(parser.add_subparsers(dest='command'))
    output = tmp_path / 'converted.pt'
    args = parser.parse_args(['convert', str(hf_directory), str(output)])
    assert args.handler(args) == 0
    converted = load_checkpoint(output)
    original = load_official(hf_directory)
    assert converted.config == original.config
    for key, value in original.state_dict().items():
        assert torch.equal(converted.state_dict()[key], value), key


def test_official_presets_are_consistent() -> None:
    """ZoeD_K: trained/evaluated at 80 m; zoedepth_k_hub reproduces torch.hub's 10 m."""
    assert get_preset('zoedepth_k').max_depth == 80.0
    assert get_preset('zoedepth_k_hub').max_depth == 10.0
    assert get_preset('zoedepth_k').input_size == (384, 768)
    assert [b.name for b in get_preset('zoedepth_nk').bins] == ['nyu', 'kitti']
    assert get_preset('zoedepth_n_swinv2_b').input_size == (384, 384)
    assert get_preset('zoedepth_n_swinv2_t').input_size == (256, 256)
