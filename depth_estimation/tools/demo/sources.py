"""The demo's sources: what feeds the node, and the processes that publish it."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from depth_estimation.tools.processes import executable

SOURCE_KINDS = ('sim', 'samples', 'topic', 'video', 'bag')
NODE_NAME = 'depth_estimation_demo_node'  # the node we start, renamed so no other one is taken


@dataclass(frozen=True)
class Source:
    """What feeds the node: a kind of SOURCE_KINDS and its argument (topic or path)."""

    kind: str
    argument: str = ''

    @classmethod
    def parse(cls, text: str) -> Source:
        kind, _, argument = text.partition(':')
        if kind not in SOURCE_KINDS:
            raise ValueError(f'unknown source {text!r}: expected sim, samples, topic:<name>, '
                             'video:<path> or bag:<path>')
        if kind in ('sim', 'samples'):
            if argument:
                raise ValueError(f'source {kind} takes no argument, got {text!r}')
            return cls(kind)
        if not argument:
            raise ValueError(f'source {kind} needs an argument: {kind}:<'
                             f'{"name" if kind == "topic" else "path"}>')
        if kind in ('video', 'bag') and not Path(argument).exists():
            raise FileNotFoundError(f'{kind} source {argument} does not exist')
        return cls(kind, argument)

    @property
    def image_topic(self) -> str:
        return self.argument if self.kind == 'topic' else 'image'

    @property
    def camera_info_topic(self) -> str:
        if self.kind != 'topic':
            return 'camera_info'
        namespace = self.argument.rpartition('/')[0]
        return f'{namespace}/camera_info' if namespace or self.argument.startswith('/') \
            else 'camera_info'

    @property
    def has_ground_truth(self) -> bool:
        return self.kind == 'sim'


def source_command(source: Source, args: argparse.Namespace) -> Optional[list[str]]:
    """The process that publishes the source's frames (None: this process or an outside one)."""
    if source.kind == 'sim':
        return [executable('depth_estimation_sim_camera'), '--ros-args',
                '-p', f'seed:={args.seed}', '-p', f'rate:={float(args.rate)}',
                '-p', f'frames_per_scene:={args.frames_per_scene}']
    if source.kind in ('video', 'bag'):
        command = [executable('depth_estimation_player'), str(source.argument), '--loop']
        if source.kind == 'video':
            command += ['--fps', str(float(args.rate))]
            command += (['--camera-info', str(args.camera_info)] if args.camera_info
                        else ['--horizontal-fov', str(float(args.horizontal_fov))])
        return command
    return None


def node_command(model: Path, source: Source, args: argparse.Namespace) -> list[str]:
    """The node's command line: renamed, on `model`, remapped to a topic source."""
    command = [executable('depth_estimation_node'), '--ros-args', '-r', f'__node:={NODE_NAME}',
               '-p', f'model_path:={model.resolve()}', '-p', f'num_threads:={args.num_threads}']
    if source.kind == 'topic':
        command += ['-r', f'image:={source.image_topic}',
                    '-r', f'camera_info:={source.camera_info_topic}']
    return command
