"""Training of the depth_estimation models with PyTorch Lightning (repository only; not installed).

`training` imports `depth_estimation`; nothing in `depth_estimation` imports `training`. The
LightningModule receives the plain `ZoeDepth` model and gives it back untouched for export:
everything that exists only for training (losses, the segmentation distillation head, optimiser
state) lives here. Entry point: `python -m training.train fit --config training/configs/<x>.yaml`.
"""
