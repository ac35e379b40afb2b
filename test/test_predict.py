"""`depth-estimation predict` and its helpers: writers, intrinsics files, colour maps, the command.

The command runs with the tiny random-weight ONNX model (`tiny_onnx`): its depth is meaningless but
real, which is all the output checks need.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_estimation.tools.cli import main
from depth_estimation.geometry import Intrinsics
from depth_estimation.io import (depth_to_mm, read_depth_png_mm, read_intrinsics_file, read_ply,
                                 write_depth_png_mm, write_ply)
from depth_estimation.samples import read_rgb, SAMPLE_DIR
from depth_estimation.visualize import (add_colorbar, colorize_depth, colormap_lut, format_ticks,
                                        nice_ticks)

SAMPLE_NAMES = ('realsense_d435_color', 'tum_color')

ROS_YAML = """\
image_width: 640
image_height: 480
camera_name: test
camera_matrix:
  rows: 3
  cols: 3
  data: [600.0, 0.0, 321.0, 0.0, 601.0, 241.0, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [0.1, -0.2, 0.0, 0.0, 0.0]
projection_matrix:
  rows: 3
  cols: 4
  data: [590.5, 0.0, 318.25, 0.0, 0.0, 592.5, 236.75, 0.0, 0.0, 0.0, 1.0, 0.0]
"""

# Open3D camera_primesense.json byte for byte (tab-indented JSON, which YAML would reject).
OPEN3D_PRIMESENSE = ('{\n\t"width" : 640,\n\t"height" : 480,\n\t"intrinsic_matrix" :\n\t[\n'
                     '\t\t525.0,\n\t\t0,\n\t\t0,\n\t\t0,\n\t\t525.0,\n\t\t0,\n\t\t319.5,\n'
                     '\t\t239.5,\n\t\t1\n\t]\n}')


def assert_intrinsics(actual: Intrinsics, fx: float, fy: float, cx: float, cy: float,
                      width: int, height: int) -> None:
    assert (actual.width, actual.height) == (width, height)
    np.testing.assert_allclose([actual.fx, actual.fy, actual.cx, actual.cy], [fx, fy, cx, cy],
                               rtol=0, atol=1e-9)


# --- intrinsics files ----------------------------------------------------------------------------

def test_ros_camera_info_yaml_uses_the_projection_matrix(tmp_path: Path) -> None:
    path = tmp_path / 'camera.yaml'
    path.write_text(ROS_YAML)
    assert_intrinsics(read_intrinsics_file(path), 590.5, 592.5, 318.25, 236.75, 640, 480)
    # The shipped RealSense sample (P = [K | 0]).
    assert_intrinsics(read_intrinsics_file(SAMPLE_DIR / 'realsense_d435_color.yaml'),
                      613.2036743164062, 613.4193115234375, 319.9388427734375,
                      239.18299865722656, 640, 480)


def test_ros_camera_info_yaml_with_zero_projection_falls_back_to_k(tmp_path: Path) -> None:
    path = tmp_path / 'camera.yaml'
    path.write_text(ROS_YAML.replace('590.5', '0.0').replace('592.5', '0.0'))
    assert_intrinsics(read_intrinsics_file(path), 600.0, 601.0, 321.0, 241.0, 640, 480)


def test_open3d_intrinsic_json_is_column_major(tmp_path: Path) -> None:
    path = tmp_path / 'camera_primesense.json'
    path.write_text(OPEN3D_PRIMESENSE)
    assert_intrinsics(read_intrinsics_file(path), 525.0, 525.0, 319.5, 239.5, 640, 480)
    # Distinct numbers: row-major reading would give cx = cy = 0.
    path.write_text(json.dumps({'width': 320, 'height': 240,
                                'intrinsic_matrix': [500, 0, 0, 0, 510, 0, 160.5, 120.25, 1]}))
    assert_intrinsics(read_intrinsics_file(path), 500.0, 510.0, 160.5, 120.25, 320, 240)


@pytest.mark.parametrize('suffix', ['.json', '.yaml'])
def test_simple_intrinsics_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f'camera{suffix}'
    if suffix == '.json':
        path.write_text(json.dumps({'fx': 400.5, 'fy': 401.0, 'cx': 160.25, 'cy': 120.75,
                                    'width': 320, 'height': 240}))
    else:
        path.write_text('fx: 400.5\nfy: 401.0\ncx: 160.25\ncy: 120.75\nwidth: 320\nheight: 240\n')
    assert_intrinsics(read_intrinsics_file(path), 400.5, 401.0, 160.25, 120.75, 320, 240)


@pytest.mark.parametrize('text', ['fx: 1\nfy: 1\ncx: 0\ncy: 0\n', 'focal: 500\n', '[1, 2, 3]\n',
                                  'camera_matrix: {data: [1, 0, 0, 0, 1, 0, 0, 0, 1]}\n'])
def test_bad_intrinsics_files_raise_value_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / 'camera.yaml'
    path.write_text(text)
    with pytest.raises(ValueError):
        read_intrinsics_file(path)


def test_intrinsics_from_fov() -> None:
    # 90 degrees: the focal length is half the width; centre in the pixel-centre convention.
    assert_intrinsics(Intrinsics.from_fov(90.0, 640, 480), 320.0, 320.0, 319.5, 239.5, 640, 480)
    assert_intrinsics(Intrinsics.from_fov(60.0, 100, 50), 50.0 * np.sqrt(3.0),
                      50.0 * np.sqrt(3.0), 49.5, 24.5, 100, 50)
    with pytest.raises(ValueError):
        Intrinsics.from_fov(180.0, 640, 480)


# --- depth PNG and PLY ---------------------------------------------------------------------------

def test_depth_mm_encoding_invalid_small_and_saturated() -> None:
    depth = np.array([[1.2344, 1.2346, np.nan, -1.0],
                      [0.0, np.inf, 0.0004, 70.0]], dtype=np.float32)
    np.testing.assert_array_equal(depth_to_mm(depth), [[1234, 1235, 0, 0], [0, 0, 1, 65535]])


def test_depth_png_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.1, 20.0, size=(30, 40)).astype(np.float32)
    depth[0, :5] = np.nan
    path = write_depth_png_mm(tmp_path / 'depth.png', depth)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.shape == (30, 40)
    restored = read_depth_png_mm(path)
    assert np.isnan(restored[0, :5]).all()
    np.testing.assert_allclose(restored[1:], depth[1:], atol=0.0005 + 1e-6, rtol=0)


@pytest.mark.parametrize('binary', [True, False])
def test_ply_round_trip_skips_invalid_points(tmp_path: Path, binary: bool) -> None:
    rng = np.random.default_rng(1)
    points = rng.normal(size=(6, 5, 3)).astype(np.float32)
    points[2, 3] = np.nan
    colors = rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
    path = tmp_path / 'cloud.ply'
    assert write_ply(path, points, colors, binary=binary, comments=('a\nb',)) == 29
    header = path.read_bytes().split(b'end_header')[0].decode('ascii')
    assert ('binary_little_endian' if binary else 'ascii') in header
    assert 'element vertex 29' in header and 'property uchar red' in header
    keep = np.isfinite(points).all(axis=2)
    read_points, read_colors = read_ply(path)
    np.testing.assert_array_equal(read_points, points[keep])
    np.testing.assert_array_equal(read_colors, colors[keep])


def test_empty_ply(tmp_path: Path) -> None:
    path = tmp_path / 'empty.ply'
    assert write_ply(path, np.full((2, 3), np.nan, np.float32), binary=False) == 0
    points, colors = read_ply(path)
    assert points.shape == (0, 3) and colors.shape == (0, 3)


# --- visualisation -------------------------------------------------------------------------------

def test_colorize_depth_maps_the_range_and_blacks_out_invalid() -> None:
    depth = np.array([[1.0, 3.0, 0.5, 9.0], [np.nan, 0.0, -2.0, np.inf]], dtype=np.float32)
    rgb = colorize_depth(depth, 1.0, 3.0, 'turbo')
    lut = colormap_lut('turbo')
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 4, 3)
    np.testing.assert_array_equal(rgb[0], [lut[0], lut[255], lut[0], lut[255]])  # clipped ends
    assert not rgb[1].any()
    assert rgb[0].any(axis=1).all()  # turbo has no black at its ends
    with pytest.raises(ValueError):
        colorize_depth(depth, 2.0, 2.0)
    with pytest.raises(ValueError):
        colorize_depth(depth, 1.0, 2.0, 'no-such-map')


@pytest.mark.parametrize('shape', [(480, 640), (48, 64), (10, 12)])
def test_add_colorbar_appends_a_panel(shape: tuple[int, int]) -> None:
    image = np.full(shape + (3,), 128, dtype=np.uint8)
    result = add_colorbar(image, 0.3, 7.5)
    assert result.dtype == np.uint8 and result.shape[0] == shape[0]
    assert result.shape[1] > shape[1]
    np.testing.assert_array_equal(result[:, :shape[1]], image)


def test_nice_ticks() -> None:
    np.testing.assert_allclose(nice_ticks(0.3, 7.5, 5), [2.0, 4.0, 6.0])
    np.testing.assert_allclose(nice_ticks(0.0, 10.0, 6), [0, 2, 4, 6, 8, 10])
    assert format_ticks(np.array([0.5, 2.0])) == ['0.5', '2.0']
    assert format_ticks(np.array([20.0, 40.0])) == ['20', '40']
    assert format_ticks(np.array([0.68, 0.7])) == ['0.68', '0.70']


# --- the command ---------------------------------------------------------------------------------

def back_project(depth: np.ndarray, fx: float, fy: float, cx: float,
                 cy: float) -> np.ndarray:
    """Reference back-projection of the valid pixels (row-major order) -> (N, 3)."""
    rows, columns = np.indices(depth.shape)  # (H, W) each
    valid = np.isfinite(depth) & (depth > 0)
    z = depth[valid].astype(np.float64)
    return np.stack([(columns[valid] - cx) * z / fx, (rows[valid] - cy) * z / fy, z], axis=1)


def check_frame(output: Path, name: str, rgb: np.ndarray,
                intrinsics: tuple[float, float, float, float]) -> None:
    """All four outputs of a frame exist and agree with each other and with `rgb`."""
    depth = np.load(output / f'{name}_depth.npy')
    assert depth.dtype == np.float32 and depth.shape == rgb.shape[:2]
    valid = np.isfinite(depth) & (depth > 0)
    assert valid.any()

    millimetres = cv2.imread(str(output / f'{name}_depth_mm.png'), cv2.IMREAD_UNCHANGED)
    assert millimetres.dtype == np.uint16 and millimetres.shape == depth.shape
    assert (millimetres[~valid] == 0).all()
    unsaturated = valid & (depth < 65.535)
    np.testing.assert_allclose(millimetres[unsaturated] / 1000.0, depth[unsaturated],
                               atol=0.001, rtol=0)

    color = cv2.imread(str(output / f'{name}_depth_color.png'), cv2.IMREAD_COLOR)
    assert color.shape[0] == depth.shape[0] and color.shape[1] > depth.shape[1]

    points, colors = read_ply(output / f'{name}_points.ply')
    assert points.shape == (int(valid.sum()), 3)
    np.testing.assert_allclose(points, back_project(depth, *intrinsics), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(colors, rgb[valid])


def run_predict(*argv: str) -> int:
    return main(['predict', *map(str, argv), '--no-progress'])


def read_sample(name: str) -> np.ndarray:
    return read_rgb(SAMPLE_DIR / f'{name}.png')


def test_predict_folder_with_a_corrupt_image_and_a_camera_file(
        tiny_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs = tmp_path / 'in'
    shutil.copytree(SAMPLE_DIR, inputs)
    (inputs / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\nthis is not a PNG')
    output = tmp_path / 'out'
    assert run_predict(inputs, '-m', tiny_onnx, '-o', output,
                       '--camera', SAMPLE_DIR / 'tum_color.yaml') == 0
    captured = capsys.readouterr()
    assert 'broken.png' in captured.err and 'broken.png' in captured.out
    assert '2 frame(s)' in captured.out and str(output.resolve()) in captured.out
    assert not list(output.glob('broken*'))
    assert len(list(output.iterdir())) == 4 * len(SAMPLE_NAMES)
    for name in SAMPLE_NAMES:
        check_frame(output, name, read_sample(name), (525.0, 525.0, 319.5, 239.5))


def test_predict_scales_camera_intrinsics_to_the_image_size(tiny_onnx: Path,
                                                            tmp_path: Path) -> None:
    small = cv2.resize(cv2.imread(str(SAMPLE_DIR / 'tum_color.png')), (320, 240),
                       interpolation=cv2.INTER_AREA)
    image = tmp_path / 'small.png'
    cv2.imwrite(str(image), small)
    camera = tmp_path / 'camera_primesense.json'
    camera.write_text(OPEN3D_PRIMESENSE)
    output = tmp_path / 'out'
    assert run_predict(image, '-m', tiny_onnx, '-o', output, '--camera', camera,
                       '--ply-ascii') == 0
    # 640x480 -> 320x240: f * 0.5, c' = (c + 0.5) * 0.5 - 0.5.
    check_frame(output, 'small', cv2.cvtColor(small, cv2.COLOR_BGR2RGB),
                (262.5, 262.5, 159.5, 119.5))
    assert b'format ascii' in (output / 'small_points.ply').read_bytes()[:100]


def test_predict_video_with_fov(tiny_onnx: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    video = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 10.0, (64, 48))
    assert writer.isOpened()
    rng = np.random.default_rng(2)
    for _ in range(5):
        writer.write(rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8))
    writer.release()
    output = tmp_path / 'out'
    assert run_predict(video, '-m', tiny_onnx, '-o', output, '--fov', '90', '--stride', '2') == 0
    out = capsys.readouterr().out
    assert '3 frame(s)' in out and '3 video frame(s)' in out
    capture = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    assert len(frames) == 5
    for index in (0, 2, 4):
        # --fov 90 on 64 px: f = 32, principal point at the centre (31.5, 23.5).
        check_frame(output, f'clip_{index:06d}', frames[index], (32.0, 32.0, 31.5, 23.5))
    assert not list(output.glob('clip_000001*'))


def test_predict_without_intrinsics_skips_point_clouds_and_keeps_same_stems(
        tiny_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = tmp_path / 'a', tmp_path / 'b'
    first.mkdir()
    second.mkdir()
    shutil.copy(SAMPLE_DIR / 'tum_color.png', first / 'frame.png')
    shutil.copy(SAMPLE_DIR / 'realsense_d435_color.png', second / 'frame.png')
    output = tmp_path / 'out'
    assert run_predict(first, second, '-m', tiny_onnx, '-o', output,
                       '--color-range', '0.5,5') == 0
    assert 'no point clouds' in capsys.readouterr().err
    names = sorted(p.name for p in output.iterdir())
    assert names == sorted(f'{stem}{suffix}' for stem in ('frame', 'frame-2')
                           for suffix in ('_depth.npy', '_depth_mm.png', '_depth_color.png'))
    assert not np.array_equal(np.load(output / 'frame_depth.npy')[:10, :10],
                              np.load(output / 'frame-2_depth.npy')[:10, :10])


def test_predict_exits_non_zero_when_nothing_is_processed(
        tiny_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'not a jpeg')
    assert run_predict(broken, tmp_path / 'missing.png', '-m', tiny_onnx,
                       '-o', tmp_path / 'out') == 1
    out = capsys.readouterr().out
    assert 'no frame could be processed' in out
    assert 'broken.jpg' in out and 'missing.png' in out


def test_predict_rejects_bad_options(tiny_onnx: Path, tmp_path: Path) -> None:
    image = SAMPLE_DIR / 'tum_color.png'
    for extra in (['--outputs', 'npy,xyz'], ['--color-range', '5,1'], ['--fov', '0'],
                  ['--colormap', 'nope'], ['--stride', '0']):
        assert run_predict(image, '-m', tiny_onnx, '-o', tmp_path / 'out', *extra) == 2
