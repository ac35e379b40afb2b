"""Procedural indoor rooms as plain data (numpy only): shell, furniture, objects, materials, light.

`generate_room(seed, scene)` draws one room from its own generator (`default_rng([seed, scene])`),
so scene k is the same whatever the number of scenes generated around it, and rooms can be built
in any order or in parallel. The result is a `RoomLayout`: boxes, cylinders and spheres with
materials, pybullet_data assets (tables, a warehouse shelf, robots, a duck, mugs, toys, random
objects), one light, the floor footprints the robot must avoid and the camera rig of the robot
that drives through it. `depth_estimation.sim.world` turns it into a pybullet scene.

Frame: x along the room's width, y along its length, z up; the floor is z = 0 and the room spans
[0, width] x [0, length] x [0, height].
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import Optional

import numpy as np

# Segmentation classes written with every frame (label = index; 255 = nothing / unknown).
CLASSES = ('floor', 'wall', 'ceiling', 'door', 'window', 'picture', 'table', 'chair', 'shelf',
           'cabinet', 'bed', 'sofa', 'decoration', 'object', 'robot')
Vector = tuple[float, float, float]


@dataclass(frozen=True)
class Material:
    """A surface: a texture family of `depth_estimation.sim.textures` ('plain' = no texture)."""

    kind: str
    colour: Vector  # RGB in [0, 1]
    second: Vector = (0.5, 0.5, 0.5)  # grout, mortar, second stripe colour
    seed: int = 0  # texture seed
    tile: float = 1.0  # metres per texture repeat


@dataclass(frozen=True)
class Shape:
    """A primitive: 'box' (size = full extents), 'cylinder' (size = diameter, diameter, height)
    or 'sphere' (size = diameter x 3), centred at `centre`, turned by `yaw` about z."""

    kind: str
    centre: Vector
    size: Vector
    material: Material
    label: str
    yaw: float = 0.0


@dataclass(frozen=True)
class Asset:
    """A model shipped in pybullet_data, placed with its lowest point at `position[2]`."""

    path: str  # relative to pybullet_data.getDataPath(); .urdf or .sdf
    position: Vector
    euler: Vector  # roll, pitch, yaw applied to the model
    scale: float
    label: str
    rest_on_bounds: bool = True  # False: position is the model origin (its own z offset is right)


@dataclass(frozen=True)
class Footprint:
    """A rectangle on the floor (centre, half extents, yaw) that the robot must not enter."""

    x: float
    y: float
    half_x: float
    half_y: float
    yaw: float = 0.0

    def corners(self) -> np.ndarray:
        """(4, 2) corners in the room frame."""
        cos_yaw, sin_yaw = math.cos(self.yaw), math.sin(self.yaw)
        local = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [self.half_x, self.half_y]
        rotation = np.array([[cos_yaw, -sin_yaw], [sin_yaw, cos_yaw]])
        return local @ rotation.T + [self.x, self.y]

    def overlaps(self, other: Footprint, margin: float = 0.0) -> bool:
        """Separating-axis test of the two rectangles grown by `margin`."""
        mine, theirs = self.grown(margin).corners(), other.grown(margin).corners()
        for polygon in (mine, theirs):
            for index in range(4):
                edge = polygon[(index + 1) % 4] - polygon[index]
                axis = np.array([-edge[1], edge[0]])
                a, b = mine @ axis, theirs @ axis
                if a.max() < b.min() or b.max() < a.min():
                    return False
        return True

    def grown(self, margin: float) -> Footprint:
        return Footprint(self.x, self.y, self.half_x + margin, self.half_y + margin, self.yaw)


@dataclass(frozen=True)
class Light:
    """pybullet's single directional light (TinyRenderer arguments of getCameraImage).

    No shadows: under a closed ceiling TinyRenderer's shadow map changed nothing visible in our
    rooms and cost 40 % more render time.
    """

    direction: Vector  # towards the light
    colour: Vector
    ambient: float
    diffuse: float
    specular: float


@dataclass
class RoomLayout:
    """Everything needed to build and drive through one room."""

    seed: int
    scene: int
    width: float
    length: float
    height: float
    light: Light
    camera_height: float  # metres above the floor
    camera_pitch: float  # radians, negative looks down
    shapes: list[Shape] = field(default_factory=list)
    assets: list[Asset] = field(default_factory=list)
    footprints: list[Footprint] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f'scene_{self.scene:04d}'


# --- palettes ------------------------------------------------------------------------------

WALL_COLOURS = ((0.92, 0.91, 0.87), (0.95, 0.93, 0.85), (0.85, 0.88, 0.90), (0.80, 0.84, 0.78),
                (0.93, 0.85, 0.78), (0.75, 0.78, 0.82), (0.88, 0.80, 0.70), (0.70, 0.75, 0.70),
                (0.96, 0.96, 0.96), (0.60, 0.66, 0.72))
WOOD_COLOURS = ((0.62, 0.45, 0.30), (0.75, 0.58, 0.40), (0.45, 0.30, 0.20), (0.85, 0.72, 0.55),
                (0.55, 0.40, 0.32), (0.35, 0.25, 0.18))
FABRIC_COLOURS = ((0.35, 0.40, 0.55), (0.55, 0.30, 0.28), (0.40, 0.50, 0.38), (0.60, 0.58, 0.55),
                  (0.25, 0.25, 0.28), (0.75, 0.68, 0.55), (0.50, 0.35, 0.50))
SOLID_COLOURS = ((0.95, 0.95, 0.95), (0.15, 0.15, 0.17), (0.60, 0.62, 0.65), (0.80, 0.20, 0.15),
                 (0.20, 0.40, 0.70), (0.90, 0.75, 0.20), (0.30, 0.55, 0.35))
TILE_COLOURS = ((0.85, 0.85, 0.82), (0.70, 0.72, 0.75), (0.55, 0.50, 0.45), (0.90, 0.88, 0.80),
                (0.35, 0.38, 0.42))

# pybullet_data small objects: path, nominal footprint half size (m) at scale 1, scale range,
# roll/pitch that stands the model up.
SMALL_ASSETS = (
    ('duck_vhacd.urdf', 0.05, (1.0, 2.5), (math.pi / 2, 0.0)),
    ('objects/mug.urdf', 0.06, (1.0, 1.6), (0.0, 0.0)),
    ('lego/lego.urdf', 0.02, (2.0, 5.0), (0.0, 0.0)),
    ('jenga/jenga.urdf', 0.08, (1.0, 2.0), (0.0, 0.0)),
    ('tray/traybox.urdf', 0.30, (0.4, 0.7), (0.0, 0.0)),
    ('cube_small.urdf', 0.025, (1.5, 4.0), (0.0, 0.0)),
    ('sphere_small.urdf', 0.03, (1.0, 3.0), (0.0, 0.0)),
    ('teddy_vhacd.urdf', 0.06, (1.5, 3.0), (math.pi / 2, 0.0)),
)
RANDOM_OBJECTS = 1000  # pybullet_data/random_urdfs/000 ... 999


# --- generator -----------------------------------------------------------------------------

class _Builder:
    """Collects shapes, assets and footprints for one room while drawing from one generator."""

    def __init__(self, rng: np.random.Generator, layout: RoomLayout) -> None:
        self.rng = rng
        self.layout = layout

    # random helpers
    def uniform(self, low: float, high: float) -> float:
        return float(self.rng.uniform(low, high))

    def pick(self, options: tuple) -> object:
        return options[int(self.rng.integers(len(options)))]

    def jitter(self, colour: Vector, amount: float = 0.06) -> Vector:
        return tuple(float(np.clip(c + self.rng.uniform(-amount, amount), 0.0, 1.0))
                     for c in colour)

    def material(self, kind: str, colour: Vector, second: Vector = (0.5, 0.5, 0.5),
                 tile: float = 1.0) -> Material:
        return Material(kind, self.jitter(colour), self.jitter(second),
                        int(self.rng.integers(2**31)), tile)

    def plain(self, colour: Vector) -> Material:
        """A flat colour without texture, for small parts (books, handles, screens)."""
        return Material('plain', self.jitter(colour, 0.03))

    def wood(self) -> Material:
        return self.material('wood', self.pick(WOOD_COLOURS), tile=self.uniform(0.6, 1.2))

    def fabric(self) -> Material:
        return self.material('fabric', self.pick(FABRIC_COLOURS), tile=self.uniform(0.3, 0.6))

    def solid(self) -> Material:
        return self.material('paint', self.pick(SOLID_COLOURS), tile=1.0)

    # geometry helpers
    def box(self, centre: Vector, size: Vector, material: Material, label: str,
            yaw: float = 0.0) -> None:
        self.layout.shapes.append(Shape('box', centre, size, material, label, yaw))

    def local_box(self, frame: tuple[float, float, float], offset: Vector, size: Vector,
                  material: Material, label: str) -> None:
        """A box given in a furniture frame (x, y, yaw): offset is along its own axes."""
        x, y, yaw = frame
        cos_yaw, sin_yaw = math.cos(yaw), math.sin(yaw)
        centre = (x + cos_yaw * offset[0] - sin_yaw * offset[1],
                  y + sin_yaw * offset[0] + cos_yaw * offset[1], offset[2])
        self.box(centre, size, material, label, yaw)

    def free(self, footprint: Footprint, margin: float = 0.05) -> bool:
        """Inside the room (with margin) and clear of every footprint placed so far."""
        corners = footprint.corners()
        if (corners.min(axis=0) < margin - 1e-9).any() or \
                corners[:, 0].max() > self.layout.width - margin + 1e-9 or \
                corners[:, 1].max() > self.layout.length - margin + 1e-9:
            return False
        return not any(footprint.overlaps(other, margin) for other in self.layout.footprints)

    def against_wall(self, width: float, depth: float,
                     tries: int = 30) -> Optional[tuple[float, float, float]]:
        """A free frame (x, y, yaw) for furniture whose back touches a wall; its local +y faces
        the room. None when nothing fits."""
        layout = self.layout
        for _ in range(tries):
            wall = int(self.rng.integers(4))
            along = layout.width if wall < 2 else layout.length
            # The furniture's local +y points into the room.
            yaw = (0.0, math.pi, -math.pi / 2, math.pi / 2)[wall]
            if width + 0.1 > along:
                continue
            t = self.uniform(width / 2 + 0.05, along - width / 2 - 0.05)
            inset = depth / 2 + 0.03
            if wall == 0:
                x, y = t, inset
            elif wall == 1:
                x, y = t, layout.length - inset
            elif wall == 2:
                x, y = inset, t
            else:
                x, y = layout.width - inset, t
            footprint = Footprint(x, y, width / 2, depth / 2, yaw)
            if self.free(footprint, margin=0.02):
                layout.footprints.append(footprint)
                return x, y, yaw
        return None

    def in_room(self, half_x: float, half_y: float, yaw: float,
                tries: int = 30) -> Optional[tuple[float, float, float]]:
        """A free frame (x, y, yaw) away from the walls, for tables, rugs and floor clutter."""
        layout = self.layout
        for _ in range(tries):
            x = self.uniform(0.6 + half_x, layout.width - 0.6 - half_x) \
                if layout.width > 1.2 + 2 * half_x else layout.width / 2
            y = self.uniform(0.6 + half_y, layout.length - 0.6 - half_y) \
                if layout.length > 1.2 + 2 * half_y else layout.length / 2
            footprint = Footprint(x, y, half_x, half_y, yaw)
            if self.free(footprint, margin=0.15):
                layout.footprints.append(footprint)
                return x, y, yaw
        return None

    # room shell
    def shell(self) -> None:
        width, length, height = self.layout.width, self.layout.length, self.layout.height
        floor_kind = self.pick(('wood', 'wood', 'wood', 'tiles', 'tiles', 'carpet', 'checker',
                                'paint'))
        if floor_kind == 'wood':
            floor = self.material('wood', self.pick(WOOD_COLOURS), tile=self.uniform(0.8, 2.0))
        elif floor_kind in ('tiles', 'checker'):
            floor = self.material(floor_kind, self.pick(TILE_COLOURS), self.pick(TILE_COLOURS),
                                  tile=self.uniform(0.8, 2.4))
        else:
            floor = self.material(floor_kind, self.pick(FABRIC_COLOURS + TILE_COLOURS),
                                  tile=self.uniform(1.0, 2.0))
        self.box((width / 2, length / 2, -0.05), (width + 0.4, length + 0.4, 0.1), floor, 'floor')
        ceiling = self.material('paint', (0.95, 0.95, 0.94), tile=2.0)
        self.box((width / 2, length / 2, height + 0.05), (width + 0.4, length + 0.4, 0.1),
                 ceiling, 'ceiling')
        wall_kind = self.pick(('paint', 'paint', 'paint', 'stripes', 'brick', 'tiles'))
        base_colour = self.pick(WALL_COLOURS)
        wall = self.material(wall_kind, base_colour, self.pick(WALL_COLOURS),
                             tile=self.uniform(0.8, 1.6))
        accent = int(self.rng.integers(4)) if self.rng.random() < 0.35 else -1
        skirting = self.material('paint', self.pick(((0.95, 0.95, 0.95),) + WOOD_COLOURS))
        walls = (((width / 2, -0.05), (width + 0.2, 0.1)),
                 ((width / 2, length + 0.05), (width + 0.2, 0.1)),
                 ((-0.05, length / 2), (0.1, length + 0.2)),
                 ((width + 0.05, length / 2), (0.1, length + 0.2)))
        for index, ((x, y), (size_x, size_y)) in enumerate(walls):
            material = wall
            if index == accent:
                material = self.material(self.pick(('paint', 'stripes', 'brick', 'wood')),
                                         self.pick(WALL_COLOURS + WOOD_COLOURS),
                                         self.pick(WALL_COLOURS), tile=self.uniform(0.8, 1.6))
            self.box((x, y, height / 2), (size_x, size_y, height), material, 'wall')
        skirting_boards = (((width / 2, 0.0075), (width, 0.015)),
                           ((width / 2, length - 0.0075), (width, 0.015)),
                           ((0.0075, length / 2), (0.015, length)),
                           ((width - 0.0075, length / 2), (0.015, length)))
        for (x, y), (size_x, size_y) in skirting_boards:  # 8 cm high, 1.5 cm proud
            self.box((x, y, 0.04), (size_x, size_y, 0.08), skirting, 'wall')

    def wall_items(self) -> None:
        """Doors, windows and pictures: thin boxes on the walls (not obstacles)."""
        layout = self.layout
        for kind in ['door'] * int(self.rng.integers(1, 3)) + \
                ['window'] * int(self.rng.integers(0, 3)) + \
                ['picture'] * int(self.rng.integers(0, 4)):
            wall = int(self.rng.integers(4))
            along = layout.width if wall < 2 else layout.length
            if kind == 'door':
                item_width, item_height, bottom = 0.9, 2.05, 0.0
                material = self.pick((self.wood(), self.solid()))
            elif kind == 'window':
                item_width, item_height = self.uniform(0.8, 1.8), self.uniform(1.0, 1.4)
                bottom = min(self.uniform(0.8, 1.0), layout.height - item_height - 0.2)
                material = self.material('paint', (0.80, 0.90, 0.98), tile=2.0)
            else:
                item_width, item_height = self.uniform(0.3, 1.1), self.uniform(0.3, 0.8)
                bottom = self.uniform(1.1, max(1.2, layout.height - item_height - 0.3))
                material = self.material('picture', (1.0, 1.0, 1.0),
                                         tile=max(item_width, item_height))
            if item_width + 0.4 > along:
                continue
            t = self.uniform(item_width / 2 + 0.2, along - item_width / 2 - 0.2)
            proud = 0.03
            centre_z = bottom + item_height / 2
            frame_material = self.plain(self.pick(((0.95, 0.95, 0.95),) + WOOD_COLOURS
                                                  + SOLID_COLOURS))
            if wall < 2:
                y = proud / 2 if wall == 0 else layout.length - proud / 2
                size = (item_width, proud, item_height)
                frame_size = (item_width + 0.1, proud / 2, item_height + 0.1)
                frame_centre = (t, proud / 4 if wall == 0 else layout.length - proud / 4,
                                centre_z)
                centre = (t, y, centre_z)
            else:
                x = proud / 2 if wall == 2 else layout.width - proud / 2
                size = (proud, item_width, item_height)
                frame_size = (proud / 2, item_width + 0.1, item_height + 0.1)
                frame_centre = (proud / 4 if wall == 2 else layout.width - proud / 4, t,
                                centre_z)
                centre = (x, t, centre_z)
            if kind != 'door':
                self.box(frame_centre, frame_size, frame_material, kind)
            self.box(centre, size, material, kind)

    # furniture along the walls
    def bookshelf(self) -> None:
        width, depth, height = self.uniform(0.6, 1.6), self.uniform(0.28, 0.4), \
            self.uniform(1.0, 2.1)
        frame = self.against_wall(width, depth)
        if frame is None:
            return
        material = self.pick((self.wood(), self.solid()))
        board = 0.025
        for side in (-1, 1):
            self.local_box(frame, (side * (width / 2 - board / 2), 0.0, height / 2),
                           (board, depth, height), material, 'shelf')
        self.local_box(frame, (0.0, -depth / 2 + 0.005, height / 2), (width, 0.01, height),
                       material, 'shelf')
        levels = max(2, int(height / 0.38))
        for level in range(levels + 1):
            z = board / 2 + level * (height - board) / levels
            self.local_box(frame, (0.0, 0.0, z), (width - 2 * board, depth, board), material,
                           'shelf')
            if level == levels or self.rng.random() < 0.2:
                continue
            x = -width / 2 + board + 0.01
            while True:  # a row of books of random thickness, height and colour
                thickness = self.uniform(0.02, 0.06)
                book_height = self.uniform(0.16, min(0.32, (height - board) / levels - 0.04))
                if x + thickness > width / 2 - board - 0.01:
                    break
                if self.rng.random() < 0.85:
                    colour = self.plain(self.pick(SOLID_COLOURS + FABRIC_COLOURS))
                    self.local_box(frame, (x + thickness / 2, self.uniform(-0.03, 0.02),
                                           z + board / 2 + book_height / 2),
                                   (thickness, depth * 0.75, book_height), colour, 'object')
                x += thickness + 0.002

    def cabinet(self) -> None:
        width, depth = self.uniform(0.5, 1.8), self.uniform(0.4, 0.6)
        height = self.pick((self.uniform(0.7, 1.0), self.uniform(1.8, 2.2)))
        frame = self.against_wall(width, depth)
        if frame is None:
            return
        material = self.pick((self.wood(), self.solid(), self.wood()))
        self.local_box(frame, (0.0, 0.0, height / 2 + 0.05), (width, depth, height - 0.1),
                       material, 'cabinet')
        self.local_box(frame, (0.0, -0.02, 0.025), (width - 0.04, depth - 0.04, 0.05),
                       self.plain((0.1, 0.1, 0.1)), 'cabinet')
        doors = max(1, int(round(width / 0.5)))
        handle = self.plain((0.75, 0.75, 0.78))
        for door in range(1, doors):  # gaps between doors
            self.local_box(frame, (-width / 2 + door * width / doors, depth / 2,
                                   height / 2 + 0.05),
                           (0.006, 0.004, height - 0.14), self.plain((0.1, 0.1, 0.1)),
                           'cabinet')
        for door in range(doors):
            x = -width / 2 + (door + 0.5) * width / doors + (0.15 * width / doors)
            self.local_box(frame, (x if doors > 1 else width / 2 - 0.08, depth / 2 + 0.012,
                                   min(height * 0.55, 1.1)), (0.015, 0.025, 0.12), handle,
                           'cabinet')
        if height < 1.2 and self.rng.random() < 0.6:
            self.objects_on(frame, width, depth, height, count=int(self.rng.integers(1, 4)))

    def sofa(self) -> None:
        width, depth = self.uniform(1.4, 2.4), self.uniform(0.8, 1.0)
        frame = self.against_wall(width, depth)
        if frame is None:
            return
        cloth = self.fabric()
        self.local_box(frame, (0.0, 0.05, 0.22), (width - 0.3, depth - 0.1, 0.26), cloth, 'sofa')
        self.local_box(frame, (0.0, -depth / 2 + 0.1, 0.45), (width, 0.2, 0.7), cloth, 'sofa')
        for side in (-1, 1):
            self.local_box(frame, (side * (width / 2 - 0.08), 0.0, 0.3), (0.16, depth, 0.5),
                           cloth, 'sofa')
        cushions = max(1, int(round((width - 0.3) / 0.7)))
        cushion_width = (width - 0.3) / cushions
        for index in range(cushions):
            self.local_box(frame, (-width / 2 + 0.15 + (index + 0.5) * cushion_width, 0.08, 0.42),
                           (cushion_width - 0.02, depth - 0.3, 0.12), cloth, 'sofa')

    def bed(self) -> None:
        width, length = self.pick(((0.9, 2.0), (1.4, 2.0), (1.6, 2.1), (1.8, 2.1)))
        frame = self.against_wall(width + 0.1, length + 0.05)
        if frame is None:
            return
        wood = self.wood()
        self.local_box(frame, (0.0, 0.0, 0.17), (width + 0.1, length, 0.26), wood, 'bed')
        self.local_box(frame, (0.0, 0.02, 0.38), (width, length - 0.08, 0.18),
                       self.material('fabric', (0.92, 0.92, 0.90), tile=0.5), 'bed')
        self.local_box(frame, (0.0, -length / 2 + 0.01, 0.5), (width + 0.1, 0.05, 1.0), wood,
                       'bed')
        cover = self.fabric()
        self.local_box(frame, (0.0, 0.25, 0.48), (width + 0.02, length * 0.6, 0.04), cover,
                       'bed')
        pillows = 1 if width < 1.2 else 2
        for index in range(pillows):
            x = 0.0 if pillows == 1 else (index - 0.5) * width / 2
            self.local_box(frame, (x, -length / 2 + 0.3, 0.52),
                           (min(0.6, width / pillows - 0.1), 0.35, 0.12),
                           self.material('fabric', (0.95, 0.95, 0.95), tile=0.4), 'bed')

    def desk(self) -> None:
        width, depth, height = self.uniform(1.0, 1.6), self.uniform(0.55, 0.75), 0.74
        frame = self.against_wall(width, depth + 0.45)
        if frame is None:
            return
        x, y, yaw = frame
        material = self.pick((self.wood(), self.solid()))
        desk_frame = (x - math.sin(yaw) * -0.225, y + math.cos(yaw) * -0.225, yaw)
        self.local_box(desk_frame, (0.0, 0.0, height - 0.015), (width, depth, 0.03), material,
                       'table')
        for side in (-1, 1):
            self.local_box(desk_frame, (side * (width / 2 - 0.02), 0.0, (height - 0.03) / 2),
                           (0.04, depth, height - 0.03), material, 'table')
        if self.rng.random() < 0.7:  # a monitor
            self.local_box(desk_frame, (0.0, -depth / 4, height + 0.3), (0.55, 0.03, 0.33),
                           self.plain((0.08, 0.08, 0.09)), 'object')
            self.local_box(desk_frame, (0.0, -depth / 4, height + 0.07), (0.05, 0.05, 0.14),
                           self.plain((0.2, 0.2, 0.2)), 'object')
        self.objects_on(desk_frame, width * 0.8, depth * 0.4, height, count=int(
            self.rng.integers(0, 3)), offset_y=depth * 0.25)
        chair_frame = (x - math.sin(yaw) * 0.25, y + math.cos(yaw) * 0.25, yaw + math.pi)
        self.chair_at(chair_frame, register=False)

    def tv_stand(self) -> None:
        width, depth = self.uniform(1.0, 1.8), 0.42
        frame = self.against_wall(width, depth)
        if frame is None:
            return
        material = self.pick((self.wood(), self.solid()))
        self.local_box(frame, (0.0, 0.0, 0.25), (width, depth, 0.5), material, 'cabinet')
        screen = self.uniform(0.8, min(1.4, width))
        black = self.plain((0.05, 0.05, 0.06))
        self.local_box(frame, (0.0, -0.05, 0.5 + 0.05 + screen * 0.28), (screen, 0.05,
                                                                         screen * 0.56),
                       black, 'object')
        self.local_box(frame, (0.0, -0.05, 0.525), (0.3, 0.2, 0.05), black, 'object')

    def plant(self) -> None:
        radius = self.uniform(0.12, 0.25)
        frame = self.against_wall(2 * radius + 0.1, 2 * radius + 0.1)
        if frame is None:
            return
        x, y, _ = frame
        pot_height = self.uniform(0.25, 0.5)
        self.layout.shapes.append(Shape('cylinder', (x, y, pot_height / 2),
                                        (2 * radius, 2 * radius, pot_height),
                                        self.plain(self.pick(SOLID_COLOURS)),
                                        'decoration'))
        green = self.material('carpet', (0.25, 0.45, 0.22), tile=0.3)
        for _ in range(int(self.rng.integers(3, 7))):
            size = self.uniform(0.5, 1.0) * radius * 2
            centre = (x + self.uniform(-radius, radius) * 0.6, y + self.uniform(-radius, radius)
                      * 0.6, pot_height + self.uniform(0.1, 0.7))
            self.layout.shapes.append(Shape('sphere', centre, (size, size, size), green,
                                            'decoration'))

    def floor_lamp(self) -> None:
        frame = self.against_wall(0.4, 0.4)
        if frame is None:
            return
        x, y, _ = frame
        height = self.uniform(1.3, 1.8)
        metal = self.plain(self.pick(SOLID_COLOURS[:3]))
        self.layout.shapes.append(Shape('cylinder', (x, y, 0.015), (0.32, 0.32, 0.03), metal,
                                        'decoration'))
        self.layout.shapes.append(Shape('cylinder', (x, y, height / 2), (0.03, 0.03, height),
                                        metal, 'decoration'))
        self.layout.shapes.append(Shape('cylinder', (x, y, height), (0.38, 0.38, 0.3),
                                        self.material('fabric', (0.95, 0.92, 0.85), tile=0.3),
                                        'decoration'))

    def kiva_shelf(self) -> None:
        frame = self.against_wall(0.95, 0.95)
        if frame is None:
            return
        x, y, yaw = frame
        # The model's origin is 1 m from its centre along its +y; put its centre at the frame.
        self.layout.assets.append(Asset('kiva_shelf/model.sdf',
                                        (x + math.sin(yaw), y - math.cos(yaw), 0.0),
                                        (0.0, 0.0, yaw), 1.0, 'shelf', rest_on_bounds=False))

    # furniture in the room
    def chair_at(self, frame: tuple[float, float, float], register: bool = True) -> None:
        """A chair whose front faces the frame's +y (the sitter looks along +y)."""
        if register:
            footprint = Footprint(frame[0], frame[1], 0.24, 0.24, frame[2])
            if not self.free(footprint, margin=0.03):
                return
            self.layout.footprints.append(footprint)
        material = self.pick((self.wood(), self.solid()))
        seat = 0.45
        self.local_box(frame, (0.0, 0.0, seat - 0.02), (0.44, 0.44, 0.04), material, 'chair')
        if self.rng.random() < 0.5:
            self.local_box(frame, (0.0, 0.0, seat + 0.01), (0.42, 0.42, 0.03), self.fabric(),
                           'chair')
        for sx in (-1, 1):
            for sy in (-1, 1):
                self.local_box(frame, (sx * 0.19, sy * 0.19, (seat - 0.04) / 2),
                               (0.035, 0.035, seat - 0.04), material, 'chair')
        back = self.uniform(0.35, 0.5)
        self.local_box(frame, (0.0, -0.2, seat + back / 2), (0.44, 0.03, back), material,
                       'chair')

    def dining_table(self) -> None:
        use_asset = self.rng.random() < 0.5
        if use_asset:
            scale = self.uniform(0.8, 1.15)
            half_x, half_y, height = 0.75 * scale, 0.5 * scale, 0.625 * scale
        else:
            half_x, half_y = self.uniform(0.4, 0.9), self.uniform(0.4, 0.55)
            height = self.uniform(0.72, 0.76)
        yaw = self.pick((0.0, math.pi / 2)) + self.uniform(-0.1, 0.1)
        frame = self.in_room(half_x, half_y, yaw)
        if frame is None:
            return
        x, y, _ = frame
        if use_asset:
            self.layout.assets.append(Asset('table/table.urdf', (x, y, 0.0), (0.0, 0.0, yaw),
                                            scale, 'table', rest_on_bounds=False))
        else:
            material = self.pick((self.wood(), self.solid(), self.wood()))
            self.local_box(frame, (0.0, 0.0, height - 0.02), (2 * half_x, 2 * half_y, 0.04),
                           material, 'table')
            for sx in (-1, 1):
                for sy in (-1, 1):
                    self.local_box(frame, (sx * (half_x - 0.06), sy * (half_y - 0.06),
                                           (height - 0.04) / 2), (0.05, 0.05, height - 0.04),
                                   material, 'table')
        self.objects_on(frame, 2 * half_x * 0.8, 2 * half_y * 0.8, height,
                        count=int(self.rng.integers(0, 5)))
        for side in (-1, 1):  # chairs on the long sides, facing the table
            for slot in ((0.0,) if half_x < 0.6 else (-0.45, 0.45)):
                if self.rng.random() < 0.7:
                    offset = (slot, side * (half_y + 0.33))  # pulled out, clear of the top
                    cos_yaw, sin_yaw = math.cos(yaw), math.sin(yaw)
                    chair = (x + cos_yaw * offset[0] - sin_yaw * offset[1],
                             y + sin_yaw * offset[0] + cos_yaw * offset[1],
                             yaw + (0.0 if side < 0 else math.pi) + self.uniform(-0.2, 0.2))
                    self.chair_at(chair)

    def coffee_table(self) -> None:
        if self.rng.random() < 0.5:
            frame = self.in_room(0.3, 0.3, self.uniform(0, math.pi))
            if frame is None:
                return
            self.layout.assets.append(Asset('table_square/table_square.urdf',
                                            (frame[0], frame[1], 0.0), (0.0, 0.0, frame[2]), 1.0,
                                            'table', rest_on_bounds=False))
            self.objects_on(frame, 0.45, 0.45, 0.64, count=int(self.rng.integers(0, 3)))
            return
        half_x, half_y = self.uniform(0.35, 0.6), self.uniform(0.25, 0.4)
        frame = self.in_room(half_x, half_y, self.uniform(0, math.pi))
        if frame is None:
            return
        material = self.pick((self.wood(), self.solid()))
        height = self.uniform(0.35, 0.45)
        self.local_box(frame, (0.0, 0.0, height - 0.025), (2 * half_x, 2 * half_y, 0.05),
                       material, 'table')
        self.local_box(frame, (0.0, 0.0, (height - 0.05) / 2),
                       (2 * half_x - 0.1, 2 * half_y - 0.1, height - 0.05), material, 'table')
        self.objects_on(frame, 2 * half_x * 0.8, 2 * half_y * 0.8, height,
                        count=int(self.rng.integers(0, 3)))

    def rug(self) -> None:
        half_x, half_y = self.uniform(0.6, 1.3), self.uniform(0.5, 1.0)
        layout = self.layout
        if 2 * half_x + 1.0 > layout.width or 2 * half_y + 1.0 > layout.length:
            return
        x = self.uniform(0.5 + half_x, layout.width - 0.5 - half_x)
        y = self.uniform(0.5 + half_y, layout.length - 0.5 - half_y)
        material = self.material(self.pick(('carpet', 'checker', 'stripes')),
                                 self.pick(FABRIC_COLOURS),
                                 self.pick(FABRIC_COLOURS + TILE_COLOURS),
                                 tile=self.uniform(0.5, 1.5))
        self.box((x, y, 0.005), (2 * half_x, 2 * half_y, 0.01), material, 'decoration',
                 yaw=self.uniform(-0.2, 0.2))

    def boxes(self) -> None:
        size = self.uniform(0.3, 0.6)
        frame = self.in_room(size / 2, size / 2, self.uniform(0, math.pi / 2))
        if frame is None:
            return
        cardboard = self.material('carpet', (0.66, 0.50, 0.33), tile=0.6)
        z = 0.0
        for _ in range(int(self.rng.integers(1, 4))):
            height = self.uniform(0.2, size)
            self.box((frame[0] + self.uniform(-0.03, 0.03), frame[1] + self.uniform(-0.03, 0.03),
                      z + height / 2), (size, size * self.uniform(0.7, 1.0), height), cardboard,
                     'object', yaw=frame[2] + self.uniform(-0.2, 0.2))
            z += height
            size *= self.uniform(0.7, 0.95)

    def robot(self) -> None:
        path, half, z = self.pick((('r2d2.urdf', 0.3, 0.47), ('husky/husky.urdf', 0.5, 0.0),
                                   ('racecar/racecar.urdf', 0.25, 0.0)))
        scale = self.uniform(0.6, 1.0) if path == 'r2d2.urdf' else 1.0
        frame = self.in_room(half * scale, half * scale, 0.0)
        if frame is None:
            return
        self.layout.assets.append(Asset(path, (frame[0], frame[1], z * scale),
                                        (0.0, 0.0, self.uniform(-math.pi, math.pi)), scale,
                                        'robot', rest_on_bounds=False))

    def floor_object(self) -> None:
        """A ball, a big random object or a toy on the floor."""
        if self.rng.random() < 0.4:
            radius = self.uniform(0.1, 0.2)
            frame = self.in_room(radius, radius, 0.0)
            if frame is not None:
                self.layout.assets.append(Asset('soccerball.urdf', (frame[0], frame[1], 0.0),
                                                (0.0, 0.0, self.uniform(0, 6.28)), 2 * radius,
                                                'object'))
            return
        scale = self.uniform(3.0, 6.0)
        frame = self.in_room(0.06 * scale, 0.06 * scale, 0.0)
        if frame is not None:
            self.layout.assets.append(self.random_object((frame[0], frame[1], 0.0), scale))

    def random_object(self, position: Vector, scale: float) -> Asset:
        index = int(self.rng.integers(RANDOM_OBJECTS))
        return Asset(f'random_urdfs/{index:03d}/{index:03d}.urdf', position,
                     (0.0, 0.0, self.uniform(-math.pi, math.pi)), scale, 'object')

    def objects_on(self, frame: tuple[float, float, float], width: float, depth: float,
                   height: float, count: int, offset_y: float = 0.0) -> None:
        """Small pybullet_data objects scattered on a surface of (width, depth) at `height`."""
        x, y, yaw = frame
        cos_yaw, sin_yaw = math.cos(yaw), math.sin(yaw)
        for _ in range(count):
            u, v = self.uniform(-width / 2, width / 2), self.uniform(-depth / 2, depth / 2) \
                + offset_y
            position = (x + cos_yaw * u - sin_yaw * v, y + sin_yaw * u + cos_yaw * v, height)
            if self.rng.random() < 0.3:
                self.layout.assets.append(self.random_object(position, self.uniform(1.0, 2.5)))
                continue
            path, _, (low, high), (roll, pitch) = self.pick(SMALL_ASSETS)
            self.layout.assets.append(Asset(path, position, (roll, pitch, self.uniform(-3.1, 3.1)),
                                            self.uniform(low, high), 'object'))

    def light(self) -> Light:
        azimuth = self.uniform(-math.pi, math.pi)
        elevation = self.uniform(math.radians(35), math.radians(80))
        direction = (math.cos(azimuth) * math.cos(elevation),
                     math.sin(azimuth) * math.cos(elevation), math.sin(elevation))
        warmth = self.uniform(-0.08, 0.08)
        return Light(direction=direction, colour=(1.0, 1.0 - abs(warmth) / 2, 1.0 - warmth),
                     ambient=self.uniform(0.45, 0.7), diffuse=self.uniform(0.35, 0.6),
                     specular=self.uniform(0.0, 0.15))


