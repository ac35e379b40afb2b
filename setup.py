"""ament_python package definition for depth_estimation."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE_NAME = 'depth_estimation'
EXTRAS = {
    'export': ['torch', 'transformers', 'safetensors', 'onnx', 'onnxslim', 'tflite'],
    'train': ['torch', 'transformers', 'lightning', 'tensorboard', 'jsonargparse[signatures]',
              'h5py', 'scipy', 'matplotlib'],
    'sim': ['pybullet'],
    'record': ['rosbags', 'rosbags-image'],
    'workbench': ['tqdm', 'matplotlib', 'rosbags', 'rosbags-image'],
}
EXTRAS['dev'] = sorted({name for names in EXTRAS.values() for name in names}
                       | {'pytest', 'pytest-timeout', 'flake8', 'mypy', 'mcap',
                          'mcap-ros2-support', 'ai-edge-litert'})

setup(
    name=PACKAGE_NAME,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*', 'training', 'training.*']),
    package_data={PACKAGE_NAME: ['resources/samples/*', 'datasets/resources/*',
                                 'resources/tensorrt/*', 'resources/models/demo/*',
                                 'resources/dds/*']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE_NAME]),
        ('share/' + PACKAGE_NAME, ['package.xml']),
        ('share/' + PACKAGE_NAME + '/launch', glob('launch/*.launch.py')),
        ('share/' + PACKAGE_NAME + '/config', glob('config/*.yaml') + glob('config/*.rviz')),
    ],
    # The runtime (the node on an exported ONNX model) needs what package.xml lists: rclpy and the
    # message packages, numpy, opencv, onnxruntime, PyYAML. The workbench's heavier parts are
    # extras; the Makefile's development environment installs all of them from requirements.txt.
    install_requires=['setuptools'],
    extras_require=EXTRAS,
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
            'depth_estimation_player = depth_estimation.tools.player:main',
            'depth_estimation_recorder = depth_estimation.tools.recorder:main',
            'depth_estimation_sim_camera = depth_estimation.tools.sim_camera:main',
            'depth-estimation = depth_estimation.tools.cli:main',
        ],
    },
)
