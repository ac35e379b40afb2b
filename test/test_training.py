"""Training (training/): losses against hand-computed values, data augmentation keeping intrinsics
consistent, the FP32-head forward, export without the segmentation head, and real runs of the
tiny config on ../shared/data 7-Scenes frames: the loss goes down, a killed run resumes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO_ROOT, require_shared, SHARED_DATA
from depth_estimation.geometry import Intrinsics
from training.data import Augmentation, augment, crop, flip, Frame, resize, rotate
from training.losses import (dice_loss, focal_loss, ScaleShiftInvariantLoss, SILogLoss)

SEVEN_SCENES = SHARED_DATA / 'sevenscenes_redkitchen' / 'frames'
TINY_CONFIG = REPO_ROOT / 'training' / 'configs' / 'tiny.yaml'


# --- losses, against values computed by hand ---

def test_silog_two_pixels_by_hand() -> None:
    prediction = torch.tensor([1.0, 2.0]).view(1, 1, 1, 2)
    target = torch.ones(1, 1, 1, 2)
    # g = (0, ln 2); unbiased variance of two values = (ln 2)^2 / 2; mean = ln 2 / 2
    variance, mean = math.log(2) ** 2 / 2, math.log(2) / 2
    expected = 10 * math.sqrt(variance + 0.15 * mean ** 2)
    assert SILogLoss()(prediction, target).item() == pytest.approx(expected, rel=1e-5)


def test_silog_is_scale_invariant_up_to_beta() -> None:
    target = torch.rand(2, 1, 6, 8) * 5 + 0.5
    # g = ln 2 everywhere: zero variance, so L = 10 * sqrt(0.15) * ln 2
    loss = SILogLoss()(2 * target, target)
    assert loss.item() == pytest.approx(10 * math.sqrt(0.15) * math.log(2), rel=1e-4)


def test_silog_uses_only_masked_pixels_and_upsamples_the_prediction() -> None:
    target = torch.full((1, 1, 4, 4), 2.0)
    target[..., 0, 0] = 100.0  # masked out below
    mask = target < 50
    prediction = torch.full((1, 1, 2, 2), 1.0)  # upsampled to 4x4 (bilinear): still 1.0
    expected = 10 * math.sqrt(0.15) * math.log(2)  # g = -ln 2 on every valid pixel
    assert SILogLoss()(prediction, target, mask).item() == pytest.approx(expected, rel=1e-4)


def test_silog_without_valid_pixels_is_zero_and_differentiable() -> None:
    prediction = torch.ones(1, 1, 2, 2, requires_grad=True)
    loss = SILogLoss()(prediction, torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2, dtype=bool))
    loss.backward()
    assert loss.item() == 0.0 and prediction.grad is not None


def test_scale_shift_invariant_loss_by_hand() -> None:
    prediction = torch.tensor([0.0, 1.0, 2.0, 3.0]).view(1, 1, 4)
    target = torch.tensor([0.0, 1.0, 2.0, 4.0]).view(1, 1, 4)
    mask = torch.ones(1, 1, 4, dtype=torch.bool)
    # least squares: s = cov / var = 6.5 / 5 = 1.3, t = 1.75 - 1.3 * 1.5 = -0.2
    # residuals r = (-0.2, 0.1, 0.4, -0.3): data term = sum r^2 / (2 N) = 0.30 / 8
    # gradient terms: step 1: (0.3 + 0.3 + 0.7) / 4; step 2 (columns 0, 2): 0.6 / 2; steps 4, 8: 0
    expected = 0.30 / 8 + 0.5 * (1.3 / 4 + 0.6 / 2)
    loss = ScaleShiftInvariantLoss(alpha=0.5, scales=4)(prediction, target, mask)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    # an exact affine copy of the target costs nothing
    affine = ScaleShiftInvariantLoss()(3 * target + 1, target, mask)
    assert affine.item() == pytest.approx(0.0, abs=1e-5)


def test_focal_loss_by_hand_and_ignored_labels() -> None:
    logits = torch.zeros(1, 2, 1, 3)  # p = 0.5 for both classes everywhere
    logits[0, :, 0, 2] = torch.tensor([-20.0, 20.0])  # confidently class 1 ...
    labels = torch.tensor([[[0, 1, 255]]])  # ... but that pixel is ignored
    expected = (1 - 0.5) ** 2 * math.log(2)  # -(1 - p_t)^2 log p_t with p_t = 0.5
    assert focal_loss(logits, labels, gamma=2.0).item() == pytest.approx(expected, rel=1e-5)
    assert focal_loss(logits, torch.full((1, 1, 3), -1)).item() == 0.0


def test_dice_loss_by_hand() -> None:
    logits = torch.zeros(1, 2, 1, 4)
    labels = torch.tensor([[[0, 0, 1, 1]]])
    # per class: intersection 2 * 0.5 = 1, sum p = 2, sum y = 2 -> (2 + 1) / (4 + 1) = 0.6
    assert dice_loss(logits, labels, smooth=1.0).item() == pytest.approx(0.4, rel=1e-5)
    confident = torch.stack([(labels == 0).float(), (labels == 1).float()], dim=1) * 40 - 20
    assert dice_loss(confident, labels).item() == pytest.approx(0.0, abs=1e-5)


# --- augmentation keeps intrinsics consistent ---

def _frame_with_marker(u: int, v: int, depth: float = 2.0) -> Frame:
    """A 40x60 frame, one bright pixel at (u, v) with a depth measurement, fx != fy, off-centre."""
    image = np.zeros((40, 60, 3), np.float32)
    image[v, u] = 1.0
    depth_map = np.zeros((40, 60), np.float32)
    depth_map[v, u] = depth
    intrinsics = Intrinsics(fx=50.0, fy=55.0, cx=27.0, cy=18.0, width=60, height=40)
    return Frame(image, depth_map, np.zeros((40, 60), np.int64), intrinsics)


def _marker_point(frame: Frame) -> np.ndarray:
    """Back-project the bright pixel with the frame's own intrinsics: (X, Y, Z) metres."""
    v, u = np.unravel_index(np.argmax(frame.image[..., 0]), frame.image.shape[:2])
    z = frame.depth[v, u]
    k = frame.intrinsics
    return np.array([(u - k.cx) * z / k.fx, (v - k.cy) * z / k.fy, z])


