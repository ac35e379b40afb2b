"""A camera on a mobile robot: a room's occupancy grid and a wandering, wall-avoiding drive.

The robot is a disc of `radius` driven like a differential-drive base: forward speed with limited
acceleration, turn rate with a limit, turning on the spot when blocked. At every step it looks
along a fan of headings, measures how far each stays clear of obstacles (distance transform of the
occupancy grid) and steers towards the clearest one near a slowly wandering preferred turn, so the
path is smooth, goes forward, turns at walls and furniture and explores the room. The camera sits
on the robot at the room's rig height and pitch, with a little bounce. All randomness comes from
the generator passed in, so the same seed drives the same path.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Optional

import cv2
import numpy as np

from depth_estimation.sim.camera import CameraPose
from depth_estimation.sim.layout import RoomLayout


@dataclass(frozen=True)
class OccupancyGrid:
    """Free space of a room on a square grid (row = y, column = x) with clearance in metres."""

    resolution: float  # metres per cell
    free: np.ndarray  # (rows, columns) bool
    clearance: np.ndarray  # (rows, columns) float32 metres to the nearest obstacle or wall

    def cell(self, x: float, y: float) -> tuple[int, int]:
        rows, columns = self.free.shape
        return (min(max(int(y / self.resolution), 0), rows - 1),
                min(max(int(x / self.resolution), 0), columns - 1))

    def clearance_at(self, x: float, y: float) -> float:
        """Clearance (metres) at a point; 0 outside the grid."""
        rows, columns = self.free.shape
        row, column = int(math.floor(y / self.resolution)), int(math.floor(x / self.resolution))
        if not (0 <= row < rows and 0 <= column < columns):
            return 0.0
        return float(self.clearance[row, column])


def occupancy_grid(layout: RoomLayout, resolution: float = 0.05) -> OccupancyGrid:
    """Rasterise the room's footprints; walls are the grid border."""
    columns = int(math.ceil(layout.width / resolution))
    rows = int(math.ceil(layout.length / resolution))
    occupied = np.zeros((rows + 2, columns + 2), np.uint8)  # one border cell all round = walls
    occupied[0, :] = occupied[-1, :] = occupied[:, 0] = occupied[:, -1] = 1
    for footprint in layout.footprints:
        corners = footprint.corners() / resolution + 1.0  # (4, 2) in padded cells (x, y)
        cv2.fillPoly(occupied, [np.round(corners * 16).astype(np.int32)], 1, shift=4)
    free = occupied == 0  # (rows + 2, columns + 2)
    distance = cv2.distanceTransform(free.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    clearance = (distance * resolution).astype(np.float32)[1:-1, 1:-1]
    return OccupancyGrid(resolution, free[1:-1, 1:-1].copy(), clearance)


class RobotDriver:
    """Drives a disc robot through a room; `advance(seconds)` moves it, `pose()` is its camera.

    Speeds in m/s and rad/s. `cruise_speed` None draws one in [0.3, 0.5] m/s from `rng`.
    """

    LOOK_AHEAD = 2.5  # metres of clear path that count as fully open
    FAN = np.radians(np.linspace(-70.0, 70.0, 15))  # candidate heading offsets
    STEP = 0.05  # seconds per integration step

    def __init__(self, layout: RoomLayout, rng: np.random.Generator, radius: float = 0.3,
                 cruise_speed: Optional[float] = None, max_turn_rate: float = 0.8,
                 acceleration: float = 0.6) -> None:
        self.layout = layout
        self.rng = rng
        self.grid = occupancy_grid(layout)
        self.radius = float(radius)
        self.cruise_speed = float(cruise_speed if cruise_speed is not None
                                  else rng.uniform(0.3, 0.5))
        self.max_turn_rate = float(max_turn_rate)
        self.acceleration = float(acceleration)
        self.time = 0.0
        self.speed = 0.0
        self.turn_bias = 0.0  # preferred heading offset (radians), a slow random walk
        self.x, self.y = self._start()
        around = np.linspace(-math.pi, math.pi, 24, endpoint=False)
        # Start facing the longest open view (not just the first direction 2.5 m clear).
        self.heading = float(around[int(np.argmax(self._free_distances(around, limit=12.0)))])
        self._bounce_phase = float(rng.uniform(0.0, 2.0 * math.pi))

    def _start(self) -> tuple[float, float]:
        """A random cell of the largest free region with room to manoeuvre."""
        grid = self.grid
        roomy = grid.clearance > self.radius + 0.15
        if not roomy.any():
            roomy = grid.clearance >= grid.clearance.max() - 1e-6
        count, labels = cv2.connectedComponents(roomy.astype(np.uint8), connectivity=8)
        sizes = np.bincount(labels[roomy], minlength=count)
        rows, columns = np.nonzero(labels == int(np.argmax(sizes)))
        pick = int(self.rng.integers(len(rows)))
        return ((columns[pick] + 0.5) * grid.resolution, (rows[pick] + 0.5) * grid.resolution)

    def _free_distances(self, headings: np.ndarray,
                        limit: Optional[float] = None) -> np.ndarray:
        """How far (metres, up to `limit`, default LOOK_AHEAD) the robot can drive along each of
        `headings` (N,) before its disc touches an obstacle."""
        grid = self.grid
        limit = self.LOOK_AHEAD if limit is None else limit
        steps = np.arange(1, int(round(limit / grid.resolution)) + 1) \
            * grid.resolution  # (S,) metres
        xs = self.x + np.cos(headings)[:, np.newaxis] * steps  # (N, S)
        ys = self.y + np.sin(headings)[:, np.newaxis] * steps
        rows = np.floor(ys / grid.resolution).astype(np.int64)
        columns = np.floor(xs / grid.resolution).astype(np.int64)
        inside = (rows >= 0) & (rows < grid.free.shape[0]) & (columns >= 0) \
            & (columns < grid.free.shape[1])
        clearance = np.where(inside, grid.clearance[np.clip(rows, 0, grid.free.shape[0] - 1),
                                                    np.clip(columns, 0, grid.free.shape[1] - 1)],
                             0.0)  # (N, S)
        blocked = clearance < self.radius
        first = np.argmax(blocked, axis=1)  # (N,) index of the first blocked sample
        return np.where(blocked.any(axis=1), steps[first] - grid.resolution, limit)

    def _step(self, dt: float) -> None:
        # The preferred turn wanders (Ornstein-Uhlenbeck, 3 s memory), so the robot explores.
        self.turn_bias += -self.turn_bias * dt / 3.0 + 0.6 * math.sqrt(dt) \
            * float(self.rng.standard_normal())
        self.turn_bias = float(np.clip(self.turn_bias, -1.0, 1.0))
        free = self._free_distances(self.heading + self.FAN)  # (fan,) metres
        score = free - 0.8 * np.abs(self.FAN - self.turn_bias)
        best = float(self.FAN[int(np.argmax(score))])
        ahead = float(free[len(self.FAN) // 2])
        if ahead < 0.4:  # blocked: stop and turn on the spot towards the most open side
            target_speed = 0.0
            side = float(np.sign(best) or np.sign(self.turn_bias) or 1.0)
            turn_rate = side * self.max_turn_rate
        else:
            target_speed = self.cruise_speed * min(1.0, (ahead - 0.3) / 1.2)
            turn_rate = float(np.clip(best / 0.6, -self.max_turn_rate, self.max_turn_rate))
        change = float(np.clip(target_speed - self.speed, -self.acceleration * dt,
                               self.acceleration * dt))
        self.speed += change
        self.heading = math.remainder(self.heading + turn_rate * dt, 2.0 * math.pi)
        x = self.x + self.speed * dt * math.cos(self.heading)
        y = self.y + self.speed * dt * math.sin(self.heading)
        if self.grid.clearance_at(x, y) >= self.radius:
            self.x, self.y = x, y
        else:  # would touch something: stay (the fan turns it away next step)
            self.speed = 0.0
        self.time += dt

    def advance(self, seconds: float) -> None:
        """Drive on for `seconds` of simulated time."""
        steps = max(1, int(math.ceil(seconds / self.STEP - 1e-9)))
        for _ in range(steps):
            self._step(seconds / steps)

    def pose(self) -> CameraPose:
        """The camera: at the rig height and pitch, bouncing a few millimetres as it drives."""
        bounce = math.sin(2.0 * math.pi * 1.7 * self.time + self._bounce_phase)
        moving = self.speed / max(self.cruise_speed, 1e-6)
        return CameraPose(x=self.x, y=self.y,
                          z=self.layout.camera_height + 0.004 * moving * bounce,
                          yaw=self.heading,
                          pitch=self.layout.camera_pitch + math.radians(0.4) * moving * bounce)
