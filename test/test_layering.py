"""The packages of depth_estimation/ import each other only the way the README's diagram allows.

Every import statement of every module (module level and inside functions, absolute and
relative) is read with `ast`; each one that crosses from one part of the package to another is
an edge, and an edge that `ALLOWED` does not list fails the test with the file and line.
`training/` (outside the package) is checked the same way. A new package or module must be
placed in the table (and in the README's layout) before it can be imported.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, NamedTuple, Optional

import pytest

from conftest import REPO_ROOT

pytestmark = pytest.mark.linter

# Shared leaf modules: plain numpy / stdlib helpers any part may use; they import only each
# other (and never a package below).
LEAVES = frozenset({'geometry', 'processing', 'visualize', 'io', 'artifacts', 'samples', 'sizes',
                    'progress'})
# part -> the parts it may import, besides the leaves. The runtime is
# ros -> pipeline -> inference -> model; export, evaluation, datasets and sim sit beside it and
# lean on it; tools (the workbench) may use everything; nothing in the package imports tools or
# training.
ALLOWED = {
    'ros': {'pipeline', 'inference', 'model'},
    'pipeline': {'inference', 'model'},
    'inference': {'model'},
    'model': set(),
    'export': {'model', 'inference', 'pipeline'},
    'datasets': set(),
    'evaluation': {'datasets', 'inference', 'model'},
    'sim': {'datasets'},
    'tools': {'ros', 'pipeline', 'inference', 'model', 'export', 'datasets', 'evaluation', 'sim'},
    'training': {'model', 'datasets', 'evaluation', 'export'},  # release: export with provenance
    **{leaf: set() for leaf in LEAVES},
}
# Only ros/ imports ROS (rclpy, message packages): the workbench's ROS programs (player,
# recorder, simulated camera, demo) reach the graph through it (runner.py, camera_topics.py,
# conversions.py).
ROS_IMPORTERS = frozenset({'ros'})
ROS_MODULES = frozenset({'rclpy', 'sensor_msgs', 'std_msgs', 'diagnostic_msgs', 'lifecycle_msgs',
                         'rcl_interfaces', 'builtin_interfaces', 'launch', 'launch_ros'})


class Edge(NamedTuple):
    source: str  # the importing part
    target: str  # the imported part, or the top-level name of an outside module
    where: str  # path:line


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix('').parts)
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def part_of(module: str) -> Optional[str]:
    """depth_estimation.ros.node -> 'ros'; training.module -> 'training'; others None."""
    parts = module.split('.')
    if parts[0] == 'training':
        return 'training'
    if parts[0] != 'depth_estimation' or len(parts) < 2:
        return None
    return parts[1]


def imported_modules(path: Path) -> Iterator[tuple[str, int]]:
    """Every module `path` imports, fully qualified, with its line."""
    module = module_name(path)
    package = module.split('.') if path.name == '__init__.py' else module.split('.')[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = '.'.join(base + ([node.module] if node.module else []))
            yield target, node.lineno
            for alias in node.names:  # `from depth_estimation import geometry`
                yield f'{target}.{alias.name}', node.lineno


def import_edges() -> Iterator[Edge]:
    """Every import in depth_estimation/ and training/ that leaves its own part."""
    paths = sorted((REPO_ROOT / 'depth_estimation').rglob('*.py')) + \
        sorted((REPO_ROOT / 'training').rglob('*.py'))
    for path in paths:
        source = part_of(module_name(path))
        if source is None:  # depth_estimation/__init__.py
            continue
        where = f'{path.relative_to(REPO_ROOT)}'
        edges = {}  # one edge per part and line (`from a import b, c` names a, a.b and a.c)
        for target, line in imported_modules(path):
            target_part = part_of(target)
            if target_part is not None and target_part != source:
                edges[target_part, line] = Edge(source, target_part, f'{where}:{line}')
            elif target_part is None and target.split('.')[0] in ROS_MODULES:
                top_level = target.split('.')[0]
                edges[top_level, line] = Edge(source, top_level, f'{where}:{line}')
        yield from edges.values()


def known_parts() -> set[str]:
    package = REPO_ROOT / 'depth_estimation'
    return {path.stem for path in package.glob('*.py') if path.stem != '__init__'} | {
        path.name for path in package.iterdir() if (path / '__init__.py').is_file()}


def test_every_part_of_the_package_is_placed_in_the_table() -> None:
    unplaced = sorted(known_parts() - set(ALLOWED))
    assert not unplaced, (f'{unplaced} are not in test_layering.ALLOWED: place them in the '
                          'table and in the README\'s layout')


def test_imports_follow_the_allowed_edges() -> None:
    wrong = []
    for edge in import_edges():
        if edge.target in ROS_MODULES:
            if edge.source not in ROS_IMPORTERS:
                wrong.append(f'{edge.where}: {edge.source} imports ROS ({edge.target})')
        elif edge.target not in LEAVES | ALLOWED.get(edge.source, set()):
            wrong.append(f'{edge.where}: {edge.source} -> {edge.target}')
    assert not wrong, 'imports the layering does not allow:\n' + '\n'.join(wrong)


def test_nothing_in_the_package_imports_the_workbench_or_training() -> None:
    edges = [edge for edge in import_edges() if edge.target in ('tools', 'training')
             and edge.source not in ('tools', 'training')]
    assert not edges, edges


def test_the_check_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    path = REPO_ROOT / 'depth_estimation' / 'inference' / 'base.py'
    found = dict(imported_modules(path))
    assert any(name.startswith('depth_estimation.processing') for name in found)
    edges = list(import_edges())
    # The player imports ros/'s runner and camera topics inside functions.
    assert any(edge.source == 'tools' and edge.target == 'ros' for edge in edges)
    assert any(edge.source == 'ros' and edge.target == 'rclpy' for edge in edges)
    assert any(edge.source == 'ros' and edge.target == 'sensor_msgs' for edge in edges)