def test_flip_and_crop_keep_the_3d_point() -> None:
    frame = _frame_with_marker(40, 10)
    original = _marker_point(frame)
    flipped = _marker_point(flip(frame))
    np.testing.assert_allclose(flipped, original * [-1, 1, 1], atol=1e-6)
    cropped = crop(frame, top=5, left=12, height=30, width=40)
    assert cropped.intrinsics.width == 40 and cropped.intrinsics.height == 30
    np.testing.assert_allclose(_marker_point(cropped), original, atol=1e-6)


def test_rotation_turns_about_the_principal_point_and_resize_scales() -> None:
    frame = _frame_with_marker(27, 18)  # at the principal point: a camera roll leaves it there
    turned = rotate(frame, 5.0)
    assert turned.image[18, 27, 0] == pytest.approx(1.0) and turned.depth[18, 27] == 2.0
    assert turned.intrinsics == frame.intrinsics
    # pixels rotated in from outside the frame are invalid
    corner = rotate(_frame_with_marker(5, 5), 30.0)
    assert corner.depth[0, 0] == 0.0 and corner.labels[0, 0] == -1
    half = resize(frame, 20, 30)
    assert half.intrinsics == frame.intrinsics.scaled(30, 20) and half.depth.shape == (20, 30)


def test_augment_draws_zoedepth_colour_jitter_within_its_ranges() -> None:
    frame = _frame_with_marker(10, 10)
    frame.image[:] = 0.5
    options = Augmentation(flip_probability=0.0, rotation_degrees=0.0, colour_probability=1.0)
    out = augment(frame, options, np.random.default_rng(3))
    # 0.5 ** gamma * brightness * gain with gamma, gain in [0.9, 1.1], brightness in [0.75, 1.25]
    low, high = 0.5 ** 1.1 * 0.75 * 0.9, 0.5 ** 0.9 * 1.25 * 1.1
    assert np.all((out.image >= low - 1e-6) & (out.image <= high + 1e-6))
    assert len(np.unique(out.image.reshape(-1, 3)[0])) == 3  # one gain per channel
    np.testing.assert_array_equal(out.depth, frame.depth)


