"""A simulated robot camera with exact ground truth (numpy + pybullet's CPU renderer, no ROS).

- `camera`: OpenGL matrices, intrinsics and metric depth of what pybullet renders (numpy only).
- `textures`: procedural, seamless surface textures (numpy only).
- `layout`: procedurally generated indoor rooms as plain data (numpy only).
- `trajectory`: occupancy grid and a wandering, wall-avoiding mobile-robot drive (numpy + OpenCV).
- `world`: a layout built in pybullet and rendered with TinyRenderer: RGB, z-depth, labels.
- `scenes`: frames of a room (`scene_frames`) and an endless camera (`SimulatedCamera`).
- `dataset`: writes frames in the plain RGB-D folder format (`depth-estimation simulate`).

`depth_estimation.tools.sim_camera` publishes the stream on ROS topics.
"""
