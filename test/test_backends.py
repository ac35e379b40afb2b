"""Inference backends: one interface, same answers, clear refusals of broken artifacts."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from depth_estimation.artifacts import metadata_path
from depth_estimation.inference import open_backend
from depth_estimation.samples import load_samples


@pytest.fixture(scope='module')
def sample_rgb() -> np.ndarray:
    return load_samples()[0].rgb


def test_onnxruntime_and_torch_backends_agree(tiny_onnx, tiny_checkpoint, sample_rgb) -> None:
    with open_backend(tiny_onnx, num_threads=1) as onnx_backend, \
            open_backend(tiny_checkpoint) as torch_backend:
        assert (onnx_backend.name, torch_backend.name) == ('onnxruntime', 'torch')
        onnx_depth = onnx_backend.infer(sample_rgb)
        torch_depth = torch_backend.infer(sample_rgb)
    assert onnx_depth.shape == torch_depth.shape == sample_rgb.shape[:2]
    assert onnx_depth.dtype == np.float32 and np.isfinite(onnx_depth).all()
    np.testing.assert_allclose(onnx_depth, torch_depth, rtol=1e-4)


@pytest.mark.parametrize('size', [(480, 640), (375, 1242), (200, 150), (17, 33)])
def test_depth_comes_back_at_the_input_size(tiny_onnx, size) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (*size, 3), np.uint8)
    with open_backend(tiny_onnx) as backend:
        depth = backend.infer(rgb)
        timings = backend.last_timings
    assert depth.shape == size
    assert timings.inference > 0 and timings.total >= timings.inference


def test_closed_backend_refuses_work(tiny_onnx, sample_rgb) -> None:
    backend = open_backend(tiny_onnx)
    backend.close()
    with pytest.raises(RuntimeError, match='closed'):
        backend.infer(sample_rgb)


def test_describe_names_backend_and_model(tiny_onnx) -> None:
    with open_backend(tiny_onnx) as backend:
        description = backend.describe()
    assert description['backend'] == 'onnxruntime' and description['model'] == 'tiny'
    assert description['input_size'] == '96x128'


def test_missing_metadata_is_refused_with_a_hint(tiny_onnx, tmp_path) -> None:
    lonely = tmp_path / 'lonely.onnx'
    shutil.copy(tiny_onnx, lonely)
    with pytest.raises(FileNotFoundError, match='depth-estimation export'):
        open_backend(lonely)


def test_mismatched_metadata_is_refused(tiny_onnx, tmp_path) -> None:
    copy = tmp_path / 'copy.onnx'
    shutil.copy(tiny_onnx, copy)
    data = json.loads(metadata_path(tiny_onnx).read_text())
    data['input_height'] = 192
    metadata_path(copy).write_text(json.dumps(data))
    with pytest.raises(ValueError, match='do not belong together'):
        open_backend(copy)


def test_corrupt_model_is_refused(tiny_onnx, tmp_path) -> None:
    corrupt = tmp_path / 'corrupt.onnx'
    corrupt.write_bytes(tiny_onnx.read_bytes()[:2000])
    shutil.copy(metadata_path(tiny_onnx), metadata_path(corrupt))
    with pytest.raises(ValueError, match='cannot load ONNX model'):
        open_backend(corrupt)


def test_unknown_artifacts_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match='suffix'):
        open_backend(tmp_path / 'model.bin')
    with pytest.raises(ValueError, match='unknown backend'):
        open_backend(tmp_path / 'model.onnx', backend='tpu')
    with pytest.raises(FileNotFoundError):
        open_backend(tmp_path / 'missing.onnx')
