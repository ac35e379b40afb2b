"""Launch depth_estimation_node with a params file, an optional namespace and topic remaps."""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    share_dir = get_package_share_directory('depth_estimation')
    params_file = LaunchConfiguration('params_file')
    namespace = LaunchConfiguration('namespace')
    model_path = LaunchConfiguration('model_path')
    image_topic = LaunchConfiguration('image')
    camera_info_topic = LaunchConfiguration('camera_info')

    return LaunchDescription([
        DeclareLaunchArgument(
            'params_file',
            default_value=os.path.join(share_dir, 'config', 'depth_estimation.yaml'),
            description='Full path to the ROS 2 parameters file of the node'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace of the node and of its relative topics'),
        DeclareLaunchArgument('model_path',
                              description='Model artifact (.onnx with its .onnx.json beside it)'),
        DeclareLaunchArgument('image', default_value='image',
                              description='Input colour image topic (sensor_msgs/Image)'),
        DeclareLaunchArgument('camera_info', default_value='camera_info',
                              description='CameraInfo topic of the input image'),
        Node(
            package='depth_estimation',
            executable='depth_estimation_node',
            name='depth_estimation_node',
            namespace=namespace,
            output='screen',
            parameters=[params_file, {'model_path': model_path}],
            remappings=[('image', image_topic), ('camera_info', camera_info_topic)],
        ),
    ])
