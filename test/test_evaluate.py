"""`depth-estimation evaluate` on the tiny exported model and a folder dataset written here."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import yaml

from depth_estimation.tools.cli import main
from depth_estimation.evaluation.metrics import METRIC_KEYS, compute_metrics

HEIGHT, WIDTH = 48, 64  # the tiny model's 96x128 input has the same aspect: no letterbox padding


@pytest.fixture(scope='module')
def folder_dataset(tmp_path_factory):
    """Three frames in the plain folder format: a smooth scene, its depth in millimetres."""
    root = tmp_path_factory.mktemp('dataset')
    (root / 'dataset.yaml').write_text(yaml.safe_dump({
        'format': 'depth_estimation.rgbd_folder/1', 'depth_scale': 0.001, 'width': WIDTH,
        'height': HEIGHT, 'intrinsics': {'fx': 50.0, 'fy': 50.0, 'cx': 31.5, 'cy': 23.5},
        'min_depth': 0.1, 'max_depth': 10.0, 'eval_crop': None, 'name': 'eval_fixture'}))
    rng = np.random.default_rng(11)
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    for index in range(3):
        rgb = np.stack([(cols * 4 + 40 * index) % 256, (rows * 5) % 256,
                        np.full_like(rows, 90 + 50 * index)], axis=2).astype(np.uint8)
        rgb = np.clip(rgb + rng.integers(0, 20, rgb.shape), 0, 255).astype(np.uint8)
        depth_mm = (800 + 60 * rows + 20 * cols + 500 * index).astype(np.uint16)
        depth_mm[:3, :5] = 0  # no measurement
        for sub, image in (('rgb', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)), ('depth', depth_mm)):
            (root / sub).mkdir(exist_ok=True)
            assert cv2.imwrite(str(root / sub / f'frame_{index}.png'), image)
    return root


def _direct_metrics(model, root, flip=False):
    """Per-sample metrics computed here from the backend and the PNG files, without the command."""
    from depth_estimation.evaluation.evaluate import predict_depth
    from depth_estimation.inference import open_backend

    per_sample = {}
    with open_backend(model) as backend:
        for index in range(3):
            rgb = cv2.cvtColor(cv2.imread(str(root / 'rgb' / f'frame_{index}.png')),
                               cv2.COLOR_BGR2RGB)
            gt = cv2.imread(str(root / 'depth' / f'frame_{index}.png'),
                            cv2.IMREAD_UNCHANGED).astype(np.float32) / np.float32(1000)
            pred = predict_depth(backend, rgb, flip) if flip else backend.infer(rgb)
            per_sample[f'frame_{index}'] = compute_metrics(
                gt, pred, garg_crop=False, eigen_crop=False, min_depth_eval=0.1,
                max_depth_eval=10.0)
    return per_sample


def test_evaluate_onnx_on_a_folder_writes_tables_plots_and_exact_numbers(tiny_onnx,
                                                                         folder_dataset,
                                                                         tmp_path, capsys):
    output = tmp_path / 'eval'
    code = main(['evaluate', '--model', str(tiny_onnx), '--dataset', str(folder_dataset),
                 '--output', str(output), '--error-maps', '2', '--no-progress'])
    assert code == 0
    results = json.loads((output / 'results.json').read_text())
    assert results['dataset']['evaluated'] == 3 and results['skipped'] == []
    assert results['protocol']['crop'] is None
    assert (results['protocol']['min_depth'], results['protocol']['max_depth']) == (0.1, 10.0)
    direct = _direct_metrics(tiny_onnx, folder_dataset)
    for sample in results['samples']:
        for key in METRIC_KEYS:
            assert sample['metrics'][key] == float(direct[sample['name']][key]), key
    for key in METRIC_KEYS:
        mean = np.mean([float(m[key]) for m in direct.values()])
        assert results['metrics'][key] == pytest.approx(mean, rel=1e-6), key
        assert results['metrics_rounded'][key] == round(results['metrics'][key], 3)
    # Error by depth range pools every scored pixel once.
    valid_pixels = sum(s['valid_pixels'] for s in results['samples'])
    assert sum(r['pixels'] for r in results['depth_ranges']) == valid_pixels
    assert valid_pixels == 3 * (HEIGHT * WIDTH - 15)
    # Files people look at.
    markdown = (output / 'results.md').read_text()
    assert f'{results["metrics"]["abs_rel"]:.3f}' in markdown and 'δ1' in markdown
    chart = cv2.imread(str(output / 'depth_ranges.png'))
    assert chart is not None and chart.shape[0] > 300
    assert len(results['error_maps']) == 2
    for name in results['error_maps']:
        error_map = cv2.imread(str(output / name))
        assert error_map is not None and error_map.shape[0] > 2 * HEIGHT
        assert error_map.shape[1] > 2 * WIDTH
        assert name in markdown
    assert f'{results["metrics"]["rmse"]:.3f}' in capsys.readouterr().out


def test_evaluate_flip_limit_and_options(tiny_onnx, folder_dataset, tmp_path):
    output = tmp_path / 'flip'
    assert main(['evaluate', '-m', str(tiny_onnx), '-d', f'folder:{folder_dataset}', '-o',
                 str(output), '--flip', '--limit', '2', '--max-depth', '2.0', '--error-maps', '0',
                 '--no-progress']) == 0
    results = json.loads((output / 'results.json').read_text())
    assert results['dataset']['requested'] == 2 and results['protocol']['flip'] is True
    assert results['protocol']['max_depth'] == 2.0 and results['error_maps'] == []
    # Flip: the mean of the network outputs for the image and its mirror. Without letterbox
    # padding this equals averaging the full-size predictions of the image and its mirror.
    from depth_estimation.evaluation.evaluate import predict_depth
    from depth_estimation.inference import open_backend

    rgb = cv2.cvtColor(cv2.imread(str(folder_dataset / 'rgb' / 'frame_0.png')),
                       cv2.COLOR_BGR2RGB)
    with open_backend(tiny_onnx) as backend:
        flipped = predict_depth(backend, rgb, flip=True)
        expected = 0.5 * (backend.infer(rgb) + backend.infer(rgb[:, ::-1].copy())[:, ::-1])
        assert not np.allclose(flipped, backend.infer(rgb), rtol=1e-6, atol=0)
    np.testing.assert_allclose(flipped, expected, rtol=1e-5)


def test_evaluate_checkpoint_through_torch(tiny_checkpoint, tiny_onnx, folder_dataset, tmp_path):
    onnx_out, torch_out = tmp_path / 'onnx', tmp_path / 'torch'
    for model, output in ((tiny_onnx, onnx_out), (tiny_checkpoint, torch_out)):
        assert main(['evaluate', '-m', str(model), '-d', str(folder_dataset), '-o', str(output),
                     '--limit', '1', '--error-maps', '0', '--no-progress']) == 0
    onnx_results = json.loads((onnx_out / 'results.json').read_text())
    torch_results = json.loads((torch_out / 'results.json').read_text())
    assert torch_results['model']['backend'] == 'torch'
    for key in METRIC_KEYS:  # same weights, same pre/post-processing, two runtimes
        assert torch_results['metrics'][key] == pytest.approx(onnx_results['metrics'][key],
                                                              rel=1e-3, abs=1e-4)


def test_broken_sample_stops_or_is_skipped(tiny_onnx, folder_dataset, tmp_path, capsys):
    import shutil

    root = tmp_path / 'broken'
    shutil.copytree(folder_dataset, root)
    (root / 'depth' / 'frame_1.png').write_bytes(b'\x89PNG truncated')
    assert main(['evaluate', '-m', str(tiny_onnx), '-d', str(root), '-o', str(tmp_path / 'a'),
                 '--no-progress']) == 2
    assert 'frame_1.png' in capsys.readouterr().err
    assert main(['evaluate', '-m', str(tiny_onnx), '-d', str(root), '-o', str(tmp_path / 'b'),
                 '--skip-broken', '--no-progress']) == 0
    results = json.loads((tmp_path / 'b' / 'results.json').read_text())
    assert [s['name'] for s in results['samples']] == ['frame_0', 'frame_2']
    assert results['skipped'][0]['name'] == 'frame_1'
    assert 'frame_1' in (tmp_path / 'b' / 'results.md').read_text()
    assert main(['evaluate', '-m', str(tiny_onnx), '-d', str(root), '-o', str(tmp_path / 'c'),
                 '-O', 'nonsense=1', '--no-progress']) == 2
