"""Metric parity with the official ZoeDepth compute_metrics (../shared/oracle), torch's resize."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import SHARED_DIR, require_shared
from depth_estimation.evaluation.metrics import (METRIC_KEYS, RunningAverageDict, compute_errors,
                                                 compute_metrics, eval_crop_mask, prepare,
                                                 resize_bilinear_align_corners, round_metrics)

ORACLE = SHARED_DIR / 'oracle'
RELATIVE_TOLERANCE = 1e-6


@pytest.fixture(scope='module')
def oracle():
    require_shared(ORACLE / 'metrics_reference.json')
    reference = json.loads((ORACLE / 'metrics_reference.json').read_text())
    with np.load(ORACLE / 'metrics_reference.npz') as arrays:
        return reference, {key: arrays[key] for key in arrays.files}


def _settings(case):
    settings = case['settings']
    return dict(garg_crop=settings['garg_crop'], eigen_crop=settings['eigen_crop'],
                dataset=settings['dataset'], min_depth_eval=settings['min_depth_eval'],
                max_depth_eval=settings['max_depth_eval'])


def test_every_oracle_case_matches_the_official_metrics(oracle):
    reference, arrays = oracle
    assert len(reference['results']) >= 8
    for name, case in reference['results'].items():
        gt, pred = arrays[f'{case["pair"]}_gt'], arrays[f'{case["pair"]}_pred']
        pred_before = pred.copy()
        metrics = compute_metrics(gt, pred, **_settings(case))
        np.testing.assert_array_equal(pred, pred_before)  # upstream clips in place; we do not
        assert set(metrics) == set(METRIC_KEYS) == set(case['metrics']), name
        for key, expected in case['metrics'].items():
            assert float(metrics[key]) == pytest.approx(expected, rel=RELATIVE_TOLERANCE), \
                f'{name} {key}: {float(metrics[key])} != {expected}'
        crop = 'garg' if case['settings']['garg_crop'] else 'eigen'
        _, _, valid = prepare(gt, pred, crop=crop, dataset=case['settings']['dataset'],
                              min_depth_eval=case['settings']['min_depth_eval'],
                              max_depth_eval=case['settings']['max_depth_eval'])
        assert int(valid.sum()) == case['n_valid_pixels'], name
        # Same computation dtype as upstream: float32 errors, float64 deltas.
        assert str(np.asarray(metrics['rmse']).dtype) == case['dtype']
        assert np.asarray(metrics['a1']).dtype == np.float64


def test_float64_inputs_match_the_official_float64_variant(oracle):
    reference, arrays = oracle
    for name, case in reference['results'].items():
        gt = arrays[f'{case["pair"]}_gt'].astype(np.float64)
        pred = arrays[f'{case["pair"]}_pred'].astype(np.float64)
        metrics = compute_metrics(gt, pred, **_settings(case))
        for key, expected in case['metrics_if_inputs_cast_to_float64'].items():
            assert float(metrics[key]) == pytest.approx(expected, rel=1e-12), f'{name} {key}'


def test_config_argument_and_4d_tensors_like_evaluate_py(oracle):
    reference, arrays = oracle
    case = reference['results']['pair1__kitti_garg']
    settings = case['settings']
    config = {key: settings[key] for key in ('garg_crop', 'eigen_crop', 'min_depth_eval',
                                             'max_depth_eval')}
    gt, pred = arrays['pair1_gt'][None, None], arrays['pair1_pred'][None, None]
    metrics = compute_metrics(gt, pred, config=config)
    for key, expected in case['metrics'].items():
        assert float(metrics[key]) == pytest.approx(expected, rel=RELATIVE_TOLERANCE)


def test_resize_is_bit_identical_to_torch_align_corners_bilinear(oracle):
    """The low-resolution case: pred (384, 512) is resized to the gt (480, 640) first."""
    torch = pytest.importorskip('torch')
    _, arrays = oracle
    rng = np.random.default_rng(7)
    special = rng.uniform(0.0, 12.0, size=(37, 53)).astype(np.float32)
    special[3, 4], special[10, 10], special[20, 30], special[36, 52] = \
        np.nan, np.inf, -np.inf, np.inf
    cases = [(arrays['pair0_pred_lowres'], (480, 640)), (arrays['pair0_pred'], (384, 512)),
             (special, (480, 640)), (special, (37, 100)), (special, (91, 53)),
             (special, (1, 5)), (special[:1], (4, 7)), (special, (37, 53))]
    for source, size in cases:
        expected = torch.nn.functional.interpolate(
            torch.from_numpy(np.ascontiguousarray(source))[None, None], size, mode='bilinear',
            align_corners=True)[0, 0].numpy()
        result = resize_bilinear_align_corners(source, size)
        assert result.dtype == np.float32 and result.shape == size
        np.testing.assert_array_equal(result, expected)  # NaN where torch has NaN, same bits


def test_low_resolution_prediction_equals_metrics_of_the_resized_prediction(oracle):
    torch = pytest.importorskip('torch')
    reference, arrays = oracle
    lowres, gt = arrays['pair0_pred_lowres'], arrays['pair0_gt']
    resized = torch.nn.functional.interpolate(torch.from_numpy(lowres)[None, None], gt.shape,
                                              mode='bilinear', align_corners=True)[0, 0].numpy()
    settings = _settings(reference['results']['pair0__nyu_eigen'])
    direct = compute_metrics(gt, lowres, **settings)
    via_torch = compute_metrics(gt, resized, **settings)
    for key in METRIC_KEYS:
        assert float(direct[key]) == float(via_torch[key]), key
    with pytest.raises(ValueError, match='interpolate=False'):
        compute_metrics(gt, lowres, interpolate=False)


def test_errors_against_float64_formulas():
    rng = np.random.default_rng(3)
    gt = rng.uniform(0.5, 9.0, 5000).astype(np.float32)
    pred = (gt * rng.uniform(0.6, 1.6, 5000)).astype(np.float32)
    errors = compute_errors(gt, pred)
    g, p = gt.astype(np.float64), pred.astype(np.float64)
    ratio = np.maximum(g / p, p / g)
    log_error = np.log(p) - np.log(g)
    expected = {'a1': np.mean(ratio < 1.25), 'a2': np.mean(ratio < 1.5625),
                'a3': np.mean(ratio < 1.953125), 'abs_rel': np.mean(np.abs(g - p) / g),
                'sq_rel': np.mean((g - p) ** 2 / g), 'rmse': np.sqrt(np.mean((g - p) ** 2)),
                'rmse_log': np.sqrt(np.mean(log_error ** 2)),
                'log_10': np.mean(np.abs(np.log10(g) - np.log10(p))),
                'silog': 100 * np.sqrt(np.mean(log_error ** 2) - np.mean(log_error) ** 2)}
    for key, value in expected.items():
        assert float(errors[key]) == pytest.approx(value, rel=1e-5), key


def test_clipping_validity_and_crops():
    gt = np.full((480, 640), 5.0, np.float32)
    gt[100, 100] = 10.0  # == max: excluded (strict)
    gt[101, 101] = 0.0
    pred = np.full((480, 640), 5.0, np.float32)
    pred[200, 200], pred[200, 201], pred[200, 202], pred[200, 203] = np.nan, np.inf, -np.inf, 50
    _, clipped, valid = prepare(gt, pred, crop=None, min_depth_eval=1e-3, max_depth_eval=10)
    assert clipped[200, 200:204].tolist() == pytest.approx([1e-3, 10.0, 1e-3, 10.0])
    assert not valid[100, 100] and not valid[101, 101] and valid.sum() == 480 * 640 - 2
    # No crop (upstream raises UnboundLocalError): every valid pixel counts.
    metrics = compute_metrics(gt, pred, garg_crop=False, eigen_crop=False,
                              min_depth_eval=1e-3, max_depth_eval=10)
    assert float(metrics['a1']) == pytest.approx((valid.sum() - 4) / valid.sum())
    nyu = eval_crop_mask((480, 640), 'eigen', 'nyu')
    assert nyu.sum() == (471 - 45) * (601 - 41) and nyu[45, 41] and not nyu[44, 41]
    garg = eval_crop_mask((352, 1216), 'garg')
    rows, cols = np.nonzero(garg)
    assert (rows.min(), rows.max() + 1) == (int(0.40810811 * 352), int(0.99189189 * 352))
    assert (cols.min(), cols.max() + 1) == (int(0.03594771 * 1216), int(0.96405229 * 1216))
    kitti = eval_crop_mask((352, 1216), 'eigen', 'kitti')
    rows, _ = np.nonzero(kitti)
    assert (rows.min(), rows.max() + 1) == (int(0.3324324 * 352), int(0.91351351 * 352))
    assert eval_crop_mask((4, 5), None).all()
    empty = compute_metrics(np.zeros((480, 640), np.float32), pred)
    assert all(np.isnan(v) for v in empty.values())


def test_running_average_dict_is_the_incremental_mean_of_evaluate_py(oracle):
    reference, arrays = oracle
    per_pair = [compute_metrics(arrays[f'pair{i}_gt'], arrays[f'pair{i}_pred'],
                                **_settings(reference['results'][f'pair{i}__nyu_eigen']))
                for i in (0, 1)]
    average = RunningAverageDict()
    assert average.get_value() is None
    for metrics in per_pair:
        average.update(metrics)
    average.update(None)
    values = average.get_value()
    assert average.count == 2
    for key in METRIC_KEYS:
        mean = (float(per_pair[0][key]) + float(per_pair[1][key])) / 2
        assert float(values[key]) == pytest.approx(mean, rel=1e-6), key
        # evaluate.py's arithmetic stays in the metrics' dtype (float32 errors).
        assert np.asarray(values[key]).dtype == np.asarray(per_pair[0][key]).dtype
    rounded = round_metrics(values)
    assert rounded['a1'] == round(float(values['a1']), 3)
