"""ZoeDepth model: configuration and presets (torch-free), model and checkpoints (need torch).

Import `depth_estimation.model.zoedepth` and `depth_estimation.model.checkpoint` explicitly; this
package import stays light so runtime code can read configs without PyTorch.
"""

from depth_estimation.model.config import BackboneConfig, BinConfig, ZoeDepthConfig
from depth_estimation.model.presets import PRESETS, get_preset

__all__ = ['BackboneConfig', 'BinConfig', 'ZoeDepthConfig', 'PRESETS', 'get_preset']
