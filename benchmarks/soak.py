"""Soak the depth node: N frames (5,000 by default) at the maximum rate, from another process.

Starts `depth_estimation_node` as its own process (the tiny preset with random weights unless
`--model`), publishes the shipped 640 x 480 sample frames with their camera_info as fast as this
process can (or at `--rate` Hz, or one frame in flight with `--closed-loop`), and prints:
- throughput: frames sent per second and depth images received per second;
- end-to-end latency percentiles (publish -> depth/image received) and the node's own p50 / p99
  from /diagnostics;
- frames received, processed, dropped (newest frame won) and skipped by the node;
- the node's resident memory (VmRSS from /proc): after warm-up, at the end, the peak, and the
  growth after warm-up against the 5 % target.
It writes `<output>/soak.json` and `<output>/soak.png` (memory and latency over time).

    .venv/bin/python benchmarks/soak.py                   # the full soak (5,000 frames)
    .venv/bin/python benchmarks/soak.py --frames 300      # smoke check
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import signal
import subprocess
import sys
import time
from typing import Any, Optional

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
GROWTH_TARGET = 0.05


def read_rss_bytes(pid: int) -> Optional[int]:
    """Resident set size of a process (Linux /proc), None when unreadable."""
    try:
        for line in Path(f'/proc/{pid}/status').read_text().splitlines():
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=5000, help='frames to publish (5000)')
    parser.add_argument('--rate', type=float, default=0.0,
                        help='publishing rate in Hz; 0 (default): as fast as possible')
    parser.add_argument('--closed-loop', action='store_true',
                        help='send the next frame only when the previous one is answered (every '
                             'frame goes through the model)')
    parser.add_argument('--model', type=Path, default=None,
                        help='model artifact (default: tiny preset, random weights)')
    parser.add_argument('--num-threads', type=int, default=0, help='backend CPU threads')
    parser.add_argument('--warm-up', type=float, default=0.1,
                        help='fraction of the frames treated as warm-up for memory (0.1)')
    parser.add_argument('--output', type=Path, default=REPO_ROOT / 'outputs' / 'soak')
    parser.add_argument('--timeout', type=float, default=30.0,
                        help='seconds to wait for the node to come up and for the last answer')
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    output = args.output
    output.mkdir(parents=True, exist_ok=True)
    from depth_estimation.tools.demo.model import random_model
    from depth_estimation.tools.processes import executable, ros_environment

    model_path = args.model or random_model(output)
    environment = ros_environment()  # loopback DDS profile and a domain id, also for us
    command = [executable('depth_estimation_node'), '--ros-args',
               '-p', f'model_path:={Path(model_path).resolve()}',
               '-p', f'num_threads:={args.num_threads}', '-p', 'diagnostics_period:=0.5',
               '-p', 'publisher_depth:=10']
    node = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        result = drive(args, node, environment)
    finally:
        if node.poll() is None:
            node.send_signal(signal.SIGINT)
        try:
            log, _ = node.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            node.kill()
            log, _ = node.communicate()
    if result is None:
        print(log[-4000:], file=sys.stderr)
        return 1
    summary = [line for line in log.splitlines() if 'frames processed' in line]
    if summary:
        result['node_summary'] = summary[-1].split(']: ')[-1]
    report(result, output)
    return 0


def drive(args: argparse.Namespace, node_process: subprocess.Popen,
          environment: dict[str, str]) -> Optional[dict[str, Any]]:
    """Publish the frames to the node in `node_process` and measure its answers."""
    import rclpy
    from rclpy.context import Context

    from depth_estimation.tools.processes import applied_environment

    context = Context()
    # The node's DDS profile and domain, here too; Fast DDS reads the profile when this process's
    # participant is made, with its first node.
    with applied_environment(environment):
        rclpy.init(context=context, domain_id=int(environment['ROS_DOMAIN_ID']),
                   signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
        soak = SoakDriver(context, node_process)
    try:
        if not soak.spin_until(soak.node_is_up, args.timeout):
            print('error: the node did not come up', file=sys.stderr)
            return None
        return soak.run(args)
    finally:
        soak.close()
        rclpy.try_shutdown(context=context)
        context.destroy()


class SoakDriver:
    """This process's node, which drives the soak.

    It publishes the sample frames, times the depth answers and keeps the node's diagnostics.
    """

    def __init__(self, context: Any, node_process: subprocess.Popen) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import qos_profile_sensor_data
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import CameraInfo, Image

        from depth_estimation.ros.conversions import camera_info_from_dict, rgb_to_image
        from depth_estimation.samples import load_samples

        self.node_process = node_process
        self.frames = [(rgb_to_image(s.rgb), camera_info_from_dict(s.camera_info))
                       for s in load_samples()]
        self.driver = rclpy.create_node('depth_estimation_soak', context=context)
        self.image_publisher = self.driver.create_publisher(Image, 'image',
                                                            qos_profile_sensor_data)
        self.info_publisher = self.driver.create_publisher(CameraInfo, 'camera_info',
                                                           qos_profile_sensor_data)
        self.sent_at: dict[tuple[int, int], float] = {}
        self.answers: list[tuple[float, float]] = []  # (receive time, latency) seconds
        self.diagnostics: list[dict[str, str]] = []
        self.driver.create_subscription(Image, 'depth/image', self._on_depth, 10)
        self.driver.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics,
                                        10)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.driver)

    def _on_depth(self, message: Any) -> None:
        now = time.perf_counter()
        sent = self.sent_at.pop((message.header.stamp.sec, message.header.stamp.nanosec), None)
        if sent is not None:
            self.answers.append((now, now - sent))

    def _on_diagnostics(self, message: Any) -> None:
        for status in message.status:
            if status.name.endswith(': depth'):
                self.diagnostics.append({v.key: v.value for v in status.values})

    def node_is_up(self) -> bool:
        return self.image_publisher.get_subscription_count() > 0 and \
            self.driver.count_publishers('depth/image') > 0

    def spin_until(self, predicate: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline or self.node_process.poll() is not None:
                return False
            self.executor.spin_once(timeout_sec=0.005)
        return True

    def publish(self, index: int) -> None:
        image, info = self.frames[index % len(self.frames)]
        stamp = self.driver.get_clock().now().to_msg()
        image.header.stamp = info.header.stamp = stamp
        image.header.frame_id = info.header.frame_id = 'camera_color_optical_frame'
        self.info_publisher.publish(info)
        self.sent_at[(stamp.sec, stamp.nanosec)] = time.perf_counter()
        self.image_publisher.publish(image)

    def run(self, args: argparse.Namespace) -> dict[str, Any]:
        """Send `args.frames` frames; sample the node's memory; wait for the last answers."""
        memory: list[tuple[float, int]] = []  # (seconds since start, bytes)
        warm_up_frames = int(args.frames * args.warm_up)
        warm_up_time: Optional[float] = None
        start = time.perf_counter()
        next_sample = start
        period = 1.0 / args.rate if args.rate > 0 else 0.0
        for index in range(args.frames):
            self.publish(index)
            if args.closed_loop:
                answered = len(self.answers)
                self.spin_until(lambda: len(self.answers) > answered, args.timeout)
            self.executor.spin_once(timeout_sec=0)
            now = time.perf_counter()
            if index == warm_up_frames:
                warm_up_time = now - start
            if now >= next_sample:
                rss = read_rss_bytes(self.node_process.pid)
                if rss is not None:
                    memory.append((now - start, rss))
                next_sample = now + 0.25
                if len(self.sent_at) > 1000:  # forget frames the node dropped
                    for key in sorted(self.sent_at)[:-100]:
                        self.sent_at.pop(key)
            if period:
                delay = start + (index + 1) * period - time.perf_counter()
                if delay > 0:
                    self.spin_until(lambda: False, delay)
        sending = time.perf_counter() - start
        last = self.frames[(args.frames - 1) % len(self.frames)][0].header.stamp
        self.spin_until(lambda: (last.sec, last.nanosec) not in self.sent_at, args.timeout)
        self.spin_until(lambda: False, 1.5)  # one more diagnostics message
        elapsed = time.perf_counter() - start
        rss = read_rss_bytes(self.node_process.pid)
        if rss is not None:
            memory.append((elapsed, rss))
        image = self.frames[0][0]
        return {'frames_sent': args.frames, 'sending_s': sending, 'elapsed_s': elapsed,
                'answers': self.answers, 'start': start, 'memory': memory,
                'warm_up_s': warm_up_time if warm_up_time is not None else 0.0,
                'diagnostics': self.diagnostics[-1] if self.diagnostics else {},
                'image_size': f'{image.height}x{image.width}',
                'closed_loop': args.closed_loop, 'rate': args.rate}

    def close(self) -> None:
        self.executor.shutdown()
        self.driver.destroy_node()


