"""Command line: `python -m training.train fit --config training/configs/<name>.yaml`.

LightningCLI builds the YAML schema from the typed `__init__` signatures of
`DepthEstimationModule` (model, losses, optimisation) and `RGBDDataModule` (datasets,
augmentation), so configuration and code cannot drift. Useful forms:

    python -m training.train fit --config training/configs/tiny.yaml
    python -m training.train fit --config training/configs/tiny.yaml --ckpt_path last   # resume
    python -m training.train fit --config ... --print_config          # the full resolved config
    python -m training.train validate --config ... --ckpt_path <run>/checkpoints/last.ckpt

`--num_threads N` sets torch's CPU threads (0: torch's default). A `TrainingHistory` callback is
always added: progress lines in the log, and history.json + curves.png in the run directory.
"""

from __future__ import annotations

import sys
from typing import Any, Optional, Sequence

import torch
from lightning.pytorch.cli import LightningCLI

from training.callbacks import TrainingHistory
from training.data import RGBDDataModule
from training.module import DepthEstimationModule


class DepthCLI(LightningCLI):
    """LightningCLI with a `--num_threads` option applied before anything is built."""

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.add_argument('--num_threads', type=int, default=0,
                            help='torch CPU threads (0: leave torch\'s default)')
        parser.add_argument('--history_every_n_steps', type=int, default=10,
                            help='print a progress line every N training steps')

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        threads = int(config.get('num_threads') or 0)
        if threads > 0:
            torch.set_num_threads(threads)
        every = int(config.get('history_every_n_steps') or 10)
        for callback in self.trainer_defaults.get('callbacks', []):
            if isinstance(callback, TrainingHistory):
                callback.print_every_n_steps = max(1, every)


def main(args: Optional[Sequence[str]] = None) -> int:
    DepthCLI(DepthEstimationModule, RGBDDataModule, seed_everything_default=0,
             save_config_kwargs={'overwrite': True},
             trainer_defaults={'callbacks': [TrainingHistory()]},
             args=list(args) if args is not None else None)
    return 0


if __name__ == '__main__':
    sys.exit(main())
