"""The shipped Fast DDS profile lets many ROS processes on one machine find each other."""

from __future__ import annotations

from contextlib import ExitStack

import pytest
from ros_graph import ros_context, spin_until

from rclpy.executors import SingleThreadedExecutor  # noqa: I100
from rclpy.node import Node
from std_msgs.msg import String

pytestmark = pytest.mark.ros

PARTICIPANTS = 7  # more than Fast DDS's default initial-peers range of 4 participant ids


def test_the_last_of_many_participants_still_discover_each_other() -> None:
    with ExitStack() as stack:
        nodes = []
        for index in range(PARTICIPANTS):  # each context is one DDS participant, ids 0, 1, ...
            context = stack.enter_context(ros_context())
            nodes.append(Node(f'participant_{index}', context=context))
            stack.callback(nodes[-1].destroy_node)
        publisher = nodes[-2].create_publisher(String, 'profile_check', 10)
        received: list[str] = []
        subscription = nodes[-1].create_subscription(String, 'profile_check',
                                                     lambda m: received.append(m.data), 10)
        executor = SingleThreadedExecutor(context=nodes[-1].context)
        executor.add_node(nodes[-1])
        assert spin_until(executor, lambda: (publisher.get_subscription_count() >= 1
                                             and subscription.get_publisher_count() >= 1),
                          timeout=20.0), (
            f'participants {PARTICIPANTS - 2} and {PARTICIPANTS - 1} did not discover each other')

        def delivered() -> bool:
            publisher.publish(String(data='hello'))
            return spin_until(executor, lambda: bool(received), timeout=0.5)

        assert spin_until(executor, delivered, timeout=10.0)
        executor.shutdown()
