"""depth_estimation: metric depth from one camera (ZoeDepth) for ROS 2."""

__version__ = '0.1.0'
