"""The simulated camera: deterministic rendering, exact z-depth, intrinsics that match the render,
robot paths that keep clear of obstacles, and datasets that read back through FolderDataset."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_estimation.sim.camera import CameraModel, CameraPose, project
from depth_estimation.sim.layout import (CLASSES, generate_room, Light, Material, RoomLayout,
                                         Shape)

pytest.importorskip('pybullet', reason='the simulator needs pybullet (requirements.txt)')

from depth_estimation.sim.world import Room  # noqa: E402  (after the pybullet check)

SMALL = CameraModel(width=160, height=120)
GREY = Material('paint', (0.6, 0.6, 0.6), seed=1)
RED = Material('plain', (0.8, 0.1, 0.1))


def bare_room(*shapes: Shape) -> RoomLayout:
    """A layout holding only the given shapes (no walls, floor or furniture)."""
    return RoomLayout(seed=0, scene=0, width=10.0, length=10.0, height=3.0,
                      light=Light((0.3, 0.2, 1.0), (1.0, 1.0, 1.0), 0.6, 0.4, 0.0),
                      camera_height=1.0, camera_pitch=0.0, shapes=list(shapes))


def test_same_seed_renders_identical_frames_and_another_seed_does_not() -> None:
    from depth_estimation.sim.scenes import scene_frames

    def render(seed: int) -> list:
        return list(scene_frames(seed, 2, count=2, interval=0.5, camera=SMALL))

    first, again, other = render(5), render(5), render(6)
    for a, b in zip(first, again):
        assert a.pose == b.pose
        np.testing.assert_array_equal(a.rgb, b.rgb)
        np.testing.assert_array_equal(a.depth, b.depth)  # NaN == NaN here
        np.testing.assert_array_equal(a.labels, b.labels)
    assert first[1].pose != first[0].pose, 'the robot did not move between frames'
    assert not np.array_equal(first[0].rgb, other[0].rgb)


@pytest.mark.parametrize('yaw', [0.0, 2.0])
def test_fronto_parallel_wall_at_two_metres_has_z_two_in_every_pixel(yaw: float) -> None:
    """REP 118 depth is z along the optical axis: the same 2.0 m at the centre and the corners
    (the range along a corner ray of this camera is about 2.4 m)."""
    camera_position = np.array([1.0, -0.5, 1.2])
    forward = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    wall_centre = camera_position + (2.0 + 0.05) * forward  # front face at exactly 2.0 m
    wall = Shape('box', tuple(wall_centre), (0.1, 20.0, 20.0), GREY, 'wall', yaw=yaw)
    with Room(bare_room(wall), SMALL) as room:
        view = room.render(CameraPose(*camera_position, yaw=yaw))
    assert np.isfinite(view.depth).all()
    np.testing.assert_allclose(view.depth, 2.0, atol=1e-3)
    for row, column in ((0, 0), (0, -1), (-1, 0), (-1, -1), (60, 80)):
        assert abs(view.depth[row, column] - 2.0) < 1e-3
    intrinsics = SMALL.intrinsics()
    corner_range = 2.0 * math.hypot(1.0, intrinsics.cx / intrinsics.fx,
                                    intrinsics.cy / intrinsics.fy)
    assert corner_range > 2.3  # what a range-instead-of-z bug would have written there
    assert (view.labels == CLASSES.index('wall')).all()


def test_known_points_land_on_the_predicted_pixels() -> None:
    """A thin panel seen from a turned and tilted camera covers exactly the pixels whose centres
    lie inside the projection of its corners through our intrinsics and pose."""
    camera = CameraModel(width=200, height=150, vertical_fov_deg=50.0)
    pose = CameraPose(0.3, -0.2, 1.1, yaw=0.35, pitch=-0.12)
    intrinsics = camera.intrinsics()
    forward = pose.optical_axes()[2]
    centre = pose.position + 2.5 * forward + np.array([0.13, -0.21, 0.07])
    size = (0.002, 1.1, 0.7)  # 2 mm thick: its sides are far below a pixel wide
    panel = Shape('box', tuple(centre), size, RED, 'object', yaw=pose.yaw)
    backdrop = Shape('box', tuple(pose.position + 5.0 * forward), (0.1, 30.0, 30.0), GREY,
                     'wall', yaw=pose.yaw)
    with Room(bare_room(panel, backdrop), camera) as room:
        view = room.render(pose)
    offsets = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    cos_yaw, sin_yaw = math.cos(pose.yaw), math.sin(pose.yaw)
    rotation = np.array([[cos_yaw, -sin_yaw, 0.0], [sin_yaw, cos_yaw, 0.0], [0.0, 0.0, 1.0]])
    corners = centre + (offsets * np.asarray(size) / 2.0) @ rotation.T  # (8, 3) world
    pixels = project(corners, pose, intrinsics)[:, :2].astype(np.float32)  # (8, 2)
    hull = cv2.convexHull(pixels)
    inside, outside = [], []
    for v in range(camera.height):
        for u in range(camera.width):
            distance = cv2.pointPolygonTest(hull, (float(u), float(v)), True)
            if distance > 0.25:
                inside.append(view.labels[v, u])
            elif distance < -0.25:
                outside.append(view.labels[v, u])
    assert len(inside) > 2000 and len(outside) > 2000
    assert (np.array(inside) == CLASSES.index('object')).all()
    assert (np.array(outside) == CLASSES.index('wall')).all()


def test_matrices_match_pybullet_and_intrinsics_follow_the_projection() -> None:
    from depth_estimation.sim.world import import_pybullet

    pybullet, _ = import_pybullet()
    camera = CameraModel(width=320, height=240, vertical_fov_deg=60.0, near=0.1, far=20.0)
    np.testing.assert_allclose(camera.projection_list(), pybullet.computeProjectionMatrixFOV(
        60.0, 320 / 240, 0.1, 20.0), rtol=1e-6, atol=1e-7)
    pose = CameraPose(1.0, 2.0, 0.5, yaw=0.7, pitch=-0.3)
    target = pose.position + pose.optical_axes()[2]
    up = -pose.optical_axes()[1]
    np.testing.assert_allclose(pose.view_list(), pybullet.computeViewMatrix(
        pose.position.tolist(), target.tolist(), up.tolist()), atol=1e-6)
    intrinsics = camera.intrinsics()
    focal = 120.0 / math.tan(math.radians(30.0))  # half height over tan(half vertical fov)
    assert intrinsics.fx == pytest.approx(focal) and intrinsics.fy == pytest.approx(focal)
    assert (intrinsics.cx, intrinsics.cy) == (160.0, 119.0)  # TinyRenderer's pixel grid


def test_generated_rooms_stay_within_ten_metres_and_furniture_inside_the_room() -> None:
    for scene in range(12):
        layout = generate_room(1, scene)
        assert math.sqrt(layout.width ** 2 + layout.length ** 2 + layout.height ** 2) < 10.0
        for footprint in layout.footprints:
            corners = footprint.corners()
            assert corners.min() > 0.0
            assert corners[:, 0].max() < layout.width and corners[:, 1].max() < layout.length
        assert all(shape.label in CLASSES for shape in layout.shapes)
        assert {'floor', 'wall', 'ceiling'} <= {shape.label for shape in layout.shapes}
    assert generate_room(1, 3) == generate_room(1, 3)
    assert generate_room(1, 3) != generate_room(1, 4)


def test_robot_drives_smoothly_and_keeps_clear_of_obstacles() -> None:
    from depth_estimation.sim.trajectory import RobotDriver

    for scene in range(4):
        layout = generate_room(0, scene)
        driver = RobotDriver(layout, np.random.default_rng(scene))
        previous = driver.pose()
        travelled = 0.0
        for _ in range(300):
            driver.advance(0.1)
            pose = driver.pose()
            assert driver.grid.clearance_at(pose.x, pose.y) >= driver.radius
            step = math.hypot(pose.x - previous.x, pose.y - previous.y)
            assert step <= 0.5 * 0.1 + 1e-9  # never faster than 0.5 m/s
            turn = abs(math.remainder(pose.yaw - previous.yaw, 2.0 * math.pi))
            assert turn <= driver.max_turn_rate * 0.1 + 1e-9
            assert abs(pose.z - layout.camera_height) < 0.01
            travelled += step
            previous = pose
        assert travelled > 2.0, f'scene {scene}: the robot only moved {travelled:.2f} m in 30 s'


def test_dataset_round_trip_through_folder_dataset(tmp_path: Path) -> None:
    from depth_estimation.datasets.folder import FolderDataset
    from depth_estimation.sim.dataset import resize_frame, write_dataset
    from depth_estimation.sim.scenes import scene_frames

    root = write_dataset(tmp_path / 'sim', scenes=3, frames_per_scene=2, seed=4,
                         render_size=(120, 160), store_size=(96, 128), progress=False)
    assert (root / 'preview.png').is_file()
    expected_intrinsics = SMALL.intrinsics().scaled(128, 96)
    names = {}
    for split, scene in (('train', 0), ('val', 1), ('test', 2)):
        dataset = FolderDataset(root, split=split)
        assert [dataset.sample_name(i) for i in range(len(dataset))] == [
            f'scene_{scene:04d}/{index:06d}' for index in range(2)]
        names[split] = dataset
    rendered = list(scene_frames(4, 1, 2, 0.5, SMALL))
    for index, frame in enumerate(rendered):
        sample = names['val'][index]
        rgb, depth, labels = resize_frame(frame.rgb, frame.depth, frame.labels, (128, 96))
        np.testing.assert_array_equal(sample.image, rgb)
        valid = np.isfinite(depth)
        assert (sample.depth[~valid] == 0).all()
        np.testing.assert_allclose(sample.depth[valid], depth[valid], atol=0.0005 + 1e-6)
        np.testing.assert_array_equal(sample.segmentation, labels)
        got = sample.intrinsics
        assert (got.width, got.height) == (128, 96)
        assert (got.fx, got.fy, got.cx, got.cy) == pytest.approx(
            (expected_intrinsics.fx, expected_intrinsics.fy, expected_intrinsics.cx,
             expected_intrinsics.cy))
    assert names['val'].min_depth > 0 and names['val'].max_depth == 10.0


def test_simulate_refuses_a_folder_that_holds_files(tmp_path: Path) -> None:
    from depth_estimation.sim.dataset import write_dataset

    keep = tmp_path / 'notes.txt'
    keep.write_text('mine')
    with pytest.raises(FileExistsError):
        write_dataset(tmp_path, scenes=1, frames_per_scene=1, progress=False)
    assert keep.read_text() == 'mine' and sorted(p.name for p in tmp_path.iterdir()) == [
        'notes.txt']
