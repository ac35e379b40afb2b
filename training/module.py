"""The LightningModule: trains a plain `ZoeDepth` and hands it back unchanged for export.

It receives the model (or a `ModelSource` that builds it from a YAML), computes the losses
(SILog on metric depth, the MiDaS scale-and-shift-invariant loss on relative depth, the
segmentation distillation loss when a head is configured):

    L = lambda_dis * L_seg + L_pixel,   L_pixel = silog_weight * SILog (+ relative_weight * SSI)

and optimises with ZoeDepth's recipe: AdamW, OneCycleLR (lr 1.61e-4, div_factor 1,
final_div_factor 1e4, pct_start 0.7, momentum cycled 0.85-0.95), weight decay 0.01, the encoder
(backbone and its reassemble layers: MiDaS' `pretrained`) at lr / 10. Under mixed precision the
metric bins head runs in FP32 with autocast disabled (FP16 overflows there, isl-org/ZoeDepth#56).

Our checkpoint format (depth_estimation.model.checkpoint) of the plain model is written to
`<run>/export/model_best.pt` whenever the monitored validation metric improves and to
`model_last.pt` when training ends; the segmentation head is never part of it.
"""

from __future__ import annotations

import contextlib
import copy
import math
from pathlib import Path
from typing import Any, NamedTuple, Optional, Union

import lightning as L
import torch
from torch import nn

from depth_estimation.model.zoedepth import CORE_DEPTH_FLOOR, ZoeDepth
from training.callbacks import run_directory
from training.losses import FocalDiceLoss, resize_like, ScaleShiftInvariantLoss, SILogLoss
from training.models import ModelSource
from training.segmentation import SegmentationHead
from training.validation import depth_metrics

# The pretrained part that learns at lr / encoder_lr_factor: MiDaS' `pretrained` (backbone and
# reassemble layers) of the DPT presets, the whole FastDepth core of zoedepth_fastdepth.
ENCODER_PREFIXES = ('backbone.', 'neck.reassemble_stage.', 'core.')


class TrainingForward(NamedTuple):
    depth: torch.Tensor  # (B, 1, H, W) metres
    fused: list[torch.Tensor]  # the core's decoder maps, coarse to fine (the segmentation input)
    core_depth: torch.Tensor  # (B, H, W) the core's own depth (relative, or metric for FastDepth)


def forward_train(model: ZoeDepth, image: torch.Tensor, head_fp32: bool = True,
                  freeze_core: bool = False) -> TrainingForward:
    """ZoeDepth's two public stages: the core under the ambient autocast, then the metric head
    (in FP32 with autocast off when `head_fp32`). Returns the depth, the core's decoder maps and
    the core's own depth.

    freeze_core: run the core without gradients (ZoeDepth's recipe trains the head first).
    In FP32 the depth equals `model(image)` exactly (tested): the same modules in the same order.
    """
    if len(model.head_names) != 1:
        raise ValueError('training supports single-head models (ZoeD_N / ZoeD_K presets); '
                         f'{model.config.name} has heads {model.head_names}')
    with torch.no_grad() if freeze_core else contextlib.nullcontext():
        features = model.features(image)
    depth = model.metric_depth(features, fp32=head_fp32).depth
    return TrainingForward(depth, list(features.fused), features.relative_depth)


def parameter_groups(model: ZoeDepth, extra: list[nn.Module], lr: float,
                     encoder_lr_factor: float) -> list[dict[str, Any]]:
    """ZoeDepth's `get_lr_params`: encoder (MiDaS `pretrained`: backbone + reassemble layers) at
    lr / encoder_lr_factor; decoder (`scratch`), metric head and `extra` modules at lr."""
    encoder, rest = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (encoder if name.startswith(ENCODER_PREFIXES) else rest).append(parameter)
    for module in extra:
        rest.extend(p for p in module.parameters() if p.requires_grad)
    groups = []
    if encoder:
        groups.append({'params': encoder, 'lr': lr / encoder_lr_factor, 'name': 'encoder'})
    groups.append({'params': rest, 'lr': lr, 'name': 'decoder_and_head'})
    return groups


