"""Callbacks: a plain-text progress line (for logs and CI, beside the progress bar) and the
history of losses and metrics, written as JSON and as a curve PNG when training ends."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Optional

import lightning as L
import torch

from training.plots import plot_curves


# Validation metrics drawn in curves.png (all of them are in history.json and TensorBoard).
PLOTTED_VALIDATION = ('silog_loss', 'abs_rel', 'a1', 'rmse')


def run_directory(trainer: L.Trainer) -> Path:
    """Where a run writes its files: the first logger's directory, else default_root_dir."""
    return Path(trainer.log_dir or trainer.default_root_dir)


class TrainingHistory(L.Callback):
    """Records every training step's logged values and every validation's metrics.

    Prints one line every `print_every_n_steps` steps and after each validation; at the end of
    `fit` (also when it stops on an error or Ctrl-C) writes `history.json` and `curves.png`
    (training losses smoothed over `smooth` steps, validation metrics) into `output_dir`
    (default: the run directory). The history is saved in Lightning checkpoints, so a resumed
    run draws the whole curve.
    """

    def __init__(self, print_every_n_steps: int = 10, smooth: int = 10,
                 output_dir: Optional[str] = None) -> None:
        super().__init__()
        self.print_every_n_steps = max(1, int(print_every_n_steps))
        self.smooth = smooth
        self.output_dir = output_dir
        self.train: dict[str, list[tuple[int, float]]] = {}
        self.val: dict[str, list[tuple[int, float]]] = {}
        self._last_time: Optional[float] = None
        self._last_step = 0

    # -- recording ---------------------------------------------------------------------------
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last_time = time.perf_counter()
        self._last_step = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        values = {name: float(value) for name, value in trainer.callback_metrics.items()
                  if name.startswith('train/') and torch.is_tensor(value) and value.numel() == 1}
        for name, value in values.items():
            self.train.setdefault(name, []).append((step, value))
        if trainer.is_global_zero and (step % self.print_every_n_steps == 0
                                       or step == trainer.max_steps):
            now = time.perf_counter()
            rate = ((step - self._last_step) / (now - self._last_time)
                    if self._last_time and now > self._last_time else math.nan)
            self._last_time, self._last_step = now, step
            total = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else \
                trainer.estimated_stepping_batches
            shown = ' '.join(f'{name[6:]} {value:.4f}' for name, value in sorted(values.items()))
            print(f'step {step}/{total} epoch {trainer.current_epoch} {shown} '
                  f'({rate:.2f} steps/s)', flush=True)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # on_validation_end: after the module's on_validation_epoch_end has logged its metrics
        if trainer.sanity_checking:
            return
        step = trainer.global_step
        values = {name: float(value) for name, value in trainer.callback_metrics.items()
                  if name.startswith('val/') and torch.is_tensor(value) and value.numel() == 1}
        for name, value in values.items():
            self.val.setdefault(name, []).append((step, value))
        if trainer.is_global_zero and values:
            shown = ' '.join(f'{name[4:]} {value:.4f}' for name, value in sorted(values.items()))
            print(f'validation at step {step}: {shown}', flush=True)

    # -- output --------------------------------------------------------------------------------
    def write(self, trainer: L.Trainer) -> Optional[Path]:
        """Write history.json and curves.png; returns the PNG path (rank zero only)."""
        if not trainer.is_global_zero:
            return None
        directory = Path(self.output_dir) if self.output_dir else run_directory(trainer)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / 'history.json').write_text(json.dumps(
            {'train': self.train, 'val': self.val}, indent=1))
        loss_curves = {name[6:]: points for name, points in self.train.items()
                       if name != 'train/lr'}
        loss_title = f'training loss (per step; bold: mean of the last {self.smooth})'
        panels = {loss_title: loss_curves}
        if 'train/lr' in self.train:
            panels['learning rate (decoder and heads)'] = {'lr': self.train['train/lr']}
        for name in PLOTTED_VALIDATION:
            if f'val/{name}' in self.val:
                panels[f'validation {name}'] = {name: self.val[f'val/{name}']}
        path = plot_curves(panels, directory / 'curves.png', smooth={loss_title: self.smooth})
        print(f'wrote {path} and {directory / "history.json"}', flush=True)
        return path

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.write(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule,
                     exception: BaseException) -> None:
        self.write(trainer)

    def state_dict(self) -> dict[str, Any]:
        return {'train': self.train, 'val': self.val}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.train = {k: [tuple(p) for p in v] for k, v in state_dict.get('train', {}).items()}
        self.val = {k: [tuple(p) for p in v] for k, v in state_dict.get('val', {}).items()}
