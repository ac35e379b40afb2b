"""Launch file, parameters YAML and RViz config: checked statically here, and through ROS 2 launch
itself where it is installed (it has no PyPI wheel, so that test skips in the pip environment)."""

from __future__ import annotations

import ast
import importlib.util
import os
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT
from depth_estimation.ros.outputs import OUTPUT_STAGES
from depth_estimation.ros.parameters import LIFECYCLE_PARAMETERS, PARAMETERS, parameters_yaml

LAUNCH_FILE = REPO_ROOT / 'launch' / 'depth_estimation.launch.py'
PARAMS_FILE = REPO_ROOT / 'config' / 'depth_estimation.yaml'
RVIZ_FILE = REPO_ROOT / 'config' / 'depth_estimation.rviz'
REQUIRED_ARGUMENTS = {'namespace', 'params_file', 'model_path', 'camera', 'image', 'camera_info',
                      'use_rviz', 'use_lifecycle', 'autostart'}


def _call_name(node: ast.Call) -> str:
    return node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, 'attr', '')


def _keywords(node: ast.Call) -> dict[str, ast.expr]:
    return {keyword.arg: keyword.value for keyword in node.keywords}


def launch_ast() -> list[ast.Call]:
    tree = ast.parse(LAUNCH_FILE.read_text(), filename=str(LAUNCH_FILE))
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def test_every_launch_argument_is_declared_with_a_description() -> None:
    calls = launch_ast()
    declared = {}
    for call in calls:
        if _call_name(call) == 'DeclareLaunchArgument':
            name = ast.literal_eval(call.args[0])
            description = ast.literal_eval(_keywords(call)['description'])
            assert len(description) > 15, name
            assert name not in declared, f'{name} declared twice'
            declared[name] = _keywords(call)
    assert REQUIRED_ARGUMENTS <= set(declared)
    assert 'choices' in declared['camera'], 'camera is restricted to the known drivers'
    used = {ast.literal_eval(call.args[0]) for call in calls
            if _call_name(call) == 'LaunchConfiguration'}
    assert used == set(declared), 'every LaunchConfiguration is declared and used'


def test_camera_drivers_and_node_executables() -> None:
    source = LAUNCH_FILE.read_text()
    module = ast.parse(source)
    drivers = next(ast.literal_eval(node.value) for node in module.body
                   if isinstance(node, ast.Assign) and node.targets[0].id == 'CAMERA_DRIVERS')
    assert set(drivers) == {'none', 'v4l2_camera', 'usb_cam'}
    executables = {ast.literal_eval(_keywords(call)['executable']) for call in launch_ast()
                   if _call_name(call) == 'Node'}
    assert {'v4l2_camera_node', 'usb_cam_node_exe', 'rviz2'} <= executables
    setup = (REPO_ROOT / 'setup.py').read_text()
    for executable in ('depth_estimation_node', 'depth_estimation_lifecycle_node'):
        assert executable in executables
        assert f"'{executable} = " in setup, f'{executable} is not a console script'


def test_params_yaml_lists_every_parameter_with_its_default() -> None:
    content = yaml.safe_load(PARAMS_FILE.read_text())
    (node_key, block), = content.items()
    assert node_key.endswith('depth_estimation_node')
    values = block['ros__parameters']
    specs = {spec.name: spec for spec in PARAMETERS + LIFECYCLE_PARAMETERS}
    assert set(values) == set(specs)
    for name, value in values.items():
        default = specs[name].default
        assert type(value) is type(default) and value == default, name  # floats as floats


def test_params_yaml_is_what_the_settings_dataclasses_generate() -> None:
    assert PARAMS_FILE.read_text() == parameters_yaml(), (
        'config/depth_estimation.yaml is stale: run `python -m depth_estimation.ros.parameters`')


def test_rviz_shows_image_depth_and_cloud_on_the_node_topics() -> None:
    config = yaml.safe_load(RVIZ_FILE.read_text())
    displays = config['Visualization Manager']['Displays']
    topics = {display['Topic']['Value']: display['Class'] for display in displays}
    assert topics['/image'] == 'rviz_default_plugins/Image'
    assert topics['/depth/image'] == 'rviz_default_plugins/Image'
    assert topics['/points'] == 'rviz_default_plugins/PointCloud2'
    published = {'/' + topic for stage in OUTPUT_STAGES for topic, _ in stage.topics}
    assert set(topics) - {'/image'} <= published
    by_topic = {display['Topic']['Value']: display for display in displays}
    assert by_topic['/depth/image']['Topic']['Reliability Policy'] == 'Reliable'
    assert by_topic['/image']['Topic']['Reliability Policy'] == 'Best Effort'  # camera QoS


def test_launch_description_with_ros2_launch(tmp_path: Path, monkeypatch) -> None:
    for module in ('launch_ros', 'ament_index_python', 'launch'):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f'ROS 2 `{module}` is not installed (no PyPI wheel; it comes with a ROS 2 '
                        'install): the launch file is checked statically by the tests above')
    # A minimal ament prefix holding this package, so get_package_share_directory finds it.
    prefix = tmp_path / 'install'
    index = prefix / 'share' / 'ament_index' / 'resource_index' / 'packages'
    index.mkdir(parents=True)
    (index / 'depth_estimation').write_text('')
    (prefix / 'share' / 'depth_estimation').symlink_to(REPO_ROOT, target_is_directory=True)
    monkeypatch.setenv('AMENT_PREFIX_PATH', os.pathsep.join(
        [str(prefix)] + [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep)
                         if p]))
    spec = importlib.util.spec_from_file_location('depth_estimation_launch', LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from launch import LaunchContext

    description = module.generate_launch_description()
    arguments = {argument.name: argument for argument in description.get_launch_arguments()}
    assert REQUIRED_ARGUMENTS <= set(arguments)
    assert all(argument.description for argument in arguments.values())
    assert Path(arguments['params_file'].default_value[0].perform(LaunchContext())) == (
        prefix / 'share' / 'depth_estimation' / 'config' / 'depth_estimation.yaml')
