"""mypy over the TensorRT code, against tensorrt-stubs: the only check that code gets on CI.

The TensorRT builder cannot be installed on CI, so the builder (`export/tensorrt_build.py`),
the backend and their shared helpers are type-checked against the TensorRT 10.13 Python API
stubs (installed by the Makefile with `--no-deps`). The stubs ship as a bare `tensorrt/` folder
without the PEP 561 marker mypy needs, and with three syntax errors (a parameter named `in`, a
parameter without default after defaults): the test copies them into a temporary stub folder,
repairs exactly those lines, and points MYPYPATH at it. A second test proves the stubs are in
effect: TensorRT 8 binding-index calls must be reported.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT

pytestmark = pytest.mark.linter
STUB_PACKAGES = ('tensorrt', 'tensorrt_bindings')
# (pattern, replacement, expected count) per defect of tensorrt-stubs 10.13.0.35.1
STUB_REPAIRS = (
    (r'(?<=[(,] )in(?=: )|(?<=\()in(?=: )', 'in_', 4),
    (r'power: Weights = None, channel_axis: int\)', 'power: Weights = None, '
     'channel_axis: int = ...)', 1),
)


def _installed_stub_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        if (Path(location) / '__init__.pyi').is_file():
            return Path(location)
    pytest.fail(f'tensorrt-stubs is not installed (no {package}/__init__.pyi): `make env` '
                'installs it with --no-deps (pip install --no-deps tensorrt-stubs==10.13.0.35.1)')


@pytest.fixture(scope='module')
def stub_path(tmp_path_factory) -> Path:
    """A stub folder holding the repaired tensorrt and tensorrt_bindings stubs."""
    root = tmp_path_factory.mktemp('stubs')
    counts = [0] * len(STUB_REPAIRS)
    for package in STUB_PACKAGES:
        target = root / package
        target.mkdir()
        for stub in _installed_stub_dir(package).glob('*.pyi'):
            text = stub.read_text()
            for index, (pattern, replacement, _) in enumerate(STUB_REPAIRS):
                text, count = re.subn(pattern, replacement, text)
                counts[index] += count
            (target / stub.name).write_text(text)
    expected = [count for _, _, count in STUB_REPAIRS]
    assert counts == expected, (f'the stub repairs changed {counts} places, expected {expected}: '
                                'a new tensorrt-stubs version? update STUB_REPAIRS')
    return root


def _mypy(stub_path: Path, cache: Path, *paths: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, 'MYPYPATH': str(stub_path)}
    return subprocess.run([sys.executable, '-m', 'mypy', '--cache-dir', str(cache), *paths],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_tensorrt_code_type_checks_against_the_stubs(stub_path, tmp_path_factory) -> None:
    result = _mypy(stub_path, tmp_path_factory.mktemp('mypy_cache'))  # files from setup.cfg
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'no issues found in 4 source files' in result.stdout


def test_mypy_rejects_the_removed_tensorrt_8_binding_api(stub_path, tmp_path_factory) -> None:
    probe = tmp_path_factory.mktemp('probe') / 'trt8_probe.py'
    probe.write_text(
        'import tensorrt as trt\n\n\n'
        'def run(engine: trt.ICudaEngine, context: trt.IExecutionContext) -> None:\n'
        '    engine.get_binding_name(0)\n'
        '    context.execute_async_v2([0], 0)\n')
    result = _mypy(stub_path, tmp_path_factory.mktemp('mypy_cache'), str(probe))
    assert result.returncode == 1, result.stdout + result.stderr
    assert '"ICudaEngine" has no attribute "get_binding_name"' in result.stdout
    assert '"IExecutionContext" has no attribute "execute_async_v2"' in result.stdout
