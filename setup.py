"""ament_python package definition for depth_estimation."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE_NAME = 'depth_estimation'

setup(
    name=PACKAGE_NAME,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*', 'training', 'training.*']),
    package_data={PACKAGE_NAME: ['resources/samples/*', 'datasets/resources/*',
                                 'resources/tensorrt/*', 'resources/models/demo/*',
                                 'resources/sequences/*', 'resources/sequences/*/*',
                                 'resources/sequences/*/rgb/*',
                                 'resources/sequences/*/depth/*']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE_NAME]),
        ('share/' + PACKAGE_NAME, ['package.xml']),
        ('share/' + PACKAGE_NAME + '/launch', glob('launch/*.launch.py')),
        ('share/' + PACKAGE_NAME + '/config', glob('config/*.yaml') + glob('config/*.xml')
         + glob('config/*.rviz')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='depth_estimation maintainers',
    maintainer_email='depth-estimation@example.com',
    description='Metric monocular depth (ZoeDepth) for ROS 2 with ONNX Runtime and TensorRT.',
    license='Apache-2.0',
    python_requires='>=3.10',
    entry_points={
        'console_scripts': [
            'depth_estimation_node = depth_estimation.ros.node:main',
            'depth_estimation_lifecycle_node = depth_estimation.ros.node:lifecycle_main',
            'depth_estimation_player = depth_estimation.ros.player:main',
            'depth_estimation_recorder = depth_estimation.ros.recorder:main',
            'depth_estimation_sim_camera = depth_estimation.ros.sim_camera:main',
            'depth-estimation = depth_estimation.cli:main',
        ],
    },
)
