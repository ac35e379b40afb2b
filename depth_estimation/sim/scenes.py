"""Frames of the simulated robot camera: RGB, exact metric depth, labels, intrinsics, pose.

`scene_frames(seed, scene, count, interval)` drives through one room; `SimulatedCamera` is an
endless stream that moves on to the next room every `frames_per_scene` frames (the ROS publisher
and the demo use it). Room k of seed s and the path through it depend on (s, k) only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np

from depth_estimation.geometry import Intrinsics
from depth_estimation.sim.camera import CameraModel, CameraPose
from depth_estimation.sim.layout import generate_room, RoomLayout


@dataclass
class SimFrame:
    """One rendered frame of the robot camera."""

    scene: int
    index: int  # frame number within the scene
    time: float  # simulated seconds since the robot started in this room
    pose: CameraPose
    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32 metres along the optical axis, NaN where nothing
    labels: np.ndarray  # (H, W) uint8 class index (layout.CLASSES), 255 unlabelled
    intrinsics: Intrinsics

    @property
    def name(self) -> str:
        return f'scene_{self.scene:04d}/{self.index:06d}'


def scene_frames(seed: int, scene: int, count: int, interval: float,
                 camera: Optional[CameraModel] = None,
                 layout: Optional[RoomLayout] = None) -> Iterator[SimFrame]:
    """`count` frames of room `scene`, `interval` simulated seconds apart (the first at t = 0).

    The room is built when the first frame is asked for and freed when the iterator ends or is
    closed.
    """
    from depth_estimation.sim.trajectory import RobotDriver
    from depth_estimation.sim.world import Room

    if count < 0 or interval <= 0:
        raise ValueError(f'need count >= 0 and interval > 0, got {count}, {interval}')
    camera = camera or CameraModel()
    layout = layout or generate_room(seed, scene)
    intrinsics = camera.intrinsics()
    driver = RobotDriver(layout, np.random.default_rng([seed, scene, 1]))
    with Room(layout, camera) as room:
        for index in range(count):
            if index:
                driver.advance(interval)
            pose = driver.pose()
            view = room.render(pose)
            yield SimFrame(scene, index, driver.time, pose, view.rgb, view.depth, view.labels,
                           intrinsics)


class SimulatedCamera:
    """An endless robot camera: `frames_per_scene` frames per room, then the next room.

    `interval` is the simulated time between frames (1 / rate for a live camera), independent of
    how long rendering takes, so the motion per frame is the same on a fast or a slow machine.
    """

    def __init__(self, seed: int = 0, frames_per_scene: int = 100, interval: float = 0.2,
                 camera: Optional[CameraModel] = None, first_scene: int = 0) -> None:
        if frames_per_scene < 1:
            raise ValueError(f'frames_per_scene must be >= 1, got {frames_per_scene}')
        self.seed = int(seed)
        self.frames_per_scene = int(frames_per_scene)
        self.interval = float(interval)
        self.camera = camera or CameraModel()
        self.scene = int(first_scene)
        self._frames: Optional[Iterator[SimFrame]] = None

    def intrinsics(self) -> Intrinsics:
        return self.camera.intrinsics()

    def next_frame(self) -> SimFrame:
        while True:
            if self._frames is None:
                self._frames = scene_frames(self.seed, self.scene, self.frames_per_scene,
                                            self.interval, self.camera)
            frame = next(self._frames, None)
            if frame is not None:
                return frame
            self._frames = None
            self.scene += 1

    def __iter__(self) -> Iterator[SimFrame]:
        while True:
            yield self.next_frame()

    def close(self) -> None:
        if self._frames is not None:
            self._frames.close()  # type: ignore[attr-defined]
            self._frames = None