class DepthEstimationModule(L.LightningModule):
    """Trains a plain ZoeDepth; `self.model` is exactly what gets exported."""

    def __init__(self, model: Union[ModelSource, ZoeDepth],
                 silog_weight: float = 1.0, silog_beta: float = 0.15,
                 core_prior_weight: float = 0.0,
                 relative_weight: float = 1.0, gradient_matching_alpha: float = 0.5,
                 segmentation_classes: int = 0, lambda_dis: float = 0.1,
                 focal_gamma: float = 2.0, focal_weight: float = 1.0, dice_weight: float = 1.0,
                 optimizer: str = 'adamw', lr: float = 1.61e-4, weight_decay: float = 0.01,
                 encoder_lr_factor: float = 10.0, scheduler: str = 'onecycle',
                 div_factor: float = 1.0, final_div_factor: float = 10000.0,
                 pct_start: float = 0.7, three_phase: bool = False, cycle_momentum: bool = True,
                 base_momentum: float = 0.85, max_momentum: float = 0.95,
                 head_fp32: bool = True, freeze_core_steps: int = 0, channels_last: bool = False,
                 monitor: str = 'val/abs_rel', monitor_mode: str = 'min',
                 export_dir: Optional[str] = None) -> None:
        """Model, losses and optimisation; each argument is a YAML key under `model:`.

        Args:
            model: the plain ZoeDepth to train, or a ModelSource (preset / checkpoint / official
                weights) that builds it.
            silog_weight: weight of the SILog loss on metric samples (ZoeDepth w_si: 1).
            silog_beta: beta of SILog (ZoeDepth: 0.15).
            core_prior_weight: weight of a log-depth penalty that keeps the metric depth near
                the pretrained core's depth on every pixel, with or without ground truth (SILog
                with beta 1 against it: 10 sqrt(mean g^2)); the reference is a frozen copy of
                the core as training found it, so it stays put when the core trains too. Only
                for a metric core (FastDepth): it stops a head trained on a few scenes from
                learning a rescaling that holds only there (L2-SP's idea, Li et al., ICML
                2018, applied to the outputs). 0: off (ZoeDepth).
            relative_weight: weight of the scale-and-shift-invariant loss on relative samples.
            gradient_matching_alpha: weight of MiDaS' gradient matching term inside it.
            segmentation_classes: classes of the distillation head; 0 = no head.
            lambda_dis: weight of the segmentation distillation loss.
            focal_gamma: focusing parameter of the focal loss.
            focal_weight: weight of the focal term in L_seg.
            dice_weight: weight of the dice term in L_seg.
            optimizer: 'adamw' (ZoeDepth) or 'adam'.
            lr: peak learning rate of the decoder and heads (ZoeDepth: 1.61e-4).
            weight_decay: weight decay (ZoeDepth: 0.01).
            encoder_lr_factor: the encoder learns at lr / this (ZoeDepth: 10).
            scheduler: 'onecycle' (ZoeDepth) or 'constant'.
            div_factor: OneCycleLR initial lr = max lr / div_factor (ZoeDepth: 1).
            final_div_factor: OneCycleLR final lr = initial lr / this (ZoeDepth: 1e4).
            pct_start: fraction of the cycle spent increasing the lr (ZoeDepth: 0.7).
            three_phase: OneCycleLR three_phase (ZoeDepth: false).
            cycle_momentum: cycle Adam's beta1 inversely to the lr (ZoeDepth: true).
            base_momentum: lowest beta1 (ZoeDepth: 0.85).
            max_momentum: highest beta1 (ZoeDepth: 0.95).
            head_fp32: run the metric head in FP32 under mixed precision.
            freeze_core_steps: the first this many training steps train the metric head alone
                (the core runs without gradients, so the optimiser leaves it as it is), then
                everything trains (ZoeDepth's recipe on a pretrained core).
            channels_last: keep weights and images in channels-last memory order (halves the
                CPU step time of the depthwise FastDepth core, measured; same values).
            monitor: validation metric that selects model_best.pt (ZoeDepth: abs_rel).
            monitor_mode: 'min' or 'max'.
            export_dir: where model_best.pt / model_last.pt go; default <run dir>/export.
        """
        super().__init__()
        self.save_hyperparameters(ignore=['model'])
        if isinstance(model, ModelSource):
            self.save_hyperparameters({'model_source': vars(model)})
            model = model.build()
        if not isinstance(model, ZoeDepth):
            raise TypeError(f'model must be a ZoeDepth or a ModelSource, got {type(model)}')
        self.model = model.train()
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.silog = SILogLoss(beta=silog_beta)
        self.core_prior = SILogLoss(beta=1.0)
        self.reference_core: Optional[nn.Module] = None
        if core_prior_weight:
            if model.config.bin_reference != 'core_depth':
                raise ValueError('core_prior_weight needs a metric core (bin_reference '
                                 f"'core_depth'), not {model.config.name}")
            self.reference_core = copy.deepcopy(model.core).eval().requires_grad_(False)
        self.relative_loss = ScaleShiftInvariantLoss(alpha=gradient_matching_alpha)
        self.segmentation_head: Optional[SegmentationHead] = None
        self.segmentation_loss: Optional[FocalDiceLoss] = None
        if segmentation_classes:
            self.segmentation_head = SegmentationHead(model.config.fusion_hidden_size,
                                                      segmentation_classes)
            self.segmentation_loss = FocalDiceLoss(focal_gamma, focal_weight, dice_weight)
        if optimizer not in ('adamw', 'adam'):
            raise ValueError(f"optimizer must be 'adamw' or 'adam', got {optimizer!r}")
        if scheduler not in ('onecycle', 'constant'):
            raise ValueError(f"scheduler must be 'onecycle' or 'constant', got {scheduler!r}")
        if monitor_mode not in ('min', 'max'):
            raise ValueError(f"monitor_mode must be 'min' or 'max', got {monitor_mode!r}")
        self.best_score: Optional[float] = None
        self._validation_sums: dict[str, float] = {}
        self._validation_count = 0

    # -- forward and losses --------------------------------------------------------------------
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return forward_train(self.model, self.memory_format(image), self.hparams.head_fp32)[0]

    def memory_format(self, image: torch.Tensor) -> torch.Tensor:
        """The image batch in the memory order of the weights (`channels_last`)."""
        if self.hparams.channels_last:
            return image.contiguous(memory_format=torch.channels_last)
        return image

    def core_frozen(self) -> bool:
        """Whether this training step leaves the core as it is (`freeze_core_steps`)."""
        return (self.training and self._trainer is not None
                and self.global_step < self.hparams.freeze_core_steps)

    def compute_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """All loss terms of a batch; 'loss' is the total that is optimised."""
        depth, fused, core_depth = forward_train(self.model, self.memory_format(batch['image']),
                                                 self.hparams.head_fp32,
                                                 freeze_core=self.core_frozen())
        target, mask = batch['depth'], batch['mask']
        metric = torch.as_tensor(batch['metric'], device=depth.device).view(-1, 1, 1, 1)
        losses: dict[str, torch.Tensor] = {}
        pixel = depth.new_zeros(())
        if self.hparams.silog_weight and bool(metric.any()):
            losses['silog'] = self.silog(depth, target, mask & metric)
            pixel = pixel + self.hparams.silog_weight * losses['silog']
        if self.hparams.relative_weight and not bool(metric.all()):
            prediction = resize_like(depth, target).float()
            relative_mask = mask & ~metric
            target_disparity = torch.where(relative_mask, 1.0 / target.clamp(min=1e-6),
                                           torch.zeros_like(target))
            losses['ssi'] = self.relative_loss(1.0 / prediction.clamp(min=1e-6),
                                               target_disparity, relative_mask)
            pixel = pixel + self.hparams.relative_weight * losses['ssi']
        if self.reference_core is not None:
            if self.core_frozen():  # the core is still the pretrained one
                reference = core_depth.detach().unsqueeze(1)
            else:
                with torch.no_grad():
                    reference = self.reference_core(self.memory_format(batch['image']))
            reference = reference.float().clamp_min(CORE_DEPTH_FLOOR)  # (B, 1, H, W) metres
            losses['core_prior'] = self.core_prior(depth, reference)
            pixel = pixel + self.hparams.core_prior_weight * losses['core_prior']
        total = pixel
        if self.segmentation_head is not None:
            labels = batch['segmentation']
            logits = self.segmentation_head(fused[-1].float(), size=tuple(labels.shape[-2:]))
            losses['seg'] = self.segmentation_loss(logits, labels)
            total = self.hparams.lambda_dis * losses['seg'] + pixel
        losses['loss'] = total
        return losses

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        losses = self.compute_losses(batch)
        if not torch.isfinite(losses['loss']):
            raise FloatingPointError(
                f'training loss is {losses["loss"].item()} at step {self.global_step} '
                f'({ {k: float(v) for k, v in losses.items()} }); stopping like ZoeDepth does')
        batch_size = batch['image'].shape[0]
        for name, value in losses.items():
            self.log(f'train/{name}', value.detach(), on_step=True, on_epoch=False,
                     prog_bar=name == 'loss', batch_size=batch_size)
        optimizer = self.optimizers(use_pl_optimizer=False) if self._trainer else None
        if optimizer is not None:
            self.log('train/lr', optimizer.param_groups[-1]['lr'], on_step=True, on_epoch=False,
                     batch_size=batch_size)
        return losses['loss']

    # -- validation ------------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._validation_sums, self._validation_count = {}, 0

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Metrics per image at ground-truth resolution (prediction upsampled bilinearly with
        align_corners=True, as ZoeDepth validates), averaged over images."""
        depth = self(batch['image'])
        target, mask = batch['depth'], batch['mask']
        prediction = resize_like(depth, target)
        silog = self.silog(prediction, target, mask)
        for index in range(prediction.shape[0]):
            metrics = depth_metrics(
                target[index, 0], prediction[index, 0],
                min_depth=float(batch['eval_min_depth'][index]),
                max_depth=float(batch['eval_max_depth'][index]),
                eval_crop=batch['eval_crop'][index] or None,
                dataset=batch['eval_dataset'][index])
            for name, value in metrics.items():
                self._validation_sums[name] = self._validation_sums.get(name, 0.0) + value
            self._validation_count += 1
        self._validation_sums['silog_loss'] = (self._validation_sums.get('silog_loss', 0.0)
                                               + float(silog) * prediction.shape[0])

    def on_validation_epoch_end(self) -> None:
        if not self._validation_count:
            return
        # Each DDP process validated its own share of the frames: average the per-process means
        # (equal shares), so every process, and the best-model choice on rank 0, sees one value.
        averages = {}
        for name, total in sorted(self._validation_sums.items()):
            local = torch.tensor(total / self._validation_count, device=self.device)
            averages[name] = float(self.trainer.strategy.reduce(local, reduce_op='mean'))
            self.log(f'val/{name}', averages[name], prog_bar=name in ('abs_rel', 'a1'))
        if self.trainer.sanity_checking:
            return
        score = averages.get(self.hparams.monitor.split('/', 1)[-1])
        if score is None:
            return
        better = (self.best_score is None or not math.isfinite(self.best_score)
                  or (score < self.best_score if self.hparams.monitor_mode == 'min'
                      else score > self.best_score))
        if better and math.isfinite(score):
            self.best_score = score
            self.export('model_best.pt', {self.hparams.monitor: score})

    # -- export --------------------------------------------------------------------------------
    def export_directory(self) -> Path:
        if self.hparams.export_dir:
            return Path(self.hparams.export_dir)
        return run_directory(self.trainer) / 'export'

    def export(self, filename: str, metrics: Optional[dict[str, float]] = None) -> Optional[Path]:
        """Save the plain model in our checkpoint format (rank zero); segmentation head excluded.
        """
        if self._trainer is not None and not self.trainer.is_global_zero:
            return None
        from depth_estimation.model.checkpoint import save_checkpoint

        extra = {'trained_by': 'training.module.DepthEstimationModule',
                 'global_step': int(self.global_step), 'epoch': int(self.current_epoch),
                 'metrics': dict(metrics or {})}
        was_training = self.model.training
        path = save_checkpoint(self.export_directory() / filename, self.model.eval(), extra)
        self.model.train(was_training)
        return path

    def on_fit_end(self) -> None:
        path = self.export('model_last.pt')
        if path is not None:
            print(f'exported the plain model to {path}', flush=True)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The frozen model config rides along, so a Lightning checkpoint alone rebuilds the model
        # (training.export.export_lightning_checkpoint).
        checkpoint['depth_estimation_model_config'] = self.model.config.to_dict()
        checkpoint['best_score'] = self.best_score

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.best_score = checkpoint.get('best_score')

    # -- optimisation --------------------------------------------------------------------------
    def trainable_extras(self) -> list[nn.Module]:
        return [self.segmentation_head] if self.segmentation_head is not None else []

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        groups = parameter_groups(self.model, self.trainable_extras(), hp.lr,
                                  hp.encoder_lr_factor)
        optimizer_class = torch.optim.AdamW if hp.optimizer == 'adamw' else torch.optim.Adam
        optimizer = optimizer_class(groups, lr=hp.lr, weight_decay=hp.weight_decay)
        if hp.scheduler == 'constant':
            return optimizer
        total_steps = int(self.trainer.estimated_stepping_batches)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[group['lr'] for group in groups], total_steps=total_steps,
            pct_start=hp.pct_start, div_factor=hp.div_factor,
            final_div_factor=hp.final_div_factor, three_phase=hp.three_phase,
            cycle_momentum=hp.cycle_momentum, base_momentum=hp.base_momentum,
            max_momentum=hp.max_momentum)
        return {'optimizer': optimizer,
                'lr_scheduler': {'scheduler': scheduler, 'interval': 'step', 'frequency': 1}}


def segmentation_logits(module: DepthEstimationModule, image: torch.Tensor) -> torch.Tensor:
    """Logits of the distillation head for an image batch (for inspecting what it learnt)."""
    if module.segmentation_head is None:
        raise ValueError('this module has no segmentation head')
    fused = forward_train(module.model, image, module.hparams.head_fp32).fused
    return module.segmentation_head(fused[-1].float(), size=tuple(image.shape[-2:]))


__all__ = ['DepthEstimationModule', 'TrainingForward', 'forward_train', 'parameter_groups',
           'segmentation_logits']
