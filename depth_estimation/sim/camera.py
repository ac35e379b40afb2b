"""The simulated camera's geometry in numpy: OpenGL matrices, intrinsics and metric depth.

pybullet renders with OpenGL-style matrices (column-major lists of 16): a view matrix (world to
an eye frame with x right, y up, looking along -z) and a perspective projection. Everything the
rest of the project needs is expressed here in ROS terms instead:

- Camera pose: position in the world (z up) plus yaw (heading about z), pitch (up positive) and
  roll; the optical frame (REP 103) has x right, y down, z forward.
- Intrinsics at pixel centres (the convention of `depth_estimation.geometry`). pybullet's
  TinyRenderer (the CPU renderer) samples pixel column i at NDC x = 2 i / W - 1 and row r at
  NDC y = 1 - 2 (r + 1) / H (found by moving an edge across the image; `test/test_sim.py`
  checks that known 3D points land on the predicted pixels). Hence cx = W / 2 * (1 - P[0, 2])
  and cy = H / 2 * (1 + P[1, 2]) - 1, i.e. (320, 239) for a 640 x 480 symmetric frustum, not the
  (319.5, 239.5) of an ideal pinhole.
- Depth: the renderer's buffer holds OpenGL window depth d in [0, 1], non-linear in distance.
  `linearize_depth` turns it into z along the optical axis (REP 118), not the range along the
  ray: a fronto-parallel wall has the same z in every pixel.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

from depth_estimation.geometry import Intrinsics


@dataclass(frozen=True)
class CameraModel:
    """A pinhole camera as pybullet renders it: image size, vertical field of view, clip planes.

    `near` must stay below the closest distance the robot gets to anything (the path planner keeps
    the camera further away than that); `far` only bounds the depth buffer's precision.
    """

    width: int = 640
    height: int = 480
    vertical_fov_deg: float = 58.0  # about a RealSense D435 colour camera's 69 x 42 deg at 4:3
    near: float = 0.05
    far: float = 30.0

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f'image size must be positive, got {self.width}x{self.height}')
        if not 1.0 <= self.vertical_fov_deg <= 170.0:
            raise ValueError(f'vertical field of view must be in [1, 170] degrees, got '
                             f'{self.vertical_fov_deg}')
        if not 0.0 < self.near < self.far:
            raise ValueError(f'need 0 < near < far, got near={self.near}, far={self.far}')

    def projection(self) -> np.ndarray:
        """The OpenGL projection matrix (4, 4), as pybullet's computeProjectionMatrixFOV."""
        focal = 1.0 / math.tan(math.radians(self.vertical_fov_deg) / 2.0)
        aspect = self.width / self.height
        near, far = self.near, self.far
        return np.array([[focal / aspect, 0.0, 0.0, 0.0],
                         [0.0, focal, 0.0, 0.0],
                         [0.0, 0.0, (far + near) / (near - far), 2.0 * far * near / (near - far)],
                         [0.0, 0.0, -1.0, 0.0]])

    def projection_list(self) -> list[float]:
        """The projection as pybullet takes it: 16 floats, column-major."""
        return [float(v) for v in self.projection().T.reshape(-1)]

    def intrinsics(self) -> Intrinsics:
        """Pinhole intrinsics of the rendered image (see the module docstring for the centre)."""
        return intrinsics_from_projection(self.projection(), self.width, self.height)

    def linearize_depth(self, buffer: np.ndarray) -> np.ndarray:
        """OpenGL depth buffer (H, W) in [0, 1] -> z in metres (H, W) float32, NaN where empty.

        z = far * near / (far - (far - near) * d); d = 1 means nothing was drawn (the far plane).
        """
        return linearize_depth(buffer, self.near, self.far)


def intrinsics_from_projection(projection: np.ndarray, width: int, height: int) -> Intrinsics:
    """Intrinsics of an image rendered by pybullet's TinyRenderer with an OpenGL projection."""
    matrix = np.asarray(projection, dtype=np.float64).reshape(4, 4)
    return Intrinsics(fx=float(matrix[0, 0] * width / 2.0), fy=float(matrix[1, 1] * height / 2.0),
                      cx=float(width / 2.0 * (1.0 - matrix[0, 2])),
                      cy=float(height / 2.0 * (1.0 + matrix[1, 2]) - 1.0),
                      width=int(width), height=int(height))


def linearize_depth(buffer: np.ndarray, near: float, far: float) -> np.ndarray:
    """OpenGL window depth (H, W) in [0, 1] -> z along the optical axis (H, W) float32 metres.

    Pixels where nothing was drawn (d >= 1, the cleared buffer) are NaN.
    """
    depth = np.asarray(buffer, dtype=np.float64)
    z = far * near / (far - (far - near) * depth)  # (H, W) metres
    z[~(depth < 1.0)] = np.nan
    return z.astype(np.float32)


@dataclass(frozen=True)
class CameraPose:
    """Where the camera is (metres, world frame, z up) and where it looks (radians).

    yaw turns about the world z axis (0 looks along +x), pitch tilts up (positive) or down, roll
    turns the camera about its viewing direction (positive: its x axis towards its y axis).
    """

    x: float
    y: float
    z: float
    yaw: float
    pitch: float = 0.0
    roll: float = 0.0

    @property
    def position(self) -> np.ndarray:
        return np.array([self.x, self.y, self.z])

    def optical_axes(self) -> np.ndarray:
        """World directions (3, 3) of the optical frame's x (right), y (down), z (forward) rows."""
        cos_yaw, sin_yaw = math.cos(self.yaw), math.sin(self.yaw)
        cos_pitch, sin_pitch = math.cos(self.pitch), math.sin(self.pitch)
        forward = np.array([cos_yaw * cos_pitch, sin_yaw * cos_pitch, sin_pitch])
        right = np.array([sin_yaw, -cos_yaw, 0.0])
        down = np.cross(forward, right)
        cos_roll, sin_roll = math.cos(self.roll), math.sin(self.roll)
        right, down = cos_roll * right + sin_roll * down, cos_roll * down - sin_roll * right
        return np.stack([right, down, forward])

    def world_to_optical(self) -> np.ndarray:
        """Homogeneous transform (4, 4) from world coordinates to the optical frame."""
        rotation = self.optical_axes()  # (3, 3) rows: optical axes in world coordinates
        transform = np.eye(4)
        transform[:3, :3] = rotation
        transform[:3, 3] = -rotation @ self.position
        return transform

    def view_list(self) -> list[float]:
        """The OpenGL view matrix as pybullet takes it: 16 floats, column-major.

        The OpenGL eye frame is the optical frame turned half a turn about x (y up, z backward).
        """
        flip = np.diag([1.0, -1.0, -1.0, 1.0])
        return [float(v) for v in (flip @ self.world_to_optical()).T.reshape(-1)]


def project(points: np.ndarray, pose: CameraPose, intrinsics: Intrinsics) -> np.ndarray:
    """World points (N, 3) -> pixel coordinates and depth (N, 3): u, v (pixel centres), z."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    homogeneous = np.concatenate([points, np.ones((len(points), 1))], axis=1)  # (N, 4)
    optical = (pose.world_to_optical() @ homogeneous.T).T[:, :3]  # (N, 3) x right, y down, z
    z = optical[:, 2]
    u = intrinsics.fx * optical[:, 0] / z + intrinsics.cx
    v = intrinsics.fy * optical[:, 1] / z + intrinsics.cy
    return np.stack([u, v, z], axis=1)