def test_dataset_items_from_a_folder_with_teacher_labels(tmp_path: Path) -> None:
    """A real folder dataset (written in its format) with teacher maps at another size."""
    import cv2

    from depth_estimation.datasets import FolderWriter
    from training.data import build_dataset

    intrinsics = Intrinsics(fx=100.0, fy=100.0, cx=60.0, cy=40.0, width=120, height=80)
    rng = np.random.default_rng(0)
    labels_dir = tmp_path / 'teacher'
    with FolderWriter(tmp_path / 'rooms', intrinsics, max_depth=5.0) as writer:
        for index in range(3):
            depth = np.full((80, 120), 2.0, np.float32)
            depth[:, :10] = 0.0  # no measurement
            depth[:, -10:] = 7.0  # beyond max_depth
            writer.add(f'scene/{index:03d}', rng.integers(0, 255, (80, 120, 3), np.uint8), depth,
                       split='train')
            (labels_dir / 'scene').mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(labels_dir / 'scene' / f'{index:03d}.png'),
                        np.full((40, 60), index + 1, np.uint8))
    dataset = build_dataset({'dataset': str(tmp_path / 'rooms'), 'split': 'train',
                             'labels': str(labels_dir)}, (48, 64), (0.5,) * 3, (0.5,) * 3,
                            augmentation=None, depth_resolution='network')
    item = dataset[2]
    assert item['image'].shape == (3, 48, 64) and item['depth'].shape == (1, 48, 64)
    assert float(item['image'].min()) >= -1.0 and float(item['image'].max()) <= 1.0
    assert torch.all(item['segmentation'] == 3) and item['metric']
    expected = intrinsics.scaled(64, 48)
    np.testing.assert_allclose(item['intrinsics'].numpy(),
                               [expected.fx, expected.fy, expected.cx, expected.cy], rtol=1e-6)
    mask = item['mask'][0]
    assert not mask[:, :4].any() and not mask[:, -4:].any() and mask[:, 10:50].all()


# --- model side ---

def _tiny_module(**kwargs):
    from training.models import ModelSource
    from training.module import DepthEstimationModule

    return DepthEstimationModule(ModelSource(preset='tiny', init='random', seed=0), **kwargs)


def test_fp32_head_forward_equals_the_plain_model() -> None:
    from training.module import forward_train

    module = _tiny_module()
    model = module.model.eval()
    image = torch.randn(2, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        depth, fused, _ = forward_train(model, image)
        assert torch.equal(depth, model(image))
        # under bf16 autocast the metric head still runs in FP32
        with torch.autocast('cpu', dtype=torch.bfloat16):
            mixed = forward_train(model, image).depth
    assert mixed.dtype == torch.float32 and fused[-1].shape[-2:] == (48, 64)
    assert torch.allclose(mixed, depth, rtol=0.1)


def test_encoder_learns_ten_times_slower_and_every_parameter_is_optimised() -> None:
    from training.module import parameter_groups

    module = _tiny_module(segmentation_classes=3)
    groups = parameter_groups(module.model, module.trainable_extras(), 1.61e-4, 10.0)
    lrs = {group['name']: group['lr'] for group in groups}
    assert lrs == {'encoder': pytest.approx(1.61e-5), 'decoder_and_head': pytest.approx(1.61e-4)}
    grouped = [id(p) for group in groups for p in group['params']]
    expected = [p for p in module.parameters() if p.requires_grad]
    assert len(grouped) == len(set(grouped)) == len(expected)
    encoder = {id(p) for p in groups[0]['params']}
    for name, parameter in module.model.named_parameters():
        assert (id(parameter) in encoder) == name.startswith(('backbone.',
                                                              'neck.reassemble_stage.')), name


def test_fastdepth_core_learns_slower_and_can_be_frozen() -> None:
    """zoedepth_fastdepth: the whole pretrained core is the slow group; a frozen-core step gives
    the head gradients and leaves the core without any (so the optimiser skips it)."""
    from training.models import ModelSource
    from training.module import DepthEstimationModule, forward_train, parameter_groups

    module = DepthEstimationModule(ModelSource(preset='zoedepth_fastdepth', seed=0),
                                   freeze_core_steps=5, channels_last=True)
    model = module.model
    groups = parameter_groups(model, [], 1e-3, 10.0)
    encoder = {id(p) for p in groups[0]['params']}
    for name, parameter in model.named_parameters():
        assert (id(parameter) in encoder) == name.startswith('core.'), name
    assert not module.core_frozen()  # no trainer: nothing to count steps
    image = module.memory_format(torch.rand(2, 3, 64, 96))
    assert image.is_contiguous(memory_format=torch.channels_last)
    for frozen in (True, False):
        model.zero_grad(set_to_none=True)
        depth, fused, core_depth = forward_train(model, image, freeze_core=frozen)
        assert depth.shape == (2, 1, 64, 96) and fused[-1].shape[-2:] == (32, 48)
        assert core_depth.shape == (2, 64, 96)
        depth.mean().backward()
        core_grads = [p.grad for p in model.core.parameters()]
        assert all(g is None for g in core_grads) == frozen
        assert all(p.grad is not None for p in model.metric_head.parameters())


def test_segmentation_head_trains_but_is_not_exported(tmp_path: Path) -> None:
    from depth_estimation.model.checkpoint import load_checkpoint, read_checkpoint

    module = _tiny_module(segmentation_classes=4, export_dir=str(tmp_path))
    batch = {'image': torch.randn(2, 3, 96, 128), 'depth': torch.rand(2, 1, 96, 128) * 3 + 0.5,
             'mask': torch.ones(2, 1, 96, 128, dtype=torch.bool),
             'segmentation': torch.randint(0, 4, (2, 96, 128)), 'metric': torch.tensor([1, 1])}
    losses = module.compute_losses(batch)
    assert set(losses) == {'silog', 'seg', 'loss'}
    assert losses['loss'].item() == pytest.approx(
        module.hparams.lambda_dis * losses['seg'].item() + losses['silog'].item(), rel=1e-5)
    losses['loss'].backward()
    assert module.segmentation_head.block[0].weight.grad.abs().sum() > 0
    path = module.export('model.pt')
    state = read_checkpoint(path)['state_dict']
    assert not any('segmentation' in key for key in state)
    assert set(state) == set(module.model.state_dict())
    exported = load_checkpoint(path)  # strict: exactly the plain ZoeDepth
    import io

    import onnx

    buffer = io.BytesIO()
    torch.onnx.export(exported, (torch.zeros(1, 3, 96, 128),), buffer, input_names=['image'],
                      output_names=['depth'], opset_version=17, dynamo=False)
    graph = onnx.load_from_string(buffer.getvalue()).graph
    assert [o.name for o in graph.output] == ['depth']
    assert not any('segmentation' in i.name for i in graph.initializer)


# --- real runs of the tiny config ---

def _train_command(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, '-m', 'training.train', 'fit', '--config', str(TINY_CONFIG),
            '--trainer.logger.init_args.save_dir', str(run_dir), *extra]


def _environment() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED='1')


