"""FastDepth imported from the int8 TFLite file: parity with the official float model and LiteRT.

Reference: ../shared/weights/fastdepth (the TFLite file of OpenMV, one NYU frame with the official
float32 prediction of dwofk/fast-depth). The imported float model runs the dequantised int8
weights with float activations, so it can match neither the official float model (trained
weights before int8 quantisation) nor the int8 interpreter (int8 activations) bit for bit. Measured
on a 2-core x86-64 VM (the bounds below hold these figures with a small margin):

- against the official float prediction on reference/rgb.npy: mean |difference| 0.028 m, mean
  relative difference 1.0 %, max 0.36 m; REL against the ground truth 0.1402 (official 0.1405);
- against ai-edge-litert running the int8 file (224x224 INTER_AREA input): mean |difference|
  0.031-0.039 m, mean relative difference 0.9-2.5 % (the TUM frame is the 2.5 %), max 0.42 m;
  REL on the 3 NYU frames 0.1342 / 0.1147 / 0.1142 (int8: 0.1315 / 0.1197 / 0.1130; their means
  0.1210 and 0.1214), on the TUM frame 0.3148 (int8: 0.3086).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from conftest import SHARED_DATA, SHARED_DIR
from depth_estimation.model.fastdepth import (FastDepth, load_fastdepth_tflite,
                                              read_tflite_state_dict, TFLiteImportError)

WEIGHTS = SHARED_DIR / 'weights' / 'fastdepth'
TFLITE = WEIGHTS / 'fast_depth_224.tflite'
needs_weights = pytest.mark.skipif(
    not TFLITE.is_file(),
    reason=f'{TFLITE} is absent (../shared, the developers\' real weights, is not beside this '
           'checkout)')


def relative_error(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Mean |prediction - truth| / truth over pixels with ground truth in 0.1-10 m."""
    mask = (truth > 0.1) & (truth < 10.0)
    return float(np.mean(np.abs(prediction[mask] - truth[mask]) / truth[mask]))


@pytest.fixture(scope='module')
def fastdepth() -> FastDepth:
    if not TFLITE.is_file():
        pytest.skip(f'{TFLITE} is absent (../shared is not beside this checkout)')
    return load_fastdepth_tflite(TFLITE)