def report(result: dict[str, Any], output: Path) -> None:
    answers = result.pop('answers')
    memory = result.pop('memory')
    start = result.pop('start')
    latencies = np.array([latency for _, latency in answers]) * 1e3  # ms
    figures: dict[str, Any] = dict(result)
    figures['frames_answered'] = len(answers)
    figures['send_rate_hz'] = result['frames_sent'] / result['sending_s']
    figures['throughput_hz'] = len(answers) / result['elapsed_s']
    if latencies.size:
        for q in (50, 90, 99):
            figures[f'latency_p{q}_ms'] = float(np.percentile(latencies, q))
        figures['latency_max_ms'] = float(latencies.max())
    after = [rss for t, rss in memory if t >= result['warm_up_s']]
    if after:
        figures['rss_after_warm_up_mb'] = after[0] / 2**20
        figures['rss_end_mb'] = after[-1] / 2**20
        figures['rss_peak_mb'] = max(rss for _, rss in memory) / 2**20
        figures['rss_growth_after_warm_up'] = (after[-1] - after[0]) / after[0]
    node = result.get('diagnostics', {})
    print(f'soak: {figures["frames_sent"]} frames {result["image_size"]} sent in '
          f'{result["sending_s"]:.1f} s ({figures["send_rate_hz"]:.1f} Hz'
          f'{", closed loop" if result["closed_loop"] else ""}); '
          f'{len(answers)} answered, throughput {figures["throughput_hz"]:.2f} Hz')
    if latencies.size:
        print(f'end-to-end latency ms: p50 {figures["latency_p50_ms"]:.1f}, p90 '
              f'{figures["latency_p90_ms"]:.1f}, p99 {figures["latency_p99_ms"]:.1f}, max '
              f'{figures["latency_max_ms"]:.1f}')
    if node:
        dropped = node.get('frames dropped (newer frame won)')
        received = int(node.get('frames received', 0))
        figures['node'] = node
        figures['lost_before_the_node'] = figures['frames_sent'] - received
        print(f'node: received {node.get("frames received")}, processed '
              f'{node.get("frames processed")}, dropped {dropped}, skipped '
              f'{node.get("frames skipped")}; latency p50 {node.get("latency p50 (ms)")} ms, p99 '
              f'{node.get("latency p99 (ms)")} ms; inference p50 {node.get("inference p50 (ms)")}'
              ' ms')
        print(f'lost before the node (best-effort transport, subscriber queue of 5): '
              f'{figures["lost_before_the_node"]}')
    if after:
        growth = figures['rss_growth_after_warm_up']
        verdict = 'PASS' if growth < GROWTH_TARGET else 'FAIL'
        print(f'node RSS MB: {figures["rss_after_warm_up_mb"]:.1f} after warm-up, '
              f'{figures["rss_end_mb"]:.1f} at the end, peak {figures["rss_peak_mb"]:.1f}; '
              f'growth after warm-up {growth * 100:+.2f} % ({verdict}, target < '
              f'{GROWTH_TARGET * 100:.0f} %)')
    (output / 'soak.json').write_text(json.dumps(figures, indent=2) + '\n')
    plot(output / 'soak.png', memory, [(t - start, lat) for t, lat in answers],
         result['warm_up_s'])
    print(f'wrote {output / "soak.json"} and {output / "soak.png"}')


def plot(path: Path, memory: list[tuple[float, int]], latencies: list[tuple[float, float]],
         warm_up_s: float) -> None:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    if memory:
        top.plot([t for t, _ in memory], [rss / 2**20 for _, rss in memory])
    top.axvline(warm_up_s, color='grey', linestyle='--', label='end of warm-up')
    top.set_ylabel('node RSS (MB)')
    top.legend()
    if latencies:
        bottom.plot([t for t, _ in latencies], [lat * 1e3 for _, lat in latencies], '.',
                    markersize=3)
    bottom.set_ylabel('latency (ms)')
    bottom.set_xlabel('time since the first frame (s)')
    figure.suptitle('depth_estimation_node soak')
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


if __name__ == '__main__':
    sys.exit(main())
