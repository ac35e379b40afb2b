"""Launch the depth node, optionally a camera driver and RViz (Nav2 style: one argument each).

Examples:
  ros2 launch depth_estimation depth_estimation.launch.py   # the package's default model
  ros2 launch depth_estimation depth_estimation.launch.py model_path:=... camera:=v4l2_camera \
      use_rviz:=true
  ros2 launch depth_estimation depth_estimation.launch.py model_path:=... use_lifecycle:=true \
      autostart:=false   # then: ros2 lifecycle set /depth_estimation_node configure
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node

CAMERA_DRIVERS = ('none', 'v4l2_camera', 'usb_cam')


def generate_launch_description() -> LaunchDescription:
    share_dir = get_package_share_directory('depth_estimation')

    namespace = LaunchConfiguration('namespace')
    params_file = LaunchConfiguration('params_file')
    model_path = LaunchConfiguration('model_path')
    camera = LaunchConfiguration('camera')
    video_device = LaunchConfiguration('video_device')
    image_topic = LaunchConfiguration('image')
    camera_info_topic = LaunchConfiguration('camera_info')
    sparse_depth_topic = LaunchConfiguration('sparse_depth')
    scan_topic = LaunchConfiguration('scan')
    scan_out_topic = LaunchConfiguration('scan_out')
    use_lifecycle = LaunchConfiguration('use_lifecycle')
    autostart = LaunchConfiguration('autostart')
    use_rviz = LaunchConfiguration('use_rviz')
    rviz_config = LaunchConfiguration('rviz_config')
    use_sim_time = LaunchConfiguration('use_sim_time')
    log_level = LaunchConfiguration('log_level')

    # Both drivers publish image_raw and camera_info in the namespace; image:=auto follows them.
    image_remap = PythonExpression([
        "'image_raw' if '", image_topic, "' == 'auto' and '", camera, "' != 'none' else "
        "('image' if '", image_topic, "' == 'auto' else '", image_topic, "')"])
    node_parameters = [params_file, {'model_path': model_path, 'use_sim_time': use_sim_time}]
    remappings = [('image', image_remap), ('camera_info', camera_info_topic),
                  ('sparse_depth', sparse_depth_topic), ('scan', scan_topic),
                  ('scan_out', scan_out_topic)]
    log_arguments = ['--ros-args', '--log-level', log_level]

    declare_arguments = [
        DeclareLaunchArgument(
            'namespace', default_value='',
            description='Namespace of every node started here and of their relative topics'),
        DeclareLaunchArgument(
            'params_file',
            default_value=os.path.join(share_dir, 'config', 'depth_estimation.yaml'),
            description='Full path to the ROS 2 parameters file of the depth node'),
        DeclareLaunchArgument(
            'model_path', default_value='',
            description='Model artifact (.onnx with its .onnx.json beside it, or a checkpoint); '
                        'empty: the package\'s default model'),
        DeclareLaunchArgument(
            'camera', default_value='none', choices=list(CAMERA_DRIVERS),
            description='Camera driver to start beside the node: v4l2_camera, usb_cam or none '
                        '(an existing camera or depth_estimation_player)'),
        DeclareLaunchArgument(
            'video_device', default_value='/dev/video0',
            description='Video device of the camera driver (v4l2_camera, usb_cam)'),
        DeclareLaunchArgument(
            'image', default_value='auto',
            description='Input colour image topic (sensor_msgs/Image) remapped onto the node\'s '
                        'image; auto: image_raw when a camera driver is started, else image'),
        DeclareLaunchArgument(
            'camera_info', default_value='camera_info',
            description='CameraInfo topic of the input image, remapped onto camera_info'),
        DeclareLaunchArgument(
            'sparse_depth', default_value='sparse_depth',
            description='Sparse metric depth (Image 32FC1 / 16UC1) remapped onto sparse_depth, '
                        'used when the anchoring parameter is sparse_depth'),
        DeclareLaunchArgument(
            'scan', default_value='scan',
            description='LaserScan remapped onto scan, used when the anchoring parameter is scan '
                        '(never the node\'s own scan_out)'),
        DeclareLaunchArgument(
            'scan_out', default_value='scan_out',
            description='Topic of the LaserScan the node publishes when publish_scan is true'),
        DeclareLaunchArgument(
            'use_lifecycle', default_value='false',
            description='Run the lifecycle node (depth_estimation_lifecycle_node) instead of '
                        'the plain one'),
        DeclareLaunchArgument(
            'autostart', default_value='true',
            description='Lifecycle node only: configure and activate at start (false: wait for '
                        'a lifecycle manager or ros2 lifecycle set)'),
        DeclareLaunchArgument(
            'use_rviz', default_value='false',
            description='Start RViz with the image, depth and point-cloud displays'),
        DeclareLaunchArgument(
            'rviz_config',
            default_value=os.path.join(share_dir, 'config', 'depth_estimation.rviz'),
            description='Full path to the RViz configuration file'),
        DeclareLaunchArgument(
            'use_sim_time', default_value='false',
            description='Use the /clock topic (simulation or bag playback) instead of wall time'),
        DeclareLaunchArgument(
            'log_level', default_value='info',
            description='Log level of the depth node (debug, info, warn, error)'),
    ]

    actions = [
        # Line-buffered output, so node logs appear in order with the launch log.
        SetEnvironmentVariable('RCUTILS_LOGGING_BUFFERED_STREAM', '1'),
        Node(
            condition=IfCondition(PythonExpression(["'", camera, "' == 'v4l2_camera'"])),
            package='v4l2_camera', executable='v4l2_camera_node', name='camera',
            namespace=namespace, output='screen',
            parameters=[{'video_device': video_device, 'use_sim_time': use_sim_time}]),
        Node(
            condition=IfCondition(PythonExpression(["'", camera, "' == 'usb_cam'"])),
            package='usb_cam', executable='usb_cam_node_exe', name='camera',
            namespace=namespace, output='screen',
            parameters=[{'video_device': video_device, 'use_sim_time': use_sim_time}]),
        Node(
            condition=UnlessCondition(use_lifecycle),
            package='depth_estimation', executable='depth_estimation_node',
            name='depth_estimation_node', namespace=namespace, output='screen',
            parameters=node_parameters, remappings=remappings, arguments=log_arguments),
        Node(
            condition=IfCondition(use_lifecycle),
            package='depth_estimation', executable='depth_estimation_lifecycle_node',
            name='depth_estimation_node', namespace=namespace, output='screen',
            parameters=node_parameters + [{'autostart': autostart}],
            remappings=remappings, arguments=log_arguments),
        Node(
            condition=IfCondition(use_rviz),
            package='rviz2', executable='rviz2', name='rviz2', namespace=namespace,
            output='screen', arguments=['-d', rviz_config],
            parameters=[{'use_sim_time': use_sim_time}]),
    ]

    return LaunchDescription(declare_arguments + actions)
