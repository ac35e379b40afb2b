"""Package layout and style: package.xml, entry points, flake8 (the layering: test_layering)."""

from __future__ import annotations

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
                            'python3-opencv', 'python3-yaml', 'python3-onnxruntime-pip'}
    workbench = {'python3-torch', 'python3-onnx', 'python3-transformers', 'python3-matplotlib',
                 'python3-pybullet'}
    assert not exec_depends & workbench, 'a robot installs the runtime without the workbench'
    assert {'ament_flake8', 'ament_pep257', 'python3-pytest'} <= {
        e.text for e in root.findall('test_depend')}


def test_console_scripts_and_data_files_are_declared() -> None:
    setup = (REPO_ROOT / 'setup.py').read_text()
    assert "'depth_estimation_node = depth_estimation.ros.node:main'" in setup
    assert "'depth-estimation = depth_estimation.tools.cli:main'" in setup
    assert 'install_scripts=$base/lib/depth_estimation' in (REPO_ROOT / 'setup.cfg').read_text()
    assert (REPO_ROOT / 'resource' / 'depth_estimation').is_file()


def test_flake8() -> None:
    targets = [p for p in ('depth_estimation', 'test', 'training', 'benchmarks', 'launch',
                           'setup.py')
               if (REPO_ROOT / p).exists()]
    result = subprocess.run([sys.executable, '-m', 'flake8', *targets], cwd=REPO_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
