"""Package layout and style: package.xml, entry points, layering, flake8."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest

from conftest import REPO_ROOT

pytestmark = pytest.mark.linter


def test_package_xml_is_format_3_ament_python_with_runtime_dependencies() -> None:
    root = ElementTree.parse(REPO_ROOT / 'package.xml').getroot()
    assert root.get('format') == '3' and root.findtext('name') == 'depth_estimation'
    assert root.find('export/build_type').text == 'ament_python'
    exec_depends = {e.text for e in root.findall('exec_depend')}
    assert exec_depends >= {'rclpy', 'sensor_msgs', 'std_msgs', 'diagnostic_msgs', 'python3-numpy',
                            'python3-opencv', 'python3-yaml'}
    assert {'ament_flake8', 'ament_pep257', 'python3-pytest'} <= {
        e.text for e in root.findall('test_depend')}


def test_console_scripts_and_data_files_are_declared() -> None:
    setup = (REPO_ROOT / 'setup.py').read_text()
    assert "'depth_estimation_node = depth_estimation.ros.node:main'" in setup
    assert "'depth-estimation = depth_estimation.tools.cli:main'" in setup
    assert 'install_scripts=$base/lib/depth_estimation' in (REPO_ROOT / 'setup.cfg').read_text()
    assert (REPO_ROOT / 'resource' / 'depth_estimation').is_file()


def test_layers_point_one_way() -> None:
    """Only depth_estimation/ros imports rclpy or ROS messages; nothing imports training/."""
    ros_import = re.compile(r'^\s*(import|from)\s+(rclpy|sensor_msgs|std_msgs|diagnostic_msgs)\b',
                            re.MULTILINE)
    training_import = re.compile(r'^\s*(import|from)\s+training\b', re.MULTILINE)
    package = REPO_ROOT / 'depth_estimation'
    for path in package.rglob('*.py'):
        text = path.read_text()
        assert not training_import.search(text), f'{path} imports training/'
        if path.relative_to(package).parts[0] != 'ros':
            assert not ros_import.search(text), f'{path} imports ROS outside depth_estimation/ros'


def test_flake8() -> None:
    targets = [p for p in ('depth_estimation', 'test', 'training', 'launch', 'setup.py')
               if (REPO_ROOT / p).exists()]
    result = subprocess.run([sys.executable, '-m', 'flake8', *targets], cwd=REPO_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
