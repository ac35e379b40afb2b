"""`depth-estimation demo`: the whole system on one machine, measured, for a bounded time.

    source --image, camera_info--> depth_estimation_node (ONNX Runtime, CPU) --depth/image,
    depth/camera_info, points--> this process (metrics, MCAP recording, images, report)

Latency runs from the image's stamp to the arrival of its depth here; the node answers the newest
image and drops those that arrive while it is busy. The sources are in `sources.py`, the model in
`model.py`; `--output` gets report.md with its plots, summary.json, snapshots, the MCAP recording
(`recording/`) and the logs of the processes the demo started.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import shutil
import sys
import time
from typing import Any, Optional

from depth_estimation.artifacts import read_metadata
from depth_estimation.sim.dataset import add_room_options
from depth_estimation.tools.demo.graph import DemoGraph, FramePublisher, load_frames
from depth_estimation.tools.demo.model import ModelChoice, prepare_model, RANDOM_BANNER
from depth_estimation.tools.demo.report import DemoStatistics, write_plots, write_report, \
    write_snapshot_images
from depth_estimation.tools.player import add_camera_info_options
from depth_estimation.tools.demo.sources import node_command, NODE_NAME, Source, source_command
from depth_estimation.tools.processes import applied_environment, Process, ros_environment

DEFAULT_OUTPUT = Path('outputs') / 'demo'
# What the recording holds by default: the node's outputs and the input they answer (about
# 2.2 MB per frame at 480x640); ground truth and clouds on request.
RECORD_TOPICS = ('image', 'camera_info', 'depth/image', 'depth/camera_info')


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'demo', help='run the whole system (real RGB-D sequence -> node -> metrics, '
                     'recording, report) for a bounded time',
        description='Start a source and depth_estimation_node (ONNX Runtime, CPU), print live '
                    'throughput, latency and accuracy against ground truth, record the outputs '
                    'to MCAP and write images and a report to the output folder.')
    parser.add_argument('--source', default='sequence',
                        help='sequence (default: the shipped TUM RGB-D fr2_desk frames; '
                             'sequence:<name> for another shipped one), sim, samples, '
                             'topic:<image topic>, video:<file> or bag:<rosbag2 folder or .bag>')
    parser.add_argument('--model', type=Path, default=None,
                        help='.onnx (with .onnx.json), our checkpoint .pt, official ZoeDepth '
                             '.pt or a Hugging Face directory; default: the default model '
                             '(depth-estimation models --default)')
    parser.add_argument('--duration', type=float, default=60.0,
                        help='seconds to stream once the node is up (default 60)')
    parser.add_argument('--frames', type=int, default=0,
                        help='stop after this many answered frames instead (0: use --duration)')
    parser.add_argument('--rate', type=float, default=None,
                        help='frames per second of the source (default: a sequence\'s own, '
                             '15 for fr2_desk, paced by the node; sim, samples and video: 2, '
                             'about what two cores sustain while also rendering; the node '
                             'drops what it cannot keep up with)')
    add_room_options(parser, seed=1, frames_per_scene=40,
                     seed_note='; the demo model was trained on 0')
    parser.add_argument('--output', type=Path, default=DEFAULT_OUTPUT,
                        help='output folder (default outputs/demo)')
    parser.add_argument('--num-threads', type=int, default=1,
                        help='CPU threads of the node\'s backend (default 1: this process '
                             'and the source run on the other core; 0: the backend\'s default)')
    add_camera_info_options(parser, horizontal_fov=60.0)
    parser.add_argument('--no-record', dest='record', action='store_false',
                        help='do not write the MCAP recording')
    parser.add_argument('--record-ground-truth', action='store_true',
                        help='also record the sim source\'s ground_truth/depth (1.2 MB per '
                             'frame)')
    parser.add_argument('--record-points', action='store_true',
                        help='also record the point clouds (about 5 MB per frame)')
    parser.add_argument('--timeout', type=float, default=90.0,
                        help='seconds to wait for the node and source to come up, and at most '
                             'between two depth frames (default 90)')
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    source = Source.parse(args.source)
    if args.duration <= 0 and args.frames <= 0:
        raise ValueError('give a positive --duration or --frames')
    args.rate = source.default_rate() if args.rate is None else args.rate
    if args.rate <= 0:
        raise ValueError(f'--rate must be positive, got {args.rate}')
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    for stale in list(output.glob('depth_*.png')) + list(output.glob('points_*.png')):
        stale.unlink()  # pictures of an earlier run
    model = prepare_model(args.model, output)
    metadata = read_metadata(model.path)
    if 'training_data' in metadata.source:
        print(f'the model was trained on: {metadata.source["training_data"]}')
    environment = ros_environment()
    print(f'model: {model.description} ({model.path})\nsource: {args.source}; DDS on loopback '
          f'only ({Path(environment["FASTDDS_DEFAULT_PROFILES_FILE"]).name}), '
          f'ROS_DOMAIN_ID={environment["ROS_DOMAIN_ID"]}', flush=True)
    record_path = None
    if args.record:
        record_path = output / 'recording'
        if (record_path / 'metadata.yaml').is_file():
            shutil.rmtree(record_path)  # the previous run's recording
        elif record_path.exists():
            raise FileExistsError(f'{record_path} exists and is not a recording of an earlier '
                                  'demo; move it away')
    topics = tuple(source.image_topic if t == 'image' else
                   source.camera_info_topic if t == 'camera_info' else t for t in RECORD_TOPICS)
    topics += (source.truth_topic,) if args.record_ground_truth and source.truth_topic else ()
    topics += ('points',) if args.record_points else ()
    processes = [Process('node', node_command(model.path, source, args), output / 'node.log',
                         environment)]
    command = source_command(source, args)
    if command is not None:
        processes.append(Process(source.kind, command, output / f'{source.kind}.log',
                                 environment))
    statistics = DemoStatistics((metadata.min_depth, metadata.max_depth))
    try:
        graph_result = _stream(args, source, statistics, processes, record_path, topics,
                               environment)
    finally:
        for process in processes:
            process.stop()
    code, graph, recording = graph_result
    summary = statistics.summary(graph.finished or 0.0)
    config = {'source': args.source, 'model': f'{model.description} ({model.path.name})',
              'model trained': model.trained, 'backend': 'ONNX Runtime (CPU)',
              'node threads': args.num_threads or 'backend default',
              'source rate': 'as sent' if source.kind == 'topic' else f'{args.rate:g} frames/s'
              + (' at most, paced by the node' if source.published_here else ''),
              'stop': f'{args.frames} frames' if args.frames else f'{args.duration:g} s'}
    if source.kind == 'sim':
        config['sim'] = (f'seed {args.seed}, {args.frames_per_scene} frames per room, 480x640, '
                         'vertical FOV 58 deg')
    if source.kind == 'sequence':
        config['sequence'] = (f'{source.argument}, real frames looped, published here paced by '
                              'the node; truth: the sensor depth')
    truth_label = 'sensor depth' if source.kind == 'sequence' else 'ground truth'
    images = write_snapshot_images(output, graph.snapshots, truth_label)
    images += write_plots(output, statistics, graph.snapshots, truth_label)
    report = write_report(output, config, summary, images, recording)
    (output / 'summary.json').write_text(json.dumps(
        {'config': {k: str(v) for k, v in config.items()}, 'summary': summary,
         'recording': recording, 'exit_code': code}, indent=2) + '\n')
    _print_summary(summary, model, report, recording)
    return code


def _print_summary(summary: dict[str, Any], model: ModelChoice, report: Path,
                   recording: Optional[dict[str, Any]]) -> None:
    print(f'summary: {summary["frames_answered"]} depth frames in {summary["seconds"]:.0f} s, '
          f'{summary["throughput_fps"]:.2f} frames/s', end='')
    if 'latency_ms' in summary:
        latency = summary['latency_ms']
        print(f', latency median {latency["p50"]:.0f} ms (p90 {latency["p90"]:.0f} ms)', end='')
    print()
    if 'accuracy' in summary:
        accuracy = summary['accuracy']
        print(f'accuracy over {summary["frames_evaluated"]} frames: delta1 '
              f'{accuracy["delta1"]:.3f}, REL {accuracy["abs_rel"]:.3f}, RMSE '
              f'{accuracy["rmse_m"]:.3f} m')
    if recording:
        print(f'recording: {recording["path"]} ({recording["megabytes"]:.0f} MB)')
    print(f'report: {report}')
    if not model.trained:
        print(RANDOM_BANNER.splitlines()[1])


def _stream(args: argparse.Namespace, source: Source, statistics: DemoStatistics,
            processes: list[Process], record_path: Optional[Path],
            topics: tuple[str, ...], environment: dict[str, str]
            ) -> tuple[int, DemoGraph, Optional[dict[str, Any]]]:
    from depth_estimation.ros.runner import node_executor, start_node, stop_node

    with applied_environment(environment):  # this process's participant: the children's DDS
        node = start_node('depth_estimation_demo', domain_id=int(environment['ROS_DOMAIN_ID']),
                          own_context=True)
        graph = DemoGraph(node, source, statistics, record_path, topics)
    executor = node_executor(node)
    frames = FramePublisher(graph.node, load_frames(source), args.rate, graph.add_truth) \
        if source.published_here else None
    code = 0
    try:
        code = _wait_until_up(args, source, graph, executor, processes, frames)
        if code == 0:
            code = _measure(args, graph, executor, processes, frames)
    except KeyboardInterrupt:
        print('interrupted: writing what was measured so far')
        code = 130
    finally:
        for _ in range(20):  # callbacks of what has arrived (the recorder's copy of the last one)
            executor.spin_once(timeout_sec=0.01)
        graph.finished = graph.elapsed() if graph.started is not None else None
        graph.settle(wait_for_truth=0.0)
        graph.attach_points()
        recording = graph.close()
        stop_node(node, executor)  # frees the DDS participant now, not at garbage collection
    return code, graph, recording


def _wait_until_up(args: argparse.Namespace, source: Source, graph: DemoGraph, executor: Any,
                   processes: list[Process], frames: Optional[FramePublisher]) -> int:
    node = graph.node
    launched = min((process.launched for process in processes), default=time.monotonic())
    print('waiting for the node and the source ...', flush=True)
    while True:
        executor.spin_once(timeout_sec=0.05)
        if graph.failed(processes, poll_interval=0.5):
            return 1
        node_up = node.count_publishers('depth/image') > 0 and any(
            info.node_name == NODE_NAME
            for info in node.get_subscriptions_info_by_topic(source.image_topic))
        source_up = node.count_publishers(source.image_topic) > 0 or frames is not None
        source_up = source_up and graph.ground_truth_flows()
        if node_up and source_up:
            break
        if time.monotonic() - launched > args.timeout:
            what = 'the node' if not node_up else f'a publisher of {source.image_topic}'
            print(f'error: {what} did not come up within {args.timeout:.0f} s', file=sys.stderr)
            return 1
    print(f'node and source up {time.monotonic() - launched:.1f} s after launch; streaming for '
          + (f'{args.frames} frames' if args.frames else f'{args.duration:g} s'), flush=True)
    graph.start(args.duration, args.frames)
    return 0


def _measure(args: argparse.Namespace, graph: DemoGraph, executor: Any,
             processes: list[Process], frames: Optional[FramePublisher]) -> int:
    statistics = graph.statistics
    next_print = 2.0
    while True:
        executor.spin_once(timeout_sec=0.02)
        elapsed = graph.elapsed()
        graph.settle()
        graph.attach_points()
        if elapsed >= next_print:
            print(statistics.live_line(elapsed), flush=True)
            next_print = elapsed + 2.0
        if args.frames and statistics.answered >= args.frames:
            return 0
        if not args.frames and elapsed >= args.duration:
            return 0
        if graph.failed(processes, poll_interval=1.0):
            return 1
        last = statistics.frames[-1].received if statistics.frames else 0.0
        if elapsed - last > args.timeout:
            print(f'error: no depth for {args.timeout:.0f} s'
                  + ('' if statistics.images_seen else
                     f' and no image on {graph.source.image_topic}'), file=sys.stderr)
            return 1
        if frames is not None:  # after the stop: no frame goes out that will not be measured
            frames.poll(elapsed, graph.last_depth_stamp)
