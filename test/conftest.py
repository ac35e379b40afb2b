"""Shared fixtures: a tiny exported model (real ONNX + metadata) and paths to the shared data."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / 'shared'
SHARED_DATA = SHARED_DIR / 'data'


def require_shared(path: Path) -> Path:
    """Skip the calling test with a clear reason when the developers' shared data is absent."""
    if not path.exists():
        pytest.skip(f'{path} is absent: ../shared (developer and CI data) is not beside '
                    'this checkout')
    return path


@pytest.fixture(scope='session')
def tiny_model():
    """The tiny preset with seeded random weights, in eval mode."""
    from depth_estimation.model import get_preset
    from depth_estimation.model.init import randomize_weights
    from depth_estimation.model.zoedepth import build_model

    return randomize_weights(build_model(get_preset('tiny')), seed=0)


@pytest.fixture(scope='session')
def tiny_checkpoint(tiny_model, tmp_path_factory) -> Path:
    from depth_estimation.model.checkpoint import save_checkpoint

    return save_checkpoint(tmp_path_factory.mktemp('checkpoint') / 'tiny.pt', tiny_model)


@pytest.fixture(scope='session')
def tiny_onnx(tiny_model, tmp_path_factory) -> Path:
    """Path of the tiny model exported to ONNX (96 x 128 input) with its `.onnx.json` beside it."""
    from depth_estimation.export.onnx_export import export_onnx
    from depth_estimation.samples import load_samples

    output = tmp_path_factory.mktemp('onnx') / 'tiny.onnx'
    images = [(s.name, s.rgb) for s in load_samples()]
    export_onnx(tiny_model, output, source={'preset': 'tiny', 'weights': 'random (seed 0)'},
                check_images=images, progress=lambda message: None)
    return output


@pytest.fixture(scope='session')
def confidence_onnx(tiny_model, tmp_path_factory) -> Path:
    """The tiny model exported with its confidence output (depth, confidence)."""
    from depth_estimation.export.onnx_export import export_onnx
    from depth_estimation.model.confidence import DepthWithConfidence

    output = tmp_path_factory.mktemp('confidence') / 'tiny_confidence.onnx'
    export_onnx(DepthWithConfidence(tiny_model), output, random_checks=1,
                progress=lambda message: None)
    return output
