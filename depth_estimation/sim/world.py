"""A `RoomLayout` built in pybullet and rendered on the CPU (TinyRenderer): RGB, depth, labels.

One `Room` owns one pybullet physics client in DIRECT mode (no window, no GPU, no physics steps:
only the renderer is used). Boxes are our own meshes whose texture coordinates are in metres over
the material's tile size, so a floor shows its planks at their real size whatever the room's size.
pybullet's C code prints a build banner on stderr when imported and URDF warnings on stdout
while loading models; those writes go to /dev/null (only during the import and the build).
"""

from __future__ import annotations

from contextlib import contextmanager
import ctypes
import functools
from dataclasses import dataclass
import os
from pathlib import Path
import sys
import tempfile
from typing import Any, Iterator

import cv2
import numpy as np

from depth_estimation.sim.camera import CameraModel, CameraPose
from depth_estimation.sim.layout import Asset, CLASSES, Material, RoomLayout, Shape
from depth_estimation.sim.textures import make_texture

UNLABELLED = 255  # segmentation value of pixels that show nothing known


@contextmanager
def muted(descriptors: tuple[int, ...] = (1,)) -> Iterator[None]:
    """Send what C code writes to these file descriptors (1 stdout, 2 stderr) to /dev/null."""
    sys.stdout.flush()
    sys.stderr.flush()
    libc = ctypes.CDLL(None)
    saved = [os.dup(descriptor) for descriptor in descriptors]
    try:
        with open(os.devnull, 'wb') as null:
            for descriptor in descriptors:
                os.dup2(null.fileno(), descriptor)
        yield
    finally:
        libc.fflush(None)  # what C stdio still buffers goes to /dev/null too
        for descriptor, copy in zip(descriptors, saved):
            os.dup2(copy, descriptor)
            os.close(copy)


@functools.lru_cache(maxsize=None)
def import_pybullet() -> tuple[Any, Any]:
    """pybullet and pybullet_data, imported without the build banner it prints on stderr."""
    try:
        with muted((1, 2)):
            import pybullet
            import pybullet_data
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError('the simulator needs pybullet (pip install -r requirements.txt)'
                          ) from error
    return pybullet, pybullet_data


def box_mesh(size: tuple[float, float, float], tile: float
             ) -> tuple[list[list[float]], list[int], list[list[float]], list[list[float]]]:
    """A box centred at the origin as (vertices, indices, uvs, normals), 4 vertices per face.

    Texture coordinates run in metres / `tile` across each face, so textures keep their scale.
    """
    half = np.asarray(size, dtype=np.float64) / 2.0
    vertices, indices, uvs, normals = [], [], [], []
    for axis in range(3):
        u_axis, v_axis = [a for a in range(3) if a != axis]
        for sign in (-1.0, 1.0):
            base = len(vertices)
            corners = ((-1, -1), (1, -1), (1, 1), (-1, 1))
            if sign < 0:  # keep the winding counter-clockwise seen from outside
                corners = corners[::-1]
            for cu, cv in corners:
                point = np.zeros(3)
                point[axis] = sign * half[axis]
                point[u_axis] = cu * half[u_axis]
                point[v_axis] = cv * half[v_axis]
                vertices.append(point.tolist())
                uvs.append([(point[u_axis] + half[u_axis]) / tile,
                            (point[v_axis] + half[v_axis]) / tile])
                normal = [0.0, 0.0, 0.0]
                normal[axis] = sign
                normals.append(normal)
            indices += [base, base + 1, base + 2, base, base + 2, base + 3]
    return vertices, indices, uvs, normals


@dataclass
class RenderedView:
    """One rendered frame."""

    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32 metres along the optical axis, NaN where nothing
    labels: np.ndarray  # (H, W) uint8 index into layout.CLASSES, UNLABELLED elsewhere


