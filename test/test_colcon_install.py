"""The package builds in a colcon workspace as ROS users build it, and the installed node runs.

The checkout's tracked files are copied to `<tmp>/ws/src/depth_estimation`; `colcon build` runs
there with this environment's Python and no ROS sourced (colcon-ros knows ament_python packages
from package.xml). The install tree must hold what `ros2 run` and `ros2 launch` look up, and
`install/setup.bash` must put the installed copy first: the node started from
`install/depth_estimation/lib/depth_estimation/` answers a frame from this process.
"""

from __future__ import annotations

import ast
from pathlib import Path
import shutil
import subprocess
import sys
import time

import pytest
from conftest import REPO_ROOT
from ros_graph import (Collector, interrupt, ros_context, ros_environment,
                       sample_frames, spin_until, stamped)

from rclpy.executors import SingleThreadedExecutor  # noqa: I100
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from depth_estimation.artifacts import DEFAULT_MODEL

pytestmark = [pytest.mark.ros, pytest.mark.slow]

PACKAGE = 'depth_estimation'
DEMO_MODEL = Path('resources') / 'models' / DEFAULT_MODEL


def console_scripts() -> list[str]:
    """The console script names setup.py declares, read from its source."""
    tree = ast.parse((REPO_ROOT / 'setup.py').read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == 'console_scripts':
                    return [entry.value.split('=')[0].strip() for entry in value.elts]
    raise AssertionError('setup.py declares no console_scripts')


@pytest.fixture(scope='module', params=['copied', 'symlinked'])
def workspace(request, tmp_path_factory) -> Path:
    """A colcon workspace with the package built and installed (`colcon build`, or with
    `--symlink-install` as developers build); its root."""
    if shutil.which('git') is None:
        pytest.skip('git is needed to list the tracked files')
    try:
        import colcon_ros  # noqa: F401
    except ImportError:
        pytest.skip('colcon-ros is not installed (requirements.txt pins it)')
    root = tmp_path_factory.mktemp('ws')
    source = root / 'src' / PACKAGE
    listing = subprocess.run(['git', 'ls-files', '-z'], cwd=REPO_ROOT, capture_output=True)
    if listing.returncode != 0:
        pytest.skip(f'{REPO_ROOT} is not a git checkout: the tracked files are unknown')
    tracked = listing.stdout.decode().split('\0')
    for name in filter(None, tracked):
        if (REPO_ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, source / name)
    command = [sys.executable, '-m', 'colcon', 'build', '--event-handlers', 'console_direct-']
    if request.param == 'symlinked':
        command.append('--symlink-install')
    result = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return root


def test_install_tree_holds_what_ros2_run_and_launch_look_up(workspace: Path) -> None:
    prefix = workspace / 'install' / PACKAGE
    share = prefix / 'share' / PACKAGE
    for script in console_scripts():
        assert (prefix / 'lib' / PACKAGE / script).is_file(), f'lib/{PACKAGE}/{script} missing'
    launch_files = sorted(path.name for path in (share / 'launch').glob('*.launch.py'))
    assert launch_files == sorted(path.name for path in (REPO_ROOT / 'launch').glob(
        '*.launch.py'))
    installed_config = sorted(path.name for path in (share / 'config').iterdir())
    assert installed_config == sorted(path.name for path in (REPO_ROOT / 'config').iterdir()
                                      if path.suffix in ('.yaml', '.xml', '.rviz'))
    assert (share / 'package.xml').read_text() == (REPO_ROOT / 'package.xml').read_text()
    marker = prefix / 'share' / 'ament_index' / 'resource_index' / 'packages' / PACKAGE
    assert marker.is_file()
    assert (workspace / 'install' / 'setup.bash').is_file()


def sourced(workspace: Path, command: str) -> list[str]:
    """`bash -c 'source install/setup.bash && <command>'` in the workspace, as a user runs it."""
    return ['bash', '-c', f'source install/setup.bash && {command}']


def test_setup_bash_puts_the_installed_package_first(workspace: Path) -> None:
    code = ('import depth_estimation; '
            'from ament_index_python.packages import get_package_share_directory; '
            'print(depth_estimation.__file__); print(get_package_share_directory('
            f'"{PACKAGE}"))')
    result = subprocess.run(sourced(workspace, f'{sys.executable} -c \'{code}\''),
                            cwd=workspace, env=ros_environment(), capture_output=True,
                            text=True, timeout=60, check=True)
    module_file, share = result.stdout.split()
    install = workspace / 'install' / PACKAGE
    # A symlink install imports build/depth_estimation, a link to the sources (setup.py develop).
    assert (Path(module_file).is_relative_to(install / 'lib')
            or Path(module_file).resolve().is_relative_to(workspace / 'src' / PACKAGE)), (
        module_file)
    assert Path(share) == install / 'share' / PACKAGE


def test_installed_node_answers_a_frame(workspace: Path) -> None:
    install = workspace / 'install' / PACKAGE
    models = list((install / 'lib').glob(f'python3*/site-packages/{PACKAGE}/{DEMO_MODEL}'))
    models += [workspace / 'src' / PACKAGE / PACKAGE / DEMO_MODEL] if not models else []
    assert models[0].is_file(), 'the demo model is not installed (package_data)'
    node = install / 'lib' / PACKAGE / 'depth_estimation_node'
    process = subprocess.Popen(
        sourced(workspace, f'exec {node} --ros-args -p model_path:={models[0]} '
                '-p num_threads:=1'),
        cwd=workspace, env=ros_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    try:
        with ros_context() as context:
            driver = Node('colcon_install_driver', context=context)
            image_publisher = driver.create_publisher(Image, 'image', 10)
            info_publisher = driver.create_publisher(CameraInfo, 'camera_info', 10)
            collector = Collector(driver, {'depth/image': Image})
            executor = SingleThreadedExecutor(context=context)
            executor.add_node(driver)
            assert spin_until(executor, lambda: (
                image_publisher.get_subscription_count() >= 1
                and collector.subscriptions[0].get_publisher_count() >= 1),
                timeout=60.0), 'the installed node did not come up'
            _, image, info = sample_frames('rgb8')[0]
            stamp_ns = 3_000_000_000
            image, info = stamped(image, info, stamp_ns, 'camera_optical_frame')
            deadline = time.monotonic() + 30.0
            # Best-effort input (sensor-data QoS): send the frame again until it is answered.
            while not collector.with_stamp('depth/image', stamp_ns) and (
                    time.monotonic() < deadline):
                info_publisher.publish(info)
                spin_until(executor, lambda: False, timeout=0.1)
                image_publisher.publish(image)
                spin_until(executor, lambda: bool(collector.with_stamp('depth/image', stamp_ns)),
                           timeout=2.0)
            answers = collector.with_stamp('depth/image', stamp_ns)
            executor.shutdown()
            driver.destroy_node()
        assert answers, 'no depth from the installed node within 30 s'
        assert answers[0].encoding == '32FC1'
        assert (answers[0].width, answers[0].height) == (image.width, image.height)
    finally:
        output = interrupt(process)
    assert process.returncode == 0, output
    assert 'frames processed' in output, output
