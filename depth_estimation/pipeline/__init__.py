"""The per-frame depth pipeline, free of ROS: RGB (+ intrinsics, sparse depth, stamp) -> depth.

`DepthPipeline` (depth_pipeline.py) runs the model and hands each image's depth through the
per-frame modules: intrinsics selection (intrinsics.py), temporal filter (temporal.py), focal
compensation (focal.py), scale anchoring (anchoring.py) behind one `DepthRefiner`
(refinement.py), REP 117 ranges (ranges.py) and LaserScan geometry (laserscan.py). Its settings
are declared once in settings.py; frame statistics for diagnostics are in stats.py. The ROS node
(`depth_estimation.ros`) only converts messages around it.
"""

from depth_estimation.pipeline.depth_pipeline import DepthPipeline, ModelLoadError
from depth_estimation.pipeline.frame import DepthFrame, SkippedFrame
from depth_estimation.pipeline.intrinsics import CameraCalibration, select_intrinsics
from depth_estimation.pipeline.refinement import SparseSample
from depth_estimation.pipeline.settings import PipelineSettings

__all__ = ['CameraCalibration', 'DepthFrame', 'DepthPipeline', 'ModelLoadError',
           'PipelineSettings', 'select_intrinsics', 'SkippedFrame', 'SparseSample']