def generate_room(seed: int, scene: int) -> RoomLayout:
    """Room `scene` of the family `seed`: the same arguments always give the same room."""
    if seed < 0 or scene < 0:
        raise ValueError(f'seed and scene must be non-negative, got {seed}, {scene}')
    rng = np.random.default_rng([seed, scene])
    while True:  # rooms whose farthest corner stays inside the 10 m the models are trained for
        width, length = float(rng.uniform(3.0, 7.5)), float(rng.uniform(3.0, 7.5))
        height = float(rng.uniform(2.4, 3.0))
        if math.sqrt(width ** 2 + length ** 2 + height ** 2) < 9.5:
            break
    low_robot = rng.random() < 0.5
    camera_height = float(rng.uniform(0.3, 0.5) if low_robot else rng.uniform(0.5, 1.5))
    camera_pitch = float(np.radians(rng.uniform(-15.0, 5.0)))
    layout = RoomLayout(seed, scene, width, length, height, light=Light((0, 0, 1), (1, 1, 1),
                                                                        0.6, 0.4, 0.0),
                        camera_height=camera_height, camera_pitch=camera_pitch)
    builder = _Builder(rng, layout)
    layout.light = builder.light()
    builder.shell()
    builder.wall_items()
    area = width * length
    wall_furniture = (builder.bookshelf, builder.cabinet, builder.sofa, builder.bed,
                      builder.desk, builder.tv_stand, builder.plant, builder.floor_lamp,
                      builder.kiva_shelf, builder.cabinet, builder.bookshelf, builder.plant)
    for _ in range(int(rng.integers(2, 4 + int(area // 8)))):
        builder.pick(wall_furniture)()
    if rng.random() < 0.5:
        builder.rug()
    middle = (builder.dining_table, builder.coffee_table, builder.boxes, builder.floor_object,
              builder.floor_object, builder.robot)
    for _ in range(int(rng.integers(1, 2 + int(area // 10)))):
        builder.pick(middle)()
    return layout
