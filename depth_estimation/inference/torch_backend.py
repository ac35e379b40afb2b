"""PyTorch backend: runs one of our checkpoints (or an in-memory model) eagerly."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

import numpy as np

from depth_estimation.artifacts import ArtifactMetadata
from depth_estimation.inference.base import DepthBackend


class TorchBackend(DepthBackend):
    name = 'torch'

    def __init__(self, model: Union[str, Path, Any], device: str = 'cpu',
                 num_threads: int = 0) -> None:
        import torch

        from depth_estimation.model.checkpoint import load_checkpoint

        if num_threads > 0:
            torch.set_num_threads(num_threads)
        self.source = str(model) if isinstance(model, (str, Path)) else 'in-memory model'
        if isinstance(model, (str, Path)):
            model = load_checkpoint(model)
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        super().__init__(ArtifactMetadata.from_model_config(model.config))

    def run_network(self, tensor: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            depth = self.model(torch.from_numpy(tensor).to(self.device))
        return depth.float().cpu().numpy()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), 'device': str(self.device), 'artifact': self.source}

    def close(self) -> None:
        self.model = None
        super().close()
