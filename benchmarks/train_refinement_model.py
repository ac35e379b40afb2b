"""Train a small ZoeDepth briefly on real 7-Scenes frames, for the refinement measurements.

No pretrained weights can be used here, and confidence, anchoring, focal compensation and the
temporal filter only mean something on a model whose errors are real. This is a minimal loop
(the full trainer lives in training/): the `tiny` preset (or any preset), 7-Scenes redkitchen
frames 0..418 for training, 440..598 held out (benchmarks/refinement_data.py), SILog loss as in
ZoeDepth (beta 0.15), AdamW with a cosine schedule, horizontal flips and colour jitter (no
crops or zooms: the camera's focal length at the network input stays that of 7-Scenes, which
the focal-length experiment relies on).

    .venv/bin/python benchmarks/train_refinement_model.py --preset tiny --steps 600 --minutes 60

Writes outputs/refinement/tiny_7scenes.pt (our checkpoint format) and train_log.json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from refinement_data import (MODEL_PATH, OUTPUT_DIR, TRAIN_LAST_FRAME,  # noqa: E402
                             evaluation_mask, rel, sevenscenes_frames)


def silog_loss(pred, target, mask, beta: float = 0.15):  # noqa: ANN001, ANN201 - tensors
    """ZoeDepth's scale-invariant log loss: 10 * sqrt(var(g) + beta * mean(g)^2), g = log ratio."""
    import torch

    g = torch.log(pred[mask].clamp_min(1e-3)) - torch.log(target[mask])
    return 10.0 * torch.sqrt(g.var() + beta * g.mean() ** 2 + 1e-8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--preset', default='tiny')
    parser.add_argument('--steps', type=int, default=600)
    parser.add_argument('--minutes', type=float, default=60.0, help='stop early after this long')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--lr', type=float, default=5e-4)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--output', type=Path, default=MODEL_PATH)
    parser.add_argument('--init', type=Path, default=None,
                        help='continue from this checkpoint (its preset; --preset is ignored)')
    args = parser.parse_args(argv)

    import torch

    from depth_estimation.model import get_preset
    from depth_estimation.model.checkpoint import save_checkpoint
    from depth_estimation.model.zoedepth import build_model
    from depth_estimation.processing import Preprocessor

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    previous_steps = 0
    if args.init is not None:
        from depth_estimation.model.checkpoint import load_checkpoint, read_checkpoint

        model = load_checkpoint(args.init).train()
        previous_steps = int(read_checkpoint(args.init).get('extra', {}).get('steps', 0))
        config = model.config
        print(f'continuing from {args.init} ({previous_steps} steps)', flush=True)
    else:
        config = get_preset(args.preset)
        model = build_model(config).train()
    preprocessor = Preprocessor.matching(config)
    height, width = config.input_size

    train = sevenscenes_frames('train')
    held_out = sevenscenes_frames('held_out')[::4]  # a quick validation subset
    print(f'{len(train)} training frames (7-Scenes 0..{TRAIN_LAST_FRAME}), '
          f'{len(held_out)} validation frames', flush=True)
    images = np.stack([cv2.resize(f.rgb, (width, height), interpolation=cv2.INTER_AREA)
                       for f in train])  # (N, h, w, 3) uint8
    depths = np.stack([cv2.resize(f.depth, (width, height), interpolation=cv2.INTER_NEAREST)
                       for f in train])  # (N, h, w) metres, 0 = invalid

    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warmup = max(1, args.steps // 20)
    budget = args.minutes * 60.0

    def learning_rate(step: int, elapsed: float) -> float:
        """Linear warm-up, then a cosine over progress = the larger of steps and time used, so
        the schedule anneals fully even when a busy machine makes the time budget bind."""
        if step < warmup:
            return args.lr * (step + 1) / warmup
        progress = min(1.0, max((step - warmup) / max(1, args.steps - warmup), elapsed / budget))
        return args.lr * 0.5 * (1.0 + math.cos(math.pi * progress))

    log = {'preset': config.name, 'args': {k: str(v) for k, v in vars(args).items()},
           'steps': []}
    start = time.perf_counter()
    step = 0
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group['lr'] = learning_rate(step, time.perf_counter() - start)
        index = rng.choice(len(images), size=args.batch_size, replace=False)
        batch_rgb = images[index].astype(np.float32)
        batch_depth = depths[index].copy()
        flip = rng.random(args.batch_size) < 0.5
        batch_rgb[flip] = batch_rgb[flip, :, ::-1]
        batch_depth[flip] = batch_depth[flip, :, ::-1]
        gain = rng.uniform(0.8, 1.2, (args.batch_size, 1, 1, 1)) * rng.uniform(
            0.95, 1.05, (args.batch_size, 1, 1, 3))
        mean = batch_rgb.mean(axis=(1, 2, 3), keepdims=True)
        contrast = rng.uniform(0.8, 1.2, (args.batch_size, 1, 1, 1))
        batch_rgb = np.clip((batch_rgb - mean) * contrast + mean, 0, 255) * gain
        batch_rgb = np.clip(batch_rgb, 0, 255).astype(np.uint8)
        tensor = np.concatenate([preprocessor.prepare(image)[0] for image in batch_rgb])
        target = torch.from_numpy(batch_depth).unsqueeze(1)  # (B, 1, h, w)
        mask = (target > 0.1) & (target <= config.max_depth)

        pred = model(torch.from_numpy(tensor))  # (B, 1, h, w)
        loss = silog_loss(pred, target, mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

        elapsed = time.perf_counter() - start
        entry = {'step': step + 1, 'loss': loss.item(), 'seconds': round(elapsed, 1),
                 'lr': optimizer.param_groups[0]['lr']}
        if (step + 1) % 50 == 0 or step + 1 == args.steps:
            entry['held_out_rel'] = validate(model, held_out)
            save_checkpoint(args.output, model.eval(),
                            extra=_extra(args, previous_steps + step + 1))
            model.train()
        log['steps'].append(entry)
        if (step + 1) % 10 == 0 or 'held_out_rel' in entry:
            print(json.dumps(entry), flush=True)
        if elapsed > budget:
            print(f'time budget of {args.minutes} min reached after {step + 1} steps', flush=True)
            break

    model.eval()
    log['final_held_out_rel'] = validate(model, held_out)
    save_checkpoint(args.output, model, extra=_extra(args, previous_steps + step + 1))
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUTPUT_DIR / 'train_log.json').write_text(json.dumps(log, indent=1))
    print(f"wrote {args.output}; held-out REL {log['final_held_out_rel']:.3f}", flush=True)
    return 0


def _extra(args: argparse.Namespace, steps: int) -> dict:
    return {'trained_by': 'benchmarks/train_refinement_model.py', 'steps': steps,
            'data': f'7-Scenes redkitchen frames 0..{TRAIN_LAST_FRAME} (every 2nd)',
            'training_camera': {'fx': 585.0, 'fy': 585.0, 'width': 640, 'height': 480}}


def validate(model, frames) -> float:  # noqa: ANN001 - a ZoeDepth model in training
    """Mean REL of `model` on `frames` through the runtime's PyTorch backend."""
    from depth_estimation.inference.torch_backend import TorchBackend

    backend = TorchBackend(model)  # puts the model in eval mode
    errors = [rel(backend.infer(frame.rgb), frame.depth, evaluation_mask(frame))
              for frame in frames]
    model.train()
    return float(np.mean(errors))


if __name__ == '__main__':
    sys.exit(main())