def run_float(model: FastDepth, rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB in [0, 1] -> (H, W) metres."""
    tensor = torch.from_numpy(np.ascontiguousarray(rgb)).float().permute(2, 0, 1)[None]
    with torch.no_grad():
        return model(tensor)[0, 0].numpy()


def test_fastdepth_shapes_skips_and_features():
    torch.manual_seed(0)
    model = FastDepth().eval()
    with torch.no_grad():
        features = model.forward_features(torch.rand(1, 3, 64, 96))
    assert features.depth.shape == (1, 1, 64, 96) and bool((features.depth >= 0).all())
    assert features.bottleneck.shape == (1, 512, 2, 3)
    assert [tuple(f.shape[1:]) for f in features.decoder] == [
        (200, 2, 3), (256, 4, 6), (120, 8, 12), (56, 16, 24), (16, 32, 48)]
    assert [tuple(f.shape[1:]) for f in features.decoder_inputs] == [
        (200, 4, 6), (256, 8, 12), (120, 16, 24), (56, 32, 48)]
    with pytest.raises(ValueError, match='multiple of 32'):
        model(torch.rand(1, 3, 48, 64))
    with pytest.raises(ValueError, match='skip from encoder layer'):
        FastDepth(decoder_channels=(200, 255, 120, 56, 16))


@needs_weights
def test_import_checks_the_graph_against_our_layers():
    state = read_tflite_state_dict(TFLITE, FastDepth())
    assert len(state) == 2 * (1 + 2 * 13 + 2 * 5 + 1)
    assert state['encoder.1.depthwise.weight'].shape == (16, 1, 3, 3)  # from 1HWO
    assert state['decoder.0.depthwise.weight'].shape == (512, 1, 5, 5)
    assert state['encoder.2.pointwise.weight'].shape == (88, 56, 1, 1)  # from OHWI
    wider = FastDepth(encoder_channels=(16, 56, 88, 120, 144, 256, 408, 376, 272, 288, 296, 328,
                                        480, 520))
    with pytest.raises(TFLiteImportError, match='TFLite shape'):
        read_tflite_state_dict(TFLITE, wider)


@needs_weights
def test_float_import_matches_the_official_float_prediction(fastdepth):
    rgb = np.load(WEIGHTS / 'reference' / 'rgb.npy')  # (224, 224, 3) in [0, 1]
    truth = np.load(WEIGHTS / 'reference' / 'depth.npy')
    official = np.load(WEIGHTS / 'reference' / 'pred.npy')[0, 0]
    ours = run_float(fastdepth, rgb)
    difference = np.abs(ours - official)
    assert difference.mean() < 0.035  # measured 0.028 m
    assert np.mean(difference / official.clip(min=0.1)) < 0.015  # measured 1.0 %
    assert difference.max() < 0.5  # measured 0.36 m
    assert abs(relative_error(ours, truth) - relative_error(official, truth)) < 0.005
    assert abs(relative_error(ours, truth) - 0.140) < 0.005  # the README's measured REL


def real_frames() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The 3 NYU test frames and the TUM desk frame: (name, RGB uint8, depth metres)."""
    from depth_estimation.datasets.base import read_depth_png_scaled, read_rgb_file

    nyu = SHARED_DATA / 'metric3d_demo' / 'nyu_demo'
    tum = SHARED_DATA / 'open3d_rgbd' / 'other_formats'
    if not nyu.is_dir() or not tum.is_dir():
        pytest.skip('the NYU / TUM frames of ../shared/data are absent')
    frames = [(f'nyu/{number}', read_rgb_file(nyu / 'rgb' / f'rgb_{number}.jpg'),
               read_depth_png_scaled(nyu / 'depth' / f'sync_depth_{number}.png', 1000.0))
              for number in ('00000', '00050', '00100')]
    frames.append(('tum/desk', read_rgb_file(tum / 'TUM_color.png'),
                   read_depth_png_scaled(tum / 'TUM_depth.png', 5000.0)))
    return frames


@needs_weights
def test_float_import_matches_the_int8_interpreter_on_real_frames(fastdepth):
    interpreter_module = pytest.importorskip(
        'ai_edge_litert.interpreter', reason='ai-edge-litert (a test dependency) is missing')
    interpreter = interpreter_module.Interpreter(str(TFLITE), num_threads=1)
    interpreter.allocate_tensors()
    input_details = interpreter.get_input_details()[0]
    output_details = interpreter.get_output_details()[0]
    output_scale, output_zero_point = output_details['quantization']
    assert input_details['dtype'] == np.uint8 and output_zero_point == 0
    rel_float, rel_int8 = {}, {}
    for name, rgb, truth in real_frames():
        small = cv2.resize(rgb, (224, 224), interpolation=cv2.INTER_AREA)  # uint8 RGB
        interpreter.set_tensor(input_details['index'], small[None])
        interpreter.invoke()
        int8 = interpreter.get_tensor(output_details['index'])[0, :, :, 0] * output_scale
        ours = run_float(fastdepth, small / 255.0)
        difference = np.abs(ours - int8)
        assert difference.mean() < 0.045, name  # measured 0.031-0.039 m
        assert np.mean(difference / ours.clip(min=0.1)) < 0.03, name  # measured 0.9-2.5 %
        assert difference.max() < 0.6, name  # measured 0.42 m

        def restored(depth: np.ndarray) -> np.ndarray:
            return cv2.resize(depth.astype(np.float32), (rgb.shape[1], rgb.shape[0]),
                              interpolation=cv2.INTER_LINEAR)

        rel_float[name] = relative_error(restored(ours), truth)
        rel_int8[name] = relative_error(restored(int8), truth)
    nyu = [name for name in rel_float if name.startswith('nyu/')]
    for name in nyu:  # measured differences 0.0027, 0.0050, 0.0012
        assert abs(rel_float[name] - rel_int8[name]) < 0.006, (name, rel_float, rel_int8)
    mean_float = np.mean([rel_float[name] for name in nyu])
    mean_int8 = np.mean([rel_int8[name] for name in nyu])
    assert abs(mean_float - mean_int8) < 0.005  # measured 0.0004
    assert 0.10 < mean_float < 0.14  # README: 0.113-0.131 per frame
    assert abs(rel_float['tum/desk'] - rel_int8['tum/desk']) < 0.01  # measured 0.0062