@pytest.mark.slow
def test_tiny_config_loss_goes_down(tmp_path: Path) -> None:
    """30 seeded steps on real 7-Scenes frames: the last steps' mean SILog is well below the first.
    """
    require_shared(SEVEN_SCENES)
    run = subprocess.run(_train_command(tmp_path), cwd=REPO_ROOT, env=_environment(),
                         capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    history = json.loads((tmp_path / 'history.json').read_text())
    losses = [value for _, value in history['train']['train/loss']]
    assert len(losses) == 30
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.8 * first, (first, last)
    assert 'val/abs_rel' in history['val'] and len(history['val']['val/abs_rel']) == 3
    assert (tmp_path / 'curves.png').stat().st_size > 1000
    from depth_estimation.model.checkpoint import load_checkpoint

    for name in ('model_last.pt', 'model_best.pt'):
        model = load_checkpoint(tmp_path / 'export' / name)
        assert model.config.name == 'tiny'
    # any Lightning checkpoint of the run gives the plain model back
    from training.export import export_lightning_checkpoint

    path = export_lightning_checkpoint(tmp_path / 'checkpoints' / 'last.ckpt', tmp_path / 'l.pt')
    last = load_checkpoint(tmp_path / 'export' / 'model_last.pt').state_dict()
    for key, value in load_checkpoint(path).state_dict().items():
        assert torch.equal(value, last[key]), key


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    """Kill a run mid-epoch after its first checkpoint; `--ckpt_path last` continues the step count
    and leaves the older checkpoints as they were."""
    require_shared(SEVEN_SCENES)
    checkpoints = tmp_path / 'checkpoints'
    short = ('--trainer.max_steps', '15', '--trainer.limit_val_batches', '1')
    process = subprocess.Popen(_train_command(tmp_path, *short), cwd=REPO_ROOT,
                               env=_environment(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        # last.ckpt is written right after the periodic checkpoint of the same step
        while not ((checkpoints / 'step00005.ckpt').exists()
                   and (checkpoints / 'last.ckpt').exists()):
            assert process.poll() is None, 'training ended before its first checkpoint'
            assert time.monotonic() < deadline, 'no checkpoint within 300 s'
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the whole session: the run and nothing else
        process.wait(timeout=30)
    before = {p.name: _sha256(p) for p in checkpoints.glob('step*.ckpt')}
    assert before and not (tmp_path / 'export' / 'model_last.pt').exists()
    resumed_from = torch.load(checkpoints / 'last.ckpt', map_location='cpu',
                              weights_only=False)['global_step']
    assert 5 <= resumed_from < 15  # killed mid-epoch (an epoch is 40 steps)

    run = subprocess.run(_train_command(tmp_path, *short, '--ckpt_path', 'last'),
                         cwd=REPO_ROOT, env=_environment(), capture_output=True, text=True,
                         timeout=400)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert f'step {resumed_from + 5}/15' in run.stdout  # the next progress line after it
    final = torch.load(checkpoints / 'last.ckpt', map_location='cpu', weights_only=False)
    assert final['global_step'] == 15
    # the history came back with the checkpoint: one entry per step, 1..20, none twice
    steps = [step for step, _ in json.loads(
        (tmp_path / 'history.json').read_text())['train']['train/loss']]
    assert steps == list(range(1, 16))
    for name, digest in before.items():
        assert _sha256(checkpoints / name) == digest, f'{name} changed'
        assert torch.load(checkpoints / name, map_location='cpu',
                          weights_only=False)['global_step'] == int(name[4:9])


def test_heldout_frame_scores_by_hand() -> None:
    """training.heldout's scores (evaluation.metrics.frame_scores): a prediction 10 % too far
    everywhere has REL 0.1, median-scaled REL 0, and a confidence that falls as the error grows
    has Spearman -1."""
    from depth_estimation.evaluation.metrics import frame_scores
    from training.heldout import markdown_table

    truth = np.tile(np.linspace(1.0, 4.0, 64, dtype=np.float32), (48, 1))  # (48, 64) metres
    truth[:, :4] = 0.0  # no measurement
    prediction = truth * 1.1
    prediction[:, :4] = 2.0
    confidence = 1.0 / (1.0 + np.abs(prediction - truth))
    metrics = frame_scores(truth, prediction, confidence)
    assert metrics['abs_rel'] == pytest.approx(0.1, rel=1e-5)
    assert metrics['abs_rel_median_scaled'] == pytest.approx(0.0, abs=1e-6)
    assert metrics['a1'] == 1.0 and metrics['confidence_spearman'] == pytest.approx(-1.0)
    table = markdown_table({'evaluate/x': {'frames': 1, 'trained': metrics,
                                           'fastdepth': frame_scores(truth, truth)}})
    assert '| evaluate/x | 1 | FastDepth alone | 0.000 | 1.000 | 0.000 | 0.000 | - |' in table


def test_release_provenance_names_the_core_and_every_training_source() -> None:
    from training.release import provenance, SOURCE_LICENCES

    split = REPO_ROOT / 'training' / 'splits' / 'real_rgbd.yaml'
    record = provenance({'global_step': 7, 'metrics': {'val/abs_rel': 0.1}}, split)
    assert set(record['training_data']) == set(SOURCE_LICENCES)
    assert 'MIT' in record['core']['licence'] and 'ICRA 2019' in record['core']['citation']
    assert record['training'] == {'global_step': 7, 'metrics': {'val/abs_rel': 0.1}}


def test_core_prior_pulls_the_head_towards_the_core_depth() -> None:
    """core_prior_weight adds SILog (beta 1) between the metric depth and the core's own depth
    on every pixel, whether or not it has ground truth; the core's depth is only a target."""
    from training.models import ModelSource
    from training.module import DepthEstimationModule

    module = DepthEstimationModule(ModelSource(preset='zoedepth_fastdepth', seed=0),
                                   core_prior_weight=0.5, relative_weight=0.0)
    batch = {'image': torch.rand(2, 3, 64, 96), 'depth': torch.rand(2, 1, 64, 96) * 3 + 0.5,
             'mask': torch.zeros(2, 1, 64, 96, dtype=torch.bool),
             'metric': torch.tensor([True, True])}
    losses = module.compute_losses(batch)  # no valid ground truth: the prior alone
    assert float(losses['silog']) == 0.0 and float(losses['core_prior']) > 0
    assert torch.allclose(losses['loss'], 0.5 * losses['core_prior'])
    losses['loss'].backward()
    assert all(p.grad is not None for p in module.model.metric_head.parameters())
    without = DepthEstimationModule(ModelSource(preset='zoedepth_fastdepth', seed=0),
                                    relative_weight=0.0).compute_losses(batch)
    assert 'core_prior' not in without and float(without['loss']) == 0.0
    # the reference is a frozen copy of the pretrained core: training the core leaves it be
    reference = module.reference_core
    assert not any(p.requires_grad for p in reference.parameters())
    with torch.no_grad():
        for parameter in module.model.core.parameters():
            parameter.mul_(0.9)
    assert all(torch.equal(a, b / 0.9) or torch.allclose(a, b / 0.9)
               for a, b in zip(reference.parameters(), module.model.core.parameters()))
    with pytest.raises(ValueError, match='metric core'):
        _tiny_module(core_prior_weight=1.0)
