"""Run one node as a process: SIGINT and SIGTERM always stop it cleanly (even when inherited as
ignored from a background shell), and bad `--ros-args` give one error line, not a traceback."""

from __future__ import annotations

from contextlib import contextmanager
import re
import signal
import sys
from typing import Any, Callable, Iterator, Optional, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
import rclpy.logging
from rclpy.signals import SignalHandlerOptions

ARGUMENTS_HELP = 'usage: --ros-args -p name:=value -r from:=to --params-file FILE'


def argument_error(error: Exception) -> str:
    """rcl's message for bad `--ros-args` without its prefix and C source locations."""
    text = re.sub(r', at \S+:\d+', '', str(error))
    return text.replace('failed to initialize rcl: ', '').strip()


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
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
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
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        yield executor
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if summary is not None:
            node.get_logger().info(summary())
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()


__all__ = ['argument_error', 'interrupt_on_signals', 'run_node', 'shut_down_after']