class Room:
    """A room built in its own pybullet client; `render(pose)` draws it. Close it (or use `with`).
    """

    def __init__(self, layout: RoomLayout, camera: CameraModel) -> None:
        self.layout = layout
        self.camera = camera
        self.pybullet, pybullet_data = import_pybullet()
        with muted():
            self.client = self.pybullet.connect(self.pybullet.DIRECT)
        self.data_path = Path(pybullet_data.getDataPath())
        self._projection = camera.projection_list()
        self._body_labels: dict[int, int] = {}
        self._textures: dict[Material, int] = {}
        try:
            with tempfile.TemporaryDirectory(prefix='depth_sim_textures_') as texture_dir, \
                    muted():
                self._texture_dir = Path(texture_dir)
                for shape in layout.shapes:
                    self._add_shape(shape)
                for asset in layout.assets:
                    self._add_asset(asset)
        except Exception:
            self.close()
            raise
        lookup = np.full(max(self._body_labels, default=0) + 2, UNLABELLED, np.uint8)
        for body, label in self._body_labels.items():
            lookup[body] = label
        self._label_lookup = lookup  # body id -> class; index -1 (nothing) -> UNLABELLED

    def _call(self, function: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.pybullet, function)(*args, physicsClientId=self.client, **kwargs)

    def _texture(self, material: Material) -> int:
        if material not in self._textures:
            image = make_texture(material.kind, material.seed, material.colour, material.second)
            path = self._texture_dir / f'{len(self._textures):04d}.png'
            cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            self._textures[material] = self._call('loadTexture', str(path))
        return self._textures[material]

    def _add_shape(self, shape: Shape) -> None:
        p = self.pybullet
        plain = shape.material.kind == 'plain'
        # Textures carry their colour; a plain material is a colour alone.
        colour = list(shape.material.colour) + [1.0] if plain else [1.0, 1.0, 1.0, 1.0]
        if shape.kind == 'box':
            vertices, indices, uvs, normals = box_mesh(shape.size, shape.material.tile)
            visual = self._call('createVisualShape', p.GEOM_MESH, vertices=vertices,
                                indices=indices, uvs=uvs, normals=normals, rgbaColor=colour)
        elif shape.kind == 'cylinder':
            visual = self._call('createVisualShape', p.GEOM_CYLINDER, radius=shape.size[0] / 2,
                                length=shape.size[2], rgbaColor=colour)
        elif shape.kind == 'sphere':
            visual = self._call('createVisualShape', p.GEOM_SPHERE, radius=shape.size[0] / 2,
                                rgbaColor=colour)
        else:
            raise ValueError(f'unknown shape kind {shape.kind!r}')
        body = self._call('createMultiBody', baseMass=0.0, baseVisualShapeIndex=visual,
                          basePosition=list(shape.centre),
                          baseOrientation=p.getQuaternionFromEuler([0.0, 0.0, shape.yaw]))
        if not plain:
            self._call('changeVisualShape', body, -1,
                       textureUniqueId=self._texture(shape.material))
        self._body_labels[body] = CLASSES.index(shape.label)

    def _add_asset(self, asset: Asset) -> None:
        p = self.pybullet
        path = self.data_path / asset.path
        orientation = p.getQuaternionFromEuler(list(asset.euler))
        if asset.path.endswith('.sdf'):
            bodies = list(self._call('loadSDF', str(path), globalScaling=asset.scale))
            for body in bodies:
                self._call('resetBasePositionAndOrientation', body, list(asset.position),
                           orientation)
        else:
            bodies = [self._call('loadURDF', str(path), list(asset.position), orientation,
                                 globalScaling=asset.scale, useFixedBase=True)]
        if asset.rest_on_bounds:
            lowest = min(self._lowest_point(body) for body in bodies)
            for body in bodies:
                position, orientation = self._call('getBasePositionAndOrientation', body)
                self._call('resetBasePositionAndOrientation', body,
                           [position[0], position[1], position[2] + asset.position[2] - lowest],
                           orientation)
        for body in bodies:
            self._body_labels[body] = CLASSES.index(asset.label)

    def _lowest_point(self, body: int) -> float:
        lowest = self._call('getAABB', body, -1)[0][2]
        for link in range(self._call('getNumJoints', body)):
            lowest = min(lowest, self._call('getAABB', body, link)[0][2])
        return float(lowest)

    def render(self, pose: CameraPose) -> RenderedView:
        """Render the view from `pose`: RGB, z-depth in metres and class labels."""
        p, camera, light = self.pybullet, self.camera, self.layout.light
        _, _, rgba, buffer, segmentation = self._call(
            'getCameraImage', camera.width, camera.height, viewMatrix=pose.view_list(),
            projectionMatrix=self._projection, lightDirection=list(light.direction),
            lightColor=list(light.colour), lightDistance=2.0 * max(self.layout.width,
                                                                   self.layout.length),
            shadow=0, lightAmbientCoeff=light.ambient,
            lightDiffuseCoeff=light.diffuse, lightSpecularCoeff=light.specular,
            renderer=p.ER_TINY_RENDERER)
        shape = (camera.height, camera.width)
        rgb = np.ascontiguousarray(np.asarray(rgba, np.uint8).reshape(shape + (4,))[..., :3])
        depth = camera.linearize_depth(np.asarray(buffer, np.float32).reshape(shape))
        bodies = np.asarray(segmentation, np.int64).reshape(shape)
        labels = self._label_lookup[np.clip(bodies, -1, len(self._label_lookup) - 2)]
        return RenderedView(rgb=rgb, depth=depth, labels=labels)

    def close(self) -> None:
        if self.client is not None and self.client >= 0:
            self.pybullet.disconnect(physicsClientId=self.client)
        self.client = None

    def __enter__(self) -> Room:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
