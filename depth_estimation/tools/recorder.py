"""`depth_estimation_recorder`: record the node's outputs to an MCAP rosbag2 (ros2 bag, Foxglove).

Each topic's schema is its full ROS 2 message definition (`ros2msg`, every nested type) with the
RIHS01 type hash, so `ros2 bag info/play` and Foxglove decode the bag without the message
packages. Messages are stored as received (serialized CDR, `raw` subscriptions), stamped with the
receive time. Subscriptions follow the publishers' reliability, as `ros2 bag record` does.

Example:
    depth_estimation_recorder -o runs/depth_bag --duration 30 \
        --topics depth/image depth/camera_info points /diagnostics --ros-args -r __ns:=/robot
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
import time
from typing import Any, Optional, Sequence

DEFAULT_TOPICS = ('depth/image', 'depth/camera_info', 'points', 'depth/image_raw',
                  'depth/colorized', 'image', 'camera_info', '/diagnostics')
QUEUE_DEPTH = 100


class McapRecorder:
    """Records topics into one MCAP rosbag2; `poll()` now and then subscribes to new topics."""

    def __init__(self, node: Any, output: Path, topics: Sequence[str]) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import get_typestore, Stores

        self.node = node
        self.output = Path(output)
        if self.output.exists():
            raise FileExistsError(f'{self.output} exists; rosbag2 writes a new folder')
        self.topics = {node.resolve_topic_name(topic): topic for topic in topics}
        self.typestore = get_typestore(Stores.ROS2_KILTED)
        self.writer = Writer(self.output, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        self.counts: dict[str, int] = {}
        self._connections: dict[str, Any] = {}
        self._subscriptions: list[Any] = []
        self._closed = False

    def poll(self) -> list[str]:
        """Subscribe to wanted topics that now have a publisher; returns the new ones."""
        from depth_estimation.ros.runner import message_class, publishers_reliable, qos_profile

        added = []
        for topic, types in self.node.get_topic_names_and_types():
            if topic not in self.topics or topic in self._connections or not types:
                continue
            type_name = types[0]
            if type_name not in self.typestore.fielddefs:
                self.node.get_logger().warning(f'not recording {topic}: type {type_name} is not '
                                               'in the ROS 2 Kilted type store')
                self._connections[topic] = None
                continue
            qos = qos_profile(publishers_reliable(self.node, topic), depth=QUEUE_DEPTH)
            connection = self.writer.add_connection(topic, type_name, typestore=self.typestore)
            self._connections[topic] = connection
            self.counts[topic] = 0
            self._subscriptions.append(self.node.create_subscription(
                message_class(type_name), topic,
                lambda data, topic=topic: self._write(topic, data), qos, raw=True))
            added.append(topic)
        return added

    def _write(self, topic: str, data: bytes) -> None:
        if self._closed:
            return
        self.writer.write(self._connections[topic], time.time_ns(), data)
        self.counts[topic] += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for subscription in self._subscriptions:
            self.node.destroy_subscription(subscription)
        self.writer.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='depth_estimation_recorder',
        description='Record depth_estimation_node outputs to an MCAP rosbag2 folder readable by '
                    'ros2 bag and Foxglove. ROS arguments go after --ros-args.')
    parser.add_argument('-o', '--output', type=Path, required=True,
                        help='rosbag2 folder to create (must not exist)')
    parser.add_argument('--topics', nargs='+', default=list(DEFAULT_TOPICS),
                        help=f'topics to record (default: {" ".join(DEFAULT_TOPICS)})')
    parser.add_argument('--duration', type=float, default=0.0,
                        help='stop after this many seconds (0: until Ctrl-C)')
    parser.add_argument('--max-messages', type=int, default=0,
                        help='stop after this many messages in all (0: no limit)')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    from depth_estimation.ros.runner import program_arguments, shut_down_after, start_node, \
        stop_node

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(program_arguments('recorder', argv))
    node = start_node('depth_estimation_recorder', ['recorder'] + argv)
    try:
        recorder = McapRecorder(node, args.output, args.topics)
    except (FileExistsError, OSError) as error:
        print(f'error: {error}', file=sys.stderr)
        stop_node(node)
        return 2

    def close_bag() -> str:  # the summary line
        recorder.close()
        counts = ', '.join(f'{topic} {count}' for topic, count in recorder.counts.items())
        return f'wrote {args.output}: {counts or "no messages"}'

    started = time.monotonic()
    next_poll = started
    with shut_down_after(node, close_bag) as executor:
        while node.context.ok():
            now = time.monotonic()
            if now >= next_poll:
                for topic in recorder.poll():
                    node.get_logger().info(f'recording {topic}')
                next_poll = now + 0.5
            if args.duration and now - started >= args.duration:
                break
            if args.max_messages and sum(recorder.counts.values()) >= args.max_messages:
                break
            executor.spin_once(timeout_sec=0.05)
    return 0


if __name__ == '__main__':
    sys.exit(main())
