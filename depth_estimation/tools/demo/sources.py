"""The demo's sources: what feeds the node, and the processes that publish it."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from depth_estimation.tools.processes import executable

SOURCE_KINDS = ('sequence', 'sim', 'samples', 'topic', 'video', 'bag')
DEFAULT_RATE = 2.0  # frames per second of the sim, samples and video sources
NODE_NAME = 'depth_estimation_demo_node'  # the node we start, renamed so no other one is taken


@dataclass(frozen=True)
class Source:
    """What feeds the node: a kind of SOURCE_KINDS and its argument (topic or path)."""

    kind: str
    argument: str = ''  # topic, path or sequence name

    @classmethod
    def parse(cls, text: str) -> Source:
        from depth_estimation.datasets.sequences import DEMO_SEQUENCE, sequence_root

        kind, _, argument = text.partition(':')
        if kind not in SOURCE_KINDS:
            raise ValueError(f'unknown source {text!r}: expected sequence[:<name>], sim, samples, '
                             'topic:<name>, video:<path> or bag:<path>')
        if kind == 'sequence':
            sequence_root(argument or DEMO_SEQUENCE)  # a clear error naming the shipped ones
            return cls(kind, argument or DEMO_SEQUENCE)
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
        return self.kind in ('sim', 'sequence')

    @property
    def truth_topic(self) -> Optional[str]:
        """Where ground truth arrives (the simulator's); None: none, or this process has it."""
        return 'ground_truth/depth' if self.kind == 'sim' else None

    @property
    def published_here(self) -> bool:
        """This process publishes the frames (shipped sequence or samples)."""
        return self.kind in ('sequence', 'samples')

    def default_rate(self) -> float:
        """Frames per second when --rate is not given: a sequence's own, else DEFAULT_RATE."""
        if self.kind != 'sequence':
            return DEFAULT_RATE
        from depth_estimation.datasets.sequences import open_sequence

        return float(open_sequence(self.argument).metadata.get('frame_rate', DEFAULT_RATE))


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
