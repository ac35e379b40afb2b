"""The runtime (the node on an ONNX model) imports and runs with the workbench's libraries absent.

A robot installs only package.xml's dependencies. A child process blocks torch, transformers,
onnx, Lightning, pybullet and matplotlib with a meta-path finder, imports every module of
`depth_estimation.ros`, `depth_estimation.pipeline` and `depth_estimation.inference` (except the
PyTorch and TensorRT backends), opens the tiny model with ONNX Runtime, infers one frame and
starts the node on it. Any attempt to import a blocked library fails the test, with the module
that tried.
"""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO_ROOT

BLOCKED = ('torch', 'transformers', 'onnx', 'lightning', 'pytorch_lightning', 'pybullet',
           'matplotlib', 'tensorrt')
# Backends of the workbench or of other machines: they need what is blocked.
NOT_RUNTIME = ('depth_estimation.inference.torch_backend',
               'depth_estimation.inference.tensorrt_backend',
               'depth_estimation.inference.tensorrt_common')

CHILD = textwrap.dedent('''
    import importlib
    import importlib.abc
    import json
    import pkgutil
    import sys
    import traceback

    BLOCKED, NOT_RUNTIME, MODEL = json.loads(sys.argv[1])
    attempts = []


    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in BLOCKED:
                frames = [f'{frame.filename}:{frame.lineno}'
                          for frame in traceback.extract_stack()
                          if 'importlib' not in frame.filename]
                attempts.append({'module': name, 'from': frames[-1] if frames else '?'})
                raise ImportError(f'{name} is blocked: not a runtime dependency')
            return None


    sys.meta_path.insert(0, Blocker())
    imported = []
    for package_name in ('depth_estimation.ros', 'depth_estimation.pipeline',
                         'depth_estimation.inference'):
        try:
            package = importlib.import_module(package_name)
        except ModuleNotFoundError as error:
            if error.name == package_name:
                continue  # a package this checkout does not have
            raise
        for module in pkgutil.iter_modules(package.__path__, package_name + '.'):
            if module.name not in NOT_RUNTIME:
                importlib.import_module(module.name)
                imported.append(module.name)

    import numpy as np
    import rclpy
    from rclpy.context import Context
    from rclpy.parameter import Parameter

    from depth_estimation.inference import open_backend
    from depth_estimation.ros.node import DepthEstimationNode

    with open_backend(MODEL) as backend:
        depth = backend.infer(np.zeros((48, 64, 3), np.uint8))
    context = Context()
    rclpy.init(context=context)
    node = DepthEstimationNode(context=context,
                               parameter_overrides=[Parameter('model_path', value=MODEL)])
    node.destroy_node()
    rclpy.try_shutdown(context=context)
    context.destroy()
    print(json.dumps({'imported': imported, 'attempts': attempts,
                      'depth_shape': list(depth.shape)}))
''')


@pytest.mark.ros
def test_node_imports_and_runs_without_workbench_libraries(tiny_onnx: Path) -> None:
    from ros_graph import ros_environment

    result = subprocess.run(
        [sys.executable, '-c', CHILD, json.dumps([BLOCKED, NOT_RUNTIME, str(tiny_onnx)])],
        cwd=REPO_ROOT, env=ros_environment(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert not report['attempts'], f'the runtime tried to import {report["attempts"]}'
    assert 'depth_estimation.ros.node' in report['imported']
    assert 'depth_estimation.inference.onnxruntime_backend' in report['imported']
    assert report['depth_shape'] == [48, 64]
