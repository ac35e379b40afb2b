"""Run one node as a process: SIGINT and SIGTERM always stop it cleanly (even when inherited as
ignored from a background shell), and bad `--ros-args` give one error line, not a traceback.

The workbench's ROS programs (player, recorder, simulated camera, demo) start, spin and stop
their nodes and choose their QoS through these functions, so that only this package imports
rclpy.
"""

from __future__ import annotations

from contextlib import contextmanager
import importlib
import re
import signal
import sys
from typing import Any, Callable, Iterator, Optional, Sequence

import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
import rclpy.logging
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rclpy.utilities import get_default_context, remove_ros_args

SENSOR_DATA_QOS = qos_profile_sensor_data  # best effort, keep last 5: what camera drivers use

ARGUMENTS_HELP = 'usage: --ros-args -p name:=value -r from:=to --params-file FILE'


def argument_error(error: Exception) -> str:
    """rcl's message for bad `--ros-args` without its prefix and C source locations."""
    text = re.sub(r', at \S+:\d+', '', str(error))
    return text.replace('failed to initialize rcl: ', '').strip()


def program_arguments(program: str, argv: Sequence[str]) -> list[str]:
    """`argv` without its ROS arguments (`--ros-args ... --`), for the program's own parser."""
    return remove_ros_args([program, *argv])[1:]


def start_node(name: str, args: Optional[Sequence[str]] = None, domain_id: Optional[int] = None,
               own_context: bool = False) -> Node:
    """rclpy started with `args` (a program name, then its arguments; rcl reads `--ros-args`)
    and without its signal handlers, and a plain node `name` on it. With `own_context`, the node
    gets a context of its own (in `domain_id`), which `stop_node` destroys."""
    context = Context() if own_context else None
    _init(args, context, domain_id)
    return create_node(name, context)


def _init(args: Optional[Sequence[str]], context: Optional[Context] = None,
          domain_id: Optional[int] = None) -> None:
    """rclpy.init without rclpy's signal handlers (`interrupt_on_signals` takes SIGINT/SIGTERM)."""
    rclpy.init(args=None if args is None else list(args), context=context, domain_id=domain_id,
               signal_handler_options=SignalHandlerOptions.NO)


def create_node(name: str, context: Optional[Context] = None) -> Node:
    """A plain node `name` on a started context (the default one when None); it takes the
    parameters and remappings of the process's `--ros-args`."""
    return rclpy.create_node(name, context=context)


def node_executor(node: Node) -> SingleThreadedExecutor:
    """A single-threaded executor spinning `node` (on the node's context)."""
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    return executor


def stop_node(node: Node, executor: Optional[SingleThreadedExecutor] = None) -> None:
    """Shut `executor` down, destroy `node` and shut its context down (a context of its own is
    also destroyed, which frees its DDS participant now rather than at garbage collection)."""
    context = node.context
    if executor is not None:
        executor.shutdown()
    node.destroy_node()
    rclpy.try_shutdown(context=context)
    if context is not get_default_context():
        context.destroy()


def qos_profile(reliable: bool, depth: int) -> QoSProfile:
    """Keep the last `depth` messages, reliable or best effort."""
    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE if reliable
                      else ReliabilityPolicy.BEST_EFFORT)


def publishers_reliable(node: Node, topic: str) -> bool:
    """True when `topic` has publishers and all of them are reliable (a reliable subscription
    then loses nothing; best effort matches every publisher)."""
    publishers = node.get_publishers_info_by_topic(topic)
    return bool(publishers) and all(
        p.qos_profile.reliability == ReliabilityPolicy.RELIABLE for p in publishers)


def message_class(type_name: str) -> type:
    """The message class of a ROS type name as the graph gives it ('sensor_msgs/msg/Image')."""
    package, kind, name = type_name.split('/')
    return getattr(importlib.import_module(f'{package}.{kind}'), name)


def interrupt_on_signals() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt instead of shutting the context down under
    the executor, so a process can still log its summary and close what it opened. Set
    explicitly: a process started with SIGINT ignored (a background job of a shell) keeps it
    ignored otherwise."""
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.default_int_handler)


def run_node(make_node: Callable[[], Any], name: str, refused: type[Exception],
             args: Optional[Sequence[str]] = None, refused_status: int = 1,
             keep_spinning: Callable[[Any], bool] = lambda node: True,
             summary: Optional[Callable[[Any], str]] = None) -> int:
    """Start rclpy, build the node with `make_node` and spin it until SIGINT or SIGTERM (or until
    `keep_spinning(node)` is False); `summary(node)` is logged at the end.

    Returns the exit status: 0 after a clean stop, `refused_status` when `make_node` raised
    `refused` (logged as one error), 2 for arguments rcl cannot parse.
    """
    try:  # rcl parses --ros-args here; a bad one raises its RCLError
        _init(args)
    except Exception as error:  # noqa: B902 (rclpy's RCLError is not public)
        print(f'{name}: invalid arguments: {argument_error(error)} ({ARGUMENTS_HELP})',
              file=sys.stderr)
        return 2
    interrupt_on_signals()
    try:
        node = make_node()
    except (refused, KeyboardInterrupt) as error:  # refused, or stopped while it started
        if isinstance(error, refused):
            rclpy.logging.get_logger(name).error(str(error))
        rclpy.try_shutdown()
        return refused_status if isinstance(error, refused) else 0
    with shut_down_after(node, summary and (lambda: summary(node))) as executor:
        while rclpy.ok() and keep_spinning(node):  # short waits: KeyboardInterrupt comes promptly
            executor.spin_once(timeout_sec=0.1)
    return 0


@contextmanager
def shut_down_after(node: Any, summary: Optional[Callable[[], str]] = None
                    ) -> Iterator[SingleThreadedExecutor]:
    """An executor of `node` for the block, which Ctrl-C or an external shutdown end quietly.

    After the block, however it ends, `summary()` is logged (when given) and the executor, the
    node and rclpy are shut down.
    """
    interrupt_on_signals()
    executor = node_executor(node)
    try:
        yield executor
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if summary is not None:
            node.get_logger().info(summary())
        stop_node(node, executor)


__all__ = ['SENSOR_DATA_QOS', 'argument_error', 'create_node', 'interrupt_on_signals',
           'message_class', 'node_executor', 'program_arguments', 'publishers_reliable',
           'qos_profile', 'run_node', 'shut_down_after', 'start_node', 'stop_node']
