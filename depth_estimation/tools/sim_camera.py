"""`depth_estimation_sim_camera`: the simulated robot camera of `depth_estimation.sim` on ROS.

Publishes `image` (rgb8), `camera_info` (the renderer's own pinhole) and `ground_truth/depth`
(32FC1 z-depth in metres, NaN = nothing) with one header (stamp = render time, frame id = the
optical frame). camera_info and ground truth go out first, so a node that matches camera_info by
stamp has it when the image arrives. Each frame advances the robot by 1 / `rate` simulated
seconds whatever the rendering takes, so the motion per frame is the same on any machine (a slow
machine shows it in slow motion). The parameters are `DEFAULTS`, read once at start.

Example:
    depth_estimation_sim_camera --ros-args -p seed:=3 -p rate:=5.0 -r image:=/camera/image
"""

from __future__ import annotations

import sys
import time
from typing import Any, Optional, Sequence

from depth_estimation.ros.camera_topics import CameraTopics
from depth_estimation.ros.conversions import camera_info_from_intrinsics, rgb_to_image
from depth_estimation.ros.runner import create_node, qos_profile, run_node
from depth_estimation.sim.camera import CameraModel
from depth_estimation.sim.scenes import SimFrame, SimulatedCamera

NODE_NAME = 'sim_camera'
DEFAULTS: dict[str, Any] = {
    'seed': 1,  # room family (the demo model was trained on seed 0: seed 1 rooms are unseen)
    'first_scene': 0,  # index of the first room
    'frames_per_scene': 100,  # frames before the camera moves on to the next room
    'rate': 3.0,  # frames per second (the timer period; rendering bounds it from above)
    'width': 640,
    'height': 480,
    'vertical_fov': 58.0,  # degrees
    'frame_id': 'camera_color_optical_frame',  # REP 103 optical frame
    'publish_ground_truth': True,
    'reliability': 'reliable',  # QoS of all three publishers: reliable or best_effort
    'max_frames': 0,  # exit after this many frames (0: run until Ctrl-C)
}


class SimCamera:
    """On `node` (its parameters, publishers and a timer): renders the next frame on every timer
    tick and publishes it (see the module docstring). ValueError for a rejected parameter."""

    def __init__(self, node: Any) -> None:
        self.node = node
        values = {name: node.declare_parameter(name, default).value
                  for name, default in DEFAULTS.items()}
        if values['rate'] <= 0:
            raise ValueError(f'rate must be positive, got {values["rate"]}')
        if values['reliability'] not in ('reliable', 'best_effort'):
            raise ValueError(f'reliability must be reliable or best_effort, got '
                             f'{values["reliability"]!r}')
        self.frame_id = str(values['frame_id'])
        self.max_frames = int(values['max_frames'])
        camera = CameraModel(width=int(values['width']), height=int(values['height']),
                             vertical_fov_deg=float(values['vertical_fov']))
        self.camera = SimulatedCamera(seed=int(values['seed']),
                                      frames_per_scene=int(values['frames_per_scene']),
                                      interval=1.0 / float(values['rate']), camera=camera,
                                      first_scene=int(values['first_scene']))
        qos = qos_profile(values['reliability'] == 'reliable', depth=5)
        self.topics = CameraTopics(node, qos, truth_topic='ground_truth/depth'
                                   if values['publish_ground_truth'] else None)
        self.published = 0
        self._scene: Optional[int] = None
        self.timer = node.create_timer(1.0 / float(values['rate']), self._tick)
        node.get_logger().info(
            f'simulated camera {camera.width}x{camera.height}, {values["rate"]:g} Hz, seed '
            f'{values["seed"]}, {values["frames_per_scene"]} frames per room')

    @property
    def done(self) -> bool:
        return bool(self.max_frames) and self.published >= self.max_frames

    def _tick(self) -> None:
        if self.done:
            return
        started = time.perf_counter()
        frame = self.camera.next_frame()
        if frame.scene != self._scene:
            self._scene = frame.scene
            self.node.get_logger().info(f'room {frame.scene} (seed {self.camera.seed})')
        self.publish(frame, render_seconds=time.perf_counter() - started)

    def publish(self, frame: SimFrame, render_seconds: float = 0.0) -> int:
        """Publish one frame stamped now; returns its stamp (ns)."""
        stamp = self.topics.publish(rgb_to_image(frame.rgb, encoding='rgb8'),
                                    camera_info_from_intrinsics(frame.intrinsics),
                                    truth=frame.depth, frame_id=self.frame_id)
        self.published += 1
        self.node.get_logger().debug(f'{frame.name} rendered in {render_seconds * 1e3:.0f} ms')
        return stamp

    def close(self) -> None:
        """Free the renderer (the timer stops with the node)."""
        self.camera.close()


def main(args: Optional[Sequence[str]] = None) -> int:
    cameras: list[SimCamera] = []

    def make_node() -> Any:
        node = create_node(NODE_NAME)
        try:
            cameras.append(SimCamera(node))
        except ValueError:
            node.destroy_node()
            raise
        return node

    def summary(node: Any) -> str:  # the last line, then the room is freed
        cameras[0].close()
        return f'published {cameras[0].published} frames'

    # SIGINT/SIGTERM raise KeyboardInterrupt (as in the depth node), so the context is still
    # valid for the last log line and the room is freed.
    return run_node(make_node, 'depth_estimation_sim_camera', ValueError, args,
                    refused_status=2, keep_spinning=lambda node: not cameras[0].done,
                    summary=summary)


if __name__ == '__main__':
    sys.exit(main())
