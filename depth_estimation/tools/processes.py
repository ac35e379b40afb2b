"""Child processes on one machine: loopback DDS environment, console scripts, logged children."""

from __future__ import annotations

from contextlib import contextmanager
import importlib.resources
import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import time
from typing import Iterator, Mapping, Optional

# The workbench's domains: 101..200, clear of the test suite's 1..100 (test/ros_graph.py).
FIRST_DOMAIN_ID = 101
DDS_VARIABLES = ('FASTDDS_DEFAULT_PROFILES_FILE', 'ROS_DOMAIN_ID')


def loopback_dds_profile() -> Path:
    """The Fast DDS profile (package data) keeping all traffic on 127.0.0.1 and shared memory."""
    resource = importlib.resources.files('depth_estimation') / 'resources' / 'dds' / \
        'fastdds_loopback.xml'
    path = Path(str(resource))
    if not path.is_file():
        raise FileNotFoundError(f'{path} is missing: the package is installed without its DDS '
                                'profile')
    return path


def ros_environment() -> dict[str, str]:
    """This process's environment set up for loopback-only ROS 2: Fast DDS reads the loopback
    profile; `ROS_DOMAIN_ID` is the one already set, else one of 101..200 from the process id."""
    environment = dict(os.environ)
    environment['FASTDDS_DEFAULT_PROFILES_FILE'] = str(loopback_dds_profile())
    environment.setdefault('ROS_DOMAIN_ID', str(FIRST_DOMAIN_ID + os.getpid() % 100))
    environment.setdefault('PYTHONUNBUFFERED', '1')
    return environment


@contextmanager
def applied_environment(environment: Mapping[str, str]) -> Iterator[None]:
    """Within the block, this process has `environment`'s DDS profile and ROS_DOMAIN_ID.

    Fast DDS reads its profile when the first node of an rclpy context is created: create it here.
    """
    saved = {name: os.environ.get(name) for name in DDS_VARIABLES}
    try:
        for name in DDS_VARIABLES:
            os.environ[name] = environment[name]
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def executable(name: str) -> str:
    """A console script of this package: beside this Python, else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise FileNotFoundError(f'{name} is not installed (pip install -e .)')
    return found


class Process:
    """A child process logging to a file; stopped with SIGTERM (our nodes exit cleanly on it)."""

    def __init__(self, name: str, command: list[str], log: Path,
                 environment: Mapping[str, str]) -> None:
        self.name = name
        self.log = log
        self._stream = open(log, 'w')  # noqa: SIM115 - closed in stop()
        self.launched = time.monotonic()
        self.process = subprocess.Popen(command, env=dict(environment), stdout=self._stream,
                                        stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 15) -> str:
        self._stream.flush()
        text = self.log.read_text(errors='replace').splitlines()
        return '\n'.join(text[-lines:])

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._stream.close()


def first_failure(processes: list[Process]) -> Optional[str]:
    """Why the first of `processes` that has exited did so (None while all run)."""
    for process in processes:
        if not process.alive():
            return (f'{process.name} exited with code {process.process.returncode}; the end of '
                    f'{process.log}:\n{process.tail()}')
    return None
