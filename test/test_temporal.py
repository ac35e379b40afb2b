"""depth_estimation.pipeline.temporal: gated EMA of inverse depth, hand-computed per pixel."""

from __future__ import annotations

import numpy as np
import pytest

from depth_estimation.pipeline.temporal import TemporalFilter


def test_first_frame_passes_through_and_invalid_becomes_nan():
    depth = np.array([[2.0, 0.0], [np.inf, -1.0]], np.float32)
    f = TemporalFilter()
    out = f.update(depth)
    assert out.dtype == np.float32
    assert out[0, 0] == 2.0
    assert out[1, 0] == np.inf  # REP 117 markers are kept
    assert np.isnan(out[0, 1]) and np.isnan(out[1, 1])
    later = f.update(np.array([[2.0, 2.0], [-np.inf, 2.0]], np.float32))
    assert later[1, 0] == -np.inf and later[0, 1] == 2.0


def test_small_change_is_averaged_in_inverse_depth():
    hard = TemporalFilter(alpha=0.3, noise=0.03, gate=3.0, soft_gate=False)
    soft = TemporalFilter(alpha=0.3, noise=0.03, gate=3.0, soft_gate=True)
    first = np.full((4, 4), 2.0, np.float32)  # inverse 0.5
    second = np.full((4, 4), 2.0 / 1.01, np.float32)  # inverse 0.505: innovation 0.005
    for f in (hard, soft):
        f.update(first)
    # gate: 3 * 0.03 * 0.5 = 0.045 > 0.005, so smooth: hard gain 0.3 -> 1 / 0.5015
    assert hard.update(second)[0, 0] == pytest.approx(1 / 0.5015, rel=1e-6)
    # soft gain 0.3 + 0.7 * (0.005 / 0.045)^2 = 0.308642 -> 1 / (0.5 + 0.308642 * 0.005)
    assert soft.update(second)[0, 0] == pytest.approx(1 / 0.50154321, rel=1e-6)
    assert hard.last_reset_fraction == 0.0


def test_change_over_the_gate_is_followed_at_once():
    f = TemporalFilter(alpha=0.3, noise=0.03, gate=3.0)
    f.update(np.full((4, 4), 2.0, np.float32))
    moved = np.full((4, 4), 2.0, np.float32)
    moved[0, 0] = 1.0  # inverse 0.5 -> 1.0: innovation 0.5 > 0.045
    out = f.update(moved)
    assert out[0, 0] == 1.0
    assert out[1, 1] == pytest.approx(2.0)
    assert f.last_reset_fraction == pytest.approx(1 / 16)
    assert f.scene_changes == 0


def test_scene_change_restarts_the_whole_state():
    f = TemporalFilter(scene_change_fraction=0.5)
    f.update(np.full((4, 4), 2.0, np.float32))
    cut = np.full((4, 4), 2.0, np.float32)
    cut[:3] = 5.0  # 12 of 16 pixels jump
    cut[3, 0] = 2.02  # a small change that would otherwise be smoothed
    out = f.update(cut)
    assert f.scene_changes == 1
    np.testing.assert_array_equal(out, cut)


def test_invalid_pixel_clears_its_state():
    f = TemporalFilter(alpha=0.3)
    f.update(np.full((2, 2), 2.0, np.float32))
    gap = np.full((2, 2), 2.0, np.float32)
    gap[0, 0] = np.nan
    assert np.isnan(f.update(gap)[0, 0])
    back = np.full((2, 2), 2.0, np.float32)
    back[0, 0] = 2.04  # no state left: taken as it is, not averaged with the old 2.0
    assert f.update(back)[0, 0] == pytest.approx(2.04)


def test_static_noise_is_reduced_and_size_change_resets():
    rng = np.random.default_rng(0)
    f = TemporalFilter(alpha=0.3, noise=0.03, gate=3.0)
    truth = np.full((32, 32), 3.0, np.float32)
    frames = [truth * (1 + 0.02 * rng.standard_normal(truth.shape)).astype(np.float32)
              for _ in range(30)]
    outputs = [f.update(frame) for frame in frames]
    raw = np.mean([np.abs(b - a).mean() for a, b in zip(frames[10:], frames[11:])])
    filtered = np.mean([np.abs(b - a).mean() for a, b in zip(outputs[10:], outputs[11:])])
    assert filtered < 0.6 * raw
    assert f.update(np.full((8, 8), 1.0, np.float32))[0, 0] == 1.0  # new size: new state
    with pytest.raises(ValueError, match='alpha'):
        TemporalFilter(alpha=1.5)
    with pytest.raises(ValueError, match='shape'):
        f.update(np.ones(5, np.float32))
