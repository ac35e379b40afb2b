"""`depth-estimation demo`: the ROS node end to end on the shipped sample frames.

Exports the tiny preset (random weights) if needed, starts `depth_estimation_node` as a subprocess,
publishes the samples with their camera_info, receives depth, depth camera_info and points, prints
latency and throughput, and writes a colourised depth image and a top-down cloud view to
outputs/demo/.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, Optional

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT = Path('outputs') / 'demo'
FASTDDS_PROFILE = REPO_ROOT / 'config' / 'fastdds_loopback.xml'
BANNER = ('=' * 78 + '\n'
          'DEMO MODEL HAS RANDOM (UNTRAINED) WEIGHTS: the depth values are meaningless.\n'
          'It shows the pipeline (topics, headers, camera_info, point cloud, latency) only;\n'
          'a trained demo model comes in a later issue.\n' + '=' * 78)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'demo', help='run the ROS node on the shipped sample frames (tiny random-weights model)',
        description='Start depth_estimation_node in a subprocess, publish the shipped sample '
                    'frames with camera_info, receive depth, depth/camera_info and points, print '
                    'latency and write images to the output folder.')
    parser.add_argument('--frames', type=int, default=20, help='frames to publish (default 20)')
    parser.add_argument('--output', type=Path, default=DEFAULT_OUTPUT,
                        help='output folder (default outputs/demo)')
    parser.add_argument('--model', type=Path, default=None,
                        help='model artifact; default: the tiny preset exported to '
                             '<output>/model/tiny.onnx with random weights')
    parser.add_argument('--num-threads', type=int, default=0, help='backend CPU threads')
    parser.add_argument('--timeout', type=float, default=20.0,
                        help='seconds to wait for the node and for each answer')
    parser.set_defaults(handler=run)


def ensure_model(output: Path) -> Path:
    """The tiny preset exported with random weights to <output>/model/tiny.onnx (once)."""
    model_path = output / 'model' / 'tiny.onnx'
    if model_path.is_file() and Path(str(model_path) + '.json').is_file():
        print(f'using {model_path}')
        return model_path
    from depth_estimation.cli import main as cli_main

    print(f'exporting the tiny preset with random weights to {model_path} ...')
    model_path.parent.mkdir(parents=True, exist_ok=True)
    code = cli_main(['export', '--preset', 'tiny', '--random-weights',
                     '--output', str(model_path)])
    if code != 0:
        raise RuntimeError(f'export failed with exit code {code}')
    return model_path


def ros_environment() -> dict[str, str]:
    """Set (in this process) and return the loopback-only DDS environment for every rclpy user."""
    if not FASTDDS_PROFILE.is_file():
        raise FileNotFoundError(f'{FASTDDS_PROFILE} is missing: the demo keeps DDS on loopback')
    os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = str(FASTDDS_PROFILE)
    os.environ.setdefault('ROS_DOMAIN_ID', str(1 + os.getpid() % 100))
    return dict(os.environ)


def node_executable() -> str:
    beside = Path(sys.executable).parent / 'depth_estimation_node'
    found = str(beside) if beside.exists() else shutil.which('depth_estimation_node')
    if not found:
        raise FileNotFoundError('depth_estimation_node is not installed (pip install -e .)')
    return found


def colourise_depth(depth: np.ndarray) -> np.ndarray:
    """Depth (H, W) metres -> BGR uint8 image with a colour bar in metres (for cv2.imwrite)."""
    from depth_estimation.visualize import add_colorbar, auto_range, colorize_depth

    low, high = auto_range(depth) or (0.0, 1.0)
    coloured = add_colorbar(colorize_depth(depth, low, high), low, high)  # (H, W + bar, 3) RGB
    return np.ascontiguousarray(coloured[..., ::-1])


def render_top_down(points: np.ndarray, rgb: Optional[np.ndarray], size: int = 480) -> np.ndarray:
    """Bird's-eye view (x right, z up) of points (H, W, 3) -> BGR uint8 (size, size, 3)."""
    import cv2

    xyz = points.reshape(-1, 3)  # (N, 3) metres
    valid = np.isfinite(xyz).all(axis=1)
    canvas = np.full((size, size, 3), 30, dtype=np.uint8)
    if not valid.any():
        return canvas
    xyz = xyz[valid]
    colours = (rgb.reshape(-1, 3)[valid][:, ::-1] if rgb is not None
               else np.full((len(xyz), 3), 255, np.uint8))  # (N, 3) BGR
    far = float(np.percentile(xyz[:, 2], 99)) * 1.05
    metres_per_pixel = far / (size - 20)
    columns = np.round(xyz[:, 0] / metres_per_pixel + size / 2).astype(np.int64)  # (N,)
    rows = np.round(size - 10 - xyz[:, 2] / metres_per_pixel).astype(np.int64)  # (N,)
    inside = (columns >= 0) & (columns < size) & (rows >= 0) & (rows < size)
    canvas[rows[inside], columns[inside]] = colours[inside]
    cv2.circle(canvas, (size // 2, size - 10), 4, (0, 0, 255), -1)  # the camera
    cv2.putText(canvas, f'top-down, {far:.1f} m deep', (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                (255, 255, 255), 1)
    return canvas


def run(args: argparse.Namespace) -> int:
    print(BANNER)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    model_path = Path(args.model) if args.model else ensure_model(output)
    environment = ros_environment()
    print(f'DDS on loopback only ({FASTDDS_PROFILE.name}), '
          f'ROS_DOMAIN_ID={environment["ROS_DOMAIN_ID"]}')
    command = [node_executable(), '--ros-args', '-p', f'model_path:={model_path.resolve()}',
               '-p', f'num_threads:={args.num_threads}']
    node_process = subprocess.Popen(command, env=environment)
    try:
        return _drive(args, output, node_process)
    finally:
        if node_process.poll() is None:
            node_process.send_signal(signal.SIGINT)
            try:
                node_process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                node_process.kill()
        print(BANNER.splitlines()[1])


def _drive(args: argparse.Namespace, output: Path, node_process: subprocess.Popen) -> int:
    import cv2
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2

    from depth_estimation.geometry import unpack_cloud
    from depth_estimation.ros.conversions import (camera_info_from_dict, image_to_depth,
                                                  rgb_to_image)
    from depth_estimation.samples import load_samples

    samples = load_samples()
    # A 640x480 rgb8 frame (900 KB) exceeds Fast DDS's default 512 KB shared-memory segment and is
    # dropped by best-effort subscribers in another process unless the profile raises it.
    full_size = 'segment_size' in FASTDDS_PROFILE.read_text()
    if not full_size:
        print('note: publishing the samples at half size (320x240): the loopback profile keeps '
              'the default 512 KB shared-memory segment')
    frames = []
    for sample in samples:
        rgb = sample.rgb
        if not full_size:
            rgb = cv2.resize(rgb, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        frames.append((sample.name, rgb, camera_info_from_dict(sample.camera_info)))

    context = Context()
    rclpy.init(context=context, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    node = rclpy.create_node('depth_estimation_demo', context=context)
    received: dict[str, dict[tuple[int, int], tuple[Any, float]]] = {
        'depth/image': {}, 'depth/camera_info': {}, 'points': {}}

    def keep(topic: str) -> Any:
        def callback(msg: Any) -> None:
            stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            received[topic][stamp] = (msg, time.perf_counter())
        return callback

    for topic, message_type in (('depth/image', Image), ('depth/camera_info', CameraInfo),
                                ('points', PointCloud2)):
        node.create_subscription(message_type, topic, keep(topic), 10)
    image_publisher = node.create_publisher(Image, 'image', 10)
    info_publisher = node.create_publisher(CameraInfo, 'camera_info', 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)

    def spin_until(predicate: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline or node_process.poll() is not None:
                return False
            executor.spin_once(timeout_sec=0.01)
        return True

    try:
        started = time.perf_counter()
        ready = spin_until(lambda: image_publisher.get_subscription_count() > 0
                           and info_publisher.get_subscription_count() > 0
                           and node.count_publishers('points') > 0, args.timeout)
        if not ready:
            print(f'error: the node did not come up within {args.timeout:.0f} s', file=sys.stderr)
            return 1
        print(f'node up after {time.perf_counter() - started:.1f} s; publishing {args.frames} '
              'frames')
        latencies = []
        answered: dict[str, tuple[Any, ...]] = {}
        loop_start = time.perf_counter()
        for index in range(args.frames):
            name, rgb, info = frames[index % len(frames)]
            now = node.get_clock().now().to_msg()
            image = rgb_to_image(rgb, encoding='rgb8')
            image.header.stamp = now
            image.header.frame_id = 'camera_color_optical_frame'
            info.header = image.header
            info_publisher.publish(info)
            spin_until(lambda: False, 0.02)
            sent = time.perf_counter()
            image_publisher.publish(image)
            stamp = (now.sec, now.nanosec)
            if not spin_until(lambda: all(stamp in r for r in received.values()), args.timeout):
                print(f'frame {index:3d} {name}: no complete answer within {args.timeout:.0f} s')
                continue
            latency = max(r[stamp][1] for r in received.values()) - sent
            latencies.append(latency)
            depth = image_to_depth(received['depth/image'][stamp][0])  # (H, W) metres
            answered[name] = (rgb, depth, received['points'][stamp][0])
            print(f'frame {index:3d} {name:22s} {depth.shape[1]}x{depth.shape[0]}  latency '
                  f'{latency * 1e3:7.1f} ms  depth {np.nanmin(depth):.2f}..'
                  f'{np.nanmax(depth):.2f} m')
        elapsed = time.perf_counter() - loop_start
        if not latencies:
            print('error: no frame was answered', file=sys.stderr)
            return 1
        ms = np.array(latencies) * 1e3
        print(f'summary: {len(latencies)}/{args.frames} frames answered, latency mean '
              f'{ms.mean():.1f} ms, median {np.median(ms):.1f} ms, p90 '
              f'{np.percentile(ms, 90):.1f} ms; throughput {len(latencies) / elapsed:.1f} '
              'frames/s (one frame in flight at a time)')
        for name, (rgb, depth, cloud) in answered.items():
            fields = [(f.name, f.offset, f.datatype) for f in cloud.fields]
            points = unpack_cloud(bytes(cloud.data), fields, cloud.point_step, cloud.height,
                                  cloud.width)  # (H, W) structured
            xyz = np.stack([points['x'], points['y'], points['z']], axis=-1)  # (H, W, 3)
            coloured = colourise_depth(depth)  # (H, W + colour bar, 3) BGR
            side_by_side = np.concatenate([rgb[..., ::-1], coloured], axis=1)
            depth_path = output / f'depth_{name}.png'
            cloud_path = output / f'points_{name}.png'
            cv2.imwrite(str(depth_path), side_by_side)
            cv2.imwrite(str(cloud_path), render_top_down(xyz, rgb))
            print(f'wrote {depth_path} and {cloud_path}')
        return 0
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
